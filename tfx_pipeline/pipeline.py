"""`create_pipeline`: the TFX pipeline from a folder of labelled text CSVs to a blessed model pushed for TF Serving."""

# ruff: noqa: I001  (tfx_pipeline must be imported before TFX and TFMA: see below)
import dataclasses
import os
from typing import List, Optional, Sequence

import tfx_pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TFX/TFT import)

import tensorflow_model_analysis as tfma  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: E402
from tfx.dsl.placeholder.placeholder_base import logical_and  # noqa: E402

from tfx_pipeline import example_validator as validator  # noqa: E402
from tfx_pipeline import span_qa, token_classification, translation  # noqa: E402
from tfx_pipeline.metrics import BLEU, ENTITY_F1, SQUAD_F1, blessing_threshold  # noqa: E402
from tfx_pipeline.data_checks import check_csv_folder  # noqa: E402
from tfx_pipeline.hparams import PRECISIONS, TASKS, ModelHParams  # noqa: E402
from tfx_pipeline.schema import csv_columns, example_columns, expected_schema, write_schema  # noqa: E402

PREPROCESSING_FN = "tfx_pipeline.transform_module.preprocessing_fn"
RUN_FN = "tfx_pipeline.trainer_module.run_fn"


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16); elsewhere bfloat16 is emulated, slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@dataclasses.dataclass
class PipelineConfig:
    """Everything `create_pipeline` needs; the CLI flags map one to one onto these fields."""

    data_root: str
    pipeline_root: str
    metadata_path: str
    serving_model_dir: str
    pipeline_name: str = "tfmodels_text_classifier"
    model_name: str = "text_classifier"
    text_features: Sequence[str] = ("text",)
    label_feature: str = "label"
    num_classes: int = 2
    encoder: str = "tiny"
    train_steps: int = 20
    eval_steps: int = 5
    max_seq_length: int = 64
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_accuracy: float = 0.5
    beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
    input_format: str = "csv"
    # One name per class id (the served `label_name` and Classify's `classes`); None: "0", "1", ...
    class_names: Optional[Sequence[str]] = None
    # Trainer's Keras dtype policy for the encoder: "float32", or "mixed_bfloat16" (bfloat16 compute).
    precision: str = "float32"
    # "classify"; "token_classification": text_features[0] is the words column, label_feature the tags column
    # and class_names the tag set (tfx_pipeline.token_classification); "span_qa": text_features are (question,
    # context), label_feature the answers (tfx_pipeline.span_qa); "translate": text_features[0] is the source,
    # label_feature the target and `encoder` the model size, tiny or small (tfx_pipeline.translation).
    task: str = "classify"
    min_f1: float = 0.5  # token_classification's and span_qa's blessing threshold on entity / SQuAD F1
    min_bleu: float = 1.0  # translate's blessing threshold on corpus BLEU (0-100)
    answer_start_feature: str = "answer_start"  # span_qa: the answer's first character
    # token_classification: label_feature holds JSON character spans of the text in text_features[0].
    entity_spans: bool = False
    # translate: the WordPiece vocabularies (source uncased, target cased); None: learned from the CSVs.
    source_vocab_file: Optional[str] = None
    target_vocab_file: Optional[str] = None
    # Compression before export, blessed by the same thresholds (classify, token_classification): distil into a
    # student of `distill_layers` encoder layers (0: no) for `distill_steps` steps (None: train_steps), then
    # quantize to `quantize` ("int8"; None: no).
    distill_layers: int = 0
    distill_steps: Optional[int] = None
    quantize: Optional[str] = None
    # Trainer's tf.distribute strategy (hparams.STRATEGIES): "default", "mirrored" or "multi_worker".
    strategy: str = "default"
    # Train on Vertex AI Training instead of in the Trainer's own container (Kubeflow V2 on Vertex AI Pipelines).
    vertex_training: Optional["VertexTraining"] = None

    def __post_init__(self):
        self.text_features = tuple(self.text_features)
        if self.class_names is not None:
            self.class_names = tuple(self.class_names)
            if len(self.class_names) != self.num_classes:
                raise ValueError(f"{self.num_classes} classes but {len(self.class_names)} class names: "
                                 f"{self.class_names}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.vertex_training and self.vertex_training.workers > 1 and self.strategy == "mirrored":
            raise ValueError(f"{self.vertex_training.workers} Vertex AI workers train with strategy multi_worker, "
                             f"not mirrored")

    def training_strategy(self) -> str:
        """`strategy`, or multi_worker when Vertex AI trains on several workers."""
        if self.vertex_training and self.vertex_training.workers > 1:
            return "multi_worker"
        return self.strategy

    def gate(self):
        """(the metric the blessing gates on, its lower bound)."""
        return {token_classification.TASK: (ENTITY_F1, self.min_f1), span_qa.TASK: (SQUAD_F1, self.min_f1),
                translation.TASK: (BLEU, self.min_bleu)}.get(self.task, ("sparse_categorical_accuracy",
                                                                         self.min_accuracy))

    def vocab_file(self) -> str:
        """The WordPiece vocabulary: MiniLM's for `tiny` and `minilm`, `<encoder dir>/vocab.txt` otherwise; for
        translate, the source vocabulary."""
        from tfmodels.datasets import minilm_path

        if self.task == translation.TASK:
            if not self.source_vocab_file:
                raise ValueError("translate needs source_vocab_file (create_pipeline learns it from CSVs)")
            return self.source_vocab_file

        directory = minilm_path() if self.encoder in ("tiny", "minilm") else self.encoder
        return os.path.join(directory, "vocab.txt")

    def model_base_path(self) -> str:
        """Where Pusher writes versions: TF Serving's `<serving_model_dir>/<model_name>/<version>` layout."""
        return os.path.join(self.serving_model_dir, self.model_name)

    def hparams(self) -> ModelHParams:
        """What Transform's preprocessing_fn and Trainer's run_fn read (as their `custom_config`)."""
        return ModelHParams(
            text_features=self.text_features, label_feature=self.label_feature, vocab_file=self.vocab_file(),
            max_seq_length=self.max_seq_length, encoder=self.encoder, num_classes=self.num_classes,
            batch_size=self.batch_size, learning_rate=float(self.learning_rate), model_name=self.model_name,
            class_names=self.class_names, precision=self.precision, task=self.task,
            answer_start_feature=self.answer_start_feature if self.task == span_qa.TASK else "",
            target_vocab_file=(self.target_vocab_file or "") if self.task == translation.TASK else "",
            entity_spans=self.entity_spans and self.task == token_classification.TASK,
            distill_layers=self.distill_layers,
            distill_steps=(self.distill_steps or self.train_steps) if self.distill_layers else 0,
            quantize=self.quantize or "", strategy=self.training_strategy())

    def custom_config(self) -> dict:
        return self.hparams().to_custom_config()


@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """The Trainer as a Vertex AI custom job: `workers` replicas of `machine_type` running `image`.

    Vertex AI runs worker pool 0 (one replica, the chief) and pool 1 (`workers - 1` replicas) and sets each
    replica's `TF_CONFIG`; with `workers > 1` the pipeline trains with `strategy="multi_worker"`. TFX's
    Vertex Trainer (`tfx.extensions.google_cloud_ai_platform.Trainer`) gives every replica the same command.
    """

    project: str
    region: str
    image: str
    workers: int = 1
    machine_type: str = "n1-standard-8"

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not self.project or not self.region:
            raise ValueError("Vertex AI training needs a project and a region")

    def worker_pool_specs(self) -> List[dict]:
        """Vertex AI's `CustomJobSpec.worker_pool_specs`: the chief pool, then the other workers' pool."""
        def pool(replicas):
            return {"machine_spec": {"machine_type": self.machine_type}, "replica_count": replicas,
                    "container_spec": {"image_uri": self.image}}

        return [pool(1)] + ([pool(self.workers - 1)] if self.workers > 1 else [])

    def custom_config(self) -> dict:
        """The keys TFX's Vertex Trainer reads from its `custom_config`."""
        vertex = tfx.extensions.google_cloud_ai_platform
        return {vertex.ENABLE_VERTEX_KEY: True, vertex.VERTEX_REGION_KEY: self.region,
                vertex.TRAINING_ARGS_KEY: {"project": self.project,
                                           "job_spec": {"worker_pool_specs": self.worker_pool_specs()}}}


def eval_config(label_feature: str, num_classes: int, min_accuracy: float) -> tfma.EvalConfig:
    """Example count, accuracy and AUC; blessed when accuracy >= `min_accuracy` and not below the baseline.

    AUC is one-vs-rest per class (for two classes, class 1's AUC is the usual binary AUC); accuracy gates.
    """
    accuracy_threshold = blessing_threshold(min_accuracy)
    auc_classes = [1] if num_classes == 2 else list(range(num_classes))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=label_feature,
                                    prediction_key="probabilities", preprocessing_function_names=[])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=accuracy_threshold)]),
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="AUC")],
                             binarize=tfma.BinarizationOptions(class_ids={"values": auc_classes})),
        ])


