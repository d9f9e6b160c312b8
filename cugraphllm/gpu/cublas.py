"""cuBLAS GemmEx through ctypes, capturable in a CUDA graph (CuPy's own cuBLAS wrappers refuse capture).

One handle per process with an explicit workspace (cublasSetWorkspace), so cuBLAS never allocates: without it
cuBLAS >= 12.2 calls cudaMallocAsync, which inside capture records alloc/free nodes into the graph.
cublasSetStream resets the workspace to cuBLAS's default pool, so every call sets stream then workspace.
Pointer mode stays HOST: alpha/beta are constants read at capture time.
"""
from __future__ import annotations

import ctypes
import functools

from ..errors import BackendError

CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF = 0, 2, 14
CUBLAS_COMPUTE_32F = 68
CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99
WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation on Hopper


class CublasError(BackendError):
    pass


def _find_library() -> ctypes.CDLL:
    """The libcublas CuPy uses (cuda.pathfinder), else the loader's search path."""
    try:
        from cuda import pathfinder
        return ctypes.CDLL(pathfinder.load_nvidia_dynamic_lib("cublas").abs_path)
    except Exception:
        pass
    for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise CublasError("cuBLAS: libcublas not found (install nvidia-cublas or the CUDA toolkit)")


@functools.lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    lib = _find_library()
    vp, i32 = ctypes.c_void_p, ctypes.c_int
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
    lib.cublasSetStream_v2.argtypes = [vp, vp]
    lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
    lib.cublasGemmEx.argtypes = [vp, i32, i32, i32, i32, i32, vp, vp, i32, i32, vp, i32, i32, vp, vp, i32, i32,
                                 i32, i32]
    for f in (lib.cublasCreate_v2, lib.cublasSetStream_v2, lib.cublasSetWorkspace_v2, lib.cublasGemmEx):
        f.restype = i32
    return lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"cuBLAS: {what} failed with status {status}")


class Handle:
    """A cuBLAS handle bound to a fixed workspace buffer (kept alive as long as this object, i.e. the process)."""

    def __init__(self, workspace_bytes: int = WORKSPACE_BYTES):
        import cupy as cp
        self.lib = _lib()
        h = ctypes.c_void_p()
        _check(self.lib.cublasCreate_v2(ctypes.byref(h)), "cublasCreate")
        self.h = h
        self.workspace = cp.empty(workspace_bytes, dtype=cp.uint8)
        self._one = ctypes.c_float(1.0)
        self._zero = ctypes.c_float(0.0)

    def _bind(self, stream_ptr: int) -> None:
        _check(self.lib.cublasSetStream_v2(self.h, ctypes.c_void_p(stream_ptr)), "cublasSetStream")
        _check(self.lib.cublasSetWorkspace_v2(self.h, ctypes.c_void_p(self.workspace.data.ptr),
                                              self.workspace.nbytes), "cublasSetWorkspace")

    def gemm_nt(self, c, a, w, accumulate: bool = False, m: int | None = None, col0: int = 0) -> None:
        """c[:m, col0:col0+N] (=|+=) a[:m] @ w.T on the current CuPy stream; a [M, K], w [N, K] fp16/bf16,
        c [M, >= col0 + N] f32/fp16/bf16 (col0 > 0: a column slab of c, e.g. one slab of dequantized weight rows).

        Row-major C = A W^T is column-major C^T = W^T... i.e. GemmEx(op(W)=T, op(A)=N, m=N, n=M, k=K), ldc = c's width.
        """
        import cupy as cp
        m = a.shape[0] if m is None else m
        n, k = w.shape
        ab, cb = _dtype_code(a.dtype), _dtype_code(c.dtype)
        if (_dtype_code(w.dtype) != ab or a.shape[1] != k or c.shape[1] < col0 + n or c.shape[0] < m
                or not c.flags.c_contiguous):
            raise CublasError(f"cuBLAS: bad shapes/dtypes c{c.shape} a{a.shape} w{w.shape} col0={col0}")
        self._bind(cp.cuda.get_current_stream().ptr)
        beta = self._one if accumulate else self._zero
        ldc = c.shape[1]
        _check(self.lib.cublasGemmEx(
            self.h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, ctypes.byref(self._one),
            w.data.ptr, ab, k, a.data.ptr, ab, k, ctypes.byref(beta), c.data.ptr + col0 * c.itemsize, cb, ldc,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP), "cublasGemmEx")


def _dtype_code(dt) -> int:
    name = str(dt)
    codes = {"float32": CUDA_R_32F, "float16": CUDA_R_16F, "bfloat16": CUDA_R_16BF}
    if name not in codes:
        raise CublasError(f"cuBLAS: unsupported dtype {name}")
    return codes[name]


_HANDLES: dict[int, Handle] = {}


def handle() -> Handle:
    """The process-wide handle of the current device (created, with its workspace, on first use: call this
    before any capture)."""
    from .cuda_kernels import device_id
    dev = device_id()
    if dev not in _HANDLES:
        _HANDLES[dev] = Handle()
    return _HANDLES[dev]
