"""The hyper-parameters Transform's `preprocessing_fn` and Trainer's `run_fn` read, as one typed, frozen record.

The pipeline builds it from `PipelineConfig` and hands it to both components as `custom_config` (a JSON dict,
`to_custom_config`); the modules read it back with `from_custom_config`, which checks every field, so a wrong
or missing value fails naming the field instead of deep inside training.
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

PRECISIONS = ("float32", "mixed_bfloat16")
# Where the pipeline's Beam components run (`--runner`, tfx_pipeline.runners): LocalDagRunner with Beam's
# DirectRunner, BeamDagRunner, or LocalDagRunner with the Beam components on a Flink or Spark cluster.
RUNNERS = ("local", "beam", "flink", "spark")
# The Trainer's tf.distribute strategy (`--strategy`): none (one device), MirroredStrategy over this machine's
# devices, or MultiWorkerMirroredStrategy over the workers TF_CONFIG names (tfmodels.distribute).
STRATEGIES = ("default", "mirrored", "multi_worker")
VERTEX_KEY_PREFIX = "ai_platform_"  # tfx.extensions.google_cloud_ai_platform's custom_config keys
# The encoder inputs Transform writes (int64 [batch, T]) and the Trainer feeds the model (as int32).
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
# The pipeline's tasks (`--task`); each but classify has its module: tfx_pipeline.token_classification,
# .span_qa and .translation.
CLASSIFY, TOKEN_CLASSIFICATION, SPAN_QA, TRANSLATE = "classify", "token_classification", "span_qa", "translate"
TASKS = (CLASSIFY, TOKEN_CLASSIFICATION, SPAN_QA, TRANSLATE)
# Compression after training (`--distill-into`, `--quantize`): the tasks whose models it applies to, and the
# quantization modes (Keras' `model.quantize` names).
COMPRESSIBLE_TASKS = (CLASSIFY, TOKEN_CLASSIFICATION)
QUANTIZE_MODES = ("int8",)
# Seq2SeqTransformer sizes for `translate` (its `encoder` field names one).
TRANSLATION_SIZES = {
    "tiny": dict(hidden_size=32, num_heads=2, intermediate_size=64, num_encoder_layers=1, num_decoder_layers=1),
    "small": dict(hidden_size=128, num_heads=4, intermediate_size=512, num_encoder_layers=2, num_decoder_layers=2),
}


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
    # whitespace-separated words, label_feature the tags, class_names the tag set. "span_qa": text_features
    # are (question, context), label_feature the answer text (or a JSON list of answers) and
    # answer_start_feature its first character. "translate": text_features[0] is the source, label_feature the
    # target, vocab_file / target_vocab_file their WordPiece vocabularies and `encoder` a TRANSLATION_SIZES key.
    task: str = CLASSIFY
    answer_start_feature: str = ""
    target_vocab_file: str = ""
    # token_classification: label_feature holds JSON character spans of text_features[0] (a text), not tags.
    entity_spans: bool = False
    # Compression of the trained model before export (so the Evaluator blesses what is pushed): distil it into
    # a student of `distill_layers` encoder layers (0: no) for `distill_steps` steps, then quantize ("": no).
    distill_layers: int = 0
    distill_steps: int = 0
    quantize: str = ""
    strategy: str = "default"  # a STRATEGIES name

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
        if self.task == TOKEN_CLASSIFICATION and not self.class_names:
            problems.append("token_classification needs its tag set as class_names")
        if self.task == SPAN_QA and (len(self.text_features) != 2 or not self.answer_start_feature):
            problems.append("span_qa needs text_features (question, context) and answer_start_feature")
        if self.task == TRANSLATE and (self.encoder not in TRANSLATION_SIZES or not self.target_vocab_file):
            problems.append(f"translate needs encoder in {sorted(TRANSLATION_SIZES)} and a target_vocab_file")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.quantize not in ("",) + QUANTIZE_MODES:
            problems.append(f"quantize must be one of {QUANTIZE_MODES} (or empty), got {self.quantize!r}")
        if isinstance(self.distill_layers, int) and self.distill_layers < 0:
            problems.append(f"distill_layers must be >= 0, got {self.distill_layers}")
        if isinstance(self.distill_layers, int) and self.distill_layers and self.distill_steps < 1:
            problems.append(f"distill_layers={self.distill_layers} needs distill_steps >= 1, got "
                            f"{self.distill_steps}")
        if (self.distill_layers or self.quantize) and self.task not in COMPRESSIBLE_TASKS:
            problems.append(f"distillation and quantization apply to {COMPRESSIBLE_TASKS}, not {self.task!r}")
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
        # TFX's Vertex AI Trainer passes its own keys (ai_platform_training_args, ...) on to run_fn.
        config = {key: value for key, value in config.items() if not key.startswith(VERTEX_KEY_PREFIX)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown custom_config keys {unknown}; expected {sorted(names)}")
        try:
            return cls(**config)
        except TypeError as e:  # a missing field
            raise ValueError(f"custom_config {sorted(config)}: {e}") from None
