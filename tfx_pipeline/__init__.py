"""A TFX 1.16 pipeline (Keras 3, offline) from labelled text CSVs to a blessed tfmodels BERT pushed for TF Serving.

`create_pipeline` builds CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform ->
Trainer -> Evaluator (with a latest-blessed-model baseline) -> Pusher; `python -m tfx_pipeline run` runs it.
"""

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types

# tensorflow-transform sets TF_USE_LEGACY_KERAS=1 on import unless it is set, and `tf.keras` is fixed at its
# first access: set it here, before any of that, so every process of the pipeline sees the same value. Model
# code uses `import keras` (Keras 3) and never `tf.keras`; TFT's transform layer is tf_keras either way.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


class _DeferredTfxExtensions(types.ModuleType):
    """Stands in for the package `tfx.v1.extensions` until one of its modules is asked for; then imports that
    module (`google_cloud_ai_platform`, `google_cloud_big_query`) from the real package's folder."""

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        module = importlib.import_module(f"{self.__name__}.{attribute}")
        setattr(self, attribute, module)
        return module


def _defer_tfx_cloud_extensions() -> None:
    """Keeps `from tfx import v1` from importing `tfx.v1.extensions`, and with it `google.cloud.aiplatform`: 4.3 s
    of every pipeline process's start on a 2-core host (`python -X importtime`) for the Vertex AI Trainer that only
    `--vertex-*` runs use. `tfx.extensions.google_cloud_ai_platform` still works: it is imported on first use.
    Imports nothing itself; does nothing if TFX is missing or already imported."""
    name = "tfx.v1.extensions"
    if "tfx.v1" in sys.modules or name in sys.modules:
        return
    tfx_spec = importlib.util.find_spec("tfx")
    if tfx_spec is None or not tfx_spec.submodule_search_locations:
        return
    spec = importlib.machinery.PathFinder.find_spec(
        name, [os.path.join(path, "v1") for path in tfx_spec.submodule_search_locations])
    if spec is None or not spec.submodule_search_locations:
        return
    module = _DeferredTfxExtensions(name)
    module.__spec__, module.__path__, module.__package__ = spec, list(spec.submodule_search_locations), name
    sys.modules[name] = module


_defer_tfx_cloud_extensions()
