"""Safetensors read (memory-mapped, validated) and write, in NumPy only.

Format: 8-byte little-endian u64 header length N, then N bytes of JSON
`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the data
region; offsets are relative to the start of the data region (byte 8 + N).

We parse the header ourselves instead of `safetensors.safe_open`, so that every defect of a truncated
or corrupt file becomes one `CheckpointError` line naming the file and the tensor. Tensor data stays
in the page cache: `SafetensorsFile.raw(name)` is a read-only view of the mmap, never a copy.
bfloat16 is stored as raw uint16 (NumPy has no bfloat16); `bf16_to_f32` widens it exactly.
"""
from __future__ import annotations

import json
import math
import mmap
import struct
from pathlib import Path

import numpy as np

from .errors import CheckpointError

# safetensors dtype -> bytes per element (every dtype of the spec, so sizes can be checked)
ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
            "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
# the float dtypes we load; raw storage dtype of each (BF16 kept as its bits)
RAW_DTYPE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
NUMPY_TO_ST = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
# integer dtypes of packed quantized tensors (read with raw(name, ints=True), written by write_safetensors_typed)
INT_DTYPE = {"I32": np.dtype("<i4"), "U32": np.dtype("<u4"), "I8": np.dtype("i1"), "U8": np.dtype("u1")}
_MAX_HEADER = 100 << 20  # the reference implementation refuses headers above 100 MB too


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bits -> float32 (exact: bf16 is the top half of an f32)."""
    wide = bits.astype(np.uint32)
    wide <<= 16  # in place: one temporary, not two
    return wide.view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> uint16 bfloat16 bits, round to nearest even (NaN kept quiet)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16
    nan = np.isnan(x)
    return np.where(nan, np.uint16(0x7FC0), rounded.astype(np.uint16))


def release_pages(mm: mmap.mmap, view: np.ndarray) -> None:
    """Drop the pages behind `view` (a slice of an np.frombuffer over mm) from this process: MADV_DONTNEED on a
    read-only file map keeps them in the page cache (a later read faults them back in) but takes them out of the
    resident set, so that streaming a checkpoint once does not grow RSS by its size. No-op where unsupported."""
    if not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED") or view.nbytes == 0:
        return
    base = np.frombuffer(mm, np.uint8, count=1).__array_interface__["data"][0]
    start = view.__array_interface__["data"][0] - base  # the byte span (a column slice is strided)
    first = start + sum((n - 1) * st for n, st in zip(view.shape, view.strides) if st < 0)
    last = start + sum((n - 1) * st for n, st in zip(view.shape, view.strides) if st > 0) + view.itemsize
    lo = first // mmap.PAGESIZE * mmap.PAGESIZE
    hi = min(len(mm), -(-last // mmap.PAGESIZE) * mmap.PAGESIZE)
    if 0 <= lo < hi:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


class SafetensorsFile:
    """One .safetensors file: validated header plus a read-only mmap of the whole file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                self._check_prefix(f, size)
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise CheckpointError(f"{self.path}: cannot read ({e.strerror or e})") from None
        self.size = size
        header = self._parse_json(bytes(self._mm[8:8 + self._n]))
        self.metadata = header.pop("__metadata__", None) or {}
        self.tensors = {name: self._check_entry(name, info) for name, info in header.items()}
        self._check_layout()

    def _check_prefix(self, f, size: int) -> None:
        if size < 8:
            raise CheckpointError(f"{self.path}: {size} bytes is too short for a safetensors file "
                                  "(truncated or not safetensors)")
        f.seek(0)
        (n,) = struct.unpack("<Q", f.read(8))
        if n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(f"{self.path}: header length {n} exceeds the file size {size} "
                                  "(truncated or not safetensors)")
        self._n = n

    def _parse_json(self, raw: bytes) -> dict:
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting: RecursionError
            raise CheckpointError(f"{self.path}: safetensors header is not valid JSON ({e})") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{self.path}: safetensors header is not a JSON object")
        return header

    def _check_entry(self, name: str, info) -> tuple[str, tuple, int, int]:
        where = f"{self.path}: tensor {name!r}"
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise CheckpointError(f"{where}: malformed header entry {info!r}") from None
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise CheckpointError(f"{where}: unknown dtype {dtype!r}")
        if not all(type(d) is int and d >= 0 for d in shape) or not all(
                type(o) is int for o in (begin, end)) or not 0 <= begin <= end:
            raise CheckpointError(f"{where}: malformed shape {list(shape)} or data_offsets {[begin, end]}")
        nbytes = math.prod(shape) * ITEMSIZE[dtype]  # Python ints: a lying shape cannot wrap around int64
        if end - begin != nbytes:
            raise CheckpointError(f"{where}: data_offsets span {end - begin} bytes but shape "
                                  f"{list(shape)} of {dtype} needs {nbytes}")
        data_size = self.size - 8 - self._n
        if end > data_size:
            raise CheckpointError(f"{where}: data ends at byte {end} but the file holds only {data_size} "
                                  "bytes of data (truncated)")
        return dtype, shape, 8 + self._n + begin, 8 + self._n + end

    def _check_layout(self) -> None:
        """The tensors must tile the data region from byte 0 without overlap or gap (as the reference reader
        requires): offsets that overlap would silently load one tensor's bytes as another's."""
        at = 8 + self._n
        for name, (_, _, start, end) in sorted(self.tensors.items(), key=lambda kv: kv[1][2:]):
            if start != at:
                what = "overlaps the previous tensor" if start < at else "leaves a gap after the previous tensor"
                raise CheckpointError(f"{self.path}: tensor {name!r}: data_offsets [{start - 8 - self._n}, "
                                      f"{end - 8 - self._n}] {what} (corrupt header)")
            at = end

    def dtype(self, name: str) -> str:
        return self.tensors[name][0]

    def release(self, view: np.ndarray) -> None:
        """A slice of raw() has been read: drop its pages from this process (release_pages)."""
        release_pages(self._mm, view)

    def shape(self, name: str) -> tuple:
        return self.tensors[name][1]

    def raw(self, name: str, ints: bool = False) -> np.ndarray:
        """Read-only view of the tensor's bytes in its storage dtype (uint16 for BF16); ints: integer dtypes
        (packed quantized tensors) are accepted too."""
        dtype, shape, start, end = self.tensors[name]
        known = {**RAW_DTYPE, **INT_DTYPE} if ints else RAW_DTYPE
        if dtype not in known:
            raise CheckpointError(f"{self.path}: tensor {name!r} has dtype {dtype}; supported: "
                                  f"{', '.join(known)}")
        count = (end - start) // ITEMSIZE[dtype]
        return np.frombuffer(self._mm, dtype=known[dtype], count=count, offset=start).reshape(shape)


