"""Attention of a short prefill (kernels/attention_short.cu): at most MAX_ROWS query rows ending within MAX_KEYS
cached keys, the first step of a short prompt. One memory round trip a 32-key chunk, where attention_prefill's
tensor-core tiles take several; the twenty-third session measured the separate prefill attention at 0.16 ms of
the 7B 16-row step at position 0 (benchmarks/results/twentythird_2026-12-02/s31d, knockouts).

The host knows each prefill's position, so the runtime captures a second graph a short bucket,
("prefill_short", rows, greedy) (gpu/runtime.py), whose forward passes short=True to Attention.prefill; steps
past MAX_KEYS replay the ordinary graph.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import BackendError

# CUGRAPHLLM_SHORT_ATTN=0: attention_prefill at every length (A/B)
ENABLED = os.environ.get("CUGRAPHLLM_SHORT_ATTN", "1") != "0"
MAX_ROWS = 16     # the prefill bucket of prompts up to 16 tokens
MAX_KEYS = 64     # pos + rows at most: two 32-key chunks, each one round trip
HD_MAX = 128      # kernels/attention_short.cu AS_HDMAX
NWARPS = 4        # warps a block, two query rows each


def supported(n_heads: int, n_kv_heads: int, head_dim: int) -> bool:
    return ENABLED and head_dim % 8 == 0 and head_dim <= HD_MAX and n_heads % n_kv_heads == 0


def engine_ok(config) -> bool:
    """Whether a one-GPU engine captures the short prefill graphs."""
    return supported(config.n_heads, config.n_kv_heads, config.head_dim)


def short(rows: int, keys: int) -> bool:
    """A prefill step of `rows` (its bucket) ending at `keys` cached positions takes the short kernel."""
    return 1 < rows <= MAX_ROWS and keys <= MAX_KEYS


def launch(att, q, k, v, pos, n_tokens) -> None:
    """att T [M, D] = causal attention of q T [M, D] (n_tokens[0] real rows at pos[0], the rest zero) over the
    layer's cache k, v T [S, KVH, hd]."""
    import cupy as cp
    from .cuda_kernels import get_function
    M, D = q.shape
    S, KVH, hd = k.shape
    H = D // hd
    ok = (att.shape == q.shape and att.dtype == q.dtype == k.dtype == v.dtype and v.shape == k.shape
          and D == H * hd and M <= MAX_ROWS and supported(H, KVH, hd)
          and all(a.flags.c_contiguous and a.data.ptr % 16 == 0 for a in (att, q, k, v)))
    if not ok:
        raise BackendError(f"attention_short: att{att.shape}, q{q.shape}, cache{k.shape} (<= {MAX_ROWS} rows, "
                           f"head_dim % 8 == 0 and <= {HD_MAX}, contiguous and 16-byte aligned)")
    R = H // KVH
    fn = get_function("attention_short.cu", "attention_short", {"NWARPS": NWARPS}, dtype=q.dtype)
    grid = (KVH, -(-R * M // (2 * NWARPS)))
    fn(grid, (32 * NWARPS,), (att, q, k, v, pos, n_tokens, np.int32(M), np.int32(D), np.int32(KVH * hd),
                              np.int32(hd), np.int32(R), np.int32(S)), stream=cp.cuda.get_current_stream())
