"""cuBLASLt algorithm search beyond the heuristic's list (scripts/lt_algo_search.py uses it; nothing else does).

cublaslt.py / gemm_tune.py time only the first algorithms that cublasLtMatmulAlgoGetHeuristic offers. Here every
algorithm id of the operand types (cublasLtMatmulAlgoGetIds) is initialized (cublasLtMatmulAlgoInit), its
capabilities read (cublasLtMatmulAlgoCapGetAttribute: tile ids, stages ids, split-K support, reduction-scheme mask,
CTA swizzling support), configurations built from them (tile x stages x split-K x swizzle x cluster shape, pruned
and ordered by `enumerate_configs`, a pure function) and set with cublasLtMatmulAlgoConfigSetAttribute; the caller
validates each with cublasLtMatmulAlgoCheck (`check`) before running it through LtHandle's plan (same descriptor,
layouts, workspace as LtHandle.matmul16).

Enum values: NVIDIA's nvmath-python bindings pages, which mirror cublasLt.h (cited beside each group), cross-checked
against cublasLt.h of cuBLAS 13.1.1 (pip nvidia-cublas; tests/test_lt_search_cpu.py compares them with any installed
header). cuBLAS 13.1.1 has no capability attribute listing cluster shapes (CAP values stop at 23, none of them cluster
ids), so cluster shapes are candidates from a fixed list and cublasLtMatmulAlgoCheck decides.
"""
from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import asdict, dataclass, field

# cublasLtMatmulAlgoCapAttributes_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.MatmulAlgoCapAttribute.html): SPLITK_SUPPORT int32, REDUCTION_SCHEME_MASK uint32,
# CTA_SWIZZLING_SUPPORT uint32, TILE_IDS / STAGES_IDS uint32 arrays (types: cublasLt.h comments)
CAP_SPLITK_SUPPORT, CAP_REDUCTION_SCHEME_MASK, CAP_CTA_SWIZZLING_SUPPORT = 0, 1, 2
CAP_TILE_IDS, CAP_STAGES_IDS = 6, 13
# cublasLtMatmulAlgoConfigAttributes_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.MatmulAlgoConfigAttribute.html): ID int32, TILE_ID uint32, SPLITK_NUM int32,
# REDUCTION_SCHEME uint32, CTA_SWIZZLING uint32, CUSTOM_OPTION uint32, STAGES_ID uint32, INNER_SHAPE_ID uint16,
# CLUSTER_SHAPE_ID uint16 (types: cublasLt.h comments)
CFG_ID, CFG_TILE_ID, CFG_SPLITK_NUM, CFG_REDUCTION_SCHEME, CFG_CTA_SWIZZLING = 0, 1, 2, 3, 4
CFG_CUSTOM_OPTION, CFG_STAGES_ID, CFG_INNER_SHAPE_ID, CFG_CLUSTER_SHAPE_ID = 5, 6, 7, 8
CFG_CTYPES = {CFG_ID: ctypes.c_int32, CFG_TILE_ID: ctypes.c_uint32, CFG_SPLITK_NUM: ctypes.c_int32,
              CFG_REDUCTION_SCHEME: ctypes.c_uint32, CFG_CTA_SWIZZLING: ctypes.c_uint32,
              CFG_CUSTOM_OPTION: ctypes.c_uint32, CFG_STAGES_ID: ctypes.c_uint32, CFG_INNER_SHAPE_ID: ctypes.c_uint16,
              CFG_CLUSTER_SHAPE_ID: ctypes.c_uint16}
# cublasLtReductionScheme_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.ReductionScheme.html); split-K > 1 needs one of the last three
REDUCTION_NONE, REDUCTION_INPLACE, REDUCTION_COMPUTE_TYPE, REDUCTION_OUTPUT_TYPE = 0, 1, 2, 4
REDUCTION_NAMES = {0: "none", 1: "inplace", 2: "compute_type", 4: "output_type"}
REDUCTION_PREFERENCE = (REDUCTION_COMPUTE_TYPE, REDUCTION_OUTPUT_TYPE, REDUCTION_INPLACE)  # f32 partials first
# cublasLtClusterShape_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.ClusterShape.html): the shapes worth trying on sm_90 (value 1 is unused)
CLUSTER_NAMES = {0: "auto", 2: "1x1x1", 3: "2x1x1", 4: "4x1x1", 5: "1x2x1", 6: "2x2x1", 8: "1x4x1"}
# cublasLtMatmulStages_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.MatmulStages.html): 0 undefined, 1..24 = {16,32,64,128} x {1..6}, then the list below
# (29 and 30 are unused); names are for the report only
_STAGES_LATER = {25: "32x10", 26: "8x4", 27: "16x10", 28: "8x5", 31: "8x3", 32: "8xAUTO", 33: "16xAUTO",
                 34: "32xAUTO", 35: "64xAUTO", 36: "128xAUTO", 37: "256xAUTO", 38: "768xAUTO"}
