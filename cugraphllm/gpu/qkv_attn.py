"""The short prefill's attention inside its qkv GEMM (kernels/gemm.cu built with QATTN, kernels/qkv_attn.cuh).

A prefill of <= MAX_ROWS rows whose keys are few (pos + rows <= MAX_KEYS, decided by the engine per step, since pos
is on the device) runs qkv + RoPE + KV write + causal attention as one launch a layer: the block that completes
a KV group's q / k / v rows computes that group's attention. That removes the attention kernel and its two
boundaries from each layer of a short prompt's prefill (the twenty-second session measured 0.2-0.28 ms of 32
attentions in the 16-row 7B step, s30a / s30b).

    qkv_rope_attn(att, q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens[, ss, eps])

writes what gemm.qkv_rope writes, plus att T [M, D] as attention_prefill would (padded rows zero). Counters: one
u32 a KV head a device, zero between launches (each group's last block resets its own), allocated outside capture.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import BackendError

# CUGRAPHLLM_QKV_ATTN=0: the separate attention kernel at every length (A/B)
ENABLED = os.environ.get("CUGRAPHLLM_QKV_ATTN", "1") != "0"
MAX_ROWS = 16     # the own GEMM's 16-row bucket (gemm.AUTO_OWN_MAX_M["qkv"])
MAX_KEYS = 256    # pos + rows at most: the group's block walks every key itself (32 a chunk)
HD_MAX = 128      # kernels/qkv_attn.cuh QA_HDMAX
# bench-only knockouts (CUGRAPHLLM_QKV_ATTN_KO; outputs are then wrong): 1 the count without the attention, 2 the
# fused kernel without its tail
KO = int(os.environ.get("CUGRAPHLLM_QKV_ATTN_KO", "0"))
_COUNTERS: dict = {}  # device -> u32 cupy array


def supported(M: int, D: int, K: int, n_kv_heads: int, head_dim: int) -> bool:
    """Shapes the fused kernel takes: the own 16-row GEMM (D == K), head_dim % 8 == 0 and <= HD_MAX, whole
    query groups."""
    return (ENABLED and 1 < M <= MAX_ROWS and D == K and head_dim % 8 == 0 and head_dim <= HD_MAX
            and D % (n_kv_heads * head_dim) == 0 and K % 8 == 0)


def engine_ok(config, weights) -> bool:
    """Whether a one-GPU engine's short prefills take the fused path: 16-bit wqkv in every layer (a QuantLinear
    runs its own prefill path) and shapes `supported` takes at the 16-row bucket."""
    from ..quant.formats import QuantLinear
    return (supported(MAX_ROWS, config.dim, config.dim, config.n_kv_heads, config.head_dim)
            and not any(isinstance(lw.wqkv, QuantLinear) for lw in weights.layers))


def short(rows: int, keys: int) -> bool:
    """A prefill step of `rows` (its bucket) ending at `keys` cached positions takes the fused path."""
    return 1 < rows <= MAX_ROWS and keys <= MAX_KEYS


def counters(n: int):
    """The device's group counters (>= n u32, zero); allocate before capture (state.Scratch does)."""
    import cupy as cp
    from .cuda_kernels import device_id
    dev = device_id()
    c = _COUNTERS.get(dev)
    if c is None or c.size < n:
        if cp.cuda.get_current_stream().is_capturing():
            raise BackendError("qkv_attn: counters needed inside capture: call qkv_attn.counters(n_kv_heads) first")
        c = _COUNTERS[dev] = cp.zeros(max(n, 64), dtype=cp.uint32)  # never freed: graphs keep its address
    return c


def qkv_rope_attn(att, q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, *, ss=None, eps: float = 0.0) -> None:
    """gemm.qkv_rope(q, xn, wqkv, ...) and att T [M, D] = causal attention of the M rows at pos[0] (n_tokens[0] real
    rows, the rest zero) over the cache. With ss: xn = T(x) un-normed (the fused prefill norm)."""
    from . import gemm
    M, K = xn.shape
    D = q.shape[1]
    S, KVH, hd = k_cache.shape
    kvd = KVH * hd
    gemm._check(supported(M, D, K, KVH, hd) and att.shape == (M, D) and att.dtype == q.dtype
                and att.flags.c_contiguous and att.data.ptr % 16 == 0 and k_cache.data.ptr % 16 == 0
                and v_cache.data.ptr % 16 == 0,
                f"qkv_rope_attn: att{att.shape}, q{q.shape}, xn{xn.shape}, cache{k_cache.shape} (M <= {MAX_ROWS}, "
                f"D == K, head_dim % 8 == 0 and <= {HD_MAX}, 16-byte aligned)")
    gemm.qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, impl="own", ss=ss, eps=eps,
                  att=(att, counters(KVH), np.int32(D // (KVH * hd))))
