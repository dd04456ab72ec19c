"""What Keras 3 (TensorFlow backend) needs to run `model.fit` under `MultiWorkerMirroredStrategy`.

Upstream, `fit` under `tf.distribute.MultiWorkerMirroredStrategy` (MWMS) fails for Keras 3
(keras-team/keras#20585, open; tensorflow/tensorflow#72388 was closed with "use Keras 2"). With Keras 3.12 and
TensorFlow 2.16 there are three separate failures, each fixed here by replacing one function of Keras' TensorFlow
trainer (`install()` does it, once; every other strategy keeps Keras' own code path). Each has a name in `FIXES`:

1. `symbolic_build`: `fit` builds the model's metrics from a first batch that it averages with
   `strategy.reduce`; MWMS' collective reduce takes neither a per-replica batch nor a nested one and raises
   "Attempt to convert a value (PerReplica:{...}) with an unsupported type (<class '...PerReplica'>) to a Tensor"
   (`<class 'dict'>` for a dict of features). The fix builds from this worker's first replica's batch (only
   shapes and dtypes matter there).
2. `scalar_logs`: each step's logs (scalar metric results) are averaged with `strategy.reduce("MEAN", v,
   axis=0)`, which fails on a scalar ("Invalid reduction dimension 0 for input with 0 dimensions"). The fix
   averages scalars over the replicas with `axis=None`.
3. `cpu_xla_collectives`: with `jit_compile=True` the whole step, gradient all-reduce included, is one XLA
   cluster, and TensorFlow has no XLA collectives on CPU ("Collectives are not yet implemented for CPU devices
   when compiling with XLA"). On CPU workers the fix compiles each replica's forward and backward pass with XLA
   and leaves the all-reduce, the optimizer update and the metric updates outside it (those sync across
   workers). GPU and TPU workers keep Keras' single XLA step (their collectives compile).

Which fixes apply depends on the Keras version: `KERAS_VERSIONS` gives, for each fix, the Keras versions whose
trainer it was checked against (the failure happens there and the fix removes it), `applicable()` the fixes for the
running Keras, and `describe()` says so in words. The three functions they replace are unchanged from Keras 3.12
through 3.15 (Keras 3.13-3.15 changed other parts of the TensorFlow trainer: logs turned into Python numbers,
metrics reset in `train_on_batch`), so all three apply at both ends of tfmodels' range. With a Keras outside the
checked range `install()` still installs them, with a warning that they are unchecked there.

`tests/distribute/test_keras_fixes.py` runs two worker processes that add the fixes one at a time and checks that
each failure still happens without its fix: when it fails, upstream changed and this module should shrink.
"""

import threading
import warnings

import keras
import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer
from keras.src.losses import loss as loss_module
from keras.src.trainers.data_adapters import data_adapter_utils
from packaging.specifiers import SpecifierSet
from packaging.version import Version

_lock = threading.Lock()
_original = {}


def is_multi_worker(strategy) -> bool:
    """True for a collective all-reduce strategy spanning more than one worker."""
    return tf_trainer._collective_all_reduce_multi_worker(strategy)


def _on_cpu(strategy) -> bool:
    return all(tf.DeviceSpec.from_string(device).device_type == "CPU"
               for device in strategy.extended.worker_devices)


def _first_local_value(value, strategy):
    if tf_trainer._is_per_replica_instance(value):
        return strategy.experimental_local_results(value)[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    strategy = self._distribute_strategy
    if strategy is None or not is_multi_worker(strategy) or iterator is None:
        return _original["_maybe_symbolic_build"](self, iterator=iterator, data_batch=data_batch)
    for _, _, batches in iterator:
        batch = next(batches)
        data_batch = tree.map_structure(lambda value: _first_local_value(value, strategy), batch)
        break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _reduce_per_replica(values, strategy, reduction):
    original = _original["reduce_per_replica"]
    if not is_multi_worker(strategy) or reduction not in ("auto", "mean"):
        return original(values, strategy, reduction)

    def reduce_one(value):
        local = _first_local_value(value, strategy)
        if getattr(local, "shape", None) is not None and local.shape.rank == 0:
            return strategy.reduce("MEAN", value, axis=None)
        return original(value, strategy, reduction)

    return tree.map_structure(reduce_one, values)


def _forward_backward(model):
    """The replica's XLA part of a training step: outputs, loss and gradients (no cross-replica op inside)."""
    if getattr(model, "_tfmodels_forward_backward", None) is None:
        def forward_backward(x, y, sample_weight):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True) if model._call_has_training_arg else model(x)
                loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
                scaled = model.optimizer.scale_loss(loss) if model.optimizer is not None else loss
            gradients = tape.gradient(scaled, model.trainable_weights)
            return y_pred, loss, gradients

        model._tfmodels_forward_backward = tf.function(forward_backward, jit_compile=True, reduce_retracing=True)
    return model._tfmodels_forward_backward


def _forward(model):
    if getattr(model, "_tfmodels_forward", None) is None:
        def forward(x):
            return model(x, training=False) if model._call_has_training_arg else model(x)

        model._tfmodels_forward = tf.function(forward, jit_compile=True, reduce_retracing=True)
    return model._tfmodels_forward


