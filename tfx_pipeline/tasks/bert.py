"""What the tasks on a BERT encoder share (classify, token_classification, span_qa): the `--encoder` choice and
its vocabulary, the encoder the Trainer builds, the encoder inputs Transform writes, and compression.

Standard library only at module level.
"""

import dataclasses
import os
from typing import List, Optional

from tfx_pipeline.flags import flag, positive_int
from tfx_pipeline.tasks.base import Options

ENCODERS = ("tiny", "minilm")
TINY_ENCODER = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
# The encoder inputs Transform writes (int64 [batch, T]) and the Trainer feeds the model (as int32).
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
# Compression after training (`--distill-into`, `--quantize`): quantization modes (Keras' `model.quantize` names).
QUANTIZE_MODES = ("int8",)

# The pretrained encoder by default: a run on the user's own data should learn (the random tiny one is for tests
# and smoke runs). The flag has no parser default since each task that reads it has its own (`encoder_from_args`).
DEFAULT_ENCODER = "minilm"
ENCODER = flag("--encoder", help=f"tiny (random, fast: tests), minilm (pretrained all-MiniLM-L6-v2), or a HF BERT "
                                 f"directory (default: {DEFAULT_ENCODER})")
DISTILL_INTO = flag("--distill-into", type=positive_int, metavar="LAYERS",
                    help="distil the trained model into a student of LAYERS encoder layers (started from the "
                         "teacher's, evenly spaced) before export; the Evaluator blesses the student (default: no "
                         "distillation)")
DISTILL_STEPS = flag("--distill-steps", type=positive_int,
                     help="distillation steps over the training split (default: --train-steps)")
QUANTIZE = flag("--quantize", choices=QUANTIZE_MODES,
                help="quantize the (distilled) model before export, int8 weights per output channel; blessed like "
                     "any model (default: float)")
COMPRESSION_FLAGS = (DISTILL_INTO, DISTILL_STEPS, QUANTIZE)


@dataclasses.dataclass(frozen=True)
class BertOptions(Options):
    """`encoder`: "tiny" (random), "minilm" (pretrained) or a Hugging Face BERT directory; `vocab_file`: its
    WordPiece vocabulary ("" until `prepare` finds the encoder's)."""

    encoder: str = DEFAULT_ENCODER
    vocab_file: str = ""

    def problems(self) -> List[str]:
        return [] if self.encoder else ["encoder must name tiny, minilm or a directory"]

    def summary(self) -> str:
        return f"encoder {self.encoder}"


@dataclasses.dataclass(frozen=True)
class CompressibleOptions(BertOptions):
    """Compression of the trained model before export (so that the Evaluator blesses what is pushed): distil it
    into a student of `distill_layers` encoder layers (0: no) for `distill_steps` steps (None: the training
    steps), then quantize (`quantize`, a QUANTIZE_MODES name; None: no)."""

    distill_layers: int = 0
    distill_steps: Optional[int] = None
    quantize: Optional[str] = None

    def problems(self) -> List[str]:
        problems = super().problems()
        if self.distill_layers < 0:
            problems.append(f"distill_layers must be >= 0, got {self.distill_layers}")
        if self.distill_steps is not None and (self.distill_steps < 1 or not self.distill_layers):
            problems.append(f"distill_steps={self.distill_steps} needs distill_layers and must be >= 1")
        if self.quantize not in (None,) + QUANTIZE_MODES:
            problems.append(f"quantize must be one of {QUANTIZE_MODES} (or None), got {self.quantize!r}")
        return problems


def is_encoder(text: str) -> bool:
    return text in ENCODERS or os.path.isfile(os.path.join(text, "config.json"))


def encoder_from_args(args) -> str:
    return args.encoder or DEFAULT_ENCODER


def check_encoder(parser, args) -> None:
    if not is_encoder(encoder_from_args(args)):
        parser.error(f"argument --encoder: must be tiny, minilm or a Hugging Face BERT directory (with "
                     f"config.json), got {args.encoder!r}")


def check_compression(parser, args) -> None:
    if args.distill_steps and not args.distill_into:
        parser.error("argument --distill-steps: needs --distill-into")


def compression_from_args(args) -> dict:
    return dict(distill_layers=args.distill_into or 0, distill_steps=args.distill_steps, quantize=args.quantize)


def learning_rate(options: BertOptions) -> float:
    """Peak learning rate: 1e-3 for the random tiny encoder, 5e-5 for pretrained ones."""
    return 1e-3 if options.encoder == "tiny" else 5e-5


def prepare(config):
    """The options with the encoder's vocabulary: MiniLM's for `tiny` and `minilm`, `<directory>/vocab.txt`."""
    from tfmodels.datasets import minilm_path

    options = config.options
    if options.vocab_file:
        return options
    directory = minilm_path() if options.encoder in ENCODERS else options.encoder
    return dataclasses.replace(options, vocab_file=os.path.join(directory, "vocab.txt"))


def build_encoder(hparams):
    """A tiny random BertEncoder (`"tiny"`), the pretrained MiniLM (`"minilm"`), or one loaded from a directory;
    in `hparams.precision` ("mixed_bfloat16": bfloat16 matmuls with float32 weights, about 2x faster on CPUs with
    AMX/AVX512-BF16; the task heads' logits layers stay float32 either way)."""
    import tfmodels

    options = hparams.options
    dtype = None if hparams.precision == "float32" else hparams.precision
    if options.encoder == "tiny":
        vocab_size = sum(1 for _ in open(options.vocab_file, encoding="utf-8"))
        config = tfmodels.BertConfig(vocab_size=vocab_size, max_position_embeddings=max(hparams.max_seq_length, 16),
                                     **TINY_ENCODER)
        return tfmodels.BertEncoder(config, dtype=dtype)
    directory = tfmodels.datasets.minilm_path() if options.encoder == "minilm" else options.encoder
    return tfmodels.checkpoints.load_hf_bert(directory, dtype=dtype)


def tokenizer(hparams):
    from tfmodels.text import BertTokenizer

    return BertTokenizer.from_vocab_file(hparams.options.vocab_file, lowercase=True)


def int32_inputs(features):
    """The encoder inputs of Transform's output, as the model takes them."""
    import tensorflow as tf

    return {name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS}
