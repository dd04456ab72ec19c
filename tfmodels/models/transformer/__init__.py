"""The encoder-decoder Transformer for translation: model, loss, schedule, decoding, export."""

from tfmodels.models.transformer.config import Seq2SeqConfig
from tfmodels.models.transformer.export import Translator, export_translator
from tfmodels.models.transformer.losses import LabelSmoothedCrossEntropy, masked_accuracy
from tfmodels.models.transformer.schedule import InverseSqrtWarmup
from tfmodels.models.transformer.seq2seq import Seq2SeqTransformer

__all__ = [
    "InverseSqrtWarmup",
    "LabelSmoothedCrossEntropy",
    "Seq2SeqConfig",
    "Seq2SeqTransformer",
    "Translator",
    "export_translator",
    "masked_accuracy",
]
