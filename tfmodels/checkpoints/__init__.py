"""Import pretrained BERT weights from local Hugging Face or Google checkpoints."""

from tfmodels.checkpoints.google import load_google_bert
from tfmodels.checkpoints.huggingface import load_hf_bert, read_hf_state_dict
from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError

__all__ = ["CheckpointMismatchError", "load_google_bert", "load_hf_bert", "read_hf_state_dict"]