# ---- writer (used by convert.py and the tests) ---------------------------------------------------
def _encode(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return f32_to_bf16(np.asarray(x, dtype=np.float32))
    return np.ascontiguousarray(x, dtype=RAW_DTYPE[dtype])


def _write(path: str | Path, tensors: dict, dtype_of, encode, metadata: dict | None) -> int:
    """The header (dtype_of(name, x) -> safetensors dtype per tensor), then each tensor encoded (encode(x, st) ->
    little-endian array) and written one at a time, so peak extra memory is one tensor. Returns the data bytes."""
    header, offset, sts = {}, 0, []
    for name, x in tensors.items():
        st = dtype_of(name, x)
        nbytes = int(np.prod(x.shape, dtype=np.int64)) * ITEMSIZE[st]
        header[name] = {"dtype": st, "shape": list(x.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
        sts.append(st)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # pad so that the data region starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for x, st in zip(tensors.values(), sts):
            f.write(encode(x, st).tobytes())
    return offset


def write_safetensors(path: str | Path, tensors: dict, dtype: str = "float32",
                      metadata: dict | None = None) -> int:
    """Write `tensors` (name -> float array) converted to dtype float32/float16/bfloat16.

    Tensors are encoded and written one at a time, so peak extra memory is one tensor. Returns the
    number of data bytes written.
    """
    st = NUMPY_TO_ST.get(dtype)
    if st is None:
        raise ValueError(f"dtype must be one of {list(NUMPY_TO_ST)}, got {dtype!r}")
    return _write(path, tensors, lambda name, x: st, _encode, metadata)


_NP_TO_ST = {np.dtype(v): k for k, v in {**RAW_DTYPE, **INT_DTYPE}.items() if k != "BF16"}


def _own_dtype(name: str, x) -> str:
    st = _NP_TO_ST.get(np.dtype(x.dtype))
    if st is None:
        raise ValueError(f"tensor {name!r}: dtype {x.dtype} cannot be written")
    return st


def write_safetensors_typed(path: str | Path, tensors: dict, metadata: dict | None = None) -> int:
    """Write `tensors` (name -> array) each in its own dtype (float32/float16, int32/uint32/int8/uint8), one at
    a time. Returns the number of data bytes written."""
    return _write(path, tensors, _own_dtype,
                  lambda x, st: np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")), metadata)
