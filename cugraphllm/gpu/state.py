"""Everything the CUDA engine keeps on the device, allocated once at fixed addresses (graphs bake addresses in).

- Upload: `Stager` moves host matrices (arrays or streamed LazyMatrix) through one reused pair of pinned and
  device slots, converting and folding on the device (kernels/weights.cu); dummy weights are filled in place.
  Neither leaves an fp32 or full-size temporary, and the pool is trimmed after load.
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
The kernels/weights.cu launchers (conversion, the seeded fill and its keys) are in gpu/weights_kernels.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ModelConfig
from ..reference import rope_table
from ..weights import LayerWeights, Weights
from .weights_kernels import convert as _convert, dummy_key, fill_normal


def storage_dtype(name: str):
    import cupy as cp
    if name == "float16":
        return cp.float16
    import ml_dtypes  # CuPy's bfloat16 dtype
    return ml_dtypes.bfloat16


STAGE_BYTES = 32 << 20  # one staging slot; two pinned host slots + two device slots = 128 MiB of extra memory, peak


class Stager:
    """Host matrices -> device, tensor by tensor, through one reused pair of pinned host slots and device slots on
    the current stream: the host fills one slot (rows read from the memory map or array, loader_common.read_rows)
    while the other one's copy and conversion run. A chunk whose host dtype is the storage dtype and needs no gain
    is copied straight into its rows of the output; otherwise it lands in a device slot and kernels/weights.cu
    convert_rows writes out = T(chunk * gain) (fp32 product, rounded once). No fp32 or full-size temporary."""

    def __init__(self, slot_bytes: int | None = None):
        import cupy as cp
        self.slot_bytes, self.stream = slot_bytes or STAGE_BYTES, cp.cuda.get_current_stream()
        self.pinned = [cp.cuda.alloc_pinned_memory(self.slot_bytes) for _ in range(2)]
        self.dev = [cp.cuda.alloc(self.slot_bytes) for _ in range(2)]
        self.done = [None, None]  # event after the last copy out of each pinned slot
        self.i = 0

    def upload(self, src, dtype, gain=None):
        """T [N, K] on the device from a host [N, K] array or LazyMatrix (float16 or float32); gain [K] folded in."""
        import cupy as cp
        out = cp.empty(src.shape, dtype=dtype)
        direct = gain is None and np.dtype(src.dtype) == np.dtype(dtype)
        g = cp.ones(src.shape[1], cp.float32) if gain is None else cp.asarray(gain, dtype=cp.float32)
        for a, b, chunk in self.chunks(src, out if direct else None):
            if not direct:
                _convert(out[a:b], chunk, g)
        return out

    def chunks(self, src, into=None):
        """Rows of a host matrix on the device, chunk by chunk: yields (a, b, rows [a, b) in the host dtype), the
        rows in a device slot (valid until the next chunk is asked for) or, with `into`, copied straight into
        into[a:b]. Kernels that consume a chunk go on self.stream (the current stream) before the next request."""
        import cupy as cp
        from ..loader_common import read_rows, row_chunks
        host, cols = np.dtype(src.dtype), src.shape[1]
        if host not in (np.float16, np.float32):
            raise ValueError(f"upload: host dtype must be float16 or float32, got {host}")
        if cols * host.itemsize * getattr(src, "row_align", 1) > self.slot_bytes:
            raise ValueError(f"upload: one row group of {cols} columns does not fit a {self.slot_bytes}-byte slot")
        for a, b in row_chunks(src, self.slot_bytes, host.itemsize):
            n, slot = (b - a) * cols, self._next()
            read_rows(src, a, b, np.frombuffer(self.pinned[slot], host, n).reshape(b - a, cols))
            dst = into[a:b] if into is not None else cp.ndarray((b - a, cols), host, memptr=self.dev[slot])
            cp.cuda.runtime.memcpyAsync(dst.data.ptr, self.pinned[slot].ptr, n * host.itemsize,
                                        cp.cuda.runtime.memcpyHostToDevice, self.stream.ptr)
            # the pinned slot is free again once its copy is done; the device slot's next copy is queued on the
            # same stream after the consumer's kernels, so it never overwrites rows still being read
            self.done[slot] = self.stream.record()
            yield a, b, dst

    def _next(self) -> int:
        """The slot to fill next, once the GPU has finished reading it."""
        slot, self.i = self.i, self.i ^ 1
        if self.done[slot] is not None:
            self.done[slot].synchronize()
        return slot

    def close(self) -> None:
        self.stream.synchronize()  # no copy may still read the pinned slots when they are freed
        self.pinned = self.dev = None
        trim_pool()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def trim_pool() -> None:
    """Give every cached, unused block of CuPy's device and pinned pools back (after load: the staging slots)."""
    import cupy as cp
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


def fold_columns(m, gain, dtype=None):
    """T [N, K] = T(m [N, K] * gain [K]): each product in fp32, rounded once to T (default: m's dtype). m is a host
    matrix (staged upload) or a contiguous device one (one convert_rows pass, no temporary)."""
    import cupy as cp
    dtype = dtype or m.dtype
    if not isinstance(m, cp.ndarray):
        with Stager() as st:
            return st.upload(m, dtype, gain)
    out = cp.empty(m.shape, dtype=dtype)
    _convert(out, cp.ascontiguousarray(m), cp.asarray(gain, dtype=cp.float32))
    return out


