"""tfmodels: Keras 3 Transformer and BERT models."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
