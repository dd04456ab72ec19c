"""A TFX 1.16 pipeline (Keras 3, offline) from labelled text CSVs to a blessed tfmodels BERT pushed for TF Serving.

`create_pipeline` builds CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform ->
Trainer -> Evaluator (with a latest-blessed-model baseline) -> Pusher; `python -m tfx_pipeline run` runs it.
"""

import os

# tensorflow-transform sets TF_USE_LEGACY_KERAS=1 on import unless it is set, and `tf.keras` is fixed at its
# first access: set it here, before any of that, so every process of the pipeline sees the same value. Model
# code uses `import keras` (Keras 3) and never `tf.keras`; TFT's transform layer is tf_keras either way.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
