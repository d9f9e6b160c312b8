"""The "wg" path of gemm_quant.py: int4 / int8 prefill GEMMs on Hopper wgmma, the weight dequantized in registers
(kernels/gemm_w4_wgmma.cu, compiled for sm_90a; int8 takes the exact integers, its row scale in the epilogue);
never a 16-bit copy of the weight.

    run(out, a, w, mode, ws=None)   mode "acc": out f32 [M, N] += a @ W.T (K split where the grid is small,
                                    the partials parked in ws); mode "store": out T [M, N] = a @ W.T, for gemm.cu's
                                    row epilogues (SiLU*up, RoPE + KV)

Tile configs (scripts/w4_wgmma_probe.py, H200, 2026-12-01, 7B shapes; benchmarks/results/eighteenth_2026-12-01/):
where M is a multiple of 256 from 512 rows, 256-token tiles on 2 consumer warpgroups (wgmma m64n256k16: each
dequantized fragment feeds twice the tokens) for wo / w2 (K split in two when the grid is small and the partials
fit) and for w13 (N >= 16384); otherwise "acc" (wo, w2) 2 warpgroups, 64 tokens a tile and K split in two up to 128
rows, 128 tokens above; "store" (wqkv, w13) 3 warpgroups where the grid is large (N >= 16384 or M > 128), else 2; 64
tokens a tile up to 64 rows. Above 128 rows ("acc") or from 512 ("store") the producer is a whole warpgroup that
hands its registers to the consumers (setmaxnreg). A split K's partials are summed in split order (bit-reproducible):
one split after the other where the grid is resident at once, else parked in gemm_quant's "tcws" (split_sum()).
7B int4 at 512 rows: ~365 us a layer (~356 with the partials added by atomics, CUGRAPHLLM_W4_SPLIT_SUM=atomic; ~411
with the seventeenth session's tiles; fp16 cuBLAS ~305).
CUGRAPHLLM_W4_TILES=0 restores the seventeenth session's rule (A/B); int8 takes int4's rule (its stages hold twice
the weight bytes). Needs: fp16 activations, sm_90 (9.0 exactly: wgmma is sm_90a), 16-byte aligned operands; int4:
K % 32 == 0, a group size that is a power of two >= 32 or the whole row; int8: K % 16 == 0.
CUGRAPHLLM_W4_WGMMA=0 turns the path off (A/B).
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from . import gemm_quant_tc as tc
from . import pdl, tma
from ..errors import BackendError
from .cuda_kernels import device_id, get_function, raise_smem_limit
from .env import env_bit, env_choice

ENV = "CUGRAPHLLM_W4_WGMMA"
SPLIT_TILES = 100           # "acc" grids of at most this many tiles split K in two
WS_BYTES = tc.WS_BYTES      # the split partials' workspace (gemm_quant's "tcws", shared with the tc path)
TICKETS = 1024              # a split grid's tiles at most (one int32 ticket each)
SUM_ENV = "CUGRAPHLLM_W4_SPLIT_SUM"  # how split partials are summed: serial (default), park, atomic (split_sum)
SUMS = ("serial", "park", "atomic")
TILES_ENV = "CUGRAPHLLM_W4_TILES"
SMALL_ENV = "CUGRAPHLLM_W4_SMALL"  # this path at the small row counts too (small())
STAGES = 4
_MODE = {"acc": 0, "store": 1}
_BITS = {"int4": 4, "int8": 8}
_TICKETS: dict = {}


@functools.lru_cache(maxsize=None)
def _sm90a(dev: int) -> bool:
    import cupy as cp
    return int(cp.cuda.Device(dev).compute_capability) == 90


def group(w) -> int:
    """The kernel's GS for w: its group size, or 0 for one group a row (int8: its one scale a row)."""
    K = w.shape[1]
    return 0 if w.fmt == "int8" or w.group_size == K else w.group_size


def small(fmt: str) -> bool:
    """Whether fmt's prefill takes this path at <= gemm_quant.AUTO_OWN_MAX_M rows too (else the own mma.sync
    kernel): CUGRAPHLLM_W4_SMALL unset / blank int4 only, 1 both, 0 neither; a tile-contiguous weight always takes it.
    H200, 7B TTFT at 10 tokens (16 rows), one process each (twentieth session, s28e): int4 5.83 -> 4.80 ms with it,
    int8 3.78 -> 4.55 (at 128 / 500 tokens both within noise)."""
    return env_bit(SMALL_ENV, default=fmt == "int4")


