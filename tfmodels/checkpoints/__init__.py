"""Import pretrained weights from local checkpoints: BERT (Hugging Face, Google) and Llama-family
decoders (llama.cpp GGUF, Hugging Face)."""

from tfmodels.checkpoints.gguf import GGUFFormatError, load_gguf, load_gguf_preprocessor, read_gguf
from tfmodels.checkpoints.google import load_google_bert
from tfmodels.checkpoints.hf_llama import load_hf_llama, read_hf_llama
from tfmodels.checkpoints.huggingface import load_hf_bert, read_hf_state_dict
from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError

__all__ = [
    "CheckpointMismatchError",
    "GGUFFormatError",
    "load_gguf",
    "load_gguf_preprocessor",
    "load_google_bert",
    "load_hf_bert",
    "load_hf_llama",
    "read_gguf",
    "read_hf_llama",
    "read_hf_state_dict",
]
