"""The tile-contiguous layout of int4 weights on one GPU (QuantLinear.tiles; kernels/gemv_quant_tiles.cuh
QG_TILED). The decode tiles read a tile of 8 row pairs 16 bytes a lane: lane (g, t) vector t of iteration it (128
columns) of its pair's rows r0 and r1. In the row-major layout of quant/formats.py one warp load then touches 8
rows x 64 bytes; here the 64 vectors of (tile T, iteration it) are contiguous, r0's then r1's:

    vector ((T * n_it + it) * 2 + h) * 32 + 4 g + t  =  words 4 t .. 4 t + 3 of columns [128 it, 128 it + 128)
    of row r_h of pair 8 T + g, where pairing 1 (ADJACENT: qkv, residual, logits kernels) has r_h = 2 p + h and
    pairing 2 (HALVES: the w13 SiLU kernel) r_h = p + h N / 2.

So one warp load reads 512 contiguous bytes. Loads alone in the tiles' pattern (scripts/pitch_probe.py, H200,
twentieth session, s28b): 70B w13 66.1 -> 54.1 us (read 52.9), 13B w13 20.8 -> 17.9; padding the rows to another
pitch did not help (s28b). The layout is a permutation of qweight's words (same bytes); scales and zeros stay
row-major. Prefill reads it through the wgmma kernel (a 5-D tensor map) or the dequantizing slab path.

Only matrices the decode step runs on the tiles (gemv_plan: use_mma of the kernel that consumes them) with K and
the group a multiple of 128, K >= QuantPlan.tiled_min_k and whole tiles are tiled; CUGRAPHLLM_QG_TILED=0 keeps
every matrix row-major. One process each (s28d): 13B int4 decode 3.14 / 3.38 -> 2.80 / 3.04 ms/token at prompt
10 / 500, TTFT at 500 28.96 -> 29.55 ms; 7B's (K 4096) decode unchanged (1.66 / 1.79) while its TTFT at 500 went
12.14 -> 12.51, hence tiled_min_k 5120.
"""
from __future__ import annotations

import dataclasses

from ..quant.formats import QuantLinear
from . import gemv_plan
from .cuda_kernels import env_bit

TILED_ENV = "CUGRAPHLLM_QG_TILED"
ADJACENT, HALVES = 1, 2
COLS = 128   # columns a tile iteration (int4 QM_COLS)
# LayerWeights / Weights field -> (decode kernel that consumes it, its row pairing)
FIELDS = {"wqkv": ("qgemv_qkv_rope_norm", ADJACENT), "wo": ("qgemv_residual_ss", ADJACENT),
          "w13": ("qgemv_silu_norm", HALVES), "w2": ("qgemv_residual_ss", ADJACENT),
          "output": ("qgemv_logits_norm", ADJACENT)}


def _split(q, pairing: int):
    """q [N, K / 8] words -> a view [.., n_it, 4, 4] whose leading axes are (T, g, h) or (h, T, g)."""
    N, W = q.shape
    n_it = W // 16
    if pairing == ADJACENT:
        return q.reshape(N // 16, 8, 2, n_it, 4, 4), (0, 3, 2, 1, 4, 5)   # [T, g, h, it, t, w] -> [T, it, h, g, ..]
    return q.reshape(2, N // 16, 8, n_it, 4, 4), (1, 3, 0, 2, 4, 5)       # [h, T, g, it, t, w] -> [T, it, h, g, ..]


def tile_qweight(q, pairing: int):
    """Row-major int4 words uint32 [N, K / 8] (NumPy or CuPy) -> a new array of the same shape, tile-contiguous."""
    v, axes = _split(q, pairing)
    return v.transpose(axes).copy().reshape(q.shape)


def untile_qweight(q, pairing: int):
    """The inverse of tile_qweight."""
    N, W = q.shape
    n_it = W // 16
    shape = (N // 16, n_it, 2, 8, 4, 4)
    _, axes = _split(q, pairing)
    inv = tuple(axes.index(i) for i in range(6))
    v = q.reshape(shape).transpose(inv).copy()
    return v.reshape(q.shape)


def pairing_for(w, field: str) -> int:
    """The pairing w would be tiled with as `field` on one GPU, or 0 where it stays row-major."""
    if not isinstance(w, QuantLinear) or w.fmt != "int4" or w.tiles:
        return 0
    return shape_pairing(field, *w.shape, int(w.group_size))


def shape_pairing(field: str, N: int, K: int, group: int) -> int:
    """pairing_for of a row-major int4 [N, K] matrix of this group size as `field`."""
    if field not in FIELDS:
        return 0
    kernel, pairing = FIELDS[field]
    plan = gemv_plan.plan_for("int4")
    if N % 16 or K % COLS or group % COLS or K < plan.tiled_min_k:
        return 0
    return pairing if plan.use_mma(N // 2, kernel, K) else 0


def tiled(w: QuantLinear, pairing: int) -> QuantLinear:
    """w with its words tile-contiguous (a new qweight; the old one is freed with the last reference)."""
    return dataclasses.replace(w, qweight=tile_qweight(w.qweight, pairing), tiles=pairing)


def engine_layout(w, field: str):
    """w as the one-GPU engine holds it as `field`: tiled where pairing_for picks it and CUGRAPHLLM_QG_TILED is not
    0, else w itself (the benches use this too)."""
    p = pairing_for(w, field) if env_bit(TILED_ENV) else 0
    return tiled(w, p) if p else w


def tile_weights(weights) -> int:
    """Tiles, in place, every matrix of device Weights that engine_layout picks; returns how many. One matrix at a
    time: the transient copy is one matrix."""
    n = 0
    for lw in weights.layers:
        for field in ("wqkv", "wo", "w13", "w2"):
            w = getattr(lw, field)
            setattr(lw, field, engine_layout(w, field))
            n += getattr(lw, field) is not w
    out = weights.output
    weights.output = engine_layout(out, "output")
    return n + (weights.output is not out)