def _batch_size(x):
    return tf.shape(next(i for i in tree.flatten(x) if i is not None))[0]


def _xla_train_step(model, data):
    """Keras' `train_step` with the forward and backward pass in XLA and the all-reduce outside it."""
    x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
    y_pred, loss, gradients = _forward_backward(model)(x, y, sample_weight)
    model._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=_batch_size(x))
    model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _xla_test_step(model, data):
    x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
    y_pred = _forward(model)(x)
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    model._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=_batch_size(x))
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _xla_predict_step(model, data):
    x, _, _ = data_adapter_utils.unpack_x_y_sample_weight(data)
    return _forward(model)(x)


_XLA_STEPS = {"train_step": _xla_train_step, "test_step": _xla_test_step, "predict_step": _xla_predict_step}


def _make_function(self, step_function):
    original = _original["_make_function"]
    strategy = self.distribute_strategy
    if self.run_eagerly or not self.jit_compile or not is_multi_worker(strategy) or not _on_cpu(strategy):
        return original(self, step_function)
    name = getattr(step_function, "__name__", "")
    default = getattr(tf_trainer.TensorFlowTrainer, name, None)
    if name in _XLA_STEPS and getattr(type(self), name, None) is default:
        xla_step = _XLA_STEPS[name]

        def step_function(data):
            return xla_step(self, data)
    # else: a model's own step runs without XLA (its collectives cannot be compiled on CPU).
    self.jit_compile = False
    try:
        return original(self, step_function)
    finally:
        self.jit_compile = True


# The fixes by name, in the order `fit` meets the failures: (object patched, attribute, replacement).
FIXES = {
    "symbolic_build": (tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build", _maybe_symbolic_build),
    "scalar_logs": (tf_trainer, "reduce_per_replica", _reduce_per_replica),
    "cpu_xla_collectives": (tf_trainer.TensorFlowTrainer, "_make_function", _make_function),
}


# The Keras versions each fix was checked against by the probe test (both ends of tfmodels' supported range; a
# fix that upstream makes unnecessary gets an upper bound here, and `applicable()` then leaves it out).
KERAS_VERSIONS = {
    "symbolic_build": SpecifierSet(">=3.12,<3.16"),
    "scalar_logs": SpecifierSet(">=3.12,<3.16"),
    "cpu_xla_collectives": SpecifierSet(">=3.12,<3.16"),
}
# The Keras versions checked: the probe test runs on 3.12.4 and 3.15.1 (both ends); in 3.13.2 and 3.14.1 the
# functions the fixes replace or call (TensorFlow trainer, `Trainer._compute_loss`/`compute_metrics`) have the same
# source as at both ends (compared function by function; only `Trainer._symbolic_build`'s error handling changed in
# 3.14: a ValueError now propagates as it is).
_CHECKED = SpecifierSet(">=3.12,<3.16")


def _version(keras_version):
    return Version(str(keras_version or keras.__version__))


def is_checked(keras_version=None) -> bool:
    """True for a Keras the fixes were checked against (default: the one imported); see `_CHECKED`."""
    return _version(keras_version) in _CHECKED


def applicable(keras_version=None) -> list:
    """The names of the fixes that this Keras needs (default: the one imported), in `FIXES` order. Outside the
    checked versions: all of them (the failures are upstream's, open since Keras 3.0)."""
    version = _version(keras_version)
    if not is_checked(version):
        return list(FIXES)
    return [name for name in FIXES if version in KERAS_VERSIONS[name]]


def describe(keras_version=None) -> str:
    """One line: the Keras version, whether it was checked, and which fixes apply."""
    version = _version(keras_version)
    names = applicable(version)
    checked = "checked" if is_checked(version) else f"not checked (checked: Keras {_CHECKED})"
    return (f"Keras {version}: {checked}; fixes that apply: {', '.join(names) or 'none'}"
            f"{'' if len(names) == len(FIXES) else '; not needed: ' + ', '.join(n for n in FIXES if n not in names)}")


def install(fixes=None) -> None:
    """Puts the fixes in place: those `applicable()` to this Keras (what `multi_worker_strategy()` does), or the
    `FIXES` named. With a Keras the probe test has not run on, warns (the fixes replace private functions).

    Idempotent; a fix installed stays for the process (other strategies keep Keras' own code path).
    """
    names = applicable() if fixes is None else list(fixes)
    unknown = sorted(set(names) - set(FIXES))
    if unknown:
        raise ValueError(f"unknown fixes {unknown}; known: {list(FIXES)}")
    if not is_checked() and not _original:
        warnings.warn(f"tfmodels.distribute.keras_fixes: {describe()}; run tests/distribute/test_keras_fixes.py "
                      "to see which are still needed", stacklevel=2)
    with _lock:
        for name in names:
            owner, attribute, replacement = FIXES[name]
            if attribute not in _original:
                _original[attribute] = getattr(owner, attribute)
                setattr(owner, attribute, replacement)


def installed() -> list:
    """The names of the fixes in place."""
    return [name for name, (_, attribute, _) in FIXES.items() if attribute in _original]