# cublasLtMatmulTile_t (https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
# nvmath.bindings.cublasLt.MatmulTile.html): value i (1-based) is the i-th name below, 0 = undefined; sequential in
# cublasLt.h 13.1.1 (634 tiles). Tiles are rows x columns of cuBLAS's column-major D [N, M]: rows along our N.
_TILES = """
8x8 8x16 16x8 8x32 16x16 32x8 8x64 16x32 32x16 64x8 32x32 32x64 64x32 32x128 64x64 128x32 64x128 128x64 64x256
128x128 256x64 64x512 128x256 256x128 512x64 64x96 96x64 96x128 128x160 160x128 192x128 128x192 128x96 32x256
256x32 8x128 8x192 8x256 8x320 8x384 8x448 8x512 8x576 8x640 8x704 8x768 16x64 16x128 16x192 16x256 16x320
16x384 16x448 16x512 16x576 16x640 16x704 16x768 24x64 24x128 24x192 24x256 24x320 24x384 24x448 24x512 24x576
24x640 24x704 24x768 32x192 32x320 32x384 32x448 32x512 32x576 32x640 32x704 32x768 40x64 40x128 40x192 40x256
40x320 40x384 40x448 40x512 40x576 40x640 40x704 40x768 48x64 48x128 48x192 48x256 48x320 48x384 48x448 48x512
48x576 48x640 48x704 48x768 56x64 56x128 56x192 56x256 56x320 56x384 56x448 56x512 56x576 56x640 56x704 56x768
64x192 64x320 64x384 64x448 64x576 64x640 64x704 64x768 72x64 72x128 72x192 72x256 72x320 72x384 72x448 72x512
72x576 72x640 80x64 80x128 80x192 80x256 80x320 80x384 80x448 80x512 80x576 88x64 88x128 88x192 88x256 88x320
88x384 88x448 88x512 96x192 96x256 96x320 96x384 96x448 96x512 104x64 104x128 104x192 104x256 104x320 104x384
104x448 112x64 112x128 112x192 112x256 112x320 112x384 120x64 120x128 120x192 120x256 120x320 120x384 128x320
128x384 136x64 136x128 136x192 136x256 136x320 144x64 144x128 144x192 144x256 144x320 152x64 152x128 152x192
152x256 152x320 160x64 160x192 160x256 168x64 168x128 168x192 168x256 176x64 176x128 176x192 176x256 184x64
184x128 184x192 184x256 192x64 192x192 192x256 200x64 200x128 200x192 208x64 208x128 208x192 216x64 216x128
216x192 224x64 224x128 224x192 232x64 232x128 232x192 240x64 240x128 240x192 248x64 248x128 248x192 256x192
264x64 264x128 272x64 272x128 280x64 280x128 288x64 288x128 296x64 296x128 304x64 304x128 312x64 312x128 320x64
320x128 328x64 328x128 336x64 336x128 344x64 344x128 352x64 352x128 360x64 360x128 368x64 368x128 376x64 376x128
384x64 384x128 392x64 400x64 408x64 416x64 424x64 432x64 440x64 448x64 456x64 464x64 472x64 480x64 488x64 496x64
504x64 520x64 528x64 536x64 544x64 552x64 560x64 568x64 576x64 584x64 592x64 600x64 608x64 616x64 624x64 632x64
640x64 648x64 656x64 664x64 672x64 680x64 688x64 696x64 704x64 712x64 720x64 728x64 736x64 744x64 752x64 760x64
768x64 64x16 64x24 64x40 64x48 64x56 64x72 64x80 64x88 64x104 64x112 64x120 64x136 64x144 64x152 64x160 64x168
64x176 64x184 64x200 64x208 64x216 64x224 64x232 64x240 64x248 64x264 64x272 64x280 64x288 64x296 64x304 64x312
64x328 64x336 64x344 64x352 64x360 64x368 64x376 64x392 64x400 64x408 64x416 64x424 64x432 64x440 64x456 64x464
64x472 64x480 64x488 64x496 64x504 64x520 64x528 64x536 64x544 64x552 64x560 64x568 64x584 64x592 64x600 64x608
64x616 64x624 64x632 64x648 64x656 64x664 64x672 64x680 64x688 64x696 64x712 64x720 64x728 64x736 64x744 64x752
64x760 128x8 128x16 128x24 128x40 128x48 128x56 128x72 128x80 128x88 128x104 128x112 128x120 128x136 128x144
128x152 128x168 128x176 128x184 128x200 128x208 128x216 128x224 128x232 128x240 128x248 128x264 128x272 128x280
128x288 128x296 128x304 128x312 128x328 128x336 128x344 128x352 128x360 128x368 128x376 128x392 128x400 128x408
128x416 128x424 128x432 128x440 128x448 128x456 128x464 128x472 128x480 128x488 128x496 128x504 128x512 192x8
192x16 192x24 192x32 192x40 192x48 192x56 192x72 192x80 192x88 192x96 192x104 192x112 192x120 192x136 192x144
192x152 192x160 192x168 192x176 192x184 192x200 192x208 192x216 192x224 192x232 192x240 192x248 192x264 192x272
192x280 192x288 192x296 192x304 192x312 192x320 192x328 192x336 256x8 256x16 256x24 256x40 256x48 256x56 256x72
256x80 256x88 256x96 256x104 256x112 256x120 256x136 256x144 256x152 256x160 256x168 256x176 256x184 256x200
256x208 256x216 256x224 256x232 256x240 256x248 256x256 320x8 320x16 320x24 320x32 320x40 320x48 320x56 320x72
320x80 320x88 320x96 320x104 320x112 320x120 320x136 320x144 320x152 320x160 320x168 320x176 320x184 320x192
320x200 384x8 384x16 384x24 384x32 384x40 384x48 384x56 384x72 384x80 384x88 384x96 384x104 384x112 384x120
384x136 384x144 384x152 384x160 384x168 448x8 448x16 448x24 448x32 448x40 448x48 448x56 448x72 448x80 448x88
448x96 448x104 448x112 448x120 448x128 448x136 448x144 512x8 512x16 512x24 512x32 512x40 512x48 512x56 512x72
512x80 512x88 512x96 512x104 512x112 512x120 512x128 576x8 576x16 576x24 576x32 576x40 576x48 576x56 576x72
576x80 576x88 576x96 576x104 576x112 640x8 640x16 640x24 640x32 640x40 640x48 640x56 640x72 640x80 640x88 640x96
704x8 704x16 704x24 704x32 704x40 704x48 704x56 704x72 704x80 704x88 768x8 768x16 768x24 768x32 768x40 768x48
768x56 768x72 768x80 256x512 256x1024 512x512 512x1024
"""
TILE_NAMES = ("undefined",) + tuple(_TILES.split())


