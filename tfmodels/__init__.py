"""tfmodels: Keras 3 (TensorFlow backend) Transformer and BERT models."""

import os

# Keras 3 on TensorFlow; tensorflow-transform would otherwise flip tf.keras to Keras 2 on import.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils.logs import import_tensorflow_quietly, quiet_function_teardown  # noqa: E402  (stdlib only)

import_tensorflow_quietly()  # drops TF's known CPU start-up noise ("Unable to register cuFFT factory", ...)
quiet_function_teardown()  # no "Exception ignored in: AtomicFunction.__del__" lines at exit

from tfmodels import checkpoints, compress, datasets, generation, layers, ops, text  # noqa: E402
from tfmodels.export.seq2seq import Translator, export_translator  # noqa: E402
from tfmodels.models.autoencoder import TextAutoencoder, TextVAE  # noqa: E402
from tfmodels.models.bert import (  # noqa: E402
    BertClassifier,
    BertConfig,
    BertEncoder,
    BertPretrainer,
    BertSpanQA,
    BertTokenClassifier,
)
from tfmodels.models.llama import (  # noqa: E402
    CausalLM,
    CausalLMPreprocessor,
    DecoderBackbone,
    DecoderConfig,
)
from tfmodels.models.transformer import (  # noqa: E402
    InverseSqrtWarmup,
    LabelSmoothedCrossEntropy,
    Seq2SeqTransformer,
    masked_accuracy,
)
from tfmodels.optimizers import LinearWarmupDecay, fine_tuning_optimizer  # noqa: E402
from tfmodels.presets import presets  # noqa: E402  (the function: `tfmodels.presets()`)

__version__ = "0.1.0"

__all__ = [
    "BertClassifier",
    "BertConfig",
    "BertEncoder",
    "BertPretrainer",
    "BertSpanQA",
    "BertTokenClassifier",
    "CausalLM",
    "CausalLMPreprocessor",
    "DecoderBackbone",
    "DecoderConfig",
    "InverseSqrtWarmup",
    "LabelSmoothedCrossEntropy",
    "LinearWarmupDecay",
    "Seq2SeqTransformer",
    "TextAutoencoder",
    "TextVAE",
    "Translator",
    "checkpoints",
    "compress",
    "datasets",
    "export_translator",
    "fine_tuning_optimizer",
    "generation",
    "layers",
    "masked_accuracy",
    "ops",
    "presets",
    "text",
]
