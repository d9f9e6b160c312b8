"""gemm_quant's device buffers (graphs bake their addresses in: nothing allocates inside a capture): sizes per
model, format and largest prefill bucket, allocation before capture, views by name. gemm_quant.py re-exports these
names; its module docstring says when the engine calls them.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendError
from ..quant.formats import FORMATS, QuantLinear
from . import gemm
from . import gemm_quant_tc as tc
from . import quant_slabs as slabs


def check(cond: bool, what: str) -> None:
    if not cond:
        raise BackendError(f"gemm_quant: {what}")


_WS: dict = {}
_RETIRED: list = []


def _sizes(config, fmt: str, max_tokens: int, dtype) -> dict:
    """Bytes of each buffer for a model: act/aq per token row, g/d the widest GEMM output, slab <= SLAB_BYTES."""
    K = max(config.dim, config.hidden_dim)
    mats = [(config.qkv_dim, config.dim), (config.dim, config.dim), (2 * config.hidden_dim, config.dim),
            (config.dim, config.hidden_dim)]
    cols = max(n for n, _ in mats)
    t = gemm._dtype(dtype).itemsize
    out = {"act": max_tokens * K * t, "g": max_tokens * cols * t,
           "tcws": tc.WS_BYTES}
    for name in slabs.SLABS:   # two alternating slabs (quant_slabs.py)
        out[name] = max(slabs.slab_rows(n, k, t) * k * t for n, k in mats)
    if fmt == "fp8":
        out.update(aq=max_tokens * K, sa=max_tokens * 4, d=max_tokens * cols * 4)
    return out


def layer_formats(weights) -> set:
    """The formats of the quantized layer matrices of (host or device) Weights: the ones the prefill GEMMs meet
    (the LM head runs on one row, through the GEMV)."""
    return {m.fmt for lw in weights.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2) if isinstance(m, QuantLinear)}


def buffer_bytes(config, fmt: str, max_tokens: int, dtype="float16") -> int:
    """Device bytes of allocate()'s buffers alone (no cuBLAS / cuBLASLt workspace)."""
    check(fmt in FORMATS, f"unsupported format {fmt!r}; supported: {', '.join(FORMATS)}")
    return sum(_sizes(config, fmt, max_tokens, dtype).values())


def workspace_bytes(config, fmt: str, max_tokens: int, dtype="float16") -> int:
    """Device bytes allocate() takes for a model (ModelConfig), format and largest prefill bucket, handles'
    workspaces included (cuBLAS 32 MiB is shared with gemm.py; cuBLASLt 32 MiB for fp8)."""
    from . import cublas, cublaslt
    extra = cublaslt.WORKSPACE_BYTES if fmt == "fp8" else 0
    return buffer_bytes(config, fmt, max_tokens, dtype) + cublas.WORKSPACE_BYTES + extra


def allocate(config, fmt: str, max_tokens: int, dtype="float16") -> None:
    """Allocate every buffer (and the cuBLAS / cuBLASLt handles) of this format for buckets up to max_tokens rows.
    Call before capturing any graph that runs these ops."""
    from . import cublas, cublaslt
    check(fmt in FORMATS, f"unsupported format {fmt!r}; supported: {', '.join(FORMATS)}")
    cublas.handle()
    if fmt == "fp8" and cublaslt.fp8_supported():
        cublaslt.handle()
    for name, nbytes in _sizes(config, fmt, max_tokens, dtype).items():
        _buf(name, nbytes)
    if fmt == "fp8" and cublaslt.fp8_supported():
        from . import gemm_quant_lt as lt
        lt.probe(dtype)  # does cuBLASLt apply the fp8 scales itself here (gemm_quant_lt.py)? Asked before capture


def allocate_layers(config, weights, max_tokens: int, dtype="float16") -> None:
    """allocate() for each format of the (device) weights' quantized layer matrices, at full size before any capture:
    grown bucket by bucket instead, each smaller buffer would stay allocated (graphs may point at it)."""
    for fmt in sorted(layer_formats(weights)):
        allocate(config, fmt, max_tokens, dtype)


def _buf(name: str, nbytes: int):
    """A flat uint8 device buffer of at least nbytes; grows only outside capture (graphs keep old addresses)."""
    import cupy as cp
    key = (cp.cuda.Device().id, name)
    buf = _WS.get(key)
    if buf is None or buf.nbytes < nbytes:
        check(not cp.cuda.get_current_stream().is_capturing(),
              f"buffer {name!r} of {nbytes} bytes needed inside capture: call gemm_quant.allocate() first")
        if buf is not None:
            _RETIRED.append(buf)  # graphs captured earlier may still point at it: never free
        buf = cp.empty(max(nbytes, 0 if buf is None else buf.nbytes), dtype=cp.uint8)
        _WS[key] = buf
    return buf


def _view(name: str, shape: tuple, dtype):
    dt = gemm._dtype(dtype)
    n = int(np.prod(shape)) * dt.itemsize
    return _buf(name, n)[:n].view(dt).reshape(shape)


def _tcws():
    """The tc path's f32 split-K partials."""
    return _view("tcws", (tc.WS_BYTES // 4,), "float32")
