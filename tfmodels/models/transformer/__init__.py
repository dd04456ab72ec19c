"""The encoder-decoder Transformer for translation: model, loss, schedule.

Decoding is ``tfmodels.generation``; the text-in, text-out export (``Translator``,
``export_translator``) is ``tfmodels.export.seq2seq``, still reachable from here (lazily: models do
not import the exporters).
"""

from tfmodels.models.transformer.config import Seq2SeqConfig
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


def __getattr__(name):
    if name in ("Translator", "export_translator"):
        from tfmodels.export import seq2seq

        return getattr(seq2seq, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
