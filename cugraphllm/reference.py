"""NumPy reference: the ops of a LLaMA-2 forward pass, the whole-model forward over a KV cache, and `NumpyEngine`.

This is the oracle every GPU kernel test compares against and the CPU backend of the library and the CLI.
Every op is dtype-preserving: float32 in gives float32 out, float64 in gives float64 out (weights of another
dtype are promoted per matmul, never stored twice). Conventions are DESIGN.md's: matrices [out, in], interleaved
RoPE pairs, query head h reads KV head h // n_rep, scores scaled by 1/sqrt(head_dim).

KV cache layout (as the GPU's): one array [n_layers, 2, S, n_kv_heads, head_dim]; kv[l, 0] keys, kv[l, 1] values.
"""
from __future__ import annotations

import functools
from typing import Iterator, Sequence

import numpy as np

from .config import ModelConfig
from .errors import BackendError, ConfigError, ContextLimitError
from .quant.dense import dequantize_f32
from .quant.formats import QuantLinear, dequantize
from .weights import Weights


# ---- ops -----------------------------------------------------------------------------------------------------
def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x [..., D] / sqrt(mean(x^2) + eps) * w [D], in x's dtype."""
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(ms + eps) * w).astype(x.dtype, copy=False)


def rope_table(max_seq: int, head_dim: int, theta: float) -> np.ndarray:
    """float64 [max_seq, head_dim//2, 2] = (cos, sin) of pos * theta**(-2i/head_dim); GPU kernels read it as f32."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)   # [hd/2]
    angles = np.arange(max_seq, dtype=np.float64)[:, None] * inv_freq[None, :]      # [S, hd/2]
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


@functools.lru_cache(maxsize=8)
def _rope_cached(max_seq: int, head_dim: int, theta: float) -> np.ndarray:
    table = rope_table(max_seq, head_dim, theta)
    table.setflags(write=False)
    return table


def apply_rope(x: np.ndarray, positions: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of each head. x [M, n, hd], positions [M] absolute."""
    cs = table[np.asarray(positions)].astype(x.dtype, copy=False)      # [M, hd/2, 2]
    cos, sin = cs[:, None, :, 0], cs[:, None, :, 1]                    # [M, 1, hd/2]
    a, b = x[..., 0::2], x[..., 1::2]                                  # [M, n, hd/2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x); exp(-x) may overflow to inf for very negative x, which correctly gives -0."""
    with np.errstate(over="ignore"):
        return (x / (1 + np.exp(-x))).astype(x.dtype, copy=False)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Causal GQA attention. q [M, H, hd]; k, v [L, KVH, hd] (cache rows 0..L-1); positions [M] absolute.

    The query at position p attends keys 0..p; query head h reads KV head h // (H // KVH). Returns [M, H, hd].
    """
    M, H, hd = q.shape
    KVH = k.shape[1]
    n_rep = H // KVH
    positions = np.asarray(positions)
    L = int(positions.max()) + 1                                        # no key beyond the last query is read
    kh = k[:L].transpose(1, 0, 2)                                       # [KVH, L, hd]
    vh = v[:L].transpose(1, 0, 2)
    # group the n_rep query heads that share a KV head: [KVH, n_rep*M, hd]
    qg = q.reshape(M, KVH, n_rep, hd).transpose(1, 2, 0, 3).reshape(KVH, n_rep * M, hd)
    scores = (qg @ kh.transpose(0, 2, 1)) * q.dtype.type(1.0 / np.sqrt(hd))   # [KVH, n_rep*M, L]
    future = np.arange(L)[None, :] > positions[:, None]                 # [M, L]
    scores = np.where(future, -np.inf, scores.reshape(KVH, n_rep, M, L)).astype(q.dtype, copy=False)
    p = softmax(scores, axis=-1).reshape(KVH, n_rep * M, L)
    out = (p @ vh).reshape(KVH, n_rep, M, hd).transpose(2, 0, 1, 3)     # [M, KVH, n_rep, hd]
    return np.ascontiguousarray(out.reshape(M, H, hd)).astype(q.dtype, copy=False)


def _linear(x: np.ndarray, w) -> np.ndarray:
    """y = x @ w.T in x's dtype (w [out, in] may be stored narrower, e.g. float16, or be a quant.QuantLinear:
    it is then dequantized, see dense())."""
    if isinstance(w, QuantLinear):
        w = dense(w, x.dtype)
    return (x @ w.T).astype(x.dtype, copy=False)


_DENSE: dict = {}            # id(QuantLinear) -> (QuantLinear, dtype, dense matrix); the key object is held
_DENSE_BUDGET = 1 << 30      # bytes of dequantized matrices kept (stories260K / tests: all; 7B: a few layers)


def dense(ql: QuantLinear, dtype=np.float32) -> np.ndarray:
    """The effective matrix of a QuantLinear (gain applied, columns in original order) in `dtype`: formats.py's
    float64 dequantize rounded once (quant/dense.py computes that in float32), so the NumPy backend has the
    kernels' numerics. Cached up to a budget."""
    hit = _DENSE.get(id(ql))
    if hit is not None and hit[0] is ql and hit[1] == np.dtype(dtype):
        return hit[2]
    w = dequantize_f32(ql) if np.dtype(dtype) == np.float32 else dequantize(ql).astype(dtype)
    while _DENSE and sum(v[2].nbytes for v in _DENSE.values()) + w.nbytes > _DENSE_BUDGET:
        _DENSE.pop(next(iter(_DENSE)))  # oldest first
    if w.nbytes <= _DENSE_BUDGET:
        _DENSE[id(ql)] = (ql, np.dtype(dtype), w)
    return w


