"""The "wg" path of gemm_quant.py: int4 prefill GEMMs on Hopper wgmma, the weight dequantized in registers
(kernels/gemm_w4_wgmma.cu, compiled for sm_90a); never a 16-bit copy of the weight.

    run(out, a, w, mode)    mode "acc": out f32 [M, N] += a @ W.T (split-K partials added by vector atomics);
                            mode "store": out T [M, N] = a @ W.T, for gemm.cu's row epilogues (SiLU*up, RoPE + KV)

Tile configs (scripts/w4_wgmma_probe.py, H200, 2026-12-01, 7B shapes; benchmarks/results/eighteenth_2026-12-01/):
where M is a multiple of 256 from 512 rows, 256-token tiles on 2 consumer warpgroups (wgmma m64n256k16: each
dequantized fragment feeds twice the tokens) for wo / w2 (K split in two when the grid is small) and for w13 (N >=
16384); otherwise "acc" (wo, w2) 2 warpgroups, 64 tokens a tile and K split in two up to 128 rows, 128 tokens above;
"store" (wqkv, w13) 3 warpgroups where the grid is large (N >= 16384 or M > 128), else 2; 64 tokens a tile up to 64
rows. Above 128 rows ("acc") or from 512 ("store") the producer is a whole warpgroup that hands its registers to
the consumers (setmaxnreg): 7B at 512 rows ~356 us a layer against ~411 before (fp16 cuBLAS ~305).
CUGRAPHLLM_W4_TILES=0 restores the seventeenth session's rule (A/B). Needs: int4, fp16 activations, sm_90 (9.0
exactly: wgmma is sm_90a), K % 32 == 0, a group size that is a power of two >= 32 or the whole row, 16-byte aligned
operands. CUGRAPHLLM_W4_WGMMA=0 turns the path off (A/B).
"""
from __future__ import annotations

import functools

import numpy as np

from . import pdl, tma
from .cuda_kernels import device_id, env_bit, get_function, raise_smem_limit

ENV = "CUGRAPHLLM_W4_WGMMA"
TILES_ENV = "CUGRAPHLLM_W4_TILES"
STAGES = 4
_MODE = {"acc": 0, "store": 1}


@functools.lru_cache(maxsize=None)
def _sm90a(dev: int) -> bool:
    import cupy as cp
    return int(cp.cuda.Device(dev).compute_capability) == 90


def group(w) -> int:
    """The kernel's GS for w: its group size, or 0 for one group a row."""
    K = w.shape[1]
    return 0 if w.group_size == K else w.group_size


def usable() -> bool:
    """The path is on (CUGRAPHLLM_W4_WGMMA) and the current device is sm_90."""
    return env_bit(ENV) and _sm90a(device_id())


def supported(w, a) -> bool:
    """Whether this path can run int4 weight w with (prepared) activations a."""
    M, K = a.shape
    g = w.group_size
    return (w.fmt == "int4" and str(a.dtype) == "float16" and K % 32 == 0 and (g == K or (g >= 32 and g & (g - 1)
            == 0)) and a.data.ptr % 16 == 0 and w.qweight.data.ptr % 16 == 0 and usable())


def config(mode: str, M: int, N: int) -> tuple:
    """(consumer warpgroups, tokens a tile, K splits, producer warpgroup) of one call; CUGRAPHLLM_W4_TILES=0: the
    seventeenth session's rule (A/B)."""
    if not env_bit(TILES_ENV):
        return _config_v1(mode, M, N) + (0,)
    whole = M >= 512 and M % 256 == 0  # 256-token tiles, none of them part empty, at least two a column
    if mode == "acc":
        bt = 256 if whole else (128 if M > 128 else 64)
        tiles = -(-N // 128) * -(-M // bt)
        return 2, bt, 2 if tiles <= 100 else 1, int(M > 128)
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


def smem_bytes(wg: int, bt: int, stages: int = STAGES) -> int:
    return max(stages * (bt * 128 + 64 * wg * 32), bt * (64 * wg + 4) * 4) + 1024


def _fn(wg: int, bt: int, gs: int, mode: str, pw: int = 0, stages: int = STAGES, probe: int = 0):
    fn = get_function("gemm_w4_wgmma.cu", "w4_wgmma", {"WG": wg, "BT": bt, "GS": gs, "MODE": _MODE[mode],
                                                       "STAGES": stages, "PW": pw, "PROBE": probe},
                      options=("-arch=sm_90a",))
    raise_smem_limit(fn, smem_bytes(wg, bt, stages))
    return fn


def warmup(M: int, groups=(128,)) -> None:
    """Compile every config M rows may take, for these kernel group sizes (0: a whole row), outside any capture."""
    cfgs = {(mode,) + config(mode, M, n)[:2] + config(mode, M, n)[3:] for mode in _MODE for n in (4096, 16384)}
    for mode, wg, bt, pw in cfgs:
        for g in groups:
            _fn(wg, bt, g, mode, pw)


def run(out, a, w, mode: str, cfg: tuple = ()) -> None:
    """out (=|+=) a @ W.T, W the dequantized int4 [N, K] of w (see the module docstring); cfg: (warpgroups, tokens a
    tile, splits) instead of config()'s (scripts/w4_wgmma_probe.py)."""
    M, K = a.shape
    N = w.shape[0]
    wg, bt, splits, *more = cfg or config(mode, M, N)
    pw, stages, probe = tuple(more) + tuple(EXTRA.values())[len(more):]
    fn = _fn(wg, bt, group(w), mode, pw, stages, probe)
    tw = tma.tensor_map(w.qweight, 8, 64 * wg)
    ta = tma.tensor_map(a, 64, bt, swizzle=128)
    x, o = (out, np.uint64(0)) if mode == "acc" else (np.uint64(0), out)
    grid = (-(-N // (64 * wg)), -(-M // bt), splits)
    pdl.launch(fn, grid, (128 * wg + (128 if pw else 32),), (tw, ta, x, o, w.scales, w.zeros, np.int32(M),
                                                              np.int32(N), np.int32(K)),
               smem_bytes(wg, bt, stages), driver=True)
