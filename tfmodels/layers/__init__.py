"""Building blocks of Transformer and BERT models."""

from tfmodels.layers.activations import get_activation
from tfmodels.layers.attention import MultiHeadAttention
from tfmodels.layers.dense import Dense
from tfmodels.layers.dropout import Dropout
from tfmodels.layers.embedding import TokenEmbedding, TransformerEmbedding
from tfmodels.layers.feed_forward import FeedForward
from tfmodels.layers.gated_feed_forward import GatedFeedForward
from tfmodels.layers.layer_norm import LayerNorm
from tfmodels.layers.lora import LoraKernels
from tfmodels.layers.masking import make_attention_mask, make_causal_mask, merge_masks
from tfmodels.layers.pooler import Pooler
from tfmodels.layers.position import PositionEmbedding, SinusoidalPositionEncoding
from tfmodels.layers.pretraining_heads import MaskedLMHead, NextSentenceHead
from tfmodels.layers.rms_norm import RMSNorm
from tfmodels.layers.rotary import RotaryEmbedding, apply_rotary
from tfmodels.layers.span_head import SpanHead
from tfmodels.layers.transformer_decoder import TransformerDecoderBlock
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock

__all__ = [
    "Dense",
    "Dropout",
    "FeedForward",
    "GatedFeedForward",
    "LayerNorm",
    "LoraKernels",
    "MaskedLMHead",
    "MultiHeadAttention",
    "NextSentenceHead",
    "Pooler",
    "PositionEmbedding",
    "RMSNorm",
    "RotaryEmbedding",
    "SinusoidalPositionEncoding",
    "SpanHead",
    "TokenEmbedding",
    "TransformerEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "apply_rotary",
    "get_activation",
    "make_attention_mask",
    "make_causal_mask",
    "merge_masks",
]
