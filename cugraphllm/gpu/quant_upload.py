"""Quantized device weights: quantize at load on the GPU, layer by layer, or upload already-packed QuantLinears.

- `quantize_rows(w32, fmt, gs)`: round to nearest on the device, the rules of quant/formats.py `quantize`, bit for
  bit (same float32 operations; the e4m3 rounding is the same float64 search over the 127 finite codes).
- `upload_quant_weights(weights, dtype, fmt, ...)`: host `Weights` -> device `Weights` whose matrices are
  QuantLinears. A 16-bit / fp32 host matrix gets its RMSNorm gain folded in fp32 (as state.upload_weights does)
  and is quantized in row chunks, so no 16-bit or fp32 copy of a whole matrix, let alone the model, is ever on
  the GPU. A host QuantLinear (GPTQ / AWQ / our folder) is uploaded as it is; its norm gain, which cannot be
  folded into packed integers, goes into its `gain` vector (in packed column order: gain[j] *= norm[perm[j]]).
- `dummy_quant_weights(config, dtype, fmt, ...)`: seeded random weights made and quantized on the GPU one row
  chunk at a time.
The embedding stays 16-bit; the LM head is quantized only with quant_head (`--quant-head`).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..quant.formats import FORMATS, QuantLinear, fp8_e4m3_encode
from ..weights import LayerWeights, Weights
from .state import fold_columns, to_device

CHUNK_ELEMS = 1 << 23  # values per quantization chunk: the fp8 rounding's float64 temporaries are 64 MB each


def _chunk_rows(K: int) -> int:
    return max(8, CHUNK_ELEMS // K)


def _group(K: int, group_size) -> int:
    return K if group_size in (-1, 0, None) else int(group_size)


def check_format(fmt: str, K: int, group_size) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unsupported quantization format {fmt!r}; supported: {', '.join(FORMATS)}")
    if fmt == "int4":
        g = _group(K, group_size)
        if K % 8 or g <= 0 or K % g or g % 8:
            raise ValueError(f"int4: group size {g} must divide the input dimension {K}, and both be multiples of 8")


def check_shapes(named_shapes, fmt, group_size) -> None:
    """ConfigError naming the first tensor that format fmt cannot hold, before anything is allocated."""
    for name, (N, K) in named_shapes:
        try:
            check_format(fmt, K, group_size)
        except ValueError as exc:
            raise ConfigError(f"--quant {fmt}: tensor {name} [{N}, {K}]: {exc}") from None


def _shapes(weights: Weights, quant_head: bool):
    for i, lw in enumerate(weights.layers):
        for k in ("wqkv", "wo", "w13", "w2"):
            yield f"layers.{i}.{k}", getattr(lw, k).shape
    if quant_head:
        yield "output", weights.output.shape


def _fp8_encode(x):
    """uint8 e4m3fn codes of float32 x (device): formats.fp8_e4m3_encode on the GPU, in float64."""
    import cupy as cp
    return fp8_e4m3_encode(x, cp)


def quantize_rows(w, fmt: str, group_size=128):
    """(qweight, scales, zeros or None) of a device float32 block W [n, K]: formats.quantize's arithmetic."""
    import cupy as cp
    n, K = w.shape
    if fmt in ("fp8", "int8"):
        qmax = np.float32(448.0 if fmt == "fp8" else 127.0)  # float32 division, as NumPy does for formats.py
        amax = cp.abs(w).max(axis=1)
        s = cp.where(amax > 0, amax / qmax, np.float32(1.0)).astype(cp.float32)
        r = w / s[:, None]
        if fmt == "fp8":
            return _fp8_encode(r), s, None
        return cp.clip(cp.rint(r), -127, 127).astype(cp.int8), s, None
    g = _group(K, group_size)
    wg = w.reshape(n, K // g, g)
    lo, hi = cp.minimum(wg.min(axis=2), 0), cp.maximum(wg.max(axis=2), 0)
    s = ((hi - lo) / np.float32(15.0)).astype(cp.float16)  # rounded to float32, then to float16 (formats.py)
    s = cp.where(s > 0, s, cp.float16(1.0)).astype(cp.float16)
    z = cp.clip(cp.rint(-lo / s.astype(cp.float32)), 0, 15).astype(cp.float16)
    q = cp.clip(cp.rint(wg / s[..., None].astype(cp.float32)) + z[..., None], 0, 15).astype(cp.uint32)
    shifts = (4 * cp.arange(8, dtype=cp.uint32))
    packed = (q.reshape(n, K // 8, 8) << shifts).sum(axis=2, dtype=cp.uint32)  # disjoint bits: sum == or
    return packed, s, z


def quantize_matrix(rows_f32, N: int, K: int, fmt: str, group_size=128) -> QuantLinear:
    """QuantLinear of CuPy arrays from rows_f32(i, j) -> device float32 rows i..j-1 of W [N, K], chunk by chunk."""
    import cupy as cp
    check_format(fmt, K, group_size)
    g = _group(K, group_size)
    if fmt == "int4":
        qw = cp.empty((N, K // 8), cp.uint32)
        s, z = cp.empty((N, K // g), cp.float16), cp.empty((N, K // g), cp.float16)
    else:
        qw = cp.empty((N, K), cp.uint8 if fmt == "fp8" else cp.int8)
        s, z = cp.empty(N, cp.float32), None
    rows = _chunk_rows(K)
    for i in range(0, N, rows):
        j = min(N, i + rows)
        q, sc, zz = quantize_rows(rows_f32(i, j), fmt, g)
        qw[i:j], s[i:j] = q, sc
        if z is not None:
            z[i:j] = zz
    return QuantLinear(fmt, qw, s, (N, K), zeros=z, group_size=g if fmt == "int4" else 0)


def quantize_host(m, gain, fmt: str, group_size=128) -> QuantLinear:
    """Quantize a host [N, K] matrix (any float dtype) with its column gain [K] (or None) folded in fp32 first."""
    import cupy as cp
    g = None if gain is None else cp.asarray(np.asarray(gain, np.float32))

    def rows(i, j):
        part = cp.asarray(np.ascontiguousarray(m[i:j], dtype=np.float32))
        return part * g if g is not None else part
    return quantize_matrix(rows, m.shape[0], m.shape[1], fmt, group_size)


def upload_packed(ql: QuantLinear, norm=None) -> QuantLinear:
    """A host QuantLinear as it is, on the device; a norm gain [K] (original column order) joins its gain vector."""
    import cupy as cp
    dev = ql.map(lambda a: cp.asarray(np.ascontiguousarray(a)))
    if norm is not None:
        g = np.asarray(norm, np.float32)
        g = g[np.asarray(ql.perm)] if ql.perm is not None else g
        if ql.gain is not None:
            g = g * np.asarray(ql.gain, np.float32)
        dev.gain = cp.asarray(np.ascontiguousarray(g, dtype=np.float32))
    return dev


def _linear(m, gain, dtype, fmt, group_size):
    """One linear layer on the device: packed as given, quantized (fmt), or 16-bit with the gain folded."""
    if isinstance(m, QuantLinear):
        return upload_packed(m, gain)
    if fmt is None:
        return fold_columns(m, gain, dtype) if gain is not None else to_device(m, dtype)
    if hasattr(m, "read_rows"):  # a LazyMatrix of the streaming loader: host memory holds one matrix at a time
        m = np.asarray(m)
    return quantize_host(m, gain, fmt, group_size)


def upload_quant_weights(weights: Weights, dtype, fmt, group_size=128, quant_head=False, progress=None):
    """Host Weights (arrays and/or QuantLinears) -> device Weights; see the module docstring. fmt None: only
    the layers that are already QuantLinears are quantized."""
    import cupy as cp
    if fmt is not None and is_packed(weights):
        raise ConfigError(f"--quant {fmt}: the checkpoint is already quantized "
                          f"({weights_format(weights)}); load it without --quant")
    if fmt is not None:
        check_shapes(_shapes(weights, quant_head), fmt, group_size)
    n, dim = len(weights.layers), weights.norm.shape[0]
    unit = cp.ones(dim, dtype=cp.float32)
    layers = []
    for i, lw in enumerate(weights.layers):
        layers.append(LayerWeights(
            attention_norm=unit, wqkv=_linear(lw.wqkv, lw.attention_norm, dtype, fmt, group_size),
            wo=_linear(lw.wo, None, dtype, fmt, group_size), ffn_norm=unit,
            w13=_linear(lw.w13, lw.ffn_norm, dtype, fmt, group_size), w2=_linear(lw.w2, None, dtype, fmt, group_size)))
        if progress:
            progress(f"uploading layer {i + 1}/{n}" + (f" ({fmt})" if fmt else ""))
    emb = weights.tok_embeddings
    emb = to_device(emb, dtype)
    out = _linear(weights.output, weights.norm, dtype, fmt if quant_head else None, group_size)
    return Weights(tok_embeddings=emb, layers=layers, norm=unit, output=out)


def dummy_quant_weights(config, dtype, fmt, group_size=128, quant_head=False, seed=0, scale=0.02) -> Weights:
    """Seeded random weights of the config's shapes, quantized on the GPU one row chunk at a time (gains are ones:
    already folded form). Not the same values as state.dummy_device_weights (drawn per chunk)."""
    import cupy as cp
    d, f = config.dim, config.hidden_dim
    shapes = [("wqkv", (config.qkv_dim, d)), ("wo", (d, d)), ("w13", (2 * f, d)), ("w2", (d, f))]
    check_shapes(shapes + ([("output", (config.vocab_size, d))] if quant_head else []), fmt, group_size)
    rng = cp.random.RandomState(seed)

    def rand_rows(i, j, K):
        return rng.standard_normal((j - i, K), dtype=cp.float32) * np.float32(scale)

    def qmat(N, K):
        return quantize_matrix(lambda i, j: rand_rows(i, j, K), N, K, fmt, group_size)
    unit = cp.ones(d, dtype=cp.float32)
    layers = [LayerWeights(attention_norm=unit, wqkv=qmat(config.qkv_dim, d), wo=qmat(d, d), ffn_norm=unit,
                           w13=qmat(2 * f, d), w2=qmat(d, f)) for _ in range(config.n_layers)]
    emb = (rng.standard_normal((config.vocab_size, d), dtype=cp.float32) * np.float32(scale)).astype(dtype)
    out = qmat(config.vocab_size, d) if quant_head else (
        emb if config.tie_embeddings else
        (rng.standard_normal((config.vocab_size, d), dtype=cp.float32) * np.float32(scale)).astype(dtype))
    return Weights(tok_embeddings=emb, layers=layers, norm=unit, output=out)


# ---- sizes ---------------------------------------------------------------------------------------------------
def matrix_bytes(N: int, K: int, fmt, group_size=128, t_bytes: int = 2) -> int:
    """Device bytes of one [N, K] matrix in format fmt (None: 16-bit), scales and zeros included."""
    if fmt is None:
        return N * K * t_bytes
    if fmt in ("fp8", "int8"):
        return N * K + 4 * N
    return N * K // 2 + 2 * 2 * N * (K // _group(K, group_size))


def weight_bytes(config, fmt=None, group_size=128, quant_head=False, t_bytes: int = 2) -> tuple[int, int]:
    """(bytes on the device, bytes read per decode token) of the weights: the linear layers and the LM head are
    read whole every token; of the embedding only one row."""
    c = config
    layer = sum(matrix_bytes(N, K, fmt, group_size, t_bytes)
                for N, K in ((c.qkv_dim, c.dim), (c.dim, c.dim), (2 * c.hidden_dim, c.dim), (c.dim, c.hidden_dim)))
    head = matrix_bytes(c.vocab_size, c.dim, fmt if quant_head else None, group_size, t_bytes)
    emb = c.vocab_size * c.dim * t_bytes
    norms = 4 * c.dim * (2 * c.n_layers + 1)
    return c.n_layers * layer + head + emb + norms, c.n_layers * layer + head + c.dim * t_bytes


def is_packed(w: Weights) -> bool:
    """Whether any matrix of these (host or device) weights is a QuantLinear."""
    mats = [m for lw in w.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2)] + [w.output]
    return any(isinstance(m, QuantLinear) for m in mats)


def weights_format(w: Weights) -> str:
    """The format of the decoder's linear layers ("float16"-style 16-bit or a quantized format), for reports."""
    m = w.layers[0].wqkv if w.layers else w.output
    if isinstance(m, QuantLinear):
        return m.fmt + (f" g{m.group_size}" if m.fmt == "int4" else "")
    return str(m.dtype)


H200_COPY_BPS = 4.24e12  # measured device copy on the H200 (shared/notes/quant.md)


def decode_floor(config, fmt=None, group_size=128, quant_head=False, t_bytes: int = 2,
                 rate: float = H200_COPY_BPS) -> dict:
    """The weight-bandwidth floor of one decode token: bytes read per token over the copy rate (KV cache ignored)."""
    held, read = weight_bytes(config, fmt, group_size, quant_head, t_bytes)
    return {"format": fmt or "16-bit", "group_size": group_size if fmt == "int4" else None,
            "quant_head": bool(quant_head), "device_bytes": int(held), "bytes_per_token": int(read), "copy_bps": rate,
            "floor_ms": read / rate * 1e3}
