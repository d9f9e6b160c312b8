"""Everything the CUDA engine keeps on the device, allocated once at fixed addresses (graphs bake addresses in).

- Device weights: a `Weights` of CuPy arrays (matrices in the storage dtype, norms in float32) with every RMSNorm
  gain FOLDED into the columns of the matrix that consumes it: wqkv' = wqkv * attention_norm[None, :],
  w13' = w13 * ffn_norm[None, :], output' = output * norm[None, :] (each product in fp32, rounded once to T;
  output is untied from tok_embeddings when it is folded), and the three gain fields then hold one shared
  unit vector. rmsnorm(x, g) @ W.T == rmsnorm(x, 1) @ W'.T, so the decode GEMVs apply the norm themselves
  (kernels/gemv.cu, "Fused RMSNorm") and prefill runs a unit-gain rmsnorm.
- `KVCache`: one array [n_layers, 2, S, n_kv_heads, head_dim]; per-layer views.
- `Scratch`: llama2.c's "wave of activations" plus the device scalars (pos, n_tokens, token) and the sampling
  inputs. Rows are sized for the largest prefill bucket; a decode step uses row 0.
- `hist`: token ids by absolute position, in pinned host memory that the GPU writes directly (UVA), so the host
  reads a sampled token after an event without issuing a copy that could stall the next step.
"""
from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..reference import rope_table
from ..weights import LayerWeights, Weights


def storage_dtype(name: str):
    import cupy as cp
    if name == "float16":
        return cp.float16
    import ml_dtypes  # CuPy's bfloat16 dtype
    return ml_dtypes.bfloat16


def to_device(a: np.ndarray, dtype):
    """Upload one host array; 1-D arrays (norm gains) stay float32."""
    import cupy as cp
    if a.ndim == 1:
        return cp.asarray(np.asarray(a, dtype=np.float32))
    if np.dtype(dtype) == np.float16:
        return cp.asarray(np.ascontiguousarray(a, dtype=np.float16))
    return cp.asarray(np.ascontiguousarray(a, dtype=np.float32)).astype(dtype)


def fold_columns(m, gain, dtype=None, rows: int = 4096):
    """T [N, K] = T(m [N, K] * gain [K]): each product in fp32, rounded once to T (default: m's dtype). m is a
    host (numpy) or device (CuPy) matrix; it is converted in row chunks, so no full fp32 copy is ever made."""
    import cupy as cp
    g = cp.asarray(np.asarray(gain, dtype=np.float32) if isinstance(gain, np.ndarray) else gain,
                   dtype=cp.float32)
    out = cp.empty(m.shape, dtype=dtype or m.dtype)
    for i in range(0, m.shape[0], rows):
        part = m[i:i + rows]
        part = cp.asarray(np.ascontiguousarray(part)) if isinstance(part, np.ndarray) else part
        out[i:i + rows] = (part.astype(cp.float32) * g).astype(out.dtype)
    return out


def upload_weights(weights: Weights, dtype, progress=None) -> Weights:
    """Host Weights -> device Weights with the norm gains folded into wqkv, w13 and output (module docstring)."""
    import cupy as cp
    n, dim = len(weights.layers), weights.norm.shape[0]
    unit = cp.ones(dim, dtype=cp.float32)
    emb = to_device(weights.tok_embeddings, dtype)
    layers = []
    for i, lw in enumerate(weights.layers):
        layers.append(LayerWeights(attention_norm=unit, wqkv=fold_columns(lw.wqkv, lw.attention_norm, dtype),
                                   wo=to_device(lw.wo, dtype), ffn_norm=unit,
                                   w13=fold_columns(lw.w13, lw.ffn_norm, dtype), w2=to_device(lw.w2, dtype)))
        if progress:
            progress(f"uploading layer {i + 1}/{n}")
    # untied when folded: the embedding gather must keep the unscaled rows
    return Weights(tok_embeddings=emb, layers=layers, norm=unit,
                   output=fold_columns(weights.output, weights.norm, dtype))