def usable() -> bool:
    """The path is on (CUGRAPHLLM_W4_WGMMA) and the current device is sm_90."""
    return env_bit(ENV) and _sm90a(device_id())


def kernel_key(w) -> tuple:
    """(kernel group size, tiles) of a weight: what warmup's groups name."""
    return group(w), w.tiles


def supported(w, a) -> bool:
    """Whether this path can run int4 / int8 weight w with (prepared) activations a."""
    M, K = a.shape
    g = w.group_size
    fmt_ok = (w.fmt == "int4" and K % 32 == 0 and (g == K or (g >= 32 and g & (g - 1) == 0))
              or w.fmt == "int8" and K % 16 == 0)
    return (fmt_ok and str(a.dtype) == "float16" and a.data.ptr % 16 == 0 and w.qweight.data.ptr % 16 == 0
            and usable())


def config(mode: str, M: int, N: int) -> tuple:
    """(consumer warpgroups, tokens a tile, K splits, producer warpgroup) of one call; CUGRAPHLLM_W4_TILES=0: the
    seventeenth session's rule (A/B)."""
    if not env_bit(TILES_ENV):
        return _config_v1(mode, M, N) + (0,)
    whole = M >= 512 and M % 256 == 0  # 256-token tiles, none of them part empty, at least two a column
    if mode == "acc":
        t256 = -(-N // 128) * (M // 256)
        fits = t256 > SPLIT_TILES or 2 * t256 * 256 * 128 * 4 <= WS_BYTES  # unsplit, or its partials fit
        bt = 256 if whole and fits else 128 if M > 128 else 64
        tiles = -(-N // 128) * -(-M // bt)
        return 2, bt, 2 if tiles <= SPLIT_TILES else 1, int(M > 128)
    if whole and N >= 16384:
        return 2, 256, 1, 1
    return (3 if N >= 16384 or M > 128 else 2), (64 if M <= 64 else 128), 1, int(M >= 512)


def _config_v1(mode: str, M: int, N: int) -> tuple:
    if mode == "acc":
        bt = 64 if M <= 128 else 128
        tiles = -(-N // 128) * -(-M // bt)
        return 2, bt, 2 if tiles <= 66 else 1
    return (3 if N >= 16384 or M > 128 else 2), (64 if M <= 64 else 128), 1


# a launch's kernel fields past (warpgroups, tokens a tile, splits): the producer a whole warpgroup giving registers
# away (PW), ring stages, bench-only variants (PROBE)
EXTRA = {"pw": 0, "stages": STAGES, "probe": 0}


def smem_bytes(wg: int, bt: int, stages: int = STAGES, bits: int = 4) -> int:
    return max(stages * (bt * 128 + 64 * wg * 8 * bits), bt * (64 * wg + 4) * 4) + 1024


def _fn(wg: int, bt: int, gs: int, mode: str, pw: int = 0, stages: int = STAGES, probe: int = 0, bits: int = 4,
        serial: int = 0, tiles: int = 0):
    defines = {"WG": wg, "BT": bt, "GS": gs, "MODE": _MODE[mode], "STAGES": stages, "PW": pw, "PROBE": probe,
               "FMT": bits}
    if serial:  # defined only where set: the other kernels' sources (and cache keys) stay as they were
        defines["SERIAL"] = 1
    if tiles:
        defines["TILES"] = tiles
    fn = get_function("gemm_w4_wgmma.cu", "w4_wgmma", defines, options=("-arch=sm_90a",))
    raise_smem_limit(fn, smem_bytes(wg, bt, stages, bits))
    return fn


def kernels(M: int) -> set:
    """(mode, warpgroups, tokens a tile, producer warpgroup) of every config M rows may take, whatever N: the rule
    depends on N only through N >= 16384 ("store") and the tile count up to SPLIT_TILES ("acc")."""
    ns = list(range(128, 128 * (SPLIT_TILES + 2), 128)) + [16384]
    return {(mode,) + c[:2] + c[3:] for mode in _MODE for n in ns for c in [config(mode, M, n)]}


def warmup(M: int, groups=(128,), fmt: str = "int4") -> None:
    """Compile every config M rows may take, for these kernel group sizes (0: a whole row; int8: ignored) or
    (group, QuantLinear.tiles) pairs (kernel_key), outside any capture."""
    serials = (0, 1) if split_sum() == "serial" else (0,)  # serial grids too large to be resident take park
    keys = [k if isinstance(k, tuple) else (k, 0) for k in groups] if fmt == "int4" else [(0, 0)]
    for mode, wg, bt, pw in kernels(M):
        for (g, tl), serial in itertools.product(keys, serials if mode == "acc" else (0,)):
            _fn(wg, bt, g, mode, pw, bits=_BITS[fmt], serial=serial, tiles=tl)
    _tickets()


def _tickets():
    """The split tiles' arrival counters (zero between launches: the last split of a tile resets its own)."""
    import cupy as cp
    dev = device_id()
    t = _TICKETS.get(dev)
    if t is None:
        if cp.cuda.get_current_stream().is_capturing():
            raise BackendError("gemm_w4: split-K tickets first needed inside a capture: call gemm_w4.warmup() first")
        t = _TICKETS[dev] = cp.zeros(TICKETS, cp.int32)
    return t


def split_sum() -> str:
    """CUGRAPHLLM_W4_SPLIT_SUM: "serial" (default: split z adds its partial after split z - 1, no workspace; only
    where the grid is resident at once, else park), "park" (each split parks its tile in the workspace, the last to
    arrive adds their sum in split order) or "atomic" (each adds its own as it finishes: fastest, not
    bit-reproducible). Serial and park give the same bits. H200, 7B int4 at 512 rows: wo 34.0 / 41.4 / 29.3 us,
    w2 72.7 / 80.3 / 67.4 (serial / park / atomic; benchmarks/results/nineteenth_2026-12-01/s27a)."""
    return env_choice(SUM_ENV, "serial", SUMS)


def _split(mode: str, splits: int, tiles: int, tile_floats: int, ws, how: str) -> tuple:
    """(splits, how) of one launch: serial only where the whole split grid is resident at once (it waits for
    itself), else park where its partials fit ws; K whole where neither can sum them (too many tiles)."""
    if mode != "acc":
        return 1, how
    if splits == 1 or how == "atomic":
        return splits, how
    if how == "serial" and tiles * splits <= tc._sm_count() and tiles <= TICKETS:
        return splits, how
    fits = ws is not None and splits * tiles * tile_floats <= ws.size and tiles <= TICKETS
    return (splits, "park") if fits else (1, "park")


def run(out, a, w, mode: str, cfg: tuple = (), ws=None) -> None:
    """out (=|+=) a @ W.T, W the dequantized int4 / int8 [N, K] of w (see the module docstring); cfg: (warpgroups,
    tokens a tile, splits, ...) instead of config()'s (scripts/w4_wgmma_probe.py); ws: an f32 workspace for the
    split partials ("acc"), summed as split_sum() says (K stays whole where they cannot be)."""
    M, K = a.shape
    N = w.shape[0]
    wg, bt, splits, *more = cfg or config(mode, M, N)
    splits, how = _split(mode, splits, -(-N // (64 * wg)) * -(-M // bt), bt * 64 * wg, ws, split_sum())
    pw, stages, probe = tuple(more) + tuple(EXTRA.values())[len(more):]
    bits = _BITS[w.fmt]
    fn = _fn(wg, bt, group(w), mode, pw, stages, probe, bits, int(how == "serial" and mode == "acc"), w.tiles)
    q = w.qweight if bits == 4 else w.qweight.view("uint32")  # int8 [N, K] as words [N, K / 4]
    if w.tiles:  # gpu/quant_tiles.py: words of a row's 128 columns, g, r0 / r1, iteration, tile of 16 rows
        n_it = K // 128
        tw = tma.tensor_map_nd(q, (16, 8, 2, n_it, N // 16), (64, 512, 1024, 1024 * n_it), (8, 8, 2, 1, 4 * wg))
    else:
        tw = tma.tensor_map(q, 2 * bits, 64 * wg)
    ta = tma.tensor_map(a, 64, bt, swizzle=128)
    x, o = (out, np.uint64(0)) if mode == "acc" else (np.uint64(0), out)
    grid = (-(-N // (64 * wg)), -(-M // bt), splits)
    zeros = w.scales if w.zeros is None else w.zeros  # int8: unused
    null = np.uint64(0)
    ws, tk = (null, null) if splits == 1 or how == "atomic" else (ws if how == "park" else null, _tickets())
    pdl.launch(fn, grid, (128 * wg + (128 if pw else 32),), (tw, ta, x, o, w.scales, zeros, ws, tk, np.int32(M),
                                                              np.int32(N), np.int32(K)),
               smem_bytes(wg, bt, stages, bits), driver=True)
