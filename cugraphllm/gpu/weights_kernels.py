"""kernels/weights.cu from Python, for gpu/state.py (which re-exports dummy_key and fill_normal): the conversion of
staged rows to the storage dtype with a gain folded in, and the seeded in-place fill of dummy weights with its
per-matrix keys (splitmix64 on Python ints, as the kernel's mix64)."""
from __future__ import annotations

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _mix64(z: int) -> int:
    """splitmix64's finalizer (kernels/weights.cu mix64), on Python ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def dummy_key(seed: int, index: int) -> int:
    """The fill_normal key of the index-th dummy matrix of a seed: independent streams per matrix and seed."""
    return _mix64((_mix64(seed & _MASK) + (index + 1) * _GOLDEN) & _MASK)


_SRC = {"float16": {}, "float32": {"SRC_F32": 1}, "bfloat16": {"SRC_BF16": 1}}


def _kernel(name: str, dtype, src="float16"):
    """A kernels/weights.cu function writing storage dtype `dtype` (convert_rows: from source dtype `src`)."""
    from .cuda_kernels import get_function
    defines = dict(_SRC[np.dtype(src).name])
    if np.dtype(dtype).name == "bfloat16":
        defines["CG_BF16"] = 1
    return get_function("weights.cu", name, defines)


def convert(out, src, gain) -> None:
    """out T [rows, cols] = T(src * gain): src a contiguous device array of out.size elements (float16, float32 or
    bfloat16), gain f32 [cols] on the device (ones for a plain conversion: x * 1.0f is exact)."""
    n, cols = out.size, out.shape[-1]
    _kernel("convert_rows", out.dtype, src.dtype)(*_grid(n), (out, src, gain, np.int64(n), np.int32(cols)))


def _grid(n: int) -> tuple:
    return (min(-(-n // 256), 8192),), (256,)


def fill_normal(out, key: int, scale: float):
    """out (T, contiguous) = T(scale * N(0, 1)) from the counter-based hash of (key, element index), in place."""
    n = out.size
    _kernel("fill_normal", out.dtype)(*_grid(n), (out, np.int64(n), np.uint64(key), np.float32(scale)))
    return out