def dummy_device_weights(config: ModelConfig, dtype, seed: int = 0, scale: float = 0.02) -> Weights:
    """Seeded random weights of the config's exact shapes, made on the GPU (vLLM's --load-format dummy). The gains
    are ones, so these are already in folded form (module docstring)."""
    import cupy as cp
    rng = cp.random.RandomState(seed)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=cp.float32) * scale).astype(dtype)

    def gain():
        return cp.ones(config.dim, dtype=cp.float32)
    d, f = config.dim, config.hidden_dim
    layers = [LayerWeights(attention_norm=gain(), wqkv=mat(config.qkv_dim, d), wo=mat(d, d),
                           ffn_norm=gain(), w13=mat(2 * f, d), w2=mat(d, f))
              for _ in range(config.n_layers)]
    emb = mat(config.vocab_size, d)
    out = emb if config.tie_embeddings else mat(config.vocab_size, d)
    return Weights(tok_embeddings=emb, layers=layers, norm=gain(), output=out)


class KVCache:
    def __init__(self, config: ModelConfig, max_seq_len: int, dtype):
        import cupy as cp
        shape = (config.n_layers, 2, max_seq_len, config.n_kv_heads, config.head_dim)
        self.data = cp.zeros(shape, dtype=dtype)  # [L, 2, S, KVH, Dh]
        self.max_seq_len = max_seq_len

    def layer(self, i: int):
        return self.data[i, 0], self.data[i, 1]  # k, v: [S, KVH, Dh] each, contiguous

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


def pinned_int32(n: int):
    """A host int32 array in pinned memory plus a CuPy view of the same bytes for kernels (UVA-mapped)."""
    import cupy as cp
    mem = cp.cuda.alloc_pinned_memory(n * 4)
    host = np.frombuffer(mem, dtype=np.int32, count=n)
    dev_mem = cp.cuda.UnownedMemory(mem.ptr, n * 4, mem, cp.cuda.Device().id)
    dev = cp.ndarray((n,), dtype=cp.int32, memptr=cp.cuda.MemoryPointer(dev_mem, 0))
    return host, dev, mem


class Scratch:
    def __init__(self, config: ModelConfig, max_seq_len: int, max_rows: int, dtype):
        import cupy as cp

        from . import ops
        c, m = config, max_rows
        self.x = cp.zeros((m, c.dim), cp.float32)        # residual stream
        self.xn = cp.zeros((m, c.dim), dtype)            # decode: T(x); prefill: normed x (ops.norm_*)
        self.ss = cp.zeros((c.dim + 1) // 2, cp.float32)  # decode: partial sums of squares of x (ops.norm_*)
        self.q = cp.zeros((m, c.dim), dtype)             # roped queries
        self.att = cp.zeros((m, c.dim), dtype)           # attention output (heads concatenated)
        self.h = cp.zeros((m, c.hidden_dim), dtype)      # silu(gate) * up
        self.logits = cp.zeros((1, c.vocab_size), cp.float32)
        self.sample_work = ops.sample_workspace(self.logits)  # the sampler's scratch, made before any capture
        self.prompt = cp.zeros(m, cp.int32)              # token ids of a prefill step (padded)
        self.pos = cp.zeros(1, cp.int32)                 # absolute position of the step's first token
        self.n_tokens = cp.ones(1, cp.int32)             # real tokens in the step (prefill)
        self.one = cp.ones(1, cp.int32)                  # n_tokens of every decode step (never written)
        self.token = cp.zeros(1, cp.int32)               # last sampled token (decode input)
        self.params = cp.zeros(4, cp.float32)            # temperature, top_p, repetition_penalty, top_k
        self.seed = cp.zeros(1, cp.uint64)
        self.rope = cp.asarray(rope_table(max_seq_len, c.head_dim, c.rope_theta).astype(np.float32))
        self.hist_host, self.hist, self._hist_mem = pinned_int32(max_seq_len + 1)

    @property
    def nbytes(self) -> int:
        import cupy as cp
        return int(sum(a.nbytes for a in vars(self).values() if isinstance(a, cp.ndarray))) + self.sample_work.nbytes
