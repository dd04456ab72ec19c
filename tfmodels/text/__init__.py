"""Text processing for BERT with core TensorFlow ops: tokenizer, packing, pretraining data."""

from tfmodels.text.vocab import learn_vocabulary, load_vocabulary
from tfmodels.text.wordpiece import BertTokenizer

__all__ = ["BertTokenizer", "learn_vocabulary", "load_vocabulary"]
