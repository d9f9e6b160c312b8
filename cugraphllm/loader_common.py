"""Format-independent half of loading: expected shapes, fusion into wqkv/w13, dtype, progress.

A format loader (loader_hf, loader_llama2c) supplies `get(name, layer) -> Tensor` for the internal
names below; `build_weights` checks each shape against the config, then copies layer by layer into the
fused arrays. Memory: sources are mmap views; the only new allocations are the fused matrices (and
any matrix whose dtype changes), written chunk by chunk, so a checkpoint never exists twice in RAM.
A matrix whose stored dtype already equals the requested one and needs no fusion or permutation
(tok_embeddings, wo, w2, output, fp32 norms) is returned as the read-only mmap view itself.
Every tensor is scanned for NaN/Inf chunk by chunk as it is converted (or, for a view, read once): a
`warnings.warn` names the file and the tensor, since such weights give garbage text, not an error.

Streaming (`lazy=True`, the GPU path): matrices stay `LazyMatrix` objects that read rows [a, b) from the memory map
into the caller's buffer (a pinned staging slot) only when asked, and drop the pages just read from this process
(`Tensor.release`), so loading never holds more of the checkpoint in host RAM than one chunk.
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import ModelConfig
from .errors import CheckpointError
from .weights import LayerWeights, Weights

LAYER_NAMES = ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3")
GLOBAL_NAMES = ("tok_embeddings", "norm", "output")
_CHUNK_BYTES = 4 << 20  # float32 bytes converted per step: bounds the temporary, stays in cache (3x faster)


def expected_shape(cfg: ModelConfig, name: str) -> tuple:
    D, F, V, KV = cfg.dim, cfg.hidden_dim, cfg.vocab_size, cfg.kv_dim
    return {"tok_embeddings": (V, D), "output": (V, D), "norm": (D,), "attention_norm": (D,),
            "ffn_norm": (D,), "wq": (D, D), "wk": (KV, D), "wv": (KV, D), "wo": (D, D),
            "w1": (F, D), "w3": (F, D), "w2": (D, F)}[name]


@dataclass
class Tensor:
    """A stored tensor: `raw` is the mmap view in its storage dtype; `decode` widens a slice of it
    to a NumPy float dtype (identity except for bfloat16 bits)."""
    raw: np.ndarray
    where: str                       # "<file>: tensor '<name>'" for error messages
    decode: Callable[[np.ndarray], np.ndarray] = np.asarray
    native: bool = True              # raw is already a NumPy float dtype
    release: Callable[[np.ndarray], None] | None = None  # drop the pages of a slice of raw once read (mmap)


def _check(cfg: ModelConfig, name: str, t: Tensor) -> None:
    want = expected_shape(cfg, name)
    if tuple(t.raw.shape) != want:
        raise CheckpointError(f"{t.where}: shape {list(t.raw.shape)} does not match the config, which "
                              f"expects {list(want)}")


def _nonfinite(chunk: np.ndarray) -> int:
    """NaN/Inf count of a float32/float16 chunk; one fast pass when there are none (float16 by its bits:
    np.isfinite on float16 is 15x slower)."""
    if chunk.dtype == np.float16:
        exp = np.bitwise_and(chunk.view(np.uint16), 0x7FFF)
        return 0 if exp.max(initial=0) < 0x7C00 else int(np.count_nonzero(exp >= 0x7C00))
    ok = np.isfinite(chunk)
    return 0 if ok.all() else int(ok.size - np.count_nonzero(ok))


def _warn_nonfinite(t: Tensor, bad: int, into: np.dtype | None = None) -> None:
    if bad:
        narrowed = into == np.float16 and t.raw.dtype != np.float16
        warnings.warn(f"{t.where}: {bad} of {t.raw.size} values are NaN or Inf"
                      f"{' (or beyond the float16 range, 65504)' if narrowed else ''}; the model will produce "
                      "garbage", stacklevel=2)


def _scan(t: Tensor) -> None:
    """Warn about NaN/Inf in a tensor returned as its mmap view (no conversion pass to piggyback on)."""
    step = max(1, _CHUNK_BYTES // max(1, t.raw[:1].nbytes))
    _warn_nonfinite(t, sum(_nonfinite(t.raw[a:a + step]) for a in range(0, t.raw.shape[0], step)))


def _copy_rows(out: np.ndarray, t: Tensor, perm_heads: int = 0, warn: bool = True) -> int:
    """out[:] = decode(t.raw), in row chunks; perm_heads > 0 un-permutes rotate-half rows per head
    (HF stores head rows as [re_0..re_{h/2-1}, im_0..]; we want interleaved [re_0, im_0, re_1, ...])."""
    rows, cols = t.raw.shape if t.raw.ndim == 2 else (t.raw.shape[0], 1)
    step = max(1, _CHUNK_BYTES // max(1, cols * 4))
    hd = rows // perm_heads if perm_heads else 1
    step = max(hd, step // hd * hd)  # whole heads per chunk
    bad = 0  # counted in the output chunk while it is in cache: catches overflow to float16 Inf too
    for a in range(0, rows, step):
        src = t.decode(t.raw[a:a + step])
        with np.errstate(over="ignore"):  # float16 overflow is counted below, with the tensor's name
            if perm_heads:
                k = src.shape[0] // hd
                # [k, 2, hd/2, cols] (half, pair) -> [k, hd/2, 2, cols] (pair, half)
                out[a:a + step].reshape(k, hd // 2, 2, cols)[...] = \
                    src.reshape(k, 2, hd // 2, cols).transpose(0, 2, 1, 3)
            else:
                out[a:a + step] = src
        bad += _nonfinite(out[a:a + step])
    if warn:
        _warn_nonfinite(t, bad, out.dtype)
    return bad


def fuse(parts: list, dtype: np.dtype) -> np.ndarray:
    """Concatenate [(Tensor, perm_heads)] along rows into a new `dtype` array, or return the single
    part's mmap view when nothing needs to change."""
    (t0, p0) = parts[0]
    if len(parts) == 1 and not p0 and t0.native and t0.raw.dtype == dtype:
        _scan(t0)
        return t0.raw
    rows = sum(t.raw.shape[0] for t, _ in parts)
    out = np.empty((rows,) + tuple(t0.raw.shape[1:]), dtype=dtype)
    r = 0
    for t, perm in parts:
        n = t.raw.shape[0]
        _copy_rows(out[r:r + n], t, perm)
        r += n
    return out


