"""Loading the `cuda` engine: which weight formats a run meets, the weights' upload (16-bit, quantized at load, or
packed as they are), and the memory pre-flight with its one-line errors (gpu/memory.py holds the estimate).
CudaEngine and the tensor-parallel engine call these before they allocate anything.
"""
from __future__ import annotations

from ..config import ModelConfig, RuntimeConfig
from ..errors import BackendError
from .state import trim_pool, upload_weights


def quant_settings(runtime: RuntimeConfig) -> tuple:
    """(format or None, group size, quantize the LM head) of a RuntimeConfig (defaults before the CLI fields)."""
    return (getattr(runtime, "quant", None), getattr(runtime, "group_size", 128),
            bool(getattr(runtime, "quant_head", False)))


def layer_formats(runtime: RuntimeConfig, weights=None) -> set:
    """The quantized formats the prefill GEMMs will meet: packed host weights' own, else --quant's."""
    from . import gemm_quant
    from .quant_upload import is_packed
    if weights is not None and is_packed(weights):
        return gemm_quant.layer_formats(weights)
    return {quant_settings(runtime)[0]} - {None}


def upload(weights, dtype, runtime: RuntimeConfig, progress=None):
    """Host weights (or one GPU's shard of them) to the current device: 16-bit, quantized at load (--quant), or
    packed layers as they are."""
    from .quant_upload import is_packed, upload_quant_weights
    fmt, group, head = quant_settings(runtime)
    if fmt is None and not is_packed(weights):
        return upload_weights(weights, dtype, progress)
    return upload_quant_weights(weights, dtype, fmt, group, head, progress)


def model_weight_bytes(config: ModelConfig, runtime: RuntimeConfig, weights=None) -> int:
    """Device bytes of the weights this engine will hold (already-packed host weights: their own size)."""
    from .quant_upload import is_packed, weight_bytes
    if weights is not None and is_packed(weights):
        return int(weights.nbytes())
    fmt, group, head = quant_settings(runtime)
    return weight_bytes(config, fmt, group, head)[0]


def free_bytes() -> int:
    """Free device memory once CuPy's cached blocks are given back (tests monkeypatch it)."""
    import cupy as cp
    trim_pool()
    return cp.cuda.runtime.memGetInfo()[0]


def check_gpu(config: ModelConfig, runtime: RuntimeConfig, weight_bytes: int, staging: int = 0,
               quant=()) -> None:
    """Pre-flight: gpu/memory.py's estimate of everything the engine will allocate against the free memory; the
    error names the largest --max-seq-len that fits."""
    try:
        import cupy as cp
        ok = cp.cuda.is_available()
    except Exception as exc:
        raise BackendError(f"cuda backend: CuPy is not usable here ({exc}); use --backend numpy") from None
    if not ok:
        raise BackendError("cuda backend: no CUDA GPU is visible; use --backend numpy")
    from . import memory
    S = runtime.context(config)
    kw = dict(mode=runtime.mode, weight_bytes=weight_bytes, staging=staging, prefill_rows=runtime.prefill_rows,
              quant=tuple(quant), n_sm=cp.cuda.Device().attributes["MultiProcessorCount"])
    need, free = memory.estimate(config, S, **kw), free_bytes()
    if need["total"] <= free:
        return
    fit = memory.largest_context(config, free, S, **kw)
    hint = (f"the largest --max-seq-len that fits is {fit}" if fit else
            "not even --max-seq-len 1 fits: use a smaller model or a GPU with more memory")
    raise BackendError(f"cuda backend: out of GPU memory: context {S} needs {need['total'] / 2**30:.2f} GiB "
                       f"({memory.describe(need)}) but {free / 2**30:.2f} GiB are free; {hint}")


def out_of_memory(fn) -> str:
    """Run fn; return CuPy's out-of-memory message instead of raising it (so no traceback keeps the partial
    allocations alive), or "" when it succeeded."""
    import cupy as cp
    try:
        fn()
    except cp.cuda.memory.OutOfMemoryError as exc:
        return str(exc)
    return ""


def release_and_raise(msg: str) -> None:
    """Give back what a failed allocation left, then raise the one-line out-of-memory error."""
    import gc

    import cupy as cp
    gc.collect()
    cp.get_default_memory_pool().free_all_blocks()
    free, total = cp.cuda.runtime.memGetInfo()
    msg = " ".join(msg.split())  # CuPy's message spans lines; ours is one
    raise BackendError(f"cuda backend: out of GPU memory while allocating the engine ({msg}); "
                       f"{free / 2**30:.2f} of {total / 2**30:.2f} GiB free; try a smaller --max-seq-len or model")