def _task_parts(config: PipelineConfig, columns):
    """The task's expected schema, ExampleValidator row check (None: the schema says it all) and EvalConfig.

    `columns`: the data's column -> FeatureType; those the task does not read are declared without constraints.
    """
    if config.task == token_classification.TASK:
        declared = (*config.text_features, config.label_feature)
        required = {}
        row_check = token_classification.row_check(config.text_features[0], config.label_feature,
                                                   config.class_names, config.entity_spans)
        evaluation = token_classification.eval_config(config.label_feature, config.min_f1, config.entity_spans)
    elif config.task == span_qa.TASK:
        declared = (*config.text_features, config.label_feature)
        # An integer column, or a string one holding JSON lists (several gold answers).
        required = {config.answer_start_feature: columns.get(config.answer_start_feature, schema_pb2.INT)}
        row_check = span_qa.row_check(*config.text_features, config.label_feature, config.answer_start_feature)
        evaluation = span_qa.eval_config(config.label_feature, config.min_f1)
    elif config.task == translation.TASK:
        declared = (config.text_features[0], config.label_feature)
        required = {}
        row_check = translation.row_check(config.text_features[0], config.label_feature)
        evaluation = translation.eval_config(config.label_feature, config.min_bleu)
    else:
        others = {n: t for n, t in columns.items() if n not in set(config.text_features) | {config.label_feature}}
        return (expected_schema(config.text_features, config.label_feature, config.num_classes, others), None,
                eval_config(config.label_feature, config.num_classes, config.min_accuracy))
    others = {name: kind for name, kind in columns.items() if name not in set(declared) | set(required)}
    return expected_schema(declared, None, 0, others, required=required), row_check, evaluation


