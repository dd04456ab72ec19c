"""Low-rank adapters (LoRA; Hu et al., 2021) on the kernels of our layers, float or int8.

``LoraKernels`` is a mixin placed before ``Int8Kernels``: ``enable_lora(rank)`` freezes the chosen
kernels and adds ``A`` ``[in, rank]`` (random) and ``B`` ``[rank, out]`` (zeros) per kernel, so
``x @ kernel`` becomes ``x @ kernel + (x @ A) @ B * alpha / rank`` -- the same function until ``B``
trains. The base kernel may be int8 (``quantize("int8")`` first): the adapters stay float and the
int8 matmul passes input gradients through, which is QLoRA-style training (keras-hub's int8 layers
cannot take adapters, keras-team/keras-hub#1705). ``merge_lora()`` folds the adapters into the
kernel (an int8 kernel is dequantized, summed and requantized, so it moves by the rounding).
"""

import math

from keras import ops

from tfmodels.ops import matmul_last_axis
from tfmodels.ops.int8 import dequantize, quantize_per_channel

LORA_A, LORA_B = "lora_a", "lora_b"


def lora_weight_name(kernel_name, which):
    """The adapter weight of ``kernel_name``: ``which`` is ``LORA_A`` or ``LORA_B``."""
    return f"{kernel_name}_{which}"


def _check_rank(rank):
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be a positive integer, got {rank!r}")


class LoraKernels:
    """Mixin giving a layer built with ``Int8Kernels.add_kernel`` LoRA adapters on its kernels.

    The layer calls ``init_lora(rank, alpha, kernels)`` in ``__init__`` (its ``lora_*``
    arguments), ``build_lora()`` at the end of ``build``, and merges ``lora_config()`` into its
    config, so a saved layer with adapters reloads with them. ``DEFAULT_LORA_KERNELS`` names the
    kernels that get adapters when none are named (``None``: all of them).
    """

    DEFAULT_LORA_KERNELS = None

    def init_lora(self, rank=None, alpha=None, kernels=None):
        if rank is not None:
            _check_rank(rank)
        self.lora_rank = rank
        self.lora_alpha = alpha
        self.lora_kernels = tuple(kernels) if kernels else None

    def enable_lora(self, rank, alpha=None, kernels=None):
        """Freezes ``kernels`` (default ``DEFAULT_LORA_KERNELS``) and adds rank-``rank`` adapters
        scaled by ``alpha / rank`` (``alpha`` defaults to ``rank``: scale 1)."""
        if not self.built:
            raise ValueError(f"{self.name}: build the layer before enable_lora")
        if self.lora_rank is not None:
            raise ValueError(f"{self.name}: LoRA is already enabled (rank {self.lora_rank})")
        self.init_lora(rank, alpha, kernels)
        self.build_lora()

    @property
    def lora_scale(self):
        return (self.lora_alpha or self.lora_rank) / self.lora_rank

    def _lora_kernel_names(self):
        names = self.lora_kernels or self.DEFAULT_LORA_KERNELS or tuple(self._contracted_axes)
        unknown = sorted(set(names) - set(self._contracted_axes))
        if unknown:
            raise ValueError(f"{self.name}: no kernels {unknown} for LoRA; it has "
                             f"{sorted(self._contracted_axes)}")
        return tuple(names)

    def _matrix_shape(self, name):
        shape, contracted = getattr(self, name).shape, self._contracted_axes[name]
        return math.prod(shape[:contracted]), math.prod(shape[contracted:])

    def build_lora(self):
        """Adds the adapters of ``lora_rank`` (if any) and freezes their kernels."""
        if self.lora_rank is None:
            return
        self.lora_kernels = self._lora_kernel_names()
        locked = self._tracker.locked
        self._tracker.unlock()
        for name in self.lora_kernels:
            fan_in, fan_out = self._matrix_shape(name)
            getattr(self, name).trainable = False
            for which, shape, init in ((LORA_A, (fan_in, self.lora_rank), "he_uniform"),
                                       (LORA_B, (self.lora_rank, fan_out), "zeros")):
                weight_name = lora_weight_name(name, which)
                setattr(self, weight_name, self.add_weight(name=weight_name, shape=shape,
                                                           initializer=init, dtype="float32"))
        if locked:
            self._tracker.lock()

    def lora_weights(self):
        """``{weight name: variable}`` of the adapters (empty without LoRA)."""
        if self.lora_rank is None:
            return {}
        return {lora_weight_name(k, w): getattr(self, lora_weight_name(k, w))
                for k in self.lora_kernels for w in (LORA_A, LORA_B)}

    def _lora_delta(self, name):
        a = getattr(self, lora_weight_name(name, LORA_A))
        b = getattr(self, lora_weight_name(name, LORA_B))
        return ops.matmul(ops.cast(a, "float32"), ops.cast(b, "float32")) * self.lora_scale

    def kernel_matmul(self, x, name):
        y = super().kernel_matmul(x, name)
        if self.lora_rank is None or name not in self.lora_kernels:
            return y
        a = ops.cast(getattr(self, lora_weight_name(name, LORA_A)), x.dtype)
        b = ops.cast(getattr(self, lora_weight_name(name, LORA_B)), x.dtype)
        update = matmul_last_axis(matmul_last_axis(x, a), b) * ops.cast(self.lora_scale, x.dtype)
        return y + ops.cast(update, y.dtype)

    def merge_lora(self):
        """Folds every adapter into its kernel and removes the adapters (kernels trainable again,
        unless int8)."""
        if self.lora_rank is None:
            return
        locked = self._tracker.locked
        self._tracker.unlock()
        for name in self.lora_kernels:
            kernel, delta = getattr(self, name), self._lora_delta(name)
            if self.quantization_mode == "int8":
                scale_variable = getattr(self, f"{name}_scale")
                matrix_shape = self._matrix_shape(name)
                merged = dequantize(ops.reshape(kernel, matrix_shape),
                                    ops.reshape(scale_variable, (-1,))) + delta
                q, scale = quantize_per_channel(merged)
                kernel.assign(ops.reshape(q, kernel.shape))
                scale_variable.assign(ops.reshape(scale, scale_variable.shape))
            else:
                kernel.assign(kernel + ops.cast(ops.reshape(delta, kernel.shape), kernel.dtype))
                kernel.trainable = True
            for which in (LORA_A, LORA_B):
                self._drop_variable(lora_weight_name(name, which))  # Int8Kernels'
        if locked:
            self._tracker.lock()
        self.init_lora(None)

    def lora_config(self):
        """The ``lora_*`` config entries (none without LoRA, so other configs read as before)."""
        if self.lora_rank is None:
            return {}
        kernels = list(self.lora_kernels) if self.lora_kernels else None
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha, "lora_kernels": kernels}

    def _variables_in_save_order(self):
        if self.lora_rank is None:
            return super()._variables_in_save_order()
        # Adapters are added after build() (enable_lora) or during it (a reloaded config): names
        # give one order for both.
        return sorted(self._trainable_variables + self._non_trainable_variables,
                      key=lambda v: v.name)