def tile_name(tile: int) -> str:
    return TILE_NAMES[tile] if 0 <= tile < len(TILE_NAMES) else f"tile#{tile}"


def tile_dims(tile: int) -> tuple[int, int] | None:
    """(rows along our N, columns along our M) of a tile id, None when undefined or unknown."""
    name = tile_name(tile)
    if "x" not in name or name.startswith("tile#"):
        return None
    r, c = name.split("x")
    return int(r), int(c)


def stages_name(stages: int) -> str:
    if 1 <= stages <= 24:
        return f"{16 << ((stages - 1) // 6)}x{(stages - 1) % 6 + 1}"
    return "undefined" if stages == 0 else _STAGES_LATER.get(stages, f"stages#{stages}")


@dataclass(frozen=True)
class Caps:
    """What cublasLtMatmulAlgoCapGetAttribute says about one algorithm id."""
    algo_id: int
    tiles: tuple[int, ...]
    stages: tuple[int, ...]
    splitk: bool
    reduction_mask: int
    swizzle: bool


@dataclass(frozen=True)
class Config:
    """One algorithm configuration (cublasLtMatmulAlgoConfigAttributes_t values); custom / inner are only read back
    from heuristic algorithms (the search leaves them at 0)."""
    algo_id: int
    tile: int = 0
    stages: int = 0
    splitk: int = 1
    reduction: int = REDUCTION_NONE
    swizzle: int = 0
    cluster: int = 0
    custom: int = 0
    inner: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> dict:
        """The configuration with readable names (JSON)."""
        d = {k: v for k, v in asdict(self).items() if k != "extra"}
        d.update(tile_name=tile_name(self.tile), stages_name=stages_name(self.stages),
                 reduction_name=REDUCTION_NAMES.get(self.reduction, str(self.reduction)),
                 cluster_name=CLUSTER_NAMES.get(self.cluster, f"cluster#{self.cluster}"), **self.extra)
        return d

    def label(self) -> str:
        return (f"id{self.algo_id} {tile_name(self.tile)} st {stages_name(self.stages)} sk{self.splitk}"
                f"{'/' + REDUCTION_NAMES.get(self.reduction, str(self.reduction)) if self.splitk > 1 else ''} sw{self.swizzle} "
                f"cl {CLUSTER_NAMES.get(self.cluster, self.cluster)}")


