"""cuBLASLt FP8 matmul through ctypes (W8A8 prefill), capturable in a CUDA graph.

d f32 [M, N] = aq e4m3 [M, K] @ wq e4m3 [N, K].T, unscaled (the caller applies the per-token and per-row scales in
its epilogue), or, with outer-vector scaling (below), d[m, n] (=|+=) sa[m] * sw[n] * (aq @ wq.T)[m, n] with d f32,
fp16 or bf16, the scales applied by cuBLASLt. cuBLASLt's FP8 rules (cublasLtMatmul docs): "TN" only (A transposed,
B not), compute 32F, scale type 32F, K a multiple of 16 and 16-byte aligned operands; C/D may be 32F. In
column-major terms our row-major product is D^T [N, M] = W^T^T... i.e. A = W (col-major [K, N], ld K, op T),
B = aq (col-major [K, M], ld K, op N), D col-major [N, M], ld N: exactly TN.
One handle per device with a fixed workspace (never allocates inside capture); a plan (descriptors and the
heuristic's algorithm) per (N, M, K), made on first use: make them before capture (gemm_quant.allocate warms them).

Outer-vector scaling (cuBLAS docs, "Narrow Precision Data Types Usage" / "Outer Vector Scaling for FP8 Data Types",
https://docs.nvidia.com/cuda/cublas/#outer-vector-scaling-for-fp8-data-types, section 3.1.4.3; new in cuBLAS 12.9:
developer.nvidia.com/blog/boosting-matrix-multiplication-speed-and-flexibility-with-nvidia-cublas-12-9): with
CUBLASLT_MATMUL_DESC_A_SCALE_MODE and _B_SCALE_MODE both CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, the A / B scale
pointers are f32 vectors of cuBLAS's M / N elements and D_ij = alpha * scaleA_i * scaleB_j * sum_l a_il b_lj +
beta * scaleC * C_ij; D may only be CUDA_R_16F, CUDA_R_16BF or CUDA_R_32F (no scale_D); the docs' mode table lists
compute capability 9.0 only (an NVIDIA maintainer, github.com/NVIDIA/CUDALibrarySamples/issues/270: "currently only
supported on SM90"; sm_100 / sm_120 refuse it: github.com/pytorch/pytorch/issues/192707). In our TN mapping cuBLAS's
A is W (its M rows are our N output rows: scaleA = sw) and B is aq (its N columns are our M tokens: scaleB = sa).
Support is probed at run time (outer_scale_ok: one small product against NumPy per device and D type).
"""
from __future__ import annotations

import ctypes
import functools

from .cublas import CublasError

CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF, CUDA_R_8F_E4M3 = 0, 2, 14, 28
CUBLAS_COMPUTE_32F = 68
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
DESC_TRANSA, DESC_TRANSB = 3, 4
# cublasLtMatmulDescAttributes_t: A/B_SCALE_POINTER 17 / 18 (const void *, device), A/B_SCALE_MODE 31 / 32 (int32_t,
# default 0 = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F); cublasLtMatmulMatrixScale_t: OUTER_VEC_32F = 3. Values of
# cublasLt.h (cuBLAS 13.1.1, pip nvidia-cublas) and of https://docs.nvidia.com/cuda/nvmath-python/latest/bindings/
# generated/nvmath.bindings.cublasLt.MatmulDescAttribute.html / ...cublasLt.MatmulMatrixScale.html (same numbers).
DESC_A_SCALE_POINTER, DESC_B_SCALE_POINTER = 17, 18
DESC_A_SCALE_MODE, DESC_B_SCALE_MODE = 31, 32
MATRIX_SCALE_OUTER_VEC_32F = 3
PREF_MAX_WORKSPACE_BYTES = 1
WORKSPACE_BYTES = 32 << 20


class _Algo(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64 * 8)]


