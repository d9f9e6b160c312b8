"""GEMV launch plans (pure Python, no GPU): frozen (warps, unroll, ksplit) rules per weight format, and the chunking
of the partial sums of squares (ss) that every residual GEMV writes for the next fused RMSNorm (kernels/gemv.cu,
kernels/gemv_quant.cu).

A plan is a frozen dataclass chosen per (weight format, device): `plan_for(fmt)`. A new weight format is a kernel
body plus an entry in `QUANT_PLANS`. The ss chunking (`norm_chunk`) is one rule for the whole model, taken from the
16-bit plan: a producer of x of any format writes it and a consumer of any format reads it.

The 16-bit plan is built from the module constants below at each call, so that the existing sweeps
(scripts/bench_kernels.py) and GPU tests that set them keep working; new code passes `GemvPlan` values instead.
Figures: H100 sweeps of scripts/bench_kernels.py --sweep (benchmarks/results/kernels_*.json) and
benchmarks/results/gemv_sweep_*_2026-11-23.json.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .env import env_int

GEMV_WARPS = 8      # warps per block; each row pair is computed by GEMV_KSPLIT warps (see kernels/gemv.cu)
GEMV_UNROLL = 2     # 16-byte weight loads in flight per row per lane
GEMV_XSMEM = 0      # 1: stage the activation in shared memory; 0: read it through L1
GEMV_KSPLIT = None  # None: chosen by the number of row pairs (ksplit rule)
# (warps, unroll, ksplit) overrides from the H100 sweeps (benchmarks/results/gemv_sweep_*_2026-11-23.json).
# Wide: the big matrices whose GEMV writes no ss (wqkv, w13, LM head, plain or fused-norm): 16 warps, one
# 16-byte load per row per lane, 8 warps per row pair: wqkv+norm 35.9 -> 34.7 us, w13+norm 61.3 -> 59.1,
# logits+norm 87.2 -> 84.9. Long K (w2, K = 11008): 32.7 vs 33.5 us. A residual GEMV's block shape sets the
# ss chunking (norm_chunk), so its override keeps the default's rows per block (checked in gemv_config).
# From 2048 row pairs (was 4096): the wqkv of a 7B / 13B TP2 GPU (3072 / 3840 pairs) too. H200 x2, one process
# each, same call (benchmarks/results/final6_2026-11-30f/): 7B TP2 2.18 -> 2.11 ms/token, 13B TP2 3.82 -> 3.83;
# no one-GPU LLaMA-2 matrix has 2048-4095 pairs in a non-residual GEMV.
GEMV_WIDE = (16, 1, 8)
GEMV_WIDE_MIN_PAIRS = 2048
GEMV_LONG_K = (16, 1, 4)
GEMV_LONG_K_MIN = 8192
# Per-shape overrides, (kernel, K, row pairs) -> (warps, unroll, ksplit), for shapes the rules above serve worst:
# the per-GPU GEMVs of 7B / 13B under TP2 (wo / w2 are f32 partial sums through the LM-head kernel). H200 sweep of
# 10 launch shapes (benchmarks/results/sweep_tp_gemv_2026-11-30.json, us per launch, rules -> override): 7B wo
# 5.54 -> 4.62; 13B wqkv 22.05 -> 20.93, w13 35.53 -> 34.87, wo 8.56 -> 7.26, w2 18.75 -> 17.44. No one-GPU
# LLaMA-2 shape is among them.
GEMV_SHAPES = {("gemv_logits", 2048, 2048): (8, 1, 4),
               ("gemv_qkv_rope_norm", 5120, 3840): (8, 1, 4), ("gemv_silu_norm", 5120, 6912): (8, 1, 4),
               ("gemv_logits", 2560, 2560): (8, 2, 2), ("gemv_logits", 6912, 2560): (16, 1, 16),
               ("gemv_residual_ss", 4096, 2048): (16, 1, 4)}
# 7B wo (gemv_residual_ss, K 4096, 2048 pairs): 16 warps, 4 a pair, unroll 1, instead of the rule's (8, 2, 2): the
# same 4 pairs (8 rows) a block, so the same ss chunking (H200, 7B fp16 decode one process each,
# benchmarks/results/fourteenth_2026-11-30/s22m_wo, s22n_wo: 3.29 vs 3.31 ms/token at prompt 10 in one call;
# 3.50 / 3.51 / 3.50 vs 3.53 / 3.52 / 3.51 at 10 and 3.55 / 3.56 / 3.55 vs 3.56 at 500 in the next, alternating);
# the step's wo ran at 9.55 us a call against 7.9 for its bytes (s22l_anatomy)


@dataclass(frozen=True)
class GemvPlan:
    """Launch rules of the 16-bit GEMVs (kernels/gemv.cu)."""
    warps: int = GEMV_WARPS
    unroll: int = GEMV_UNROLL
    xsmem: int = GEMV_XSMEM
    ksplit: int | None = GEMV_KSPLIT
    wide: tuple = GEMV_WIDE
    wide_min_pairs: int = GEMV_WIDE_MIN_PAIRS
    long_k: tuple = GEMV_LONG_K
    long_k_min: int = GEMV_LONG_K_MIN
    shapes: tuple = tuple(sorted(GEMV_SHAPES.items()))  # ((kernel, K, n_pairs), (warps, unroll, ksplit)) pairs

    def ksplit_for(self, n_pairs: int) -> int:
        """Warps per row pair: 2 on every 7B shape (the sweep's best: +3% on wqkv, +10% on wo and w2 over 1);
        4 for small matrices, whose pairs alone leave SMs short of warps."""
        if self.ksplit is not None:
            return self.ksplit
        return min(2 if n_pairs >= 1024 else 4, self.warps)

    def norm_chunk(self, D: int) -> int:
        """Rows of x per partial sum of squares: the rows of one gemv_residual_ss block for N = D."""
        return 2 * (self.warps // self.ksplit_for((D + 1) // 2))

    def gemv_config(self, kernel: str, K: int, n_pairs: int, tiled: bool = False) -> tuple[int, int, int]:
        """(warps, unroll, ksplit) of one launch; an explicit ksplit (tests, sweeps) applies to every kernel."""
        default = (self.warps, self.unroll, self.ksplit_for(n_pairs))
        if self.ksplit is not None:
            return default
        for key, cfg in self.shapes:
            if key == (kernel, K, n_pairs):
                return cfg
        if kernel.startswith("gemv_residual"):  # long K: measured on the ss form only (the one decode runs)
            w, _, ks = self.long_k
            same_chunk = w // ks == default[0] // default[2]
            long_k = kernel == "gemv_residual_ss" and K >= self.long_k_min and n_pairs >= 1024
            return self.long_k if long_k and same_chunk else default
        return self.wide if n_pairs >= self.wide_min_pairs else default


@dataclass(frozen=True)
class QuantPlan:
    """Launch rules of the quantized GEMVs (kernels/gemv_quant.cu): each block stages the whole activation, so
    blocks are wide (many rows share one staging); ksplit rises only where row pairs are few."""
    fmt: str
    warps: int = 16
    unroll: int = 2
    ksplit: int | None = None  # None: the rule below; a number (sweeps): every kernel
    hacc: int = 0              # 1: half staging, half2 products per weight vector (kernels/gemv_quant_h2.cuh)
    persist: int = 0           # 1: no more blocks than fit on the GPU at once, each looping over row-pair blocks
    max_blocks: int = 0        # > 0: at most this many blocks in all (tests: forces the loop on small matrices)
    mma: int = 0               # 1: tensor-core tiles of 8 row pairs (kernels/gemv_quant_mma.cuh) on matrices of at
    mma_min_pairs: int = 4096  # least this many row pairs (smaller ones keep the path above); ksplit: warps a tile
    mma_shapes: tuple = ()     # ((kernel, K, n_pairs), (warps, unroll, warps a tile)): tiles, with that config,
    #                            for these shapes whatever their row pairs (below mma_min_pairs too)
    mma_waves: int = 0         # 1 (int4's plan): mma_config by wave fill (waves_config) where <= 2 waves serve
    sms: int = 132             # SMs the wave rule counts (H200 / H100 SXM)
    pfs: int = 0               # > 0: L2 prefetch of the weights this many loop steps ahead of the loads
    pipe: int = 0              # 1: the pipelined row-pair loop (kernels/gemv_quant_pipe.cuh; fp8's default)
    tiled_min_k: int = 5120    # int4 tiles of K >= this read tile-contiguous weights (gpu/quant_tiles.py)
    tight: int = 1             # 1: tiles get the shared memory their half staging needs where they take it (0:
    #                            the fp32 size of their fallback, as before 2026-11-30's fifth session)

    def grid(self, n_blocks: int, resident: int) -> int:
        """Blocks of one launch: one per row-pair block, or (persist) at most `resident` (blocks that fit on the
        whole GPU at once), each looping (gemv_quant_pairs.cuh qgemv_pairs): the activation is staged once per block,
        and the next pair's first loads fly during an epilogue instead of waiting for a new block."""
        cap = [c for c in (self.max_blocks, resident if self.persist else 0) if c > 0]
        return min([n_blocks] + cap)

    def gemv_config(self, kernel: str, K: int, n_pairs: int, tiled: bool = False) -> tuple[int, int, int]:
        """1 warp per row pair on wqkv / w13 / the LM head (>= 4096 pairs on 7B), 2 on wo / w2 (2048 pairs: 256
        blocks instead of 128 on 132 SMs), 4 below; 16 warps, 8 on w13-sized matrices (>= 8192 pairs). H200 sweep
        (benchmarks/results/quant_gemv_sweep_2026-11-30.json): w13+norm 28.5 -> 26.5 us (int4, fp32 products),
        26.9 -> 25.5 (int4, half2), 27.5 -> 26.4 (fp8); elsewhere the defaults were within 0.5 us of the best."""
        if tiled or self.use_mma(n_pairs, kernel, K):  # tiled: a tile-contiguous weight (gpu/quant_tiles.py)
            return dict(self.mma_shapes).get((kernel, K, n_pairs)) or self.mma_config(n_pairs)
        ks = self.ksplit or (1 if n_pairs >= 4096 else (2 if n_pairs >= 1024 else 4))
        warps = self.warps if self.ksplit or n_pairs < 8192 else min(self.warps, 8)
        return warps, self.unroll, min(ks, warps)

    def use_mma(self, n_pairs: int, kernel: str | None = None, K: int | None = None) -> bool:
        """Tiles: from mma_min_pairs row pairs, or for a (kernel, K, n_pairs) of mma_shapes."""
        return bool(self.mma) and (n_pairs >= self.mma_min_pairs or (kernel, K, n_pairs) in dict(self.mma_shapes))

    def waves_config(self, n_pairs: int) -> tuple[int, int, int] | None:
        """(warps, unroll, warps a tile) whose blocks best fill at most 2 waves of the GPU, or None where no config
        does. Blocks an SM: 3 of 8 warps (__launch_bounds__(256, 3)), 2 of 16 (64 registers); fill = waves /
        ceil(waves), compared in steps of 0.05, then fewer waves, then fewer warps a tile (each adds a reduction).
        It picks the best measured config of every tile sweep so far (eleventh session, s19c / s19f: 7B wqkv,
        w13, LM head; 13B wqkv, wo, w2; 70B wqkv), where the fixed rule below misses 13B's wqkv (21.09 -> 16.67 us)."""
        tiles, best = -(-n_pairs // 8), None
        for warps, bps in ((8, 3), (16, 2)):
            for ms in (2, 4, 8):
                waves = -(-tiles // (warps // ms)) / (self.sms * bps)
                if waves > 2:
                    continue
                key = (-int(waves / math.ceil(waves) * 20 + 1e-9), math.ceil(waves), ms)
                if best is None or key < best[0]:
                    best = (key, (warps, self.unroll, ms))
        return None if best is None else best[1]

    def mma_config(self, n_pairs: int) -> tuple[int, int, int]:
        """(warps, unroll, warps per 8-pair tile). H200 sweep (quant_gemv_sweep_mma_2026-11-30.json, int4): wqkv
        (768 tiles) 8 warps, 4 a tile: 14.8 us (half2 path 15.6); w13 (1376 tiles) 8, 2: 22.9 (25.6); LM head
        (2000 tiles) 16, 2: 29.6 (34.4); wo / w2 (256 tiles) were no faster than the half2 path."""
        if self.mma_waves and not self.ksplit:
            cfg = self.waves_config(n_pairs)
            if cfg is not None:
                return cfg
        tiles = -(-n_pairs // 8)
        ms = self.ksplit or (2 if tiles >= 1024 else (4 if tiles >= 512 else 8))
        warps = self.warps if self.ksplit or tiles >= 1536 else min(self.warps, 8)
        return warps, self.unroll, min(ms, warps)

    def pairs_per_block(self, warps: int, ks: int, mma: bool) -> int:
        """Row pairs a block of this launch serves; mma: it takes the tiles (use_mma of its kernel, K, row pairs)."""
        return 8 * warps // ks if mma else warps // ks

    def smem_bytes(self, K: int, n_pairs: int | None = None, group: int | None = None, mma: bool | None = None) -> int:
        """Dynamic shared memory: xs f32 [round_up(K, 32)] plus csum f32 [K / 32] (int4); hacc: xh half
        [round_up(K, 64)] (whole 128-byte lines: the chunk swizzle stays within a line). Tiles (use_mma): where
        they run (qm_ok in kernels/gemv_quant_tiles.cuh: K and int4's `group` multiples of the columns of an
        iteration) xh half [K] + the iteration blocks' float2 [K / cols]; else (or group None: not known) the
        fp32 size, which their fallback for awkward K stages. The fp32 size on 70B's w2 (K 28672) is 118 KB: one
        block an SM instead of three."""
        if mma is None:
            mma = self.use_mma(n_pairs) if n_pairs is not None else bool(self.mma)
        if self.hacc and not mma:
            return 2 * ((K + 63) // 64 * 64)
        cols = 128 if self.fmt == "int4" else 64   # QM_COLS = 4 x values per 16-byte vector
        if mma and self.tight and group is not None and K % cols == 0 and (self.fmt != "int4" or group % cols == 0):
            return 2 * K + 8 * (K // cols)
        return 4 * ((K + 31) // 32 * 32 + (K // 32 if self.fmt == "int4" else 0))


# half2 products (hacc) where the H200 A/B favoured them (scripts/device_hacc.sh, 7B decode, one process per path):
# int4 2.46 -> 2.36 ms/token, int8 2.64 -> 2.45; fp8 2.31 -> 2.39 (its hardware e4m3 convert already makes the
# fp32 path cheap), so fp8 keeps fp32 products.
# persist stays off: looping blocks (staging once per block, the next pair's loads in flight during an epilogue)
# changed nothing on the H200 (scripts/device_persist.sh, 7B decode int4 2.49 / 2.48 ms, int8 2.41 / 2.42, fp8
# 2.31 / 2.41 ms/token without / with; the sweep's per-matrix figures within noise): block turnover and staging
# are not what holds these GEMVs at 50-75% of the copy rate.
# int4 takes the tensor-core tiles on wqkv, w13 and the LM head (>= 4096 row pairs; the half2 path elsewhere): 7B
# decode 2.05 -> 1.92 ms/token with PDL (scripts/device_pdl.sh, device_pfs.sh); for int8 / fp8 the tiles were
# slower on every matrix (quant_gemv_sweep_mma_2026-11-30.json). L2 prefetch ahead (pfs) was slower or equal
# everywhere (device_pfs.sh: int4 tiles 1.91 -> 2.08 / 2.14 ms with pfs 2 / 4, int8 2.26 -> 2.49): off.
# The pipelined row-pair loop (cursors set once per pair, the next step's loads before this step's products): fp8
# 2.22 / 2.36 -> 2.08 / 2.21 ms/token at prompt 10 / 500 (scripts/device_pipe.sh; 2.07 / 2.21 in device_last4.sh,
# kernels SASS-identical to these); int4 with it (and the tiles reworked alike, branch gemv-pipe) 1.84 -> 1.93 ms,
# so int4 keeps the other loop. int8 was no faster with it then; under today's prologue it is (thirteenth session,
# benchmarks/results/thirteenth_2026-11-30/s21i, s21j: one process per plan, 7B int8 2.21-2.22 -> 2.13 ms/token at
# prompt 10), so int8 takes it, with its half2 products.
# int4 tiles from 6144 row pairs: 70B's wqkv (5120 pairs), wo and w2 (4096) run faster on the half2 path (H200,
# quant_gemv_sweep_tight_70b_2026-11-30.json: 21.7 / 15.0 / 42.3 us against 22.5 / 18.4 / 54.3 with the tiles);
# the 7B and 13B matrices that take the tiles have >= 6144 pairs (7B wqkv 6144, w13 11008; 13B wqkv 7680).
# With the cursor loop (eleventh session) the tiles also win on some matrices below 6144 pairs, K split over 8 or 4
# of a tile's warps (bench_quant --sweep small, H200, benchmarks/results/eleventh_2026-11-30/s19c; us, half2 ->
# tiles): 13B wo 12.75 -> 9.37 and w2 23.72 -> 20.41 (8 warps, 8 a tile), 70B wqkv 22.10 -> 20.36 (8, 4); 7B wo / w2
# (6.01 / 12.28 vs 7.03 / 16.95 at 8, 8) and 70B wo (15.52 / 15.38 at 16, 8) and w2 (43.40 / 45.88) keep the half2
# path. (That sweep's 16-warps-a-tile rows were faster only because such a block wrote nothing: its pairs filled
# no epilogue round; kernels/gemv_quant_mma.cuh now refuses more than 8 warps a tile at compile time.)
# mma_waves=1 (twelfth session, benchmarks/results/twelfth_2026-11-30/s20c): 13B int4 decode 3.39 / 3.62 -> 3.21 /
# 3.45 ms/token at prompt 10 / 500 (one process each, same call); the 7B and one-GPU 70B configs are the same either
# way; under TP2 it moves 70B's LM head and 13B's w13 (s20d).
# 70B's wo / w2 (one GPU) take the tiles since their words are tile-contiguous (gpu/quant_tiles.py; twentieth session,
# s28g, the tiled access pattern on the tiles (16 warps, 8 a tile) against the half2 path: wo 15.5 -> 13.9 us, w2
# 43.5 -> 39.6; 8 warps a tile of 8 were slower, 19.7 / 52.2); 7B's stay on half2 (wo 6.6, w2 13.9 at best on the
# tiles against 6.0 / 11.8).
INT4_TILE_SHAPES = ((("qgemv_residual_ss", 5120, 2560), (8, 2, 8)), (("qgemv_residual_ss", 13824, 2560), (8, 2, 8)),
                    (("qgemv_qkv_rope_norm", 8192, 5120), (8, 2, 4)), (("qgemv_residual_ss", 8192, 4096), (16, 2, 8)),
                    (("qgemv_residual_ss", 28672, 4096), (16, 2, 8)))
QUANT_PLANS = {"fp8": QuantPlan("fp8", pipe=1), "int8": QuantPlan("int8", hacc=1, pipe=1),
               "int4": QuantPlan("int4", hacc=1, mma=1, mma_min_pairs=6144, mma_shapes=INT4_TILE_SHAPES,
                                 mma_waves=1)}


def fp16_plan() -> GemvPlan:
    """The 16-bit plan from the module constants (see the module docstring)."""
    return GemvPlan(GEMV_WARPS, GEMV_UNROLL, GEMV_XSMEM, GEMV_KSPLIT, GEMV_WIDE, GEMV_WIDE_MIN_PAIRS, GEMV_LONG_K,
                    GEMV_LONG_K_MIN, tuple(sorted(GEMV_SHAPES.items())))


def plan_for(fmt: str = "fp16", device=None):
    """The frozen plan of one weight format ("fp16" covers both 16-bit storage dtypes). `device` is reserved for
    per-architecture entries (today's rules come from H100 sweeps and are used on every device)."""
    if fmt in ("fp16", "float16", "bfloat16", None):
        return fp16_plan()
    try:
        return QUANT_PLANS[fmt]
    except KeyError:
        raise ValueError(f"no GEMV plan for weight format {fmt!r}; known: fp16, {', '.join(QUANT_PLANS)}") from None


# ---- the 16-bit rules as functions (the ops API and the existing tests use these) ----------------------------
def gemv_ksplit(n_pairs: int) -> int:
    return fp16_plan().ksplit_for(n_pairs)


def norm_chunk(D: int) -> int:
    """Rows of x per partial sum of squares, for every producer of x (16-bit or quantized)."""
    return fp16_plan().norm_chunk(D)


def norm_partials(D: int) -> int:
    """Length of the ss vector that producers write and norm_* ops read (size Scratch.ss to >= (D + 1) // 2)."""
    return -(-D // norm_chunk(D))


def gemv_config(kernel: str, K: int, n_pairs: int) -> tuple[int, int, int]:
    return fp16_plan().gemv_config(kernel, K, n_pairs)


EARLY_ENV = "CUGRAPHLLM_GEMV_EARLY"


def gemv_early() -> int:
    """kernels/gemv.cu GEMV_EARLY from env CUGRAPHLLM_GEMV_EARLY, bits: 1 the residual epilogues' input (old x),
    2 the qkv epilogue's (pos, n_tokens, RoPE cos/sin), loaded right after pdl_enter with the weight stream; a clear
    bit loads them after it, as before. Default 1 (unset / blank): residual only (H200 A/B in kernels/gemv.cu);
    anything but 0-3 a one-line ConfigError. Read at each launch: part of ops._fn's cache key."""
    return env_int(EARLY_ENV, 1, 0, 3)