def _data_is_valid(example_validator) -> "tfx.dsl.placeholders.Predicate":
    """True when ExampleValidator found no anomaly in either split (its `blessed` property, per split)."""
    blessed = example_validator.outputs["anomalies"].future()[0].custom_property("blessed")
    return logical_and(blessed["train"] == 1, blessed["eval"] == 1)


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform -> Trainer -> Evaluator -> Pusher.

    The schema is the expected one (see `tfx_pipeline.schema`), imported by ImportSchemaGen; Transform and
    everything after it run only when ExampleValidator found the data to match it.
    """
    if config.input_format == "tfrecord":
        example_gen = tfx.components.ImportExampleGen(input_base=config.data_root)
        columns = example_columns(config.data_root)
    else:
        check_csv_folder(config.data_root)  # unreadable files fail here, naming file and line, not in Beam
        example_gen = tfx.components.CsvExampleGen(input_base=config.data_root)
        columns = csv_columns(config.data_root)
    if config.task == translation.TASK and not config.source_vocab_file:
        if config.input_format == "tfrecord":
            raise ValueError("translate on tfrecord input needs source_vocab_file and target_vocab_file")
        source_vocab, target_vocab = translation.learn_vocab_files(
            config.data_root, config.text_features[0], config.label_feature,
            os.path.join(config.pipeline_root, "learned_vocab"))
        config = dataclasses.replace(config, source_vocab_file=source_vocab, target_vocab_file=target_vocab)
    schema, row_check, evaluation = _task_parts(config, columns)
    schema_file = write_schema(schema, os.path.join(config.pipeline_root, "expected_schema"))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file).with_id("SchemaGen")
    # Also fails a split with no examples, and runs the task's row check (tfx_pipeline.row_checks).
    example_validator = validator.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"],
        examples=example_gen.outputs["examples"] if row_check else None, row_check=row_check)
    custom_config = config.custom_config()
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    with tfx.dsl.Cond(_data_is_valid(example_validator)):
        transform = tfx.components.Transform(examples=example_gen.outputs["examples"],
                                             schema=schema_gen.outputs["schema"],
                                             preprocessing_fn=PREPROCESSING_FN, custom_config=custom_config)
        trainer_class, trainer_config = tfx.components.Trainer, custom_config
        if config.vertex_training is not None:
            trainer_class = tfx.extensions.google_cloud_ai_platform.Trainer
            trainer_config = {**custom_config, **config.vertex_training.custom_config()}
        trainer = trainer_class(
            run_fn=RUN_FN, examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
            eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps), custom_config=trainer_config)
        evaluator = tfx.components.Evaluator(
            examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
            baseline_model=model_resolver.outputs["model"],
            eval_config=evaluation)
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=config.model_base_path())))
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, transform, trainer,
                    model_resolver, evaluator, pusher],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path),
        beam_pipeline_args=list(config.beam_pipeline_args))
