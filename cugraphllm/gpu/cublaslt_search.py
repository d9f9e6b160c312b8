"""cuBLASLt algorithm search beyond the heuristic's list (scripts/lt_algo_search.py uses it; nothing else does).

cublaslt.py / gemm_tune.py time only the first algorithms that cublasLtMatmulAlgoGetHeuristic offers. Here every
algorithm id of the operand types (cublasLtMatmulAlgoGetIds) is initialized (cublasLtMatmulAlgoInit), its
capabilities read (cublasLtMatmulAlgoCapGetAttribute: tile ids, stages ids, split-K support, reduction-scheme mask,
CTA swizzling support), configurations built from them (tile x stages x split-K x swizzle x cluster shape, pruned
and ordered by `enumerate_configs`, a pure function) and set with cublasLtMatmulAlgoConfigSetAttribute; the caller
validates each with cublasLtMatmulAlgoCheck (`check`) before running it through LtHandle's plan (same descriptor,
layouts, workspace as LtHandle.matmul16).

Enum values (gpu/cublaslt_enums.py): NVIDIA's nvmath-python bindings pages, which mirror cublasLt.h (cited beside
each group), cross-checked against cublasLt.h of cuBLAS 13.1.1 (pip nvidia-cublas; tests/test_lt_search_cpu.py
compares them with any installed header). cuBLAS 13.1.1 has no capability attribute listing cluster shapes (CAP
values stop at 23, none of them cluster ids), so cluster shapes are candidates from a fixed list and
cublasLtMatmulAlgoCheck decides.
"""
from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import asdict, dataclass, field

from .cublaslt_enums import (  # noqa: F401  (re-exported: the search script and tests read them from here)
    CAP_SPLITK_SUPPORT, CAP_REDUCTION_SCHEME_MASK, CAP_CTA_SWIZZLING_SUPPORT, CAP_TILE_IDS, CAP_STAGES_IDS, CFG_ID,
    CFG_TILE_ID, CFG_SPLITK_NUM, CFG_REDUCTION_SCHEME, CFG_CTA_SWIZZLING, CFG_CUSTOM_OPTION, CFG_STAGES_ID,
    CFG_INNER_SHAPE_ID, CFG_CLUSTER_SHAPE_ID, CFG_CTYPES, REDUCTION_NONE, REDUCTION_INPLACE, REDUCTION_COMPUTE_TYPE,
    REDUCTION_OUTPUT_TYPE, REDUCTION_NAMES, REDUCTION_PREFERENCE, CLUSTER_NAMES, TILE_NAMES, tile_name, tile_dims,
    stages_name)


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
