"""The CPU's instruction-set flags, which decide the fast kernels (standard library only)."""

import functools
import os

# The flags that pick kernels here: AVX2/FMA, AVX-512 and its VNNI/BF16 parts, AMX.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")


@functools.lru_cache(maxsize=None)
def _first_cpu_field(key: str) -> str:
    """The value of /proc/cpuinfo's first `key` line ("" where there is none, or no /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), "")
    except OSError:
        return ""


def cpu_flags() -> frozenset:
    """The `flags` of /proc/cpuinfo's first CPU (empty where there is no /proc/cpuinfo)."""
    return frozenset(_first_cpu_field("flags").split())


def cpu_name() -> str:
    """/proc/cpuinfo's `model name` ("" where there is none)."""
    return _first_cpu_field("model name")


def has_bfloat16_matmul() -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX512-BF16); elsewhere bfloat16 is emulated, slower."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def describe() -> dict:
    """Name, core count and kernel flags: what a benchmark reports about the machine it ran on."""
    return {"name": cpu_name(), "cores": os.cpu_count(), "flags": [f for f in KERNEL_FLAGS if f in cpu_flags()]}