# ---- whole model ---------------------------------------------------------------------------------------------
def new_kv_cache(config: ModelConfig, max_seq: int, dtype=np.float32) -> np.ndarray:
    """Zeroed [n_layers, 2, max_seq, n_kv_heads, head_dim] (np.zeros pages in lazily, so a big S is cheap)."""
    try:
        return np.zeros((config.n_layers, 2, max_seq, config.n_kv_heads, config.head_dim), dtype=dtype)
    except (MemoryError, ValueError):  # ValueError: more bytes than an address space holds
        raise BackendError(f"numpy backend: cannot allocate the KV cache of {max_seq} tokens "
                           f"({_size(kv_bytes_per_token(config) * max_seq)}); pass a smaller --max-seq-len") from None


# ---- memory: checked before allocating, so that a model that cannot fit is one line, not a MemoryError ------------
_RESERVE = 256 << 20  # bytes left for Python, activations and the tokenizer


def _size(n: int) -> str:
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.1f} MiB"


def available_memory() -> int | None:
    """Bytes the OS can hand out now (Linux MemAvailable), else physical memory; None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def kv_bytes_per_token(config: ModelConfig) -> int:
    """float32 K and V of every layer, plus the float64 RoPE row of a position (tables grow with the text)."""
    return config.n_layers * 2 * config.kv_dim * 4 + config.head_dim * 8


def numpy_context(config: ModelConfig, requested: int | None, weights_in_memory: bool) -> tuple[int, str]:
    """(context, note) for the numpy backend: the model's context (or `requested`, at most the model's), bounded
    by memory. The default is lowered to what fits (half the memory left after the weights; `note` says so); a
    model or an explicit context that cannot fit raises BackendError with what is needed and what is free."""
    ctx = min(requested or config.max_seq_len, config.max_seq_len)
    avail = available_memory()
    if avail is None:
        return ctx, ""
    weights = 0 if weights_in_memory else config.n_params() * 4
    per_token = kv_bytes_per_token(config)
    room = avail - weights - _RESERVE
    if room < per_token * min(ctx, 256):
        raise BackendError(f"numpy backend: out of memory: the model needs {_size(weights + per_token * ctx)} "
                           f"in float32 (weights {_size(weights)}, KV cache of {ctx} tokens "
                           f"{_size(per_token * ctx)}) but {_size(avail)} are available; use a smaller model, "
                           "a smaller --max-seq-len or the cuda backend")
    if per_token * ctx <= room:
        return ctx, ""
    if requested is not None:
        raise BackendError(f"numpy backend: out of memory: a context of {ctx} tokens needs {_size(per_token * ctx)} "
                           f"of KV cache but {_size(max(room, 0))} are available after the weights; pass "
                           f"--max-seq-len {room // per_token} or less")
    fit = room // 2 // per_token
    fit = fit - fit % 256 if fit >= 512 else fit
    return fit, (f"context {fit} tokens: the model's {config.max_seq_len} would need {_size(per_token * ctx)} "
                 f"of KV cache, {_size(avail)} are available (--max-seq-len N to choose)")


def _layer_linear(w8a8):
    """The product of the layers' matrices: _linear, or (w8a8) the GPU's fp8 W8A8 prefill product for fp8 weights
    (quant/w8a8_ref.py; w8a8 True: float32 activations quantized, "float16" / "bfloat16": rounded to it first)."""
    if w8a8 is False or w8a8 is None:
        return _linear
    from .quant import w8a8_ref
    storage = None if w8a8 is True else w8a8
    w8a8_ref.round_storage(np.zeros(1, np.float32), storage)  # a bad name fails here, before any work
    return lambda x, w: w8a8_ref.linear(x, w, storage) if w8a8_ref.is_w8a8(w) else _linear(x, w)


def hidden_states(config: ModelConfig, weights: Weights, tokens: Sequence[int], start_pos: int,
                  kv: np.ndarray, w8a8: bool | str = False) -> np.ndarray:
    """Run the layers on tokens at positions start_pos.. ; writes their K/V into kv; returns the final-normed
    residual [M, D] in kv's dtype (float32 or float64). w8a8: see _layer_linear (default off: weight-only)."""
    c = config
    lin = _layer_linear(w8a8)  # the layers' products only; the LM head stays weight-only
    tokens = np.asarray(tokens, dtype=np.int64)
    M = len(tokens)
    positions = np.arange(start_pos, start_pos + M)
    end = start_pos + M
    # rows up to a power of two past `end`, not the whole cache: a context of millions stays cheap; rows do not
    # depend on the table's length
    table = _rope_cached(max(256, 1 << (end - 1).bit_length()), c.head_dim, float(c.rope_theta))
    x = weights.tok_embeddings[tokens].astype(kv.dtype)                 # [M, D] residual stream
    for l, lw in enumerate(weights.layers):
        qkv = lin(rmsnorm(x, lw.attention_norm, c.norm_eps), lw.wqkv)        # [M, D + 2*kv_dim]
        q = apply_rope(qkv[:, :c.dim].reshape(M, c.n_heads, c.head_dim), positions, table)
        k = apply_rope(qkv[:, c.dim:c.dim + c.kv_dim].reshape(M, c.n_kv_heads, c.head_dim), positions, table)
        kv[l, 0, start_pos:end] = k
        kv[l, 1, start_pos:end] = qkv[:, c.dim + c.kv_dim:].reshape(M, c.n_kv_heads, c.head_dim)
        att = attention(q, kv[l, 0, :end], kv[l, 1, :end], positions)
        x = x + lin(att.reshape(M, c.dim), lw.wo)
        h13 = lin(rmsnorm(x, lw.ffn_norm, c.norm_eps), lw.w13)            # [M, 2F]: gate then up
        x = x + lin(silu(h13[:, :c.hidden_dim]) * h13[:, c.hidden_dim:], lw.w2)
    return rmsnorm(x, weights.norm, c.norm_eps)