def to_device(a: np.ndarray, dtype, stager: Stager | None = None):
    """Upload one host array: 1-D arrays (norm gains) stay float32; matrices go through a Stager."""
    import cupy as cp
    if a.ndim == 1:
        return cp.asarray(np.asarray(a, dtype=np.float32))
    if stager is not None:
        return stager.upload(a, dtype)
    with Stager() as st:
        return st.upload(a, dtype)


def upload_weights(weights: Weights, dtype, progress=None) -> Weights:
    """Host Weights (arrays or LazyMatrix) -> device Weights with the norm gains folded into wqkv, w13 and output
    (module docstring), tensor by tensor through one Stager; the pool is trimmed afterwards."""
    import cupy as cp
    n, dim = len(weights.layers), weights.norm.shape[0]
    unit = cp.ones(dim, dtype=cp.float32)
    with Stager() as st:
        emb = st.upload(weights.tok_embeddings, dtype)
        layers = []
        for i, lw in enumerate(weights.layers):
            layers.append(LayerWeights(attention_norm=unit, wqkv=st.upload(lw.wqkv, dtype, lw.attention_norm),
                                       wo=st.upload(lw.wo, dtype), ffn_norm=unit,
                                       w13=st.upload(lw.w13, dtype, lw.ffn_norm), w2=st.upload(lw.w2, dtype)))
            if progress:
                progress(f"uploading layer {i + 1}/{n}")
        # untied when folded: the embedding gather must keep the unscaled rows
        output = st.upload(weights.output, dtype, weights.norm)
    return Weights(tok_embeddings=emb, layers=layers, norm=unit, output=output)


def dummy_device_weights(config: ModelConfig, dtype, seed: int = 0, scale: float = 0.02) -> Weights:
    """Seeded random weights of the config's exact shapes (vLLM's --load-format dummy), each matrix allocated in
    the storage dtype and filled in place (fill_normal, key dummy_key(seed, index)): no temporaries. The gains are
    ones, so these are already in folded form (module docstring)."""
    import itertools

    import cupy as cp
    keys = itertools.count()  # matrix index: each matrix its own random stream

    def mat(rows, cols):
        return fill_normal(cp.empty((rows, cols), dtype=dtype), dummy_key(seed, next(keys)), scale)

    unit = cp.ones(config.dim, dtype=cp.float32)
    d, f = config.dim, config.hidden_dim
    emb = mat(config.vocab_size, d)
    layers = [LayerWeights(attention_norm=unit, wqkv=mat(config.qkv_dim, d), wo=mat(d, d),
                           ffn_norm=unit, w13=mat(2 * f, d), w2=mat(d, f))
              for _ in range(config.n_layers)]
    out = emb if config.tie_embeddings else mat(config.vocab_size, d)
    return Weights(tok_embeddings=emb, layers=layers, norm=unit, output=out)


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


@dataclass
class Residual:
    """The residual stream, the one object the ops of gpu/model.py update or read it through: x f32 [M, D]; xn T
    [M, D] (decode: T(x) as written by the producer of x; prefill: the normed x of the last norm_* op); ss f32
    [>= norm_partials(D)] (decode: partial sums of squares of x for the next fused norm). xn and ss are None for a
    producer that only writes x. comm: None on one GPU; under tensor parallelism the rank's gpu/tp.py Comm, through
    which matmul_residual all-reduces its partial product and the LM head all-gathers its vocabulary slice.
    pnorm: a prefill of these rows takes the fused norms (gpu/ops.py, "prefill norms"): the producers of x also
    write xn = T(x) and ss [M, D / 16], from which the norm_* ops apply the norm in their GEMMs' epilogues."""
    x: object
    xn: object = None
    ss: object = None
    comm: object = None
    pnorm: bool = False

    def rows(self, M: int) -> "Residual":
        return Residual(self.x[:M], None if self.xn is None else self.xn[:M], self.ss, self.comm,
                        self.pnorm and 1 < M <= self.x.shape[0])


class Scratch:
    def __init__(self, config: ModelConfig, max_seq_len: int, max_rows: int, dtype):
        import cupy as cp

        from . import ops
        c, m = config, max_rows
        self.x = cp.zeros((m, c.dim), cp.float32)        # residual stream
        self.xn = cp.zeros((m, c.dim), dtype)            # decode: T(x); prefill: normed x (ops.norm_*)
        self.ss = cp.zeros(c.dim, cp.float32)            # partial sums of squares of x (ops.norm_*): decode
        # [norm_partials(D)], the fused prefill norms [M <= 16, D / 16]
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
        self.comm = None                                 # tensor parallelism: this rank's gpu/tp.py Comm
        self.prefill_norm = False                        # set by the engine where ops.prefill_norm_ok holds

    def residual(self, M: int) -> Residual:
        """Rows [0, M) of the residual stream (x, xn, ss and the communicator) as the ops take it."""
        from .ops import PREFILL_NORM_MAX_M
        pnorm = self.prefill_norm and self.comm is None and 1 < M <= PREFILL_NORM_MAX_M
        return Residual(self.x[:M], self.xn[:M], self.ss, self.comm, pnorm)

    @property
    def nbytes(self) -> int:
        import cupy as cp
        return int(sum(a.nbytes for a in vars(self).values() if isinstance(a, cp.ndarray))) + self.sample_work.nbytes
