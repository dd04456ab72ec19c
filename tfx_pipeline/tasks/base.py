"""What a pipeline task is (`Task`), its checked options (`Options`), and the helpers several tasks share.

A task is one frozen record of everything the pipeline needs of it: its flags and their checks, its options,
default data, schema and row check, Transform's `preprocessing_fn`, the Trainer's train-and-export, the
Evaluator's config (whose one thresholded metric is the blessing gate), the post-push request and how to
print its answers, and its demo. `tfx_pipeline.tasks` maps names to records; the rest of the pipeline looks a
task up there and never names one.

Standard library only at module level (the CLI imports this before any flag is checked).
"""

import dataclasses
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfx_pipeline.flags import Flag

# Field metadata of a blessing threshold: the Evaluator's config reads it; Transform and Trainer never see it, so
# that a new threshold re-runs the Evaluator only (Transform and Trainer stay cached).
GATE = {"gate": True}


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of each task's options: a frozen dataclass, every field typed and checked when built, written to and
    read from JSON (the Transform and Trainer `custom_config`, `tfx_pipeline.hparams.ModelHParams`)."""

    def __post_init__(self):
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):  # JSON gives lists: keep tuples (hashable, equal after a round trip)
                value = tuple(value)
                object.__setattr__(self, field.name, value)
            problem = _type_problem(value, field.type)
            if problem:
                problems.append(f"{field.name} {problem}, got {value!r}")
        if not problems:
            problems = self.problems()
        if problems:
            raise ValueError(f"bad {type(self).__name__}: " + "; ".join(problems))

    def problems(self) -> List[str]:
        """The task's own checks across fields (types are checked already); empty when the options are good."""
        return []

    def summary(self) -> str:
        """The model the options choose, for the run's first line (e.g. "encoder tiny")."""
        return ""

    def without_gate(self) -> "Options":
        """These options with every blessing threshold at its default: what Transform and Trainer read."""
        return dataclasses.replace(self, **{f.name: f.default for f in dataclasses.fields(self) if f.metadata.get(
            "gate")})

    def to_json(self) -> Dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, config: Dict[str, Any]) -> "Options":
        """The options back from `to_json`; unknown or missing keys are errors (a typo, or a stale pipeline)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; expected {sorted(names)}")
        return cls(**config)


def _type_problem(value, annotation) -> Optional[str]:
    """Why `value` is not of the field type `annotation` (int, float, str, bool, Tuple[str, ...], Optional[...])."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:  # Optional[X]
        return None if value is None else _type_problem(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        return None if isinstance(value, tuple) and all(isinstance(v, str) for v in value) else "must be strings"
    if annotation is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an int"
    if annotation is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"
    if annotation is str:
        return None if isinstance(value, str) else "must be a string"
    return None


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Demo:
    """`make demo TASK=<name>` (`python -m tfx_pipeline.demo --task <name>`): the task's defaults of the pipeline
    flags, its default `--root`, and what it does beyond the pipeline's run."""

    defaults: Dict[str, Any]
    root: str
    # After parsing: fill in what depends on other flags (e.g. class names of the packaged data). None: nothing.
    adjust_args: Optional[Callable[[Any], None]] = None
    # The held-out metrics beyond the gate's, as text after it (e.g. ", AUC 0.88"). None: nothing.
    metrics_note: Optional[Callable[[Dict[str, float]], str]] = None
    # The demo's own serving step `(args, config, root, result)`; None: the infra-validation request.
    serve: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class Task:
    """Everything the pipeline needs of one task. The callables take the task's `options` (an `Options`)."""

    name: str
    summary: str  # one line for `--task`'s help: what goes in and what comes out
    options: type  # the task's Options subclass
    flags: Tuple[Flag, ...]  # the CLI flags it reads (besides the pipeline's own)
    check_args: Callable  # (parser, args): checks across its flags, before anything slow; parser.error names one
    options_from_args: Callable  # (args, data_root) -> options
    data_name: str  # the packaged data, prepared into <root>/data/<data_name>_<rows>
    prepare_data: Callable  # (args, directory) -> the packaged data written as CSVs into directory
    learning_rate: Callable  # (options) -> the default peak learning rate
    schema: Callable  # (options, columns: name -> schema_pb2 type) -> the expected schema_pb2.Schema
    row_check: Callable  # (options) -> `tfx_pipeline.row_checks.check_from_config`'s config, or None
    eval_config: Callable  # (options) -> tfma.EvalConfig; its one thresholded metric gates the blessing
    preprocessing_fn: Callable  # (inputs, hparams) -> Transform's outputs
    train_and_export: Callable  # (fn_args, hparams, tf_transform_output, callbacks): the Trainer's work
    sample_requests: Callable  # (args, config, count) -> the requests the pushed model answers after the push
    query: Callable  # (model_base_path, model_name, options, samples) -> answers (a JSON-able dict)
    describe: Callable  # (samples, answers) -> printable lines
    demo: Demo
    # (config) -> options, before the pipeline is built: what the options derive from the data or the model
    # (vocabularies). None: the options as given.
    prepare: Optional[Callable] = None
    compressible: bool = False  # --distill-into / --quantize apply to its model
    # (config, gated metric, its value) -> what to try when a run is not blessed ("" for nothing to say)
    not_blessed_hint: Optional[Callable] = None


def gate(eval_config) -> Tuple[str, float]:
    """(the metric the blessing gates on, its lower bound), read from the EvalConfig's one value threshold."""
    from tensorflow_model_analysis.metrics import metric_specs
    from tensorflow_model_analysis.proto import config_pb2

    gates = [(key.name, threshold.lower_bound.value)
             for key, pairs in metric_specs.metric_thresholds_from_metrics_specs(eval_config.metrics_specs,
                                                                                 eval_config).items()
             for _, threshold in pairs
             if isinstance(threshold, config_pb2.GenericValueThreshold) and threshold.HasField("lower_bound")]
    if len(gates) != 1:
        raise ValueError(f"an EvalConfig gates on one metric's value, found {gates}")
    return gates[0]


def dense_1d(tensor, default):
    """A [batch] tensor from a [batch, 1] dense or sparse feature (missing values -> `default`)."""
    import tensorflow as tf

    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(tf.sparse.reset_shape(tensor, [tensor.dense_shape[0], 1]),
                                    default_value=default)
    return tf.reshape(tensor, [-1])


def declared_schema(declared: Sequence[str], columns: Dict[str, int], required: Dict[str, int] = None):
    """The expected schema of a task whose columns are all text (`declared`) but `required` (name -> type):
    present in every row; the data's other columns declared without constraints."""
    from tfx_pipeline.schema import expected_schema

    required = required or {}
    others = {name: kind for name, kind in columns.items() if name not in set(declared) | set(required)}
    return expected_schema(declared, None, 0, others, required=required)


def served_header(answers: Dict, signature: str, count: int, kind: str = "texts") -> str:
    return (f"Infra-validation: version {answers['version']} served by a fresh ModelServer process; gRPC Predict "
            f"on {signature} ({count} {kind}) answered:")


def served_lines(answers: Dict, signature: str, inputs: Sequence[str], outputs: Sequence[str], kind: str = "texts",
                 output_width: int = 90) -> List[str]:
    """The run summary's post-push lines for a text-in/text-out task: the header, then each input -> output."""
    lines = [served_header(answers, signature, len(inputs), kind)]
    for text, output in zip(inputs, outputs):
        lines.append(f"  {text[:70]!r}\n    -> {output[:output_width]!r}")
    return lines


def predict_texts(model_base_path: str, model_name: str, inputs: Dict, signature: str, output: str):
    """One Predict on `signature` of a freshly started server: (version, the `output` strings decoded)."""
    from tfx_pipeline.infra_validation import ask_fresh_server

    version, outputs = ask_fresh_server(model_base_path, model_name, lambda client: client.predict(
        model_name, inputs, signature_name=signature))
    return version, [text.decode() for text in outputs[output].tolist()]


def given_or_first_texts(args, data_root: str, feature: str, count: int) -> list:
    """`--sample-text` when given, else the first `count` texts of `feature` in the data."""
    from tfx_pipeline import data

    if getattr(args, "sample_text", None):
        return list(args.sample_text)
    return data.sample_texts(data_root, feature, count)
