"""The "tc" path of gemm_quant.py: a tiled tensor-core GEMM that dequantizes the packed weight tile by tile
(kernels/gemm_quant_tc.cu), C[M, N] = a'[M, K] @ W[N, K].T with fp32 accumulation; never a 16-bit copy of W.

Tile configs (CONFIGS, picked by M through CONFIG_BY_M): small M streams each packed weight word once per block
row (one block row when M <= BM) through a deep cp.async ring; large M is a 128 x 128 x 64 block tile. When the
grid has fewer than TARGET_BLOCKS_PER_SM[config] * SMs blocks, K is split over blockIdx.z into f32 partials (at most
MAX_SPLITS, and only while splits * M * N * 4 fits in WS_BYTES), summed in a fixed order by qtc_reduce.
Outputs: "acc" (f32 [M, N] +=, the residual stream), "store" (T [M, N]), "silu" (SiLU*up) and "qkv" (RoPE, q and
the KV cache): the last two fused into the split-K reduction, else through gemm.cu's row epilogues.
Needs: K % 32 == 0 (int4) or K % 16 == 0 (fp8 / int8), 16-byte aligned activations and packed weights.
"""
from __future__ import annotations

import functools

import numpy as np

from . import gemm
from .cuda_kernels import device_id, get_function, raise_smem_limit

BK = 64
# name: (BM, BN, WARPS_M, WARPS_N, STAGES, PIPE). PIPE 2: double-buffered 16-bit W tile, one barrier a k-tile.
# l128w4 / l256 (64 x 64 warp tiles, ~230 registers) and the PIPE 2 configs are alternatives that the bench times;
# CONFIG_BY_M is a guess until the bench says otherwise.
CONFIGS = {"s16": (16, 64, 1, 4, 6, 1), "s32": (32, 64, 2, 2, 6, 1), "m64": (64, 128, 2, 4, 4, 1),
           "l128": (128, 128, 2, 4, 3, 1), "l128w4": (128, 128, 2, 2, 3, 1), "l256": (128, 256, 2, 4, 3, 1),
           "s16d": (16, 64, 1, 4, 6, 2), "m64d": (64, 128, 2, 4, 4, 2), "l128d": (128, 128, 2, 4, 4, 2),
           "s16w": (16, 128, 1, 8, 6, 1)}  # s16w: half the activation re-reads of s16 per weight byte
CONFIG_BY_M = ((16, "s16"), (32, "s32"), (64, "m64"), (1 << 30, "l128"))  # first (max M, config) that fits
# split K while the grid has fewer blocks than this many per SM (about the blocks one SM holds at once)
TARGET_BLOCKS_PER_SM = {"s16": 4, "s32": 4, "m64": 2, "l128": 2, "l128w4": 2, "l256": 1, "s16d": 4, "m64d": 2,
                        "l128d": 2, "s16w": 3}
MAX_SPLITS = 8
WS_BYTES = 16 << 20  # f32 split-K partials (gemm_quant allocates it as buffer "tcws")
_QFMT = {"fp8": 0, "int8": 1, "int4": 2}
_MODE = {"partial": 0, "store": 1, "acc": 2}


def supported(w, a) -> bool:
    """Whether the tc kernel can run this weight and (prepared) activation array."""
    M, K = a.shape
    kmul = 32 if w.fmt == "int4" else 16
    return K % kmul == 0 and a.data.ptr % 16 == 0 and w.qweight.data.ptr % 16 == 0


def config_name(M: int) -> str:
    return next(name for mmax, name in CONFIG_BY_M if M <= mmax)


def smem_bytes(name: str, fmt: str, itemsize: int = 2) -> int:
    """Dynamic shared memory of one block: STAGES * (A tile + packed W tile) + PIPE 16-bit W tiles."""
    bm, bn, _, _, stages, pipe = CONFIGS[name]
    bq_row = 32 if fmt == "int4" else 64
    return stages * (bm * BK * itemsize + bn * bq_row) + pipe * bn * BK * itemsize


def _sm_count() -> int:
    return _sms(device_id())


@functools.lru_cache(maxsize=None)
def _sms(dev: int) -> int:  # keyed by device: a cache of one GPU's figure must not answer for another
    import cupy as cp
    return int(cp.cuda.Device(dev).attributes["MultiProcessorCount"])


def _kernel(name: str, fmt: str, dtype, cfg: str = ""):
    fn = _kernel_cached(name, fmt, getattr(dtype, "name", str(dtype)) == "bfloat16", cfg)
    if cfg:  # the limit is per device (raised on the current one, once): TP ranks launch on several GPUs
        raise_smem_limit(fn, smem_bytes(cfg, fmt))
    return fn


@functools.lru_cache(maxsize=None)
def _kernel_cached(name: str, fmt: str, bf16: bool, cfg: str):
    """The compiled kernel (one RawKernel object serves every device; _kernel raises its smem limit per device)."""
    defines = {"QFMT": _QFMT[fmt]}
    if cfg:
        bm, bn, wm, wn, st, pipe = CONFIGS[cfg]
        defines.update(BM=bm, BN=bn, WARPS_M=wm, WARPS_N=wn, STAGES=st, PIPE=pipe)
    if bf16:
        defines["CG_BF16"] = 1
    return get_function("gemm_quant_tc.cu", name, defines)