class _Heuristic(ctypes.Structure):
    _fields_ = [("algo", _Algo), ("workspaceSize", ctypes.c_size_t), ("state", ctypes.c_int),
                ("wavesCount", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


def _find_library() -> ctypes.CDLL:
    """libcublasLt beside the libcublas CuPy uses (cuda.pathfinder), else the loader's search path."""
    try:
        from cuda import pathfinder
        return ctypes.CDLL(pathfinder.load_nvidia_dynamic_lib("cublasLt").abs_path)
    except Exception:
        pass
    for name in ("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise CublasError("cuBLASLt: libcublasLt not found (install nvidia-cublas or the CUDA toolkit)")


@functools.lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    lib = _find_library()
    vp, i32, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    sigs = {
        "cublasLtCreate": [ctypes.POINTER(vp)],
        "cublasLtMatmulDescCreate": [ctypes.POINTER(vp), i32, i32],
        "cublasLtMatmulDescSetAttribute": [vp, i32, vp, sz],
        "cublasLtMatrixLayoutCreate": [ctypes.POINTER(vp), i32, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int64],
        "cublasLtMatmulPreferenceCreate": [ctypes.POINTER(vp)],
        "cublasLtMatmulPreferenceSetAttribute": [vp, i32, vp, sz],
        "cublasLtMatmulAlgoGetHeuristic": [vp, vp, vp, vp, vp, vp, vp, i32, ctypes.POINTER(_Heuristic),
                                           ctypes.POINTER(i32)],
        "cublasLtMatmul": [vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, ctypes.POINTER(_Algo), vp, sz, vp],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, i32
    lib.cublasLtGetVersion.argtypes, lib.cublasLtGetVersion.restype = [], sz  # size_t cublasLtGetVersion(void)
    return lib


def version() -> int:
    """cuBLASLt's version number (cublasLtGetVersion, e.g. 130101 for 13.1.1)."""
    return int(_lib().cublasLtGetVersion())


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"cuBLASLt: {what} failed with status {status}")


def _set(fn, obj, attr: int, value) -> None:
    _check(fn(obj, attr, ctypes.byref(value), ctypes.sizeof(value)), f"set attribute {attr}")


class LtHandle:
    """A cuBLASLt handle, its fixed workspace and the FP8 plans made so far (kept for the process)."""

    def __init__(self, workspace_bytes: int = WORKSPACE_BYTES):
        import cupy as cp
        self.lib = _lib()
        self.h = ctypes.c_void_p()
        _check(self.lib.cublasLtCreate(ctypes.byref(self.h)), "cublasLtCreate")
        self.workspace = cp.empty(workspace_bytes, dtype=cp.uint8)
        self._one, self._zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
        self._plans: dict = {}

    def _layout(self, dtype: int, rows: int, cols: int, ld: int) -> ctypes.c_void_p:
        lay = ctypes.c_void_p()
        _check(self.lib.cublasLtMatrixLayoutCreate(ctypes.byref(lay), dtype, rows, cols, ld), "layout create")
        return lay

    def algos(self, N: int, M: int, K: int, ab: int = CUDA_R_8F_E4M3, cb: int = CUDA_R_32F, ldc: int | None = None,
              count: int = 1, outer: bool = False) -> list:
        """The heuristic's first `count` algorithms for d [M, N] (cb) = a [M, K] @ w [N, K].T, operands of type ab,
        ld of d = ldc (default N), outer: fp8 outer-vector scales (module docstring): a list of (desc, A, B, D
        layouts, algo, preference), best first (host only, cached). An outer plan's scale pointers are set per call."""
        key = (N, M, K, ab, cb, ldc or N, count, outer)
        if key in self._plans:
            return self._plans[key]
        lib = self.lib
        desc = ctypes.c_void_p()
        _check(lib.cublasLtMatmulDescCreate(ctypes.byref(desc), CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc create")
        _set(lib.cublasLtMatmulDescSetAttribute, desc, DESC_TRANSA, ctypes.c_int32(CUBLAS_OP_T))
        _set(lib.cublasLtMatmulDescSetAttribute, desc, DESC_TRANSB, ctypes.c_int32(CUBLAS_OP_N))
        if outer:  # both modes OUTER_VEC_32F (the docs: "all other scaling modes must not be modified")
            for attr in (DESC_A_SCALE_MODE, DESC_B_SCALE_MODE):
                _set(lib.cublasLtMatmulDescSetAttribute, desc, attr, ctypes.c_int32(MATRIX_SCALE_OUTER_VEC_32F))
            self._scales(desc, self.workspace.data.ptr, self.workspace.data.ptr)  # non-null while planning
        a, b, d = self._layout(ab, K, N, K), self._layout(ab, K, M, K), self._layout(cb, N, M, ldc or N)
        pref = ctypes.c_void_p()
        _check(lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "preference create")
        _set(lib.cublasLtMatmulPreferenceSetAttribute, pref, PREF_MAX_WORKSPACE_BYTES,
             ctypes.c_uint64(self.workspace.nbytes))
        res, n = (_Heuristic * count)(), ctypes.c_int(0)
        _check(lib.cublasLtMatmulAlgoGetHeuristic(self.h, desc, a, b, d, d, pref, count, res, ctypes.byref(n)),
               f"heuristic N={N} M={M} K={K} type {ab} out {cb} outer={outer}")
        found = [(desc, a, b, d, res[i].algo, pref) for i in range(n.value) if res[i].state == 0]
        if not found:
            raise CublasError(f"cuBLASLt: no algorithm for N={N} M={M} K={K} type {ab} out {cb} outer={outer} "
                              "on this device")
        self._plans[key] = found
        return found

    def _scales(self, desc, sw_ptr: int, sa_ptr: int) -> None:
        """cuBLAS's A scale = sw (our N weight rows), B scale = sa (our M tokens): device pointers into desc."""
        _set(self.lib.cublasLtMatmulDescSetAttribute, desc, DESC_A_SCALE_POINTER, ctypes.c_void_p(sw_ptr))
        _set(self.lib.cublasLtMatmulDescSetAttribute, desc, DESC_B_SCALE_POINTER, ctypes.c_void_p(sa_ptr))

    def plan(self, N: int, M: int, K: int):
        """(desc, A, B, D layouts, algo) for d [M, N] f32 = aq [M, K] @ w [N, K].T, e4m3 operands (host only)."""
        return self.algos(N, M, K)[0]

    def outer_plan_ok(self, N: int, M: int, K: int, cb: int) -> bool:
        """Whether the heuristic has an outer-scaled fp8 algorithm for this shape and D type (host only, cached)."""
        try:
            self.algos(N, M, K, CUDA_R_8F_E4M3, cb, N, 1, True)
            return True
        except CublasError:
            return False

    def _run(self, plan, w, a, c, beta) -> None:
        import cupy as cp
        desc, al, bl, dl, algo, _ = plan
        ptr = c.data.ptr
        _check(self.lib.cublasLtMatmul(
            self.h, desc, ctypes.byref(self._one), w.data.ptr, al, a.data.ptr, bl, ctypes.byref(beta), ptr, dl,
            ptr, dl, ctypes.byref(algo), self.workspace.data.ptr, self.workspace.nbytes,
            cp.cuda.get_current_stream().ptr), "cublasLtMatmul")

    def fp8_matmul(self, d, aq, wq, sa=None, sw=None, accumulate: bool = False, algo: int = 0,
                   count: int = 1) -> None:
        """d [M, N] (=|+=) aq e4m3 [M, K] @ wq e4m3 [N, K].T on the current CuPy stream (uint8 arrays hold the codes),
        through the heuristic's algorithm number `algo` of its first `count`. Without sa / sw: d f32, unscaled.
        With sa f32 [M] and sw f32 [N] (outer-vector scaling, sm_90): d[m, n] (=|+=) sa[m] * sw[n] * sum, d f32,
        fp16 or bf16 (C = D in place; beta = 1 when accumulate)."""
        from .cublas import _dtype_code
        M, K = aq.shape
        N = wq.shape[0]
        outer = sa is not None
        ok = (wq.shape[1] == K and d.shape == (M, N) and K % 16 == 0 and d.flags.c_contiguous
              and (str(d.dtype) == "float32" or outer) and (sw is not None) == outer)
        if outer:
            ok = ok and sa.shape == (M,) and sw.shape == (N,) and str(sa.dtype) == str(sw.dtype) == "float32"
        if not ok:
            raise CublasError(f"cuBLASLt: bad fp8 operands d{d.shape} {d.dtype}, aq{aq.shape}, wq{wq.shape}, "
                              f"scales {None if sa is None else sa.shape} {None if sw is None else sw.shape}")
        plans = self.algos(N, M, K, CUDA_R_8F_E4M3, _dtype_code(d.dtype), N, count, outer)
        plan = plans[min(algo, len(plans) - 1)]
        if outer:
            self._scales(plan[0], sw.data.ptr, sa.data.ptr)
        self._run(plan, wq, aq, d, self._one if accumulate else self._zero)

    def matmul16(self, c, a, w, accumulate: bool = False, algo: int = 0, count: int = 1) -> None:
        """c [M, N] (=|+=) a [M, K] @ w [N, K].T, fp16/bf16 operands, c f32/fp16/bf16, through the heuristic's
        algorithm number `algo` of its first `count` (gpu/cublas.py gemm_nt's contract, without col0)."""
        from .cublas import _dtype_code
        M, K = a.shape
        N = w.shape[0]
        ab = _dtype_code(a.dtype)
        if (_dtype_code(w.dtype) != ab or w.shape[1] != K or c.shape != (M, N) or not c.flags.c_contiguous
                or ab == CUDA_R_32F):
            raise CublasError(f"cuBLASLt: bad operands c{c.shape} {c.dtype}, a{a.shape} {a.dtype}, w{w.shape}")
        plans = self.algos(N, M, K, ab, _dtype_code(c.dtype), N, count)
        self._run(plans[min(algo, len(plans) - 1)], w, a, c, self._one if accumulate else self._zero)


_HANDLES: dict[int, LtHandle] = {}


def handle() -> LtHandle:
    """The process-wide cuBLASLt handle of the current device (with its workspace: call before any capture)."""
    import cupy as cp
    dev = cp.cuda.Device().id
    if dev not in _HANDLES:
        _HANDLES[dev] = LtHandle()
    return _HANDLES[dev]


def fp8_supported() -> bool:
    """FP8 tensor cores on the current device: compute capability 8.9 (Ada) and up."""
    import cupy as cp
    return _cc(cp.cuda.Device().id) >= 89


@functools.lru_cache(maxsize=None)
def _cc(dev: int) -> int:
    import cupy as cp
    return int(cp.cuda.Device(dev).compute_capability)


# ---- run-time support of outer-vector scaling ----------------------------------------------------------------
# rel. error of the probe's D against float64: D's rounding and Hopper's fp8 accumulation, far below the O(1) error
# of an ignored or swapped scale vector
PROBE_TOL = {"float32": 1e-3, "float16": 3e-3, "bfloat16": 1.6e-2}
_NAN16 = {"float16": 0x7E00, "bfloat16": 0x7FC0}
_OUTER_OK: dict = {}


def outer_scale_ok(out_dtype, accumulate: bool) -> bool:
    """Whether this device's cuBLASLt computes outer-scaled fp8 products into D of out_dtype (beta = 1 onto D when
    accumulate, f32 D only) correctly: one small product against NumPy, once per (device, D type, accumulate),
    outside capture (inside capture an unknown answer is False, not cached). The docs list sm_90 only; the probe
    decides."""
    import cupy as cp
    key = (cp.cuda.Device().id, str(out_dtype), bool(accumulate))
    if key not in _OUTER_OK:
        if cp.cuda.get_current_stream().is_capturing():
            return False
        ok = fp8_supported() and str(out_dtype) in PROBE_TOL and (str(out_dtype) == "float32" or not accumulate)
        _OUTER_OK[key] = ok and _probe(str(out_dtype), bool(accumulate))
    return _OUTER_OK[key]


def _probe(out: str, accumulate: bool) -> bool:
    """d (=|+=) sa[m] * sw[n] * (aq @ wq.T) on 40 tokens x 48 rows x K 64 of random e4m3 codes and scales, against
    float64 (distinct sa / sw: a swapped or ignored scale vector fails); d is NaN first unless accumulated onto."""
    import cupy as cp
    import numpy as np
    from ..quant.formats import fp8_e4m3_decode, fp8_e4m3_encode
    from .gemm import _dtype
    rng = np.random.default_rng(1234)
    M, N, K = 40, 48, 64
    aq, wq = (fp8_e4m3_encode(rng.standard_normal(shape) * 4) for shape in ((M, K), (N, K)))  # |D| << fp16 max
    sa, sw = rng.uniform(0.25, 4.0, M).astype(np.float32), rng.uniform(0.25, 4.0, N).astype(np.float32)
    d0 = (rng.standard_normal((M, N)) * 50).astype(np.float32)
    want = (sa[:, None] * sw[None, :]).astype(np.float64) * (fp8_e4m3_decode(aq) @ fp8_e4m3_decode(wq).T)
    if out == "float32":
        want = want + d0 if accumulate else want
        d = cp.asarray(d0 if accumulate else np.full((M, N), np.nan, np.float32))
    else:
        d = cp.full((M, N), _NAN16[out], dtype=cp.uint16).view(_dtype(out))
    try:
        handle().fp8_matmul(d, cp.asarray(aq), cp.asarray(wq), cp.asarray(sa), cp.asarray(sw), accumulate)
        cp.cuda.get_current_stream().synchronize()
    except Exception:  # CublasError (refused: heuristic or matmul status) or a CUDA error on the sync: not usable
        return False
    if out == "bfloat16":
        got = (d.view(cp.uint16).get().astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    else:
        got = d.get().astype(np.float64)
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    return bool(np.isfinite(err) and err < PROBE_TOL[out])
