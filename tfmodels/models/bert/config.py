"""BertConfig: the hyper-parameters of a BERT encoder, as in Google's ``bert_config.json``."""

import dataclasses
import json

from tfmodels.models.config_checks import check_divisible, check_positive_ints, check_rates


@dataclasses.dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder. Field names follow Google's ``bert_config.json``.

    Args:
        vocab_size: WordPiece vocabulary size.
        hidden_size: width of every layer.
        num_hidden_layers: number of Transformer encoder blocks.
        num_attention_heads: attention heads per block.
        intermediate_size: feed-forward width.
        hidden_act: feed-forward activation (``"gelu"`` = exact erf GELU).
        hidden_dropout_prob: dropout on embeddings and sublayer outputs.
        attention_probs_dropout_prob: dropout on attention probabilities.
        max_position_embeddings: number of learned positions.
        type_vocab_size: number of segment types.
        initializer_range: stddev of the truncated-normal initializer.
        layer_norm_eps: LayerNorm epsilon (HF name; Google's checkpoints use 1e-12).
        norm_first: pre-LN blocks instead of BERT's post-LN.
        pruned_heads: ``{layer_index: [head indices]}`` of attention heads removed by structured
            pruning (``tfmodels.compress.pruning``; Hugging Face's field of the same name). Block
            ``i`` has ``num_attention_heads - len(pruned_heads[i])`` heads, each still of size
            ``hidden_size // num_attention_heads``; indices count the unpruned heads. Keys may be
            strings (JSON); they are normalised to ints, the heads to sorted unique ints, and
            empty lists dropped. A layer cannot lose all its heads: drop the layer instead. Left
            out of ``to_dict()`` when empty, so unpruned configs serialise as before.

    Example:
    >>> BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...            num_attention_heads=2, intermediate_size=64).hidden_size
    32
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    norm_first: bool = False
    pruned_heads: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_positive_ints(
            self,
            (
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_position_embeddings",
            ),
        )
        check_divisible(self, "hidden_size", "num_attention_heads")
        check_rates(self, ("hidden_dropout_prob", "attention_probs_dropout_prob"))
        self.pruned_heads = self._normalized_pruned_heads(self.pruned_heads or {})

    def _normalized_pruned_heads(self, pruned):
        normalized = {}
        for layer, heads in pruned.items():
            layer, heads = int(layer), sorted({int(head) for head in heads})
            if not 0 <= layer < self.num_hidden_layers:
                raise ValueError(f"BertConfig.pruned_heads: layer {layer} is not in "
                                 f"[0, num_hidden_layers={self.num_hidden_layers})")
            if heads and not 0 <= heads[0] <= heads[-1] < self.num_attention_heads:
                raise ValueError(f"BertConfig.pruned_heads[{layer}]: heads {heads} are not all in "
                                 f"[0, num_attention_heads={self.num_attention_heads})")
            if len(heads) == self.num_attention_heads:
                raise ValueError(f"BertConfig.pruned_heads[{layer}] removes all "
                                 f"{self.num_attention_heads} heads; remove the layer instead "
                                 "(fewer num_hidden_layers, e.g. tfmodels.compress.prune_layers)")
            if heads:
                normalized[layer] = heads
        return dict(sorted(normalized.items()))

    def layer_num_heads(self, layer):
        """The number of attention heads block ``layer`` keeps after ``pruned_heads``."""
        return self.num_attention_heads - len(self.pruned_heads.get(layer, ()))

    @classmethod
    def from_dict(cls, values):
        """Builds a config from Google or Hugging Face json fields; unknown fields are ignored,
        but a model type other than BERT is refused."""
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"not a BERT config: model_type={model_type!r}")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                "only absolute position embeddings are supported, got "
                f"position_embedding_type={values['position_embedding_type']!r}"
            )
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json_file(cls, path):
        """Reads Google's ``bert_config.json`` or a Hugging Face ``config.json``."""
        with open(path, encoding="utf-8") as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from e
        return cls.from_dict(values)

    def to_dict(self):
        values = dataclasses.asdict(self)
        if not values["pruned_heads"]:
            del values["pruned_heads"]  # unpruned configs keep their pre-pruning form
        return values

    def to_json_file(self, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
