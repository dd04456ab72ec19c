"""Llama-architecture decoder-only language models (Llama 2/3, SmolLM2, ...)."""

from tfmodels.models.llama.backbone import DecoderBackbone
from tfmodels.models.llama.causal_lm import CausalLM
from tfmodels.models.llama.config import DecoderConfig
from tfmodels.models.llama.decoder_block import LlamaDecoderBlock
from tfmodels.models.llama.preprocessor import CausalLMPreprocessor

__all__ = ["CausalLM", "CausalLMPreprocessor", "DecoderBackbone", "DecoderConfig", "LlamaDecoderBlock"]
