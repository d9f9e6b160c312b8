"""Tensor maps (CUtensorMap, sm_90+) for kernels that load tiles with the TMA unit (kernels/gemm_w4_wgmma.cu).

`tensor_map(arr, box_cols, box_rows, swizzle)` encodes a row-major 2-D CuPy array through libcuda's
cuTensorMapEncodeTiled: boxes of box_cols x box_rows elements, zeros where a box leaves the array. A map only
describes memory (address, shape, strides), so one made outside a graph capture stays valid inside it; kernels take
it by value (a 128-byte __grid_constant__ parameter), so the ctypes copy must only outlive the launch call. Maps are
cached per (device, address, shape, dtype, box, swizzle): an engine's weights and activation buffers never move.
"""
from __future__ import annotations

import ctypes

from ..errors import BackendError
from . import pdl
from .cuda_kernels import device_id

_DTYPES = {"uint32": (2, 4), "float16": (6, 2), "bfloat16": (9, 2)}  # CUtensorMapDataType, bytes
SWIZZLE = {0: 0, 32: 1, 64: 2, 128: 3}                                # bytes -> CUtensorMapSwizzle
_L2_PROMOTION_128B, _FILL_ZEROS = 2, 0
_cache: dict = {}


def tensor_map(arr, box_cols: int, box_rows: int, swizzle: int = 0):
    """The (cached) tensor map of a C-contiguous 2-D array [rows, cols]; its row stride must be a multiple of 16
    bytes and its address of 16; box_cols * itemsize bytes a box row (<= the swizzle span when swizzled)."""
    rows, cols = arr.shape
    dt = str(arr.dtype)
    key = (device_id(), arr.data.ptr, rows, cols, dt, box_cols, box_rows, swizzle)
    m = _cache.get(key)
    if m is None:
        m = _cache[key] = _encode(arr.data.ptr, rows, cols, dt, box_cols, box_rows, swizzle)
    return m


def _encode(ptr: int, rows: int, cols: int, dt: str, box_cols: int, box_rows: int, swizzle: int):
    if (cols * _DTYPES[dt][1]) % 16:
        raise BackendError(f"tensor map of [{rows}, {cols}] {dt}: rows and address must be 16-byte aligned")
    return _encode_nd(ptr, dt, (cols, rows), (cols * _DTYPES[dt][1],), (box_cols, box_rows), swizzle)


def tensor_map_nd(arr, dims: tuple, strides: tuple, box: tuple):
    """The (cached) unswizzled tensor map of arr's memory seen as a tensor of `dims` elements (innermost first;
    up to 5) with byte `strides` for dims[1:] (multiples of 16), boxes of `box` elements."""
    key = (device_id(), arr.data.ptr, str(arr.dtype), tuple(dims), tuple(strides), tuple(box))
    m = _cache.get(key)
    if m is None:
        m = _cache[key] = _encode_nd(arr.data.ptr, str(arr.dtype), dims, strides, box, 0)
    return m


def _encode_nd(ptr: int, dt: str, dims: tuple, strides: tuple, box: tuple, swizzle: int):
    code, size = _DTYPES[dt]
    lib = pdl.libcuda()
    if lib is None or not hasattr(lib, "cuTensorMapEncodeTiled"):
        raise BackendError("tensor maps need libcuda's cuTensorMapEncodeTiled (CUDA 12+ driver)")
    if ptr % 16 or any(s % 16 for s in strides):
        raise BackendError(f"tensor map {dims} {dt}: strides {strides} and address must be 16-byte aligned")
    # cuTensorMapEncodeTiled writes into 64-byte aligned memory; a launch copies the 128 bytes from anywhere, so the
    # map is kept in a plain ctypes array that owns its memory
    n = len(dims)
    m = (ctypes.c_uint64 * 16)()
    buf = ctypes.create_string_buffer(128 + 64)
    aligned = (ctypes.c_uint64 * 16).from_address((ctypes.addressof(buf) + 63) & ~63)
    cdims, cstr = (ctypes.c_uint64 * n)(*dims), (ctypes.c_uint64 * max(1, n - 1))(*strides)
    cbox, estr = (ctypes.c_uint32 * n)(*box), (ctypes.c_uint32 * n)(*([1] * n))
    rc = lib.cuTensorMapEncodeTiled(ctypes.byref(aligned), code, n, ctypes.c_void_p(ptr), cdims, cstr, cbox, estr,
                                    0, SWIZZLE[swizzle], _L2_PROMOTION_128B, _FILL_ZEROS)
    if rc:
        raise BackendError(f"cuTensorMapEncodeTiled failed ({rc}) for {dims} {dt}, strides {strides}, box {box}, "
                           f"swizzle {swizzle}")
    ctypes.memmove(m, aligned, 128)
    return m
