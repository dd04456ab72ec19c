"""One worker of a `MultiWorkerMirroredStrategy` cluster (TF_CONFIG), probing Keras 3's `fit`.

Adds `tfmodels.distribute.keras_fixes.FIXES` one at a time, in the order `fit` meets the failures, and fits a
small model (dict inputs, XLA) before each addition and after the last. Prints one JSON line:
`{"none": ..., "symbolic_build": ..., ...}`, each how the fit with the fixes up to (not including) that name
ended ("ok" or the error), "all" the fit with every fix, with its per-epoch losses.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402

from tfmodels.distribute import keras_fixes, worker_dataset  # noqa: E402

GLOBAL_BATCH = 8


def _examples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
    return tf.data.Dataset.from_tensor_slices(({"features": x}, y))


def _fit():
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inputs = keras.Input((4,), name="features")
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
        model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", jit_compile=True)
    try:
        history = model.fit(worker_dataset(strategy, _examples, GLOBAL_BATCH), epochs=3, steps_per_epoch=4,
                            verbose=0)
    except Exception as error:  # noqa: BLE001 - the probe reports what upstream raises
        message = str(error)  # TensorFlow's graph errors put the cause after the traceback: keep both ends
        return {"status": f"{type(error).__name__}: {message[:300]} ... {message[-600:]}"}
    return {"status": "ok", "losses": [float(v) for v in history.history["loss"]]}


result = {}
for name in keras_fixes.FIXES:
    result[name] = _fit()
    keras_fixes.install([name])
result["all"] = _fit()
print(json.dumps(result), flush=True)
sys.stderr.flush()
# Exit now: after the aborted XLA collective, TensorFlow's shutdown barrier can fail, which is not what we probe.
os._exit(0)