def forward(config: ModelConfig, weights: Weights, tokens: Sequence[int], start_pos: int = 0,
            kv: np.ndarray | None = None, w8a8: bool | str = False) -> np.ndarray:
    """Logits [M, V] for tokens at positions start_pos..start_pos+M-1, appending their K/V to kv.

    kv None: a fresh float32 cache just big enough (start_pos must then be 0). Compute dtype = kv's dtype.
    w8a8 (default False): the layers' fp8 products of these rows as the GPU's prefill does them (per-token e4m3
    activations, quant/w8a8_ref.py): True, or "float16" / "bfloat16" to round the activations to that storage
    dtype first. The LM head stays weight-only (the GPU's is a one-row GEMV); other weights are unaffected.
    """
    if kv is None:
        if start_pos:
            raise ConfigError("forward: start_pos > 0 needs the kv cache that holds the earlier positions")
        kv = new_kv_cache(config, len(tokens))
    if start_pos + len(tokens) > kv.shape[2]:
        raise ContextLimitError(f"forward: positions up to {start_pos + len(tokens)} exceed the cache of "
                                f"{kv.shape[2]}")
    return _linear(hidden_states(config, weights, tokens, start_pos, kv, w8a8), weights.output)


# ---- engine --------------------------------------------------------------------------------------------------
class NumpyEngine:
    """DESIGN.md's Engine protocol on the NumPy reference (float32 activations and KV cache)."""

    def __init__(self, config: ModelConfig, weights: Weights, max_seq_len: int | None = None):
        self.config = config
        self.weights = weights
        self.max_seq_len = min(max_seq_len or config.max_seq_len, config.max_seq_len)
        self.kv = new_kv_cache(config, self.max_seq_len)
        self.tokens: list[int] = []
        self._logits: np.ndarray | None = None   # f32 [V]: prediction for position len(tokens)

    def reset(self) -> None:
        self.tokens = []
        self._logits = None

    def truncate(self, n: int) -> None:
        if not 0 <= n <= len(self.tokens):
            raise ConfigError(f"truncate: n={n} is outside 0..{len(self.tokens)}")
        if n < len(self.tokens):
            self.tokens = self.tokens[:n]
            self._logits = None

    def _feed(self, new_tokens: Sequence[int]) -> None:
        """Prefill new_tokens after the cached ones; `tokens` grows only once the step is complete, so an
        interrupted step leaves the engine consistent (cache rows past len(tokens) are dead)."""
        x = hidden_states(self.config, self.weights, new_tokens, len(self.tokens), self.kv)
        self._logits = _linear(x[-1:], self.weights.output)[0]
        self.tokens = self.tokens + [int(t) for t in new_tokens]

    def generate(self, new_tokens: Sequence[int], params, max_new_tokens: int) -> Iterator[int]:
        """Prefill new_tokens, then yield up to max_new_tokens sampled ids (see DESIGN.md's Engine protocol)."""
        new_tokens = [int(t) for t in new_tokens]
        total = len(self.tokens) + len(new_tokens)
        if total > self.max_seq_len:
            raise ContextLimitError(f"prompt of {total} tokens does not fit the context of {self.max_seq_len}")
        if not new_tokens and not self.tokens:
            raise ConfigError("generate: nothing to condition on (empty prompt and empty cache)")
        if max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if not new_tokens and self._logits is None:
            # no stored prediction for the next position: recompute it from the last cached token
            new_tokens = [self.tokens[-1]]
            self.truncate(len(self.tokens) - 1)
        return self._steps(new_tokens, params, max_new_tokens)

    def _steps(self, new_tokens, params, max_new_tokens) -> Iterator[int]:
        from .sampling import sample
        if max_new_tokens == 0:
            return
        if new_tokens:
            self._feed(new_tokens)
        for i in range(max_new_tokens):
            token = sample(self._logits, params, self.tokens, len(self.tokens))
            yield token
            # the consumer asked for more: commit `token` unless it was the last one or the context is full
            if i + 1 == max_new_tokens or len(self.tokens) >= self.max_seq_len:
                return
            self._feed([token])
