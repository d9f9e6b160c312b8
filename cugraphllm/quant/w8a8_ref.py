"""NumPy model of the GPU's fp8 W8A8 prefill product (reference.forward(..., w8a8=...)), pure NumPy.

With fp8 weights the CUDA engine's prefill (prompt chunks of more than gemm_quant.AUTO_OWN_MAX_M = 32 rows)
quantizes each linear layer's input per token to e4m3 and multiplies the codes through cuBLASLt. The rule, from
kernels/gemm_quant.cu quant_act_fp8 (and the fused producers kernels/fp8_actq.cu, rmsnorm.cu rmsnorm_unit_fp8,
which write the same bits: kernels/fp8_codes.cuh), per token row m of the 16-bit activation a [M, K]:
  v[m, j] = gain[j] * float32(a[m, perm[j]])             (float32; perm / gain absent: identity / ones)
  amax    = max_j |v[m, j]|                              (exact in any order)
  sa[m]   = float32(amax / 448), 1 for an all-zero row
  code    = e4m3(v[m, j] * float32(448 / amax))          (inv 1 for a zero row; one float32 multiply, then
                                                          cvt.rn.satfinite: nearest, ties to even, |x| > 448 -> 448)
and the product y[m, n] = (sum_j e4m3(code[m, j]) * e4m3(qweight[n, j])) * sa[m] * scales[n]. Here the sum is in
float64, where it is exact (every term is a product of two 4-bit-mantissa values between 2**-18 and 2**17.6, and K
of them need < 53 bits), so this is the product both cuBLASLt variants approximate in float32.
The GPU's activations are fp16 / bf16 before quantization (rmsnorm output, attention output, SiLU*up): `storage`
rounds the float32 activations to that dtype first (None: quantize the float32 values as they are).
Shapes: x [M, K], QuantLinear [N, K] ([out, in]).
"""
from __future__ import annotations

import numpy as np

from .formats import FP8_MAX, QuantLinear, fp8_e4m3_decode, fp8_e4m3_encode_f32

STORAGE = (None, "float16", "bfloat16")
_ROWS = 4096  # weight rows decoded to float64 per step: 4096 x 11008 x 8 B = 360 MB at most


def round_storage(a: np.ndarray, storage: str | None) -> np.ndarray:
    """float32 a rounded to the 16-bit storage dtype and back (nearest, ties to even), or a itself (None)."""
    a = np.asarray(a, np.float32)
    if storage is None:
        return a
    if storage == "float16":
        return a.astype(np.float16).astype(np.float32)
    if storage == "bfloat16":  # keep the upper 16 bits, rounded to nearest even (NaN / inf: not produced here)
        b = np.ascontiguousarray(a).view(np.uint32)
        b = (b + np.uint32(0x7FFF) + ((b >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
        return b.view(np.float32)
    raise ValueError(f"w8a8 storage dtype {storage!r}: supported {STORAGE}")


def quant_act(a: np.ndarray, perm=None, gain=None, storage: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(codes uint8 [M, K], sa float32 [M]) of the activation rows a [M, K], the GPU's rule (module docstring)."""
    v = round_storage(a, storage)
    if perm is not None:
        v = v[:, np.asarray(perm)]
    if gain is not None:
        v = v * np.asarray(gain, np.float32)[None, :]
    amax = np.abs(v).max(axis=1) if v.shape[1] else np.zeros(v.shape[0], np.float32)
    pos = amax > 0
    safe = np.where(pos, amax, np.float32(1))
    sa = np.where(pos, safe / np.float32(FP8_MAX), np.float32(1)).astype(np.float32)
    inv = np.where(pos, np.float32(FP8_MAX) / safe, np.float32(1)).astype(np.float32)
    return fp8_e4m3_encode_f32(v * inv[:, None]), sa


def product(codes: np.ndarray, sa: np.ndarray, ql: QuantLinear) -> np.ndarray:
    """float64 [M, N] = (decoded codes @ decoded qweight.T) * sa[m] * scales[n]; codes in ql's packed order."""
    a = fp8_e4m3_decode(codes)                                          # [M, K] float64
    N = ql.shape[0]
    y = np.empty((a.shape[0], N), np.float64)
    for r in range(0, N, _ROWS):
        y[:, r:r + _ROWS] = a @ fp8_e4m3_decode(np.asarray(ql.qweight[r:r + _ROWS])).T
    return y * np.asarray(sa, np.float64)[:, None] * np.asarray(ql.scales, np.float64)[None, :]


def is_w8a8(w) -> bool:
    """Whether the GPU takes this weight through the W8A8 product: an fp8 QuantLinear."""
    return isinstance(w, QuantLinear) and w.fmt == "fp8"


def linear(x: np.ndarray, ql: QuantLinear, storage: str | None = None) -> np.ndarray:
    """y [M, N] = the W8A8 product of x [M, K] and the fp8 QuantLinear ql, in x's dtype."""
    if not is_w8a8(ql):
        raise ValueError(f"w8a8: needs an fp8 QuantLinear, got {getattr(ql, 'fmt', type(ql).__name__)}")
    codes, sa = quant_act(x, ql.perm, ql.gain, storage)
    return product(codes, sa, ql).astype(x.dtype, copy=False)
