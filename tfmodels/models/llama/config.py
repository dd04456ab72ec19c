"""DecoderConfig: the hyper-parameters of a Llama-architecture decoder (Llama 2/3, SmolLM2, ...)."""

import dataclasses
import json

from tfmodels.models.config_checks import check_divisible, check_positive_ints, check_rates

HF_MODEL_TYPES = ("llama",)


@dataclasses.dataclass
class DecoderConfig:
    """Hyper-parameters of a decoder-only Llama-architecture model; field names follow Hugging
    Face's ``LlamaConfig`` (``config.json``).

    Args:
        vocab_size: token vocabulary size.
        hidden_size: width of every block.
        intermediate_size: SwiGLU feed-forward width.
        num_hidden_layers: number of decoder blocks.
        num_attention_heads: query heads per block.
        num_key_value_heads: key/value heads (grouped-query attention); ``None`` means
            ``num_attention_heads``. ``num_attention_heads`` must be a multiple of it.
        head_dim: size of each head; ``None`` means ``hidden_size // num_attention_heads``.
        hidden_act: gate activation of the feed-forward (``"silu"``: SwiGLU).
        max_position_embeddings: the context length the model was trained for.
        rms_norm_eps: RMSNorm epsilon.
        rope_theta: RoPE base (wavelength).
        rope_scaling_factor: linear RoPE scaling (positions divided by it); 1 for none.
        tie_word_embeddings: the output projection is the token embedding (SmolLM2) or its own
            matrix (Llama 2).
        attention_dropout: dropout on the attention probabilities (training only).
        initializer_range: stddev of the random-normal initializer.

    Example:
    >>> config = DecoderConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
    ...                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> config.head_dim, DecoderConfig.from_json(config.to_json()) == config
    (8, True)
    """

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = None
    head_dim: int = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling_factor: float = 1.0
    tie_word_embeddings: bool = False
    attention_dropout: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None and isinstance(self.num_attention_heads, int) and \
                self.num_attention_heads > 0:
            self.head_dim = self.hidden_size // self.num_attention_heads
        check_positive_ints(self, ("vocab_size", "hidden_size", "intermediate_size",
                                   "num_hidden_layers", "num_attention_heads",
                                   "num_key_value_heads", "head_dim", "max_position_embeddings"))
        check_divisible(self, "num_attention_heads", "num_key_value_heads")
        if self.head_dim % 2:
            raise ValueError(f"DecoderConfig.head_dim must be even for RoPE, got {self.head_dim}")
        for name in ("rms_norm_eps", "rope_theta", "rope_scaling_factor", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"DecoderConfig.{name} must be a positive number, got {value!r}")
        if not isinstance(self.tie_word_embeddings, bool):
            raise ValueError("DecoderConfig.tie_word_embeddings must be a bool, got "
                             f"{self.tie_word_embeddings!r}")
        check_rates(self, ("attention_dropout",))

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The inverse of ``to_dict``; an unknown field is an error (a typo would be silent)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"DecoderConfig has no field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    # -- other formats ----------------------------------------------------------------------------

    @classmethod
    def from_hf_config(cls, values):
        """From a Hugging Face Llama ``config.json`` dict; fields we do not model (token ids,
        ``torch_dtype``, ...) are ignored, features we do not implement are refused by name."""
        model_type = values.get("model_type")
        if model_type not in HF_MODEL_TYPES:
            raise ValueError(f"not a Llama config: model_type={model_type!r} (supported: "
                             f"{', '.join(HF_MODEL_TYPES)})")
        for option in ("attention_bias", "mlp_bias"):
            if values.get(option):
                raise ValueError(f"{option}=True is not supported (Llama has no biases)")
        scaling = values.get("rope_scaling") or {}
        kind = scaling.get("rope_type", scaling.get("type"))
        if scaling and kind != "linear":
            raise ValueError(f"rope_scaling {scaling!r} is not supported (only 'linear')")
        known = {field.name for field in dataclasses.fields(cls)} - {"rope_scaling_factor"}
        fields = {k: v for k, v in values.items() if k in known}
        return cls(**fields, rope_scaling_factor=float(scaling.get("factor", 1.0)))

    @classmethod
    def from_gguf_metadata(cls, metadata, tie_word_embeddings=True):
        """From GGUF key/value metadata (``llama.block_count``, ...). GGUF does not say whether
        the output layer is tied: a file without ``output.weight`` is (pass what the tensors say)."""
        architecture = metadata.get("general.architecture")
        if architecture != "llama":
            raise ValueError(f"not a Llama GGUF: general.architecture={architecture!r}")

        def get(key, default=None):
            value = metadata.get(f"llama.{key}", default)
            if value is None:
                raise ValueError(f"GGUF metadata lacks 'llama.{key}'")
            return value

        heads = int(get("attention.head_count"))
        width = int(get("embedding_length"))
        scaling_type = metadata.get("llama.rope.scaling.type", "none")
        if scaling_type not in ("none", "linear"):
            raise ValueError(f"GGUF RoPE scaling {scaling_type!r} is not supported (only 'linear')")
        tokens = metadata.get("tokenizer.ggml.tokens")
        vocab_size = len(tokens) if tokens else int(get("vocab_size"))
        return cls(
            vocab_size=vocab_size,
            hidden_size=width,
            intermediate_size=int(get("feed_forward_length")),
            num_hidden_layers=int(get("block_count")),
            num_attention_heads=heads,
            num_key_value_heads=int(get("attention.head_count_kv", heads)),
            head_dim=int(get("attention.key_length", width // heads)),
            max_position_embeddings=int(get("context_length")),
            rms_norm_eps=float(get("attention.layer_norm_rms_epsilon")),
            rope_theta=float(get("rope.freq_base", 10000.0)),
            rope_scaling_factor=float(metadata.get("llama.rope.scaling.factor", 1.0))
            if scaling_type == "linear" else 1.0,
            tie_word_embeddings=tie_word_embeddings,
        )
