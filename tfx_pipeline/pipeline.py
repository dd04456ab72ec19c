"""`create_pipeline`: the TFX pipeline from a folder of labelled text CSVs to a blessed model pushed for TF Serving."""

# ruff: noqa: I001  (tfx_pipeline must be imported before TFX and TFMA: see below)
import dataclasses
import os
from typing import List, Optional

import tfx_pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TFX/TFT import)

from tfx import v1 as tfx  # noqa: E402
from tfx.dsl.placeholder.placeholder_base import logical_and  # noqa: E402

from tfx_pipeline import example_validator as validator  # noqa: E402
from tfx_pipeline import tasks  # noqa: E402
from tfx_pipeline.data_checks import check_columns, check_csv_folder, csv_files  # noqa: E402
from tfx_pipeline.hparams import PRECISIONS, ModelHParams  # noqa: E402
from tfx_pipeline.schema import csv_columns, example_columns, write_schema  # noqa: E402
from tfx_pipeline.tasks.base import Options  # noqa: E402

PREPROCESSING_FN = "tfx_pipeline.transform_module.preprocessing_fn"
RUN_FN = "tfx_pipeline.trainer_module.run_fn"


@dataclasses.dataclass
class PipelineConfig:
    """Everything `create_pipeline` needs; the CLI flags map onto these fields and the task's `options`."""

    data_root: str
    pipeline_root: str
    metadata_path: str
    serving_model_dir: str
    pipeline_name: str = "tfmodels_text_classifier"
    model_name: str = "text_classifier"
    # The task (a tfx_pipeline.tasks name) and its options (that task's `options` type; None: its defaults):
    # its columns, model choice and blessing threshold.
    task: str = tasks.DEFAULT_TASK
    options: Optional[Options] = None
    train_steps: int = 20
    eval_steps: int = 5
    max_seq_length: int = 64
    batch_size: int = 16
    # Peak learning rate (None: the task's for its options, as on the CLI: 5e-5 for a pretrained encoder).
    learning_rate: Optional[float] = None
    beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
    input_format: str = "csv"
    # Trainer's Keras dtype policy for the model: "float32", or "mixed_bfloat16" (bfloat16 compute).
    precision: str = "float32"
    # Trainer's tf.distribute strategy (hparams.STRATEGIES): "default", "mirrored" or "multi_worker".
    strategy: str = "default"
    # XLA-compile the Trainer's train and validation steps (False: TensorFlow's graph executor; for runs of a
    # few steps, which XLA's compile would outlast).
    jit_compile: bool = True
    # Train on Vertex AI Training instead of in the Trainer's own container (Kubeflow V2 on Vertex AI Pipelines).
    vertex_training: Optional["VertexTraining"] = None

    def __post_init__(self):
        task = tasks.get(self.task)
        if self.options is None:
            self.options = task.options()
        if type(self.options) is not task.options:
            raise ValueError(f"{self.task} takes options of type {task.options.__name__}, got {self.options!r}")
        if self.learning_rate is None:
            self.learning_rate = task.learning_rate(self.options)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.vertex_training and self.vertex_training.workers > 1 and self.strategy == "mirrored":
            raise ValueError(f"{self.vertex_training.workers} Vertex AI workers train with strategy multi_worker, "
                             f"not mirrored")

    def training_strategy(self) -> str:
        """`strategy`, or multi_worker when Vertex AI trains on several workers."""
        if self.vertex_training and self.vertex_training.workers > 1:
            return "multi_worker"
        return self.strategy

    def gate(self):
        """(the metric the blessing gates on, its lower bound): the task's EvalConfig's threshold."""
        return tasks.base.gate(self.eval_config())

    def eval_config(self):
        return tasks.get(self.task).eval_config(self.options)

    def model_base_path(self) -> str:
        """Where Pusher writes versions: TF Serving's `<serving_model_dir>/<model_name>/<version>` layout."""
        return os.path.join(self.serving_model_dir, self.model_name)

    def hparams(self) -> ModelHParams:
        """What Transform's preprocessing_fn and Trainer's run_fn read (as their `custom_config`): the task's
        options without the blessing threshold, so that a new threshold re-runs the Evaluator only."""
        return ModelHParams(
            task=self.task, options=self.options.without_gate(), max_seq_length=self.max_seq_length,
            batch_size=self.batch_size, learning_rate=float(self.learning_rate), model_name=self.model_name,
            precision=self.precision, strategy=self.training_strategy(), jit_compile=self.jit_compile)

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
    task = tasks.get(config.task)
    # A column the task needs in every row and the data lacks fails here, before any component runs.
    required = [f.name for f in task.schema(config.options, columns).feature if f.presence.min_fraction >= 1]
    where = config.data_root if config.input_format == "tfrecord" else csv_files(config.data_root)[0]
    check_columns(where, list(columns), required, f"--task {config.task}")
    if task.prepare is not None:  # what the options derive from the data or the model, e.g. vocabularies
        config = dataclasses.replace(config, options=task.prepare(config))
    # ExampleValidator names each bad row by file and line: it reads the input as ExampleGen read it and checks
    # that every column the task needs is filled, besides the task's own row check.
    row_check = task.row_check(config.options) or {}
    if required or row_check:
        row_check = {"feature": required[0] if required else None, **row_check, "required": required,
                     "source": {"data_root": config.data_root, "input_format": config.input_format}}
    schema_file = write_schema(task.schema(config.options, columns),
                               os.path.join(config.pipeline_root, "expected_schema"))
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
                                             preprocessing_fn=PREPROCESSING_FN, custom_config=custom_config,
                                             # StatisticsGen and ExampleValidator have checked the input; TFDV
                                             # over Transform's input and output again cost it a fifth.
                                             disable_statistics=True)
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
            eval_config=config.eval_config())
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