# ---- enumeration and pruning (pure) -------------------------------------------------------------------------
def reductions(mask: int, splitk: int, all_schemes: bool = False) -> list[int]:
    """Reduction schemes for a split-K count: NONE without split; else the supported ones in REDUCTION_PREFERENCE
    order (only the first unless all_schemes); [] when the mask allows none (no split-K then)."""
    if splitk == 1:
        return [REDUCTION_NONE]
    ok = [r for r in REDUCTION_PREFERENCE if mask & r]
    return ok if all_schemes else ok[:1]


def score(cfg: Config, N: int, M: int, sms: int) -> float:
    """Ordering heuristic only (every config kept is measured): padding efficiency x last-wave fill of the output
    tiles (x split-K) on `sms` SMs x a tile-reuse factor (small tiles reload more operand bytes per FLOP), less 5% per
    extra split. Unknown tile dimensions score 0.5."""
    dims = tile_dims(cfg.tile)
    if dims is None:
        return 0.5
    tm, tn = dims
    gm, gn = math.ceil(N / tm), math.ceil(M / tn)
    pad = N * M / (gm * tm * gn * tn)
    t = gm * gn * cfg.splitk
    wave = t / (math.ceil(t / sms) * sms)
    reuse = min(1.0, (tm * tn / (tm + tn)) / (128 * 256 / 384)) ** 0.5
    return pad * wave * reuse * (1.0 - 0.05 * (cfg.splitk - 1))


def keep_tile(tile: int, N: int, M: int, min_area: int) -> bool:
    """Hard pruning: tiles under min_area elements, or wasting over half of their area on padding, are dropped;
    undefined (the algorithm picks) and unknown ids (a cuBLASLt newer than the table) are kept."""
    dims = tile_dims(tile)
    if dims is None:
        return True
    tm, tn = dims
    pad = N * M / (math.ceil(N / tm) * tm * math.ceil(M / tn) * tn)
    return tm * tn >= min_area and pad >= 0.5


