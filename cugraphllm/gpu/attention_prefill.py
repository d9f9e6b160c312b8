"""Launcher of the tensor-core causal prefill attention (kernels/attention_prefill.cu).

One module per (head_dim, n_rep, dtype), compiled through NVRTC by cuda_kernels.get_function (CuPy keeps the cubin
on disk, so a second start only loads it); the query bucket M only sets the grid. Launches go on the current CuPy
stream with no allocation and no sync, so a launch is capturable and one graph serves every (pos, n_tokens).
Head dims other than HEAD_DIMS stay on the Numba prefill kernel (gpu/attention.py decides).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .cuda_kernels import device_id, get_function, kernel_int, raise_smem_limit
from .env import env_int

HEAD_DIMS = (64, 128)
_SRC = "attention_prefill.cu"
BM = kernel_int(_SRC, "BM")              # query rows per block
BN = kernel_int(_SRC, "BN")              # keys per K/V tile
NTHREADS = kernel_int(_SRC, "NTHREADS")
# Key split (the kernel's gridDim.z) for buckets of at most SPLIT_TILES query tiles: enough splits that the grid
# has about SPLIT_BLOCKS blocks, at most SPLIT_MAX, on the kernel's split entry; the other buckets
# run the plain one. The split entry takes fewer splits where the cached prefix is short (each walks >= 8 key
# tiles, 512 keys; >= 2 tiles in buckets of <= 16 rows: kernels/attention_prefill_split.cuh), none up to that.
SPLIT_TILES = 2
SPLIT_BLOCKS = 256
SPLIT_MAX = kernel_int(_SRC, "SPLIT_MAX")
PSTRIDE_EXTRA = kernel_int(_SRC, "PSTRIDE_EXTRA")  # floats after a partial row's o[head_dim]: m, l and padding


# env: the most key splits a launch takes, 0 or 1 = every launch on the plain kernel (an A/B switch, at most
# SPLIT_MAX; read when a bucket's grid is first made)
SPLIT_ENV = "CUGRAPHLLM_PREFILL_SPLIT"


def _split_cap() -> int:
    return env_int(SPLIT_ENV, SPLIT_MAX, 0, SPLIT_MAX)


def n_split(n_heads: int, q_tiles: int, cap: int | None = None) -> int:
    """Key splits of a launch over q_tiles query tiles (1: no split); at most cap (None: the env's cap)."""
    if q_tiles > SPLIT_TILES:
        return 1
    cap = _split_cap() if cap is None else cap
    return max(1, min(cap, -(-SPLIT_BLOCKS // (n_heads * q_tiles))))


def split_scratch(n_heads: int, head_dim: int) -> tuple[int, int]:
    """Elements of the key split's partials f32 [tiles, H, n_split, BM, head_dim + 4] at their largest and of its
    tickets uint32 [SPLIT_TILES, H]."""
    rows = max(t * n_split(n_heads, t, SPLIT_MAX) for t in range(1, SPLIT_TILES + 1)) * BM  # whatever the env
    return n_heads * rows * (head_dim + PSTRIDE_EXTRA), SPLIT_TILES * n_heads


def supported(head_dim: int) -> bool:
    return head_dim in HEAD_DIMS


def smem_bytes(head_dim: int) -> int:
    """Q tile + double-buffered K and V tiles, storage dtype (2 bytes)."""
    return (BM + 4 * BN) * head_dim * 2


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise ConfigError(f"attention_prefill: {what}")


class PrefillKernel:
    """Compiled kernel for one (n_heads, n_kv_heads, head_dim, dtype, max_seq_len); call `launch` per layer."""

    def __init__(self, n_heads: int, n_kv_heads: int, head_dim: int, dtype: str, max_seq_len: int):
        _check(supported(head_dim), f"head_dim must be one of {HEAD_DIMS}, got {head_dim}")
        _check(dtype in ("float16", "bfloat16"), f"dtype must be float16 or bfloat16, got {dtype!r}")
        _check(n_heads % n_kv_heads == 0, f"n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.dtype, self.max_seq_len = dtype, int(max_seq_len)
        defines = {"HD": head_dim, "N_REP": n_heads // n_kv_heads}
        self.fn = get_function(_SRC, "attention_prefill", defines, dtype=dtype)
        self.fn_split = get_function(_SRC, "attention_prefill_split", defines, dtype=dtype)
        self.smem = smem_bytes(head_dim)
        self.device = device_id()  # launches run here: the limit below is raised on this device only
        raise_smem_limit(self.fn, self.smem)
        raise_smem_limit(self.fn_split, self.smem)
        self._q_shape = {}  # M -> (q/att shape, grid); launches stay cheap
        self._kv_shape = (self.max_seq_len, n_kv_heads, head_dim)
        import cupy as cp  # key-split scratch at fixed addresses (graphs capture them); tickets zero between launches
        n_part, n_cnt = split_scratch(n_heads, head_dim)
        self.part = cp.empty(n_part, dtype=cp.float32)
        self.cnt = cp.zeros(n_cnt, dtype=cp.uint32)

    @property
    def nbytes(self) -> int:
        return self.part.nbytes + self.cnt.nbytes

    @classmethod
    def for_config(cls, config, dtype: str, max_seq_len: int) -> "PrefillKernel":
        return cls(config.n_heads, config.n_kv_heads, config.head_dim, dtype, max_seq_len)

    def _shapes(self, M: int):
        hit = self._q_shape.get(M)
        if hit is None:
            _check(M >= 1, f"no query rows (M = {M})")
            tiles = -(-M // BM)
            hit = self._q_shape[M] = ((M, self.n_heads * self.head_dim),
                                      (self.n_heads, tiles, n_split(self.n_heads, tiles)))
        return hit

    def launch(self, att, q, k, v, pos, n_tokens) -> None:
        """att, q T[M, H*Dh]; k, v T[S, KVH, Dh] contiguous layer views; pos, n_tokens int32[1] on the device."""
        M = q.shape[0]
        shape, grid = self._shapes(M)
        _check(q.shape == shape and att.shape == shape, f"q/att must be [{M}, {shape[1]}], got {q.shape}/{att.shape}")
        _check(q.dtype.itemsize == 2 and att.dtype.itemsize == 2, "q/att must have a 2-byte storage dtype")
        _check(k.shape == self._kv_shape and v.shape == self._kv_shape and k.dtype.itemsize == 2
               and v.dtype.itemsize == 2, f"k/v must be 2-byte {list(self._kv_shape)}, got {k.shape}/{v.shape}")
        _check(q.flags.c_contiguous and att.flags.c_contiguous and k.flags.c_contiguous and v.flags.c_contiguous
               and not ((q.data.ptr | att.data.ptr | k.data.ptr | v.data.ptr) & 15),
               "q/att/k/v must be contiguous and 16-byte aligned")
        _check(pos.dtype == np.int32 and n_tokens.dtype == np.int32, "pos/n_tokens must be int32 device scalars")
        args = (att, q, k, v, pos, n_tokens, np.int32(M), np.int32(self.max_seq_len))
        if grid[2] > 1:
            self.fn_split(grid, (NTHREADS,), args + (self.part, self.cnt), shared_mem=self.smem)
        else:
            self.fn(grid, (NTHREADS,), args, shared_mem=self.smem)
