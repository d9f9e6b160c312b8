"""GEMV launch plan (pure Python, no GPU): (warps, unroll, ksplit) per kernel and shape, and the chunking of the
partial sums of squares (ss) that the residual GEMVs write for the next fused RMSNorm (kernels/gemv.cu).

gpu/ops.py reads these module attributes at every launch, so tests and sweeps set them here (GEMV_KSPLIT not None
forces one configuration on every kernel). Figures: H100 sweeps of scripts/bench_kernels.py --sweep
(benchmarks/results/kernels_*.json) and benchmarks/results/gemv_sweep_*_2026-11-23.json.
"""
from __future__ import annotations

GEMV_WARPS = 8      # warps per block; each row pair is computed by GEMV_KSPLIT warps (see kernels/gemv.cu)
GEMV_UNROLL = 2     # 16-byte weight loads in flight per row per lane
GEMV_XSMEM = 0      # 1: stage the activation in shared memory; 0: read it through L1
GEMV_KSPLIT = None  # None: chosen by the number of row pairs (gemv_ksplit)
# (warps, unroll, ksplit) overrides from the H100 sweeps (benchmarks/results/gemv_sweep_*_2026-11-23.json).
# Wide: the big matrices whose GEMV writes no ss (wqkv, w13, LM head, plain or fused-norm): 16 warps, one
# 16-byte load per row per lane, 8 warps per row pair: wqkv+norm 35.9 -> 34.7 us, w13+norm 61.3 -> 59.1,
# logits+norm 87.2 -> 84.9. Long K (w2, K = 11008): 32.7 vs 33.5 us. A residual GEMV's block shape sets the
# ss chunking (norm_chunk), so its override keeps the default's rows per block (checked in gemv_config).
GEMV_WIDE = (16, 1, 8)
GEMV_WIDE_MIN_PAIRS = 4096
GEMV_LONG_K = (16, 1, 4)
GEMV_LONG_K_MIN = 8192


def gemv_ksplit(n_pairs: int) -> int:
    """Warps per row pair: 2 on every 7B shape (the sweep's best: +3% on wqkv, +10% on wo and w2 over 1);
    4 for small matrices, whose pairs alone leave SMs short of warps."""
    if GEMV_KSPLIT is not None:
        return GEMV_KSPLIT
    ks = 2 if n_pairs >= 1024 else 4
    return min(ks, GEMV_WARPS)


def norm_chunk(D: int) -> int:
    """Rows of x per partial sum of squares: the rows of one gemv_residual_ss block for N = D."""
    return 2 * (GEMV_WARPS // gemv_ksplit((D + 1) // 2))


def norm_partials(D: int) -> int:
    """Length of the ss vector that producers write and norm_* ops read (size Scratch.ss to >= (D + 1) // 2)."""
    return -(-D // norm_chunk(D))


def gemv_config(kernel: str, K: int, n_pairs: int) -> tuple[int, int, int]:
    """(warps, unroll, ksplit) of one GEMV launch; explicit GEMV_KSPLIT (tests, sweeps) applies to every kernel."""
    default = (GEMV_WARPS, GEMV_UNROLL, gemv_ksplit(n_pairs))
    if GEMV_KSPLIT is not None:
        return default
    if kernel.startswith("gemv_residual"):  # long K: measured on the ss form only (the one decode runs)
        w, _, ks = GEMV_LONG_K
        same_chunk = w // ks == default[0] // default[2]
        long_k = kernel == "gemv_residual_ss" and K >= GEMV_LONG_K_MIN and n_pairs >= 1024
        return GEMV_LONG_K if long_k and same_chunk else default
    return GEMV_WIDE if n_pairs >= GEMV_WIDE_MIN_PAIRS else default
