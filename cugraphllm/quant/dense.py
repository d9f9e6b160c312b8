"""float32 effective matrix of a QuantLinear, for the NumPy backend: ~10x faster than formats.dequantize (float64).

Equal to dequantize(ql).astype(float32) bit for bit (tested): each element is one correctly rounded float32
product of exactly representable factors -- int8 q * fp32 scale; int4 (q - z) * fp16 scale, exact in float32,
then * gain; fp8 e4m3 * fp32 scale. (fp8 with a gain would round twice; no loader produces that: gains only
travel with GPTQ / AWQ int4, so it is computed through float64 instead.)
"""
from __future__ import annotations

import numpy as np

from .formats import QuantLinear, dequantize, fp8_e4m3_decode

_ROWS = 2048  # rows converted per step: bounds the temporaries


def _rows_f32(ql: QuantLinear, a: int, b: int) -> np.ndarray:
    """float32 rows a..b of the packed-order matrix Wq (no gain, no perm)."""
    N, K = ql.shape
    if ql.fmt == "int8":
        return np.asarray(ql.qweight[a:b], np.float32) * np.asarray(ql.scales[a:b], np.float32)[:, None]
    if ql.fmt == "fp8":
        return fp8_e4m3_decode(ql.qweight[a:b]).astype(np.float32) * np.asarray(ql.scales[a:b], np.float32)[:, None]
    # little-endian bytes of the words: byte i holds elements 2i (low nibble) and 2i + 1 (high nibble)
    by = np.ascontiguousarray(ql.qweight[a:b], dtype="<u4").view(np.uint8)                     # [r, K/2]
    q = np.empty((b - a, K // 2, 2), np.float32)
    q[..., 0] = by & 0xF
    q[..., 1] = by >> 4
    g = ql.group_size
    q = q.reshape(b - a, K // g, g)
    q -= np.asarray(ql.zeros[a:b], np.float32)[..., None]
    q *= np.asarray(ql.scales[a:b], np.float32)[..., None]
    return q.reshape(b - a, K)


def dequantize_f32(ql: QuantLinear) -> np.ndarray:
    """float32 [N, K] with y = dequantize_f32(ql) @ x: gain applied, columns in original order."""
    if ql.fmt == "fp8" and ql.gain is not None:
        return dequantize(ql).astype(np.float32)
    N, K = ql.shape
    out = np.empty((N, K), np.float32)
    gain = None if ql.gain is None else np.asarray(ql.gain, np.float32)
    cols = None if ql.perm is None else np.asarray(ql.perm)
    for a in range(0, N, _ROWS):
        b = min(N, a + _ROWS)
        w = _rows_f32(ql, a, b)
        if gain is not None:
            w *= gain
        if cols is None:
            out[a:b] = w
        else:
            out[a:b, cols] = w
    return out
