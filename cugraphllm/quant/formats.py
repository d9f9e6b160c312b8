"""Packed weight formats of one linear layer y = W @ x, W [N, K] ([out, in], our convention). Pure NumPy.

The layouts below are the contract every producer (quantize at load, GPTQ / AWQ repack, our safetensors folder) and
every consumer (NumPy backend, CUDA kernels) follows:

- fp8:  qweight uint8 [N, K], e4m3fn bits (1 sign, 4 exponent with bias 7, 3 mantissa; 0x7f / 0xff are NaN, max 448);
        scales float32 [N].                      W[n, k] = e4m3(qweight[n, k]) * scales[n]
- int8: qweight int8 [N, K], symmetric in [-127, 127]; scales float32 [N].
                                                 W[n, k] = qweight[n, k] * scales[n]
- int4: qweight uint32 [N, K // 8]; element k of row n is the unsigned nibble at bits 4 * (k % 8) of word k // 8;
        groups of `group_size` consecutive k (group_size divides K; a whole row when it equals K);
        scales float16 [N, K // group_size], zeros float16 [N, K // group_size] (integers 0..15).
                                                 W[n, k] = scales[n, g] * (q[n, k] - zeros[n, g]),  g = k // group_size

Two optional per-layer vectors, both in packed column order j (absent: identity / ones):
- perm  int32 [K]: packed column j multiplies activation element perm[j] (GPTQ desc_act, made group-contiguous at load);
- gain  float32 [K]: activation scale applied before the product (an RMSNorm gain that could not be folded into W).
So y[n] = sum_j Wq[n, j] * gain[j] * x[perm[j]], with Wq the dequantized packed matrix.

Norm gains (decided with the NumPy reference engine; every loader follows it): a LayerWeights norm field that feeds
a QuantLinear holds ONES after load, and the RMSNorm gain lives in the QuantLinear itself:
- quantize at load / our saved folders: folded into the weights BEFORE quantizing, W' = Q(W * gain) (fp32
  product), gain None -- the same fold gpu/state.py upload_weights applies to 16-bit matrices;
- GPTQ / AWQ: int4 weights cannot absorb it, so QuantLinear.gain = the norm's gain in packed order (None when
  all ones). attention_norm -> wqkv, ffn_norm -> w13, norm -> output (only when the LM head is quantized).
A 16-bit consumer keeps its gain in the norm field as before. The reference computes rmsnorm(x, ones) and then
y = dequantize(ql) @ x (gain and perm applied), so both forms give the same numbers on every backend.
int4 zeros are integers 0..15, or 16 for GPTQ v1 checkpoints (stored zero - 1 = 15 unpacks to 16).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FORMATS = ("fp8", "int8", "int4")
FP8_MAX = 448.0
Array = Any  # numpy or cupy


@dataclass
class QuantLinear:
    fmt: str                  # one of FORMATS
    qweight: Array            # layout above
    scales: Array
    shape: tuple              # (N, K) of the unpacked matrix
    zeros: Array = None       # int4 only
    group_size: int = 0       # int4 only: columns per group (K for one group per row)
    perm: Array = None        # int32 [K] or None
    gain: Array = None        # float32 [K] or None
    tiles: int = 0            # int4 on the GPU: 0 qweight as above; 1 / 2 its words tile-contiguous (gpu/quant_tiles.py)

    @property
    def nbytes(self) -> int:
        parts = (self.qweight, self.scales, self.zeros, self.perm, self.gain)
        return int(sum(a.nbytes for a in parts if a is not None))

    def map(self, fn) -> "QuantLinear":
        """The same layer with fn applied to every array (e.g. upload to the GPU)."""
        f = lambda a: None if a is None else fn(a)  # noqa: E731
        return QuantLinear(self.fmt, fn(self.qweight), fn(self.scales), tuple(self.shape), f(self.zeros),
                           self.group_size, f(self.perm), f(self.gain), self.tiles)


# ---- fp8 e4m3fn ----------------------------------------------------------------------------------------------
def _e4m3_table() -> np.ndarray:
    b = np.arange(256)
    sign = np.where(b & 0x80, -1.0, 1.0)
    e, m = (b >> 3) & 0xF, b & 0x7
    val = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0))
    val = sign * val
    val[(b & 0x7F) == 0x7F] = np.nan
    return val


_E4M3 = _e4m3_table()
_POS = _E4M3[:0x7F]  # 0x00..0x7e: the finite non-negative codes, increasing


def fp8_e4m3_decode(q: np.ndarray) -> np.ndarray:
    """float64 values of e4m3fn bytes."""
    return _E4M3[np.asarray(q, dtype=np.uint8)]


def fp8_e4m3_encode(x: np.ndarray, xp=np) -> np.ndarray:
    """uint8 e4m3fn codes of x: round to nearest, ties to even mantissa, saturating at +-448 (cvt.rn.satfinite).
    xp: the array module of x (cupy for device arrays: gpu/quant_upload.py), the same float64 search there."""
    x = xp.asarray(x, dtype=xp.float64)
    pos = xp.asarray(_POS)
    a = xp.minimum(xp.abs(x), FP8_MAX)
    hi = xp.clip(xp.searchsorted(pos, a, side="left"), 0, len(_POS) - 1)
    lo = xp.maximum(hi - 1, 0)
    d_lo, d_hi = a - pos[lo], pos[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = xp.where(pick_hi, hi, lo).astype(xp.uint8)
    return xp.where(xp.signbit(x), code | 0x80, code).astype(xp.uint8)


def fp8_e4m3_encode_f32(x: np.ndarray) -> np.ndarray:
    """fp8_e4m3_encode for float32 input by bit arithmetic (~50x faster; equal on every finite float32, tested):
    normals round the float32 mantissa to 3 bits, ties to even, and rebias the exponent; below 2**-6 the code
    is the subnormal count rint(a * 2**9) (8 = the smallest normal, so the carry is right). In chunks of 1M."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    flat, out = x.reshape(-1), np.empty(x.size, np.uint8)
    for i in range(0, flat.size, 1 << 20):
        out[i:i + (1 << 20)] = _encode_chunk(flat[i:i + (1 << 20)])
    return out.reshape(x.shape)


