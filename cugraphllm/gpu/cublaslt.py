"""cuBLASLt FP8 matmul through ctypes (W8A8 prefill), capturable in a CUDA graph.

d f32 [M, N] = aq e4m3 [M, K] @ wq e4m3 [N, K].T, unscaled (the caller applies the per-token and per-row scales in
its epilogue). cuBLASLt's FP8 rules (cublasLtMatmul docs): "TN" only (A transposed, B not), compute 32F, scale
type 32F, K a multiple of 16 and 16-byte aligned operands; C/D may be 32F. In column-major terms our row-major
product is D^T [N, M] = W^T^T... i.e. A = W (col-major [K, N], ld K, op T), B = aq (col-major [K, M], ld K, op N),
D col-major [N, M], ld N: exactly TN.
One handle per device with a fixed workspace (never allocates inside capture); a plan (descriptors and the
heuristic's algorithm) per (N, M, K), made on first use: make them before capture (gemm_quant.allocate warms them).
"""
from __future__ import annotations

import ctypes
import functools

from .cublas import CublasError

CUDA_R_32F, CUDA_R_8F_E4M3 = 0, 28
CUBLAS_COMPUTE_32F = 68
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
DESC_TRANSA, DESC_TRANSB = 3, 4
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
    return lib


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
              count: int = 1) -> list:
        """The heuristic's first `count` algorithms for d [M, N] (cb) = a [M, K] @ w [N, K].T, operands of type ab,
        ld of d = ldc (default N): a list of (desc, A, B, D layouts, algo), best first (host only, cached)."""
        key = (N, M, K, ab, cb, ldc or N, count)
        if key in self._plans:
            return self._plans[key]
        lib = self.lib
        desc = ctypes.c_void_p()
        _check(lib.cublasLtMatmulDescCreate(ctypes.byref(desc), CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc create")
        _set(lib.cublasLtMatmulDescSetAttribute, desc, DESC_TRANSA, ctypes.c_int32(CUBLAS_OP_T))
        _set(lib.cublasLtMatmulDescSetAttribute, desc, DESC_TRANSB, ctypes.c_int32(CUBLAS_OP_N))
        a, b, d = self._layout(ab, K, N, K), self._layout(ab, K, M, K), self._layout(cb, N, M, ldc or N)
        pref = ctypes.c_void_p()
        _check(lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "preference create")
        _set(lib.cublasLtMatmulPreferenceSetAttribute, pref, PREF_MAX_WORKSPACE_BYTES,
             ctypes.c_uint64(self.workspace.nbytes))
        res, n = (_Heuristic * count)(), ctypes.c_int(0)
        _check(lib.cublasLtMatmulAlgoGetHeuristic(self.h, desc, a, b, d, d, pref, count, res, ctypes.byref(n)),
               f"heuristic N={N} M={M} K={K} type {ab}")
        found = [(desc, a, b, d, res[i].algo, pref) for i in range(n.value) if res[i].state == 0]
        if not found:
            raise CublasError(f"cuBLASLt: no algorithm for N={N} M={M} K={K} type {ab} on this device")
        self._plans[key] = found
        return found

    def plan(self, N: int, M: int, K: int):
        """(desc, A, B, D layouts, algo) for d [M, N] f32 = aq [M, K] @ w [N, K].T, e4m3 operands (host only)."""
        return self.algos(N, M, K)[0]

    def _run(self, plan, w, a, c, beta) -> None:
        import cupy as cp
        desc, al, bl, dl, algo, _ = plan
        ptr = c.data.ptr
        _check(self.lib.cublasLtMatmul(
            self.h, desc, ctypes.byref(self._one), w.data.ptr, al, a.data.ptr, bl, ctypes.byref(beta), ptr, dl,
            ptr, dl, ctypes.byref(algo), self.workspace.data.ptr, self.workspace.nbytes,
            cp.cuda.get_current_stream().ptr), "cublasLtMatmul")

    def fp8_matmul(self, d, aq, wq) -> None:
        """d f32 [M, N] = aq e4m3 [M, K] @ wq e4m3 [N, K].T on the current CuPy stream (uint8 arrays hold the codes)."""
        M, K = aq.shape
        N = wq.shape[0]
        if wq.shape[1] != K or d.shape != (M, N) or str(d.dtype) != "float32" or K % 16:
            raise CublasError(f"cuBLASLt: bad fp8 operands d{d.shape} {d.dtype}, aq{aq.shape}, wq{wq.shape}")
        self._run(self.plan(N, M, K), wq, aq, d, self._zero)

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
