"""Keras' quantization protocol for layers whose matmul kernels are their own weights.

``keras.Model.quantize("int8")`` calls ``quantize`` on every leaf layer; Keras implements it for its
own ``Dense``/``EinsumDense``/``Embedding`` only. ``Int8Kernels`` implements it for ours (``Dense``,
``MultiHeadAttention``): ``quantize("int8")`` replaces each float kernel with an int8 one plus a
float32 scale per output channel (``tfmodels.ops.int8``), and sets the layer's dtype policy to
``int8_from_<policy>``, as Keras does. That policy is in the layer's config, so a reloaded ``.keras``
model builds the int8 variables straight away (``add_kernel``) and loads them. The int8 matmul computes
in bfloat16 on CPUs with bfloat16 matmuls, in float32 elsewhere (``tfmodels.ops.int8``'s paths).
"""

import math

import keras
from keras import ops

from tfmodels.layers.initializers import clone_initializer
from tfmodels.ops import matmul_last_axis
from tfmodels.ops.int8 import int8_matmul_last_axis, quantize_per_channel

INT8 = "int8"


def scale_name(kernel_name):
    """The weight holding ``kernel_name``'s per-output-channel scales once it is int8."""
    return f"{kernel_name}_scale"


class Int8Kernels:
    """Mixin for a ``keras.layers.Layer`` whose kernels are created with ``add_kernel`` and applied
    with ``kernel_matmul``; it gives the layer ``quantize("int8")``.

    A kernel of shape ``in_shape + out_shape`` contracts its first ``contracted_axes`` axes with the
    input (``[d, heads, head_dim]`` has one, an attention output ``[heads, head_dim, d]`` two); its
    scale has ``out_shape``.
    """

    def add_kernel(self, name, shape, initializer, contracted_axes=1):
        """Adds the float kernel ``name`` (or, for an int8 policy, its int8 form and scale)."""
        self._contracted_axes = {**getattr(self, "_contracted_axes", {}), name: contracted_axes}
        if self.quantization_mode == INT8:
            self._add_int8_kernel(name, shape, contracted_axes)
            self._is_quantized = True
        elif self.quantization_mode is not None:
            raise self._quantization_mode_error(self.quantization_mode)
        else:
            setattr(self, name, self.add_weight(name=name, shape=shape,
                                                initializer=clone_initializer(initializer)))

    def _add_int8_kernel(self, name, shape, contracted_axes):
        setattr(self, name, self.add_weight(name=name, shape=shape, initializer="zeros",
                                            dtype="int8", trainable=False))
        setattr(self, scale_name(name), self.add_weight(
            name=scale_name(name), shape=tuple(shape[contracted_axes:]), initializer="ones",
            dtype="float32", trainable=False))

    def kernel_matmul(self, x, name):
        """``x`` (last axis = the kernel's contracted size) times kernel ``name`` as a 2-D matrix:
        ``[..., prod(in_shape)] -> [..., prod(out_shape)]``."""
        kernel = getattr(self, name)
        contracted = self._contracted_axes[name]
        matrix_shape = (math.prod(kernel.shape[:contracted]), math.prod(kernel.shape[contracted:]))
        if self.quantization_mode == INT8:
            scale = ops.reshape(getattr(self, scale_name(name)), (matrix_shape[1],))
            return int8_matmul_last_axis(x, ops.reshape(kernel, matrix_shape), scale)
        return matmul_last_axis(x, ops.reshape(kernel, matrix_shape))

    # -- the Keras protocol ---------------------------------------------------

    def quantize(self, mode, type_check=True, config=None):
        if mode != INT8:
            raise NotImplementedError(
                f"{type(self).__name__} supports quantize('int8') only, got mode={mode!r}")
        for name, contracted in self._contracted_axes.items():
            kernel = getattr(self, name)
            matrix = ops.reshape(kernel, (math.prod(kernel.shape[:contracted]), -1))
            q, scale = quantize_per_channel(matrix)
            shape = tuple(kernel.shape)
            self._drop_variable(name)  # the float kernel
            self._add_int8_kernel(name, shape, contracted)
            getattr(self, name).assign(ops.reshape(q, shape))
            getattr(self, scale_name(name)).assign(ops.reshape(scale, shape[contracted:]))
        self._is_quantized = True  # before the policy: its setter would quantize again
        self.dtype_policy = keras.dtype_policies.get(f"{INT8}_from_{self.dtype_policy.name}")

    def _drop_variable(self, name):
        """Untracks and removes the variable attribute `name`. Not `delattr`: Keras' Layer.__delattr__ runs a
        full gc.collect() per variable, 0.1-1 s each in a process holding TensorFlow (MiniLM has ~40 kernels;
        merging LoRA drops two adapters per kernel)."""
        self._untrack_variable(getattr(self, name))
        super(keras.layers.Layer, self).__delattr__(name)

    def _int8_call(self, *args, **kwargs):
        # `call` reads each kernel through `kernel_matmul`, which follows the quantization mode.
        return self.call(*args, **kwargs)

    def _variables_in_save_order(self):
        variables = self._trainable_variables + self._non_trainable_variables
        if self.quantization_mode is None:
            return variables  # the order of every float .keras file written so far
        # quantize() appends the int8 weights where build() creates them in place: use names.
        return sorted(variables, key=lambda v: v.name)

    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables_in_save_order()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        self._check_load_own_variables(store)
        for i, variable in enumerate(self._variables_in_save_order()):
            variable.assign(store[str(i)])


# -- models: which layers are quantized travels in the config -------------------

QUANTIZED_LAYERS_CONFIG_KEY = "quantized_layers"


def quantized_layers(model):
    """``{layer.path: mode}`` of every quantized layer in ``model`` (for its config)."""
    return {layer.path: layer.quantization_mode for layer in model._flatten_layers()
            if layer.path and layer.quantization_mode is not None}


def with_quantized_layers(config, model):
    """``config`` plus the model's quantized layers, when there are any (float configs unchanged)."""
    modes = quantized_layers(model)
    return {**config, QUANTIZED_LAYERS_CONFIG_KEY: modes} if modes else config


def pop_quantized_layers(config):
    """``(config without the key, {path: mode})`` for ``from_config``."""
    config = dict(config)
    return config, config.pop(QUANTIZED_LAYERS_CONFIG_KEY, None) or {}


def requantize(model, modes):
    """Quantizes the (float, freshly built) layers of ``model`` named in ``modes`` so that the
    quantized weights of a saved model can be loaded into them; returns ``model``."""
    for layer in model._flatten_layers():
        mode = modes.get(layer.path)
        if mode is not None and layer.quantization_mode is None:
            layer.quantize(mode)
    return model