def enumerate_configs(caps: list[Caps], N: int, M: int, K: int, *, sms: int = 132, splitks=(1, 2, 3, 4),
                      clusters=(0,), min_area: int = 64 * 64, min_k_per_split: int = 1024,
                      all_reductions: bool = False, boost=frozenset(), max_configs: int = 3000) -> list[Config]:
    """At most max_configs configurations the capabilities allow for d [M, N] = x [M, K] @ W [N, K].T, pruned
    (keep_tile; split-K only where supported, with a reduction scheme and K / split >= min_k_per_split; swizzle 1
    only where supported). Breadth first: one variant (first stages id, swizzle 0, first cluster) of every (algorithm,
    tile, split-K) group, groups best `score` first (ties: fewer splits, lower ids), then the other variants (stages,
    reduction, swizzle, cluster) group by group in the same order. boost: (algo_id, tile) pairs (e.g. the
    heuristic's) ranked ahead of every other group."""
    groups = []
    for cap in dict((c.algo_id, c) for c in caps).values():
        for tile in (t for t in dict.fromkeys(cap.tiles or (0,)) if keep_tile(t, N, M, min_area)):
            for k in (k for k in dict.fromkeys(splitks) if k == 1 or (cap.splitk and K // k >= min_k_per_split)):
                if reductions(cap.reduction_mask, k):
                    s = score(Config(cap.algo_id, tile, splitk=k), N, M, sms) + ((cap.algo_id, tile) in boost)
                    groups.append((-s, k, cap.algo_id, tile, cap))
    groups.sort(key=lambda g: g[:4])
    out: dict = {}
    for tier in (0, 1):
        for _, k, algo_id, tile, cap in groups:
            for i, (st, red, sw, cl) in enumerate(_variants(cap, k, clusters, all_reductions)):
                if len(out) >= max_configs:
                    return list(out)
                if (i == 0) == (tier == 0):
                    out.setdefault(Config(algo_id, tile, st, k, red, sw, cl))
                if tier == 0:
                    break
    return list(out)


def _variants(cap: Caps, k: int, clusters, all_reductions: bool):
    """(stages, reduction, swizzle, cluster) of one group, the first one the default variant."""
    for st in dict.fromkeys(cap.stages or (0,)):
        for red in reductions(cap.reduction_mask, k, all_reductions):
            for sw in ((0, 1) if cap.swizzle else (0,)):
                for cl in dict.fromkeys(clusters):
                    yield st, red, sw, cl


# ---- ctypes (cuBLASLt through cublaslt._lib(): the library LtHandle uses) -------------------------------------
@functools.lru_cache(maxsize=None)
def _lib():
    from .cublaslt import _Algo, _Heuristic, _lib as base
    lib = base()
    vp, i32, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    algo_p, szp = ctypes.POINTER(_Algo), ctypes.POINTER(ctypes.c_size_t)
    sigs = {
        "cublasLtMatmulAlgoGetIds": [vp, i32, i32, i32, i32, i32, i32, i32, ctypes.POINTER(i32),
                                     ctypes.POINTER(i32)],
        "cublasLtMatmulAlgoInit": [vp, i32, i32, i32, i32, i32, i32, i32, algo_p],
        "cublasLtMatmulAlgoCapGetAttribute": [algo_p, i32, vp, sz, szp],
        "cublasLtMatmulAlgoConfigSetAttribute": [algo_p, i32, vp, sz],
        "cublasLtMatmulAlgoConfigGetAttribute": [algo_p, i32, vp, sz, szp],
        "cublasLtMatmulAlgoCheck": [vp, vp, vp, vp, vp, vp, algo_p, ctypes.POINTER(_Heuristic)],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, i32
    return lib


def _types(ab: int, cb: int) -> tuple:
    """(compute, scale, A, B, C, D) as LtHandle.algos sets them: compute 32F, scale 32F, C = D."""
    from .cublaslt import CUBLAS_COMPUTE_32F, CUDA_R_32F
    return CUBLAS_COMPUTE_32F, CUDA_R_32F, ab, ab, cb, cb


def algo_ids(lt, ab: int, cb: int, limit: int = 1024) -> list[int]:
    """Every algorithm id cuBLASLt has for these types (not all run on this device: check decides)."""
    from .cublaslt import _check
    ids, n = (ctypes.c_int * limit)(), ctypes.c_int(0)
    _check(_lib().cublasLtMatmulAlgoGetIds(lt.h, *_types(ab, cb), limit, ids, ctypes.byref(n)), "AlgoGetIds")
    return list(ids[:n.value])


def init_algo(lt, algo_id: int, ab: int, cb: int):
    from .cublaslt import _Algo, _check
    algo = _Algo()
    _check(_lib().cublasLtMatmulAlgoInit(lt.h, *_types(ab, cb), algo_id, ctypes.byref(algo)), f"AlgoInit {algo_id}")
    return algo


def _cap_array(algo, attr: int) -> tuple[int, ...]:
    lib, need = _lib(), ctypes.c_size_t(0)
    if lib.cublasLtMatmulAlgoCapGetAttribute(ctypes.byref(algo), attr, None, 0, ctypes.byref(need)) != 0:
        return ()
    n = need.value // 4
    buf, got = (ctypes.c_uint32 * max(n, 1))(), ctypes.c_size_t(0)
    if n == 0 or lib.cublasLtMatmulAlgoCapGetAttribute(ctypes.byref(algo), attr, buf, 4 * n, ctypes.byref(got)):
        return ()
    return tuple(buf[:got.value // 4])


def _cap_scalar(algo, attr: int, ctype) -> int:
    v, got = ctype(0), ctypes.c_size_t(0)
    st = _lib().cublasLtMatmulAlgoCapGetAttribute(ctypes.byref(algo), attr, ctypes.byref(v), ctypes.sizeof(v),
                                                  ctypes.byref(got))
    return int(v.value) if st == 0 else 0


def capabilities(lt, algo_id: int, ab: int, cb: int) -> Caps:
    algo = init_algo(lt, algo_id, ab, cb)
    return Caps(algo_id, _cap_array(algo, CAP_TILE_IDS), _cap_array(algo, CAP_STAGES_IDS),
                bool(_cap_scalar(algo, CAP_SPLITK_SUPPORT, ctypes.c_int32)),
                _cap_scalar(algo, CAP_REDUCTION_SCHEME_MASK, ctypes.c_uint32),
                bool(_cap_scalar(algo, CAP_CTA_SWIZZLING_SUPPORT, ctypes.c_uint32)))


def make_algo(lt, cfg: Config, ab: int, cb: int):
    """An initialized algorithm with cfg's attributes set (defaults left untouched); None when a set is refused."""
    algo = init_algo(lt, cfg.algo_id, ab, cb)
    values = {CFG_TILE_ID: cfg.tile, CFG_STAGES_ID: cfg.stages, CFG_SPLITK_NUM: cfg.splitk,
              CFG_REDUCTION_SCHEME: cfg.reduction, CFG_CTA_SWIZZLING: cfg.swizzle, CFG_CLUSTER_SHAPE_ID: cfg.cluster,
              CFG_CUSTOM_OPTION: cfg.custom, CFG_INNER_SHAPE_ID: cfg.inner}
    defaults = {CFG_SPLITK_NUM: 1}
    for attr, value in values.items():
        if value == defaults.get(attr, 0):
            continue
        v = CFG_CTYPES[attr](value)
        if _lib().cublasLtMatmulAlgoConfigSetAttribute(ctypes.byref(algo), attr, ctypes.byref(v), ctypes.sizeof(v)):
            return None
    return algo


def read_config(algo) -> Config:
    """The configuration of an algorithm struct (e.g. a heuristic result's); unreadable attributes read as 0."""
    vals = {}
    for attr, ctype in CFG_CTYPES.items():
        v, got = ctype(0), ctypes.c_size_t(0)
        st = _lib().cublasLtMatmulAlgoConfigGetAttribute(ctypes.byref(algo), attr, ctypes.byref(v), ctypes.sizeof(v),
                                                         ctypes.byref(got))
        vals[attr] = int(v.value) if st == 0 else 0
    return Config(vals[CFG_ID], vals[CFG_TILE_ID], vals[CFG_STAGES_ID], max(1, vals[CFG_SPLITK_NUM]),
                  vals[CFG_REDUCTION_SCHEME], vals[CFG_CTA_SWIZZLING], vals[CFG_CLUSTER_SHAPE_ID],
                  vals[CFG_CUSTOM_OPTION], vals[CFG_INNER_SHAPE_ID])


def check(lt, plan, algo) -> tuple[int, float] | None:
    """cublasLtMatmulAlgoCheck of algo on plan's descriptor and layouts (LtHandle.algos' plan, C = D): (workspace
    bytes, waves count) when supported and its workspace fits LtHandle's, else None."""
    from .cublaslt import _Heuristic
    desc, al, bl, dl = plan[:4]
    res = _Heuristic()
    st = _lib().cublasLtMatmulAlgoCheck(lt.h, desc, al, bl, dl, dl, ctypes.byref(algo), ctypes.byref(res))
    if st != 0 or res.workspaceSize > lt.workspace.nbytes:
        return None
    return int(res.workspaceSize), float(res.wavesCount)
