"""What LLM.load (and the bench) build an engine from: the backend (auto -> cuda or numpy), the context to allocate
(clamped to the model, bounded by host or GPU memory), and the NumPy, CUDA or tensor-parallel engine itself."""
from __future__ import annotations

from dataclasses import replace

from .config import ModelConfig, RuntimeConfig
from .errors import BackendError, ConfigError


def resolve_backend(backend: str) -> str:
    """auto -> cuda when CuPy imports and sees a GPU, else numpy; cuda without a GPU is a one-line error."""
    if backend not in ("auto", "numpy", "cuda"):
        raise ConfigError(f"backend must be auto, numpy or cuda, got {backend!r}")
    if backend == "numpy":
        return backend
    try:
        import cupy
        gpu = bool(cupy.cuda.is_available())
    except Exception:
        gpu = False
    if backend == "cuda" and not gpu:
        raise BackendError('backend cuda: no CUDA GPU visible to CuPy (install with pip install ".[cuda]", '
                           "or use --backend numpy)")
    return "cuda" if gpu else "numpy"


def _make_engine(source, runtime: RuntimeConfig, progress=None):
    """An Engine for a loaded Checkpoint, or for a ModelConfig meaning seeded dummy weights of that shape.
    progress: None or a callable taking one status line (the GPU upload's per-layer lines)."""
    dummy = isinstance(source, ModelConfig)
    config = source if dummy else source.config
    if runtime.tp > 1:
        return _make_tp_engine(source, config, runtime, progress)
    if runtime.backend == "numpy":
        from .reference import NumpyEngine, numpy_context
        numpy_context(config, runtime.max_seq_len, weights_in_memory=not dummy)  # raises before allocating
        if dummy:
            from .loader import dummy_checkpoint
            source = dummy_checkpoint(config, seed=runtime.seed, dtype="float32")
            if runtime.quant is not None:
                from .quant.layers import check_spec, quantize_weights
                check_spec(config, runtime.quant_spec(), "dummy weights")
                source.weights = quantize_weights(source.weights, runtime.quant_spec())
        return NumpyEngine(config, source.weights, runtime.max_seq_len)
    try:
        from .gpu.engine import CudaEngine
    except ImportError as err:
        raise BackendError(f"backend cuda: cannot import the GPU engine ({err})") from None
    if dummy:
        return CudaEngine.dummy(config, runtime, runtime.seed)
    return CudaEngine(config, source.weights, runtime, progress=progress)


def _make_tp_engine(source, config, runtime: RuntimeConfig, progress=None):
    """--tp N (N > 1): the cuda backend over N GPUs (gpu/tp_engine.py); each GPU reads only its slices."""
    if runtime.backend != "cuda":
        raise BackendError(f"--tp {runtime.tp} needs the cuda backend (backend is {runtime.backend})")
    try:
        from .gpu.tp_engine import TPEngine
    except ImportError as err:
        raise BackendError(f"backend cuda: cannot import the GPU engine ({err})") from None
    return TPEngine(config, None if source is config else source.weights, runtime, progress=progress)


def _plan_context(config: ModelConfig, runtime: RuntimeConfig) -> tuple[RuntimeConfig, list[str]]:
    """The context to allocate, with a note for each adjustment: a request above the model's context is clamped;
    on numpy the default is bounded by memory (and a model that cannot fit is refused before loading)."""
    notes, want = [], runtime.max_seq_len
    if want is not None and want > config.max_seq_len:
        notes.append(f"max_seq_len {want} is above the model's context of {config.max_seq_len} tokens; "
                     f"using {config.max_seq_len}")
        want = config.max_seq_len
    if runtime.backend == "numpy":
        from .reference import numpy_context
        want, note = numpy_context(config, want, weights_in_memory=False)
        notes += [note] if note else []
    elif want is None:
        want, note = _cuda_default_context(config, runtime.dtype, runtime.tp)
        notes += [note] if note else []
    return replace(runtime, max_seq_len=want), notes


def _gpu_free_bytes() -> int:
    import cupy
    return int(cupy.cuda.runtime.memGetInfo()[0])


_CUDA_DEFAULT_MAX = 1 << 18  # a default context above this is a bogus max_position_embeddings (LLaMA-2: 4096)


def _cuda_default_context(config: ModelConfig, dtype: str, tp: int = 1) -> tuple[int | None, str]:
    """The model's context, or (a huge max_position_embeddings) what half the GPU memory left after the weights
    holds, at most _CUDA_DEFAULT_MAX (the RoPE table and the token history are also built on the host), with a
    note; None leaves the decision (and any out-of-memory error) to the engine."""
    # per position: float16/bfloat16 K and V of every layer, the float32 RoPE row, the int32 history slot
    per_token = 2 * config.n_layers * config.kv_dim * 2 + config.head_dim * 4 + 4
    try:
        free = _gpu_free_bytes()
    except Exception:  # noqa: BLE001 - the engine's own check reports a GPU that cannot be used
        return None, ""
    room = free - config.n_params() * 2 // tp - (256 << 20)  # --tp N: each GPU holds about 1/N of the weights
    fit = min(max(room, 0) // 2 // per_token, _CUDA_DEFAULT_MAX)
    fit = fit - fit % 256 if fit >= 512 else fit
    if fit < 1 or config.max_seq_len <= fit:
        return None, ""
    return fit, (f"context {fit} tokens: the model's {config.max_seq_len} would need "
                 f"{per_token * config.max_seq_len / 2 ** 30:.2f} GiB of {dtype} KV cache and tables, "
                 f"{free / 2 ** 30:.2f} GiB of GPU memory are free (--max-seq-len N to choose)")
