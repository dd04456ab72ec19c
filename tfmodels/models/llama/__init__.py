"""Llama-architecture decoder-only language models (Llama 2/3, SmolLM2, ...)."""

from tfmodels.models.llama.backbone import DecoderBackbone
from tfmodels.models.llama.config import DecoderConfig
from tfmodels.models.llama.decoder_block import LlamaDecoderBlock

__all__ = ["DecoderBackbone", "DecoderConfig", "LlamaDecoderBlock"]