def _encode_chunk(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    np.minimum(a, np.float32(FP8_MAX), out=a)
    bits = a.view(np.uint32)
    code = bits >> 20
    code &= np.uint32(1)
    code += bits
    code += np.uint32(0x7FFFF)
    code >>= 20                                   # 8-bit exponent | 3-bit mantissa, rounded to nearest even
    code -= np.uint32((127 - 7) << 3)             # rebias (wraps below 2**-6: replaced next)
    sub = np.rint(a * np.float32(512.0)).astype(np.uint32)   # exact: a power-of-two scale
    np.copyto(code, sub, where=a < np.float32(2.0 ** -6))
    out = code.astype(np.uint8)
    out |= (x.view(np.uint32) >> 24).astype(np.uint8) & np.uint8(0x80)   # the sign bit
    return out


# ---- quantize (round to nearest) -----------------------------------------------------------------------------
def _row_scale(w: np.ndarray, qmax: float) -> np.ndarray:
    amax = np.abs(w).max(axis=1)
    return np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)


def pack_int4(q: np.ndarray) -> np.ndarray:
    """uint8-valued [N, K] (0..15) -> uint32 [N, K // 8], element k at bits 4 * (k % 8) of word k // 8."""
    N, K = q.shape
    q = np.asarray(q, np.uint8)
    by = (q[:, 0::2] & 0xF) | ((q[:, 1::2] & 0xF) << 4)   # byte i: elements 2i (low nibble), 2i+1 (high nibble)
    return np.ascontiguousarray(by).view("<u4").astype(np.uint32).reshape(N, K // 8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """uint32 [N, K // 8] -> uint8 [N, K]; the inverse of pack_int4."""
    N, W = packed.shape
    shifts = 4 * np.arange(8, dtype=np.uint32)
    return ((packed[:, :, None] >> shifts) & 0xF).astype(np.uint8).reshape(N, W * 8)


def quantize(w: np.ndarray, fmt: str, group_size: int = 128) -> QuantLinear:
    """Round-to-nearest quantization of a float matrix W [N, K] (int4: asymmetric per group; -1 = one group a row)."""
    if fmt not in FORMATS:
        raise ValueError(f"unsupported quantization format {fmt!r}; supported: {', '.join(FORMATS)}")
    w = np.asarray(w, dtype=np.float32)
    N, K = w.shape
    if fmt == "fp8":
        s = _row_scale(w, FP8_MAX)
        return QuantLinear("fp8", fp8_e4m3_encode_f32(w / s[:, None]), s, (N, K))
    if fmt == "int8":
        s = _row_scale(w, 127.0)
        q = np.clip(np.rint(w / s[:, None]), -127, 127).astype(np.int8)
        return QuantLinear("int8", q, s, (N, K))
    g = K if group_size in (-1, 0) else int(group_size)
    if K % 8 or K % g or g % 8:
        raise ValueError(f"int4: group size {g} must divide the input dimension {K}, and both be multiples of 8")
    wg = w.reshape(N, K // g, g)
    lo, hi = np.minimum(wg.min(axis=2), 0), np.maximum(wg.max(axis=2), 0)
    s = ((hi - lo) / 15.0).astype(np.float16)
    s = np.where(s > 0, s, np.float16(1.0)).astype(np.float16)  # an all-zero group: any scale, zero point 0
    z = np.clip(np.rint(-lo / s.astype(np.float32)), 0, 15).astype(np.float16)
    q = np.clip(np.rint(wg / s[..., None].astype(np.float32)) + z[..., None], 0, 15).astype(np.uint8)
    return QuantLinear("int4", pack_int4(q.reshape(N, K)), s, (N, K), zeros=z, group_size=g)


def dequantize(ql: QuantLinear, original_order: bool = True) -> np.ndarray:
    """float64 [N, K] effective matrix: gain applied, and (original_order) columns put back through perm, so that
    y = dequantize(ql) @ x. With original_order=False: the packed-order matrix Wq * gain."""
    N, K = ql.shape
    if ql.tiles:
        raise ValueError("dequantize: qweight is in a tile-contiguous GPU layout (gpu/quant_tiles.untile_qweight "
                         "gives the rows back)")
    if ql.fmt == "fp8":
        w = fp8_e4m3_decode(np.asarray(ql.qweight)) * np.asarray(ql.scales, np.float64)[:, None]
    elif ql.fmt == "int8":
        w = np.asarray(ql.qweight, np.float64) * np.asarray(ql.scales, np.float64)[:, None]
    elif ql.fmt == "int4":
        q = unpack_int4(np.asarray(ql.qweight)).astype(np.float64).reshape(N, -1, ql.group_size)
        s = np.asarray(ql.scales, np.float64)[..., None]
        z = np.asarray(ql.zeros, np.float64)[..., None]
        w = (s * (q - z)).reshape(N, K)
    else:
        raise ValueError(f"unsupported quantization format {ql.fmt!r}")
    if ql.gain is not None:
        w = w * np.asarray(ql.gain, np.float64)[None, :]
    if original_order and ql.perm is not None:
        out = np.empty_like(w)
        out[:, np.asarray(ql.perm)] = w
        w = out
    return w
