"""Programmatic dependent launch (PDL, sm_90+): a decode GEMV may start while the kernel before it finishes.

A decode GEMV of a quantized 7B layer streams 6-45 MB in 8-25 us, and about 5 us of each launch is ramp-up
(block launch, staging, the first loads' latency) and tail (the last wave draining): the fp16 GEMVs of the same
step reach 95% of the copy rate on the 180 MB w13 but 56% on the 34 MB wo (benchmarks/results/
decode_anatomy_2026-11-30.json). With PDL the next GEMV's blocks are launched once every block of the current one
is running; they issue their weight loads (weights are never written by a step) and then wait in
`griddepcontrol.wait` until the previous grid has completed and its writes are visible (common.cuh `pdl_enter`).

`launch(fn, grid, block, args, shared_mem, pdl=True)` sets CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
through cuLaunchKernelEx (ctypes on libcuda; CuPy's RawKernel call has no launch attributes). Stream capture
turns it into a programmatic edge of the graph. Only kernels that call pdl_enter() before reading anything an
earlier kernel wrote may be launched with pdl=True. Off: CUGRAPHLLM_PDL=0, or `PDL = False` before capture (A/B).
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from ..errors import BackendError

PDL = os.environ.get("CUGRAPHLLM_PDL", "1") != "0"
_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION = 6   # CUlaunchAttributeID (cuda.h)
_ATTR_CLUSTER_DIMENSION = 4
_SCALARS = {np.dtype(np.int32): ctypes.c_int32, np.dtype(np.uint32): ctypes.c_uint32,
            np.dtype(np.int64): ctypes.c_int64, np.dtype(np.uint64): ctypes.c_uint64,
            np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


class _Attr(ctypes.Structure):   # CUlaunchAttribute: id, 4 bytes padding, a 64-byte value union
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4), ("value", ctypes.c_uint32 * 16)]


class _Config(ctypes.Structure):  # CUlaunchConfig
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("smem", ctypes.c_uint),
                ("stream", ctypes.c_void_p), ("attrs", ctypes.POINTER(_Attr)), ("n_attrs", ctypes.c_uint)]


_ATTR = _Attr(_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION)   # the one launch attribute, value 1: allowed
_ATTR.value[0] = 1
_state: dict = {}


def _driver():
    """libcuda's cuLaunchKernelEx, or None where it is missing (then launches go without PDL)."""
    if "fn" not in _state:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
            f = lib.cuLaunchKernelEx
            f.argtypes = [ctypes.POINTER(_Config), ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
            f.restype = ctypes.c_int
            _state["fn"], _state["lib"] = f, lib
        except (OSError, AttributeError):
            _state["fn"] = None
    return _state["fn"]


def libcuda():
    """The ctypes handle of libcuda (gpu/tma.py encodes tensor maps through it), or None where it is missing."""
    _driver()
    return _state.get("lib")


def _capable() -> bool:
    """PDL needs compute capability 9.0+ on the current device (cached per device)."""
    import cupy as cp
    dev = cp.cuda.runtime.getDevice()
    key = ("cc", dev)
    if key not in _state:
        _state[key] = int(cp.cuda.Device(dev).compute_capability) >= 90
    return _state[key]


def _param(a):
    """A ctypes value of one kernel argument: a CuPy array's device pointer, a NumPy scalar, or a ctypes object
    passed by value as it is (a tensor map, gpu/tma.py)."""
    if hasattr(a, "data") and hasattr(a.data, "ptr"):
        return ctypes.c_void_p(a.data.ptr)
    if isinstance(a, np.generic) and a.dtype in _SCALARS:
        return _SCALARS[a.dtype](a.item())
    if isinstance(a, ctypes.Array):
        return a
    raise TypeError(f"pdl.launch: unsupported kernel argument {type(a).__name__} (pass CuPy arrays or NumPy scalars)")


def _attrs(use_pdl: bool, cluster) -> tuple:
    """(CUlaunchAttribute array, its length) for this launch kind, built once per kind: eager mode launches every
    kernel of a step through here."""
    key = ("attrs", use_pdl, cluster)
    if key not in _state:
        attrs = [_ATTR] if use_pdl else []
        if cluster:
            a = _Attr(_ATTR_CLUSTER_DIMENSION)
            a.value[0], a.value[1], a.value[2] = cluster
            attrs.append(a)
        _state[key] = ((_Attr * len(attrs))(*attrs), len(attrs))
    return _state[key]


def _error(rc: int) -> str:
    msg = ctypes.c_char_p()
    _state["lib"].cuGetErrorString(rc, ctypes.byref(msg))
    return (msg.value or b"error %d" % rc).decode()


def launch(fn, grid, block, args, shared_mem: int = 0, pdl: bool = False, cluster=None, driver: bool = False) -> None:
    """fn(grid, block, args, shared_mem=...) on the current stream (fn: a RawKernel or a cupy Function); with pdl
    (and PDL on, sm_90+, libcuda has cuLaunchKernelEx) as a programmatic dependent launch. cluster (x, y, z): the
    thread block cluster shape, which the kernel needs; driver: always through cuLaunchKernelEx (tensor-map
    arguments). Neither has a plain fallback: they raise where they cannot launch."""
    global PDL
    use_pdl = pdl and PDL
    need = bool(cluster) or driver
    f = _driver() if use_pdl or need else None
    if f is None or not _capable():
        if need:
            raise BackendError("a cluster or tensor-map launch needs sm_90 and cuLaunchKernelEx (libcuda)")
        fn(grid, block, args, shared_mem=shared_mem)
        return
    import cupy as cp
    vals = [_param(a) for a in args]
    ptrs = (ctypes.c_void_p * max(1, len(vals)))(*[ctypes.addressof(v) for v in vals])
    g, b = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
    arr, n_attrs = _attrs(use_pdl, tuple(cluster) if cluster else None)
    cfg = _Config((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), shared_mem,
                  cp.cuda.get_current_stream().ptr, ctypes.cast(arr, ctypes.POINTER(_Attr)), n_attrs)
    rc = f(ctypes.byref(cfg), getattr(fn, "kernel", fn).ptr, ptrs, None)  # RawKernel, or a Module's Function
    if rc and need:
        raise BackendError(f"launch of grid {g} (cluster {cluster}) failed: {_error(rc)}")
    if rc:  # e.g. a driver without PDL: say so once, then launch everything the plain way
        PDL = False
        import warnings
        warnings.warn(f"cugraphllm: programmatic dependent launch failed ({_error(rc)});"
                      " launching without it from now on", RuntimeWarning, stacklevel=2)
        fn(grid, block, args, shared_mem=shared_mem)