class LazyMatrix:
    """The rows of `parts` [(Tensor, perm_heads)] concatenated and converted to `dtype`, read only when asked:
    `read_rows(a, b, out)` fills out [b - a, cols] (row bounds multiples of `row_align`, so that no RoPE head is
    split); `np.asarray(m)` materializes it (the eager loader's array, bit for bit)."""

    ndim = 2

    def __init__(self, parts: list, dtype):
        self.parts, self.dtype = parts, np.dtype(dtype)
        self.shape = (sum(t.raw.shape[0] for t, _ in parts), parts[0][0].raw.shape[1])
        self.row_align = math.lcm(*[t.raw.shape[0] // p if p else 1 for t, p in parts])
        self._bad = [0] * len(parts)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def read_rows(self, a: int, b: int, out: np.ndarray) -> None:
        r0 = 0
        for i, (t, perm) in enumerate(self.parts):
            n = t.raw.shape[0]
            lo, hi = max(a, r0), min(b, r0 + n)
            if lo < hi:
                src = t.raw[lo - r0:hi - r0]
                heads = perm * (hi - lo) // n if perm else 0
                if perm and heads * n != perm * (hi - lo):
                    raise ValueError(f"read_rows({a}, {b}) splits a head of {t.where} (row_align {self.row_align})")
                self._bad[i] += _copy_rows(out[lo - a:hi - a], Tensor(src, t.where, t.decode, t.native),
                                           heads, warn=False)
                if t.release is not None:
                    t.release(src)
                if hi == r0 + n:  # the part's last rows: one warning for the whole tensor
                    _warn_nonfinite(t, self._bad[i], self.dtype)
                    self._bad[i] = 0
            r0 += n

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, self.dtype)
        self.read_rows(0, self.shape[0], out)
        return out if dtype is None else out.astype(dtype, copy=False)


def row_chunks(src, max_bytes: int, itemsize: int | None = None):
    """(a, b) row ranges covering a 2-D array or LazyMatrix, each at most max_bytes (of `itemsize`-byte elements,
    default the source's) and a multiple of the source's row_align (at least one aligned group)."""
    rows, cols = src.shape
    align = getattr(src, "row_align", 1)
    step = max(1, max_bytes // (cols * (itemsize or src.dtype.itemsize)) // align) * align
    return [(a, min(a + step, rows)) for a in range(0, rows, step)]


def read_rows(src, a: int, b: int, out: np.ndarray) -> None:
    """out[:] = rows [a, b) of a NumPy array (e.g. an mmap view) or a LazyMatrix, converted to out's dtype."""
    if isinstance(src, LazyMatrix):
        src.read_rows(a, b, out)
    else:
        np.copyto(out, src[a:b], casting="same_kind")


class Progress:
    """'loading <src>: layer i/n' lines on stderr, when enabled."""

    def __init__(self, enabled: bool, source: str, n_layers: int):
        self.enabled, self.source, self.n = enabled, source, n_layers
        self.t0 = time.perf_counter()

    def layer(self, i: int) -> None:
        if self.enabled:
            print(f"loading {self.source}: layer {i + 1}/{self.n} ...", file=sys.stderr, flush=True)

    def done(self, nbytes: int) -> None:
        if self.enabled:
            dt = time.perf_counter() - self.t0
            print(f"loaded {self.source}: {nbytes / 1e9:.2f} GB in {dt:.1f} s", file=sys.stderr, flush=True)


def _quantizer(cfg: ModelConfig, quant, source: str):
    """(per-layer, whole-model) transforms of quantize at load; identities without quant."""
    if quant is None:
        return (lambda lw: lw), (lambda w: w)
    from .quant.layers import check_spec, quantize_head, quantize_layer
    check_spec(cfg, quant, source)  # before anything is read
    return (lambda lw: quantize_layer(lw, quant)), (lambda w: quantize_head(w, quant))


def build_weights(cfg: ModelConfig, get: Callable[[str, int | None], Tensor], dtype: str,
                  progress: Progress, permuted: bool, lazy: bool = False, quant=None) -> Weights:
    """Assemble Weights from `get(name, layer)`; `permuted`: q/k rows are in HF rotate-half order; `lazy`: matrices
    are LazyMatrix objects (nothing is read yet; norms, 1-D, are read now). quant (a quant.QuantSpec): each layer is
    quantized as soon as it is built (quant/layers.py), so the model never exists unquantized in full (not lazy)."""
    if lazy and quant is not None:
        raise ValueError("build_weights: lazy loading and host quantization exclude each other")
    layer_fn, model_fn = _quantizer(cfg, quant, progress.source)
    mat = np.dtype(dtype)
    f32 = np.dtype(np.float32)

    def one(name, layer=None, dt=mat, perm=0):
        t = get(name, layer)
        _check(cfg, name, t)
        return LazyMatrix([(t, perm)], dt) if lazy and t.raw.ndim == 2 else fuse([(t, perm)], dt)

    def fused(names, layer, perms):
        ts = [get(n, layer) for n in names]
        for n, t in zip(names, ts):
            _check(cfg, n, t)
        return LazyMatrix(list(zip(ts, perms)), mat) if lazy else fuse(list(zip(ts, perms)), mat)

    qk = (cfg.n_heads, cfg.n_kv_heads, 0) if permuted else (0, 0, 0)
    tok = one("tok_embeddings")
    layers = []
    for i in range(cfg.n_layers):
        if not lazy:
            progress.layer(i)
        layers.append(layer_fn(LayerWeights(
            attention_norm=one("attention_norm", i, f32),
            wqkv=fused(("wq", "wk", "wv"), i, qk),
            wo=one("wo", i),
            ffn_norm=one("ffn_norm", i, f32),
            w13=fused(("w1", "w3"), i, (0, 0)),
            w2=one("w2", i))))
    norm = one("norm", None, f32)
    output = tok if cfg.tie_embeddings else one("output")
    w = model_fn(Weights(tok_embeddings=tok, layers=layers, norm=norm, output=output))
    if not lazy:  # a lazy load reads at upload time, which reports its own progress
        progress.done(w.nbytes())
    return w
