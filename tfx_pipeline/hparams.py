"""The hyper-parameters Transform's `preprocessing_fn` and Trainer's `run_fn` read, as one typed, frozen record.

The pipeline builds it from `PipelineConfig` and hands it to both components as `custom_config` (a JSON dict,
`to_custom_config`); the modules read it back with `from_custom_config`, which checks every field, so a wrong
or missing value fails naming the field instead of deep inside training.
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

PRECISIONS = ("float32", "mixed_bfloat16")
# The encoder inputs Transform writes (int64 [batch, T]) and the Trainer feeds the model (as int32).
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
TASKS = ("classify", "token_classification")


@dataclasses.dataclass(frozen=True)
class ModelHParams:
    text_features: Tuple[str, ...]  # one text column, or two for text pairs
    label_feature: str
    vocab_file: str  # the WordPiece vocabulary, one token a line
    max_seq_length: int
    encoder: str  # "tiny", "minilm" or a Hugging Face BERT directory
    num_classes: int
    batch_size: int
    learning_rate: float
    model_name: str = ""
    class_names: Optional[Tuple[str, ...]] = None  # served label names; None: "0", "1", ...
    precision: str = "float32"  # Keras dtype policy of the encoder
    seed: int = 0
    # "classify": text_features -> label (class ids). "token_classification": text_features[0] holds the
    # whitespace-separated words, label_feature the tags, class_names the tag set.
    task: str = "classify"

    def __post_init__(self):
        # JSON gives lists: keep tuples, so the record stays hashable and compares equal after a round trip.
        object.__setattr__(self, "text_features", tuple(self.text_features))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is int and (not isinstance(value, int) or isinstance(value, bool)):
                problems.append(f"{field.name} must be an int, got {value!r}")
            elif field.type is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                problems.append(f"{field.name} must be a number, got {value!r}")
            elif field.type is str and not isinstance(value, str):
                problems.append(f"{field.name} must be a string, got {value!r}")
        if not 1 <= len(self.text_features) <= 2 or not all(isinstance(t, str) for t in self.text_features):
            problems.append(f"text_features must be one or two column names, got {self.text_features!r}")
        for name in ("max_seq_length", "num_classes", "batch_size"):
            if isinstance(getattr(self, name), int) and getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.learning_rate, (int, float)) and not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            problems.append(f"{self.num_classes} classes but {len(self.class_names)} class_names: "
                            f"{self.class_names}")
        if self.task not in TASKS:
            problems.append(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "token_classification" and not self.class_names:
            problems.append("token_classification needs its tag set as class_names")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if problems:
            raise ValueError("bad model hyper-parameters: " + "; ".join(problems))

    def to_custom_config(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (TFX stores `custom_config` as JSON)."""
        config = dataclasses.asdict(self)
        config["text_features"] = list(self.text_features)
        config["class_names"] = None if self.class_names is None else list(self.class_names)
        return config

    @classmethod
    def from_custom_config(cls, config: Dict[str, Any]) -> "ModelHParams":
        """The record back from a component's `custom_config`; unknown keys are an error (a typo, or a stale
        pipeline), as are missing required ones."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown custom_config keys {unknown}; expected {sorted(names)}")
        try:
            return cls(**config)
        except TypeError as e:  # a missing field
            raise ValueError(f"custom_config {sorted(config)}: {e}") from None
