"""The hyper-parameters Transform's `preprocessing_fn` and Trainer's `run_fn` read, as one typed, frozen record.

The pipeline builds it from `PipelineConfig` and hands it to both components as `custom_config` (a JSON dict,
`to_custom_config`: the task's name, its options under "options", then the training settings); the modules read
it back with `from_custom_config`, which checks every field, so a wrong or missing value fails naming the field
instead of deep inside training.
"""

import dataclasses
from typing import Any, Dict

from tfx_pipeline import tasks
from tfx_pipeline.tasks.base import Options

PRECISIONS = ("float32", "mixed_bfloat16")
# Where the pipeline's Beam components run (`--runner`, tfx_pipeline.runners): LocalDagRunner with Beam's
# DirectRunner, BeamDagRunner, or LocalDagRunner with the Beam components on a Flink or Spark cluster.
RUNNERS = ("local", "beam", "flink", "spark")
# The Trainer's tf.distribute strategy (`--strategy`): none (one device), MirroredStrategy over this machine's
# devices, or MultiWorkerMirroredStrategy over the workers TF_CONFIG names (tfmodels.distribute).
STRATEGIES = ("default", "mirrored", "multi_worker")
VERTEX_KEY_PREFIX = "ai_platform_"  # tfx.extensions.google_cloud_ai_platform's custom_config keys


@dataclasses.dataclass(frozen=True)
class ModelHParams:
    task: str  # a tfx_pipeline.tasks name
    options: Options  # the task's options (without blessing thresholds: `Options.without_gate`)
    max_seq_length: int
    batch_size: int
    learning_rate: float
    model_name: str = ""
    precision: str = "float32"  # Keras dtype policy of the model's encoder (a PRECISIONS name)
    seed: int = 0
    strategy: str = "default"  # a STRATEGIES name
    jit_compile: bool = True  # XLA for the Trainer's train and validation steps (`--no-xla`: off)

    def __post_init__(self):
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is int and (not isinstance(value, int) or isinstance(value, bool)):
                problems.append(f"{field.name} must be an int, got {value!r}")
            elif field.type is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                problems.append(f"{field.name} must be a number, got {value!r}")
            elif field.type is str and not isinstance(value, str):
                problems.append(f"{field.name} must be a string, got {value!r}")
            elif field.type is bool and not isinstance(value, bool):
                problems.append(f"{field.name} must be true or false, got {value!r}")
        for name in ("max_seq_length", "batch_size"):
            if isinstance(getattr(self, name), int) and getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.learning_rate, (int, float)) and not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.task not in tasks.TASKS:
            problems.append(f"task must be one of {tasks.TASKS}, got {self.task!r}")
        elif type(self.options) is not tasks.get(self.task).options:
            problems.append(f"options must be {tasks.get(self.task).options.__name__}, got {self.options!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if problems:
            raise ValueError("bad model hyper-parameters: " + "; ".join(problems))

    def to_custom_config(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (TFX stores `custom_config` as JSON)."""
        config = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        config["options"] = self.options.to_json()
        return config

    @classmethod
    def from_custom_config(cls, config: Dict[str, Any]) -> "ModelHParams":
        """The record back from a component's `custom_config`; unknown keys are an error (a typo, or a stale
        pipeline), as are missing required ones."""
        names = {field.name for field in dataclasses.fields(cls)}
        # TFX's Vertex AI Trainer passes its own keys (ai_platform_training_args, ...) on to run_fn.
        config = {key: value for key, value in config.items() if not key.startswith(VERTEX_KEY_PREFIX)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown custom_config keys {unknown}; expected {sorted(names)}")
        try:
            options = tasks.get(config["task"]).options.from_json(config["options"])
            return cls(**{**config, "options": options})
        except (KeyError, TypeError) as e:  # a missing field
            raise ValueError(f"custom_config {sorted(config)}: missing or wrong {e}") from None