def plan(M: int, N: int, K: int, fmt: str, sms: int | None = None) -> tuple:
    """(config name, grid, splits, k-tiles per split) of one call."""
    name = config_name(M)
    bm, bn = CONFIGS[name][:2]
    grid = ((N + bn - 1) // bn, (M + bm - 1) // bm)
    kt = (K + BK - 1) // BK
    sms = _sm_count() if sms is None else sms
    splits = -(-TARGET_BLOCKS_PER_SM[name] * sms // (grid[0] * grid[1]))
    splits = max(1, min(splits, MAX_SPLITS, kt // 2, WS_BYTES // (4 * M * N)))
    kper = -(-kt // splits)
    return name, grid, -(-kt // kper), kper


def warmup(fmt: str, dtype, rows) -> None:
    """Compile (and raise the smem limit of) the kernels these row counts use, outside any capture."""
    for M in rows:
        _kernel("qgemm_tc", fmt, dtype, config_name(M)).attributes
    _kernel("qtc_reduce", fmt, dtype).attributes
    _kernel("qtc_reduce_qkv", fmt, dtype).attributes


def run(out, a, w, out_mode: str, ws, g=None, qkv=()) -> None:
    """a' @ W.T into out: "acc" f32 [M, N] +=, "store" T [M, N] =, "silu" T [M, N / 2] = silu(left) * right,
    "qkv" out = q T [M, D] with qkv = (rope_cs, k_cache, v_cache, pos, n_tokens, (D, kvd, hd, S)) as gemm.qkv_rope.
    Split-K: the partials go to ws (flat f32, >= WS_BYTES) and one reduction kernel applies the epilogue; else
    "silu" / "qkv" go through g (T [M, N] scratch) and gemm.cu's row epilogues. a: prepared (perm / gain applied)."""
    M, K = a.shape
    N = w.shape[0]
    name, grid, splits, kper = plan(M, N, K, w.fmt)
    fused = out_mode in ("acc", "store")
    dst = ws if splits > 1 else out if fused else g
    mode = _MODE["partial"] if splits > 1 else _MODE["acc" if out_mode == "acc" else "store"]
    _gemm(dst, a, w, mode, name, (grid[0], grid[1], splits), kper)
    if splits > 1:
        _reduce(out, ws, w.fmt, a.dtype, out_mode, splits, M, N, qkv)
    elif out_mode == "silu":
        F = N // 2
        gemm._epi_launch("silu_mul_rows", a.dtype, M, F, (out, g, np.int32(F), np.int32(F % 8 == 0)))
    elif out_mode == "qkv":
        rope_cs, kc, vc, pos, ntok, geo = qkv
        D, kvd, hd, S = geo
        vec = D % 8 == 0 and kvd % 8 == 0 and hd % 8 == 0
        gemm._epi_launch("qkv_rope_rows", a.dtype, M, N, (out, g, rope_cs, kc, vc, pos, ntok)
                         + tuple(np.int32(v) for v in geo) + (np.int32(vec),))


def _gemm(dst, a, w, mode: int, name: str, grid: tuple, kper: int) -> None:
    import cupy as cp
    M, K = a.shape
    N = w.shape[0]
    if w.fmt == "int4":
        wargs = (w.qweight, w.scales, w.scales, w.zeros, np.int32(w.group_size))
    else:
        wargs = (w.qweight, w.scales, w.scales, w.scales, np.int32(K))
    threads = 32 * CONFIGS[name][2] * CONFIGS[name][3]
    pairs = np.int32(dst.data.ptr % 8 == 0)  # two columns per store (when N is even) needs an aligned base
    _kernel("qgemm_tc", w.fmt, a.dtype, name)(
        grid, (threads,), (dst, a, *wargs[:4], np.int32(M), np.int32(N), np.int32(K), wargs[4], np.int32(kper),
                           np.int32(mode), pairs),
        shared_mem=smem_bytes(name, w.fmt), stream=cp.cuda.get_current_stream())


def _reduce(out, ws, fmt: str, dtype, out_mode: str, splits: int, M: int, N: int, qkv) -> None:
    """The split-K sum with the epilogue of out_mode, in a fixed order (bitwise reproducible)."""
    import cupy as cp
    stream = cp.cuda.get_current_stream()
    if out_mode == "qkv":
        rope_cs, kc, vc, pos, ntok, geo = qkv
        count = M * N // 2
        args = (out, ws, rope_cs, kc, vc, pos, ntok, np.int32(splits), np.int32(M)) + tuple(np.int32(v) for v in geo)
        _kernel("qtc_reduce_qkv", fmt, dtype)(((count + 255) // 256,), (256,), args, stream=stream)
        return
    F = N // 2
    count, rmode = (M * F, 3) if out_mode == "silu" else (M * N, _MODE[out_mode])
    _kernel("qtc_reduce", fmt, dtype)(((count + 255) // 256,), (256,),
                                      (out, ws, np.int32(splits), np.int32(count), np.int32(rmode), np.int32(F)),
                                      stream=stream)
