"""Text processing for BERT with core TensorFlow ops: tokenizer, packing, pretraining data."""

from tfmodels.text.byte_pair import BytePairTokenizer
from tfmodels.text.packing import BertPacker, truncation_lengths
from tfmodels.text.preprocessing import BertPreprocessor
from tfmodels.text.pretraining import pretraining_dataset
from tfmodels.text.vocab import learn_vocabulary, load_vocabulary
from tfmodels.text.wordpiece import BertTokenizer

__all__ = [
    "BertPacker",
    "BertPreprocessor",
    "BertTokenizer",
    "BytePairTokenizer",
    "learn_vocabulary",
    "load_vocabulary",
    "pretraining_dataset",
    "truncation_lengths",
]
