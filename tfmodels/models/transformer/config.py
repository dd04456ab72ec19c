"""Seq2SeqConfig: the hyper-parameters of a ``Seq2SeqTransformer``, validated, with a JSON form."""

import dataclasses
import json
from typing import Optional

from tfmodels.models.config_checks import check_divisible, check_positive_ints, check_rates


@dataclasses.dataclass
class Seq2SeqConfig:
    """Hyper-parameters of an encoder-decoder Transformer (the ``Seq2SeqTransformer`` arguments).

    Args:
        source_vocab_size: source vocabulary size.
        target_vocab_size: target vocabulary size; ``None`` means ``source_vocab_size``.
        hidden_size: model width ``d_model``; divisible by ``num_heads``.
        num_heads: attention heads.
        intermediate_size: feed-forward width.
        num_encoder_layers: encoder blocks.
        num_decoder_layers: decoder blocks.
        dropout: dropout on embeddings and sublayer outputs, in ``[0, 1)``.
        attention_dropout: dropout on attention probabilities, in ``[0, 1)``.
        activation: feed-forward activation name.
        norm_first: pre-LN blocks (with a final LayerNorm per stack) instead of post-LN.
        position_encoding: ``"sinusoidal"`` (the paper) or ``"learned"``.
        max_source_length: longest source (learned positions only).
        max_target_length: longest target, and the default ``generate`` length.
        share_embeddings: one token table for source and target (needs equal vocabularies).
        tie_output_embeddings: output projection is the transposed target token table.
        pad_id: padding token id (a target token).
        start_id: id that starts every decoder input (a target token).
        end_id: id that ends every target; one outside the vocabulary never ends decoding early.
        layer_norm_epsilon: LayerNorm epsilon.

    Example:
    >>> config = Seq2SeqConfig(source_vocab_size=50, hidden_size=16, num_heads=2)
    >>> config.target_vocab_size
    50
    >>> Seq2SeqConfig.from_json(config.to_json()) == config
    True
    >>> Seq2SeqConfig(source_vocab_size=50, hidden_size=16, num_heads=3)
    Traceback (most recent call last):
    ...
    ValueError: Seq2SeqConfig.hidden_size (16) must be divisible by num_heads (3)
    """

    source_vocab_size: int
    target_vocab_size: Optional[int] = None
    hidden_size: int = 512
    num_heads: int = 8
    intermediate_size: int = 2048
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: str = "relu"
    norm_first: bool = False
    position_encoding: str = "sinusoidal"
    max_source_length: int = 256
    max_target_length: int = 256
    share_embeddings: bool = False
    tie_output_embeddings: bool = True
    pad_id: int = 0
    start_id: int = 1
    end_id: int = 2
    layer_norm_epsilon: float = 1e-6

    def __post_init__(self):
        if self.target_vocab_size is None:
            self.target_vocab_size = self.source_vocab_size
        check_positive_ints(
            self,
            (
                "source_vocab_size",
                "target_vocab_size",
                "hidden_size",
                "num_heads",
                "intermediate_size",
                "num_encoder_layers",
                "num_decoder_layers",
                "max_source_length",
                "max_target_length",
            ),
        )
        check_divisible(self, "hidden_size", "num_heads")
        check_rates(self, ("dropout", "attention_dropout"))
        if self.position_encoding not in ("sinusoidal", "learned"):
            raise ValueError(
                "Seq2SeqConfig.position_encoding must be 'sinusoidal' or 'learned', got "
                f"{self.position_encoding!r}"
            )
        if self.share_embeddings and self.source_vocab_size != self.target_vocab_size:
            raise ValueError(
                "share_embeddings needs equal vocabularies, got "
                f"{self.source_vocab_size} and {self.target_vocab_size}"
            )
        # pad and start ids are embedded, so they must be tokens; an end id may lie outside the
        # vocabulary (then decoding never stops early, as bench/generate.py wants).
        ids = {"pad_id": self.pad_id, "start_id": self.start_id, "end_id": self.end_id}
        check_positive_ints(self, ids, minimum=0)
        for name in ("pad_id", "start_id"):
            value = ids[name]
            if value >= self.target_vocab_size:
                raise ValueError(
                    f"Seq2SeqConfig.{name}={value!r} is outside the target vocabulary "
                    f"[0, {self.target_vocab_size})"
                )
        if len(set(ids.values())) < 3:
            raise ValueError(f"pad_id, start_id and end_id must differ, got {ids}")

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict; unknown keys are refused, naming them."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Seq2SeqConfig fields {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def to_json_file(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def from_json_file(cls, path):
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from e
