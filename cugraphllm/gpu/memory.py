"""The pre-flight estimate of everything the CUDA engine puts on the GPU, in pure Python (no GPU needed).

`estimate(...)` counts, for a context S: the weights, the KV cache, the Scratch buffers (sized for the largest
prefill bucket), the cuBLAS workspace and GEMM scratch (gemm.prepare; quantized layers: gemm_quant's prefill
buffers, gemm_quant.allocate), the attention split-K workspace, the
captured graphs (nodes per graph times a per-node cost measured on H100: 22 graphs of LLaMA-2-7B held 14 MiB,
about 4 KiB per node; we count 6 KiB, and at least GRAPH_MIN_BYTES per graph) and a fixed reserve for loaded
modules and CuPy's small blocks; while weights are uploaded the two device staging slots (gpu/state.py Stager) exist instead of everything but the
weights, so the peak is weights + max(staging, the rest). `largest_context` is the biggest S whose estimate fits.
"""
from __future__ import annotations

from ..config import PREFILL_ROWS_DEFAULT, ModelConfig

GRAPH_NODE_BYTES = 6 << 10
GRAPH_MIN_BYTES = 512 << 10  # per graph, however small (the driver's allocations for an executable graph)
RESERVE_BYTES = 256 << 20  # compiled modules (NVRTC and Numba), CuPy pool rounding, small allocations
CUBLAS_WORKSPACE = 32 << 20  # gpu/cublas.py WORKSPACE_BYTES
CUBLASLT_WORKSPACE = 32 << 20  # gpu/cublaslt.py WORKSPACE_BYTES (prefill GEMMs tuned by gpu/gemm_tune.py)
_ALIGN = 512  # CuPy's pool rounds every allocation up to this


def _r(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def scratch_bytes(c: ModelConfig, S: int, rows: int, t: int = 2) -> int:
    """gpu/state.py Scratch: x, xn, ss, q, att, h, logits, prompt, 4 scalars, params, seed, rope table, and hist
    (pinned host memory mapped for the GPU, counted as Scratch.nbytes counts it)."""
    arrays = [rows * c.dim * 4, rows * c.dim * t, c.dim * 4, rows * c.dim * t, rows * c.dim * t,
              rows * c.hidden_dim * t, c.vocab_size * 4, rows * 4, 4, 4, 4, 4, 16, 8, S * c.head_dim * 4,
              (S + 1) * 4]
    g = -(-c.vocab_size // 1024)  # the sampler's workspace (ops.SampleWork: SAMPLE_CHUNK 1024, SAMPLE_NB 2048)
    arrays += [c.vocab_size * 4, g * 4, g * 4, g * 4, 2048 * 4, 2048 * 8, c.vocab_size * 2, g * 1024 * 8,
               g * 2048 * 2, 8]
    return sum(_r(n) for n in arrays)


def attention_bytes(c: ModelConfig, S: int, n_sm: int) -> int:
    """The decode split-K partials and tickets of gpu/attention.py (largest n_split over the decode buckets), and
    the tensor-core prefill attention's key-split scratch where that kernel serves the head dim."""
    from . import attention_prefill
    from .attention import make_buckets, plan_decode
    decode, _ = make_buckets(S)
    split = max(plan_decode(c, "float16", b, n_sm)["n_split"] for b in decode)
    n_part, n_cnt = attention_prefill.split_scratch(c.n_heads, c.head_dim)
    prefill = _r(n_part * 4) + _r(n_cnt * 4) if attention_prefill.supported(c.head_dim) else 0
    return _r(c.n_heads * split * (c.head_dim + 2) * 4) + _r(c.n_kv_heads * 4) + prefill


def graph_bytes(c: ModelConfig, S: int, mode: str, prefill_rows: int = PREFILL_ROWS_DEFAULT) -> int:
    """Captured graphs: greedy and sampling variants of each decode key and each prefill bucket."""
    from .attention import make_buckets
    if mode == "eager":
        return 0
    decode, prefill = make_buckets(S, prefill_rows)
    n_decode = 1 + (len(decode) if mode == "hybrid" else 0)  # the generic graph, plus one per bucket
    per = [max(GRAPH_MIN_BYTES, GRAPH_NODE_BYTES * nodes) for nodes in
           [8 + 6 * c.n_layers] * n_decode + [8 + 10 * c.n_layers] * len(prefill)]
    return 2 * sum(per)


def estimate(c: ModelConfig, S: int, mode: str = "hybrid", weight_bytes: int | None = None, t: int = 2,
             n_sm: int = 132, staging: int = 0, prefill_rows: int = PREFILL_ROWS_DEFAULT, quant=()) -> dict:
    """Bytes per part for context S, plus 'total' (the peak). t: bytes of the storage dtype; prefill_rows: the
    largest prefill bucket asked for (RuntimeConfig.prefill_rows), which sizes the scratch and GEMM scratch;
    quant: the formats of the quantized layer matrices (gemm_quant's prefill buffers, also sized by the rows)."""
    from . import gemm_quant
    from .attention import make_buckets
    rows = max(make_buckets(S, prefill_rows)[1])
    qbytes = sum(gemm_quant.buffer_bytes(c, f, rows, "float16" if t == 2 else "float32") for f in sorted(quant))
    parts = {
        "weights": t * c.n_params() if weight_bytes is None else weight_bytes,
        "kv_cache": _r(2 * c.n_layers * S * c.kv_dim * t),
        "scratch": scratch_bytes(c, S, rows, t),
        "gemm_workspace": CUBLAS_WORKSPACE + CUBLASLT_WORKSPACE + _r(rows * max(c.qkv_dim, 2 * c.hidden_dim) * t)
        + qbytes,
        "attention_scratch": attention_bytes(c, S, n_sm),
        "graphs": graph_bytes(c, S, mode, prefill_rows),
        "reserve": RESERVE_BYTES,
    }
    rest = sum(v for k, v in parts.items() if k != "weights")
    parts["upload_staging"] = staging
    parts["total"] = parts["weights"] + max(staging, rest)
    return parts


def largest_context(c: ModelConfig, free: int, S_max: int, **kw) -> int:
    """The largest S <= S_max whose estimate fits in `free` bytes; 0 when not even S = 1 fits."""
    lo, hi = 0, S_max
    while lo < hi:  # the estimate grows with S
        mid = (lo + hi + 1) // 2
        if estimate(c, mid, **kw)["total"] <= free:
            lo = mid
        else:
            hi = mid - 1
    return lo


def describe(parts: dict) -> str:
    gib = 2 ** 30
    keys = [k for k in parts if k not in ("total", "weights") and parts[k]]
    return f"weights {parts['weights'] / gib:.2f}, " + ", ".join(f"{k.replace('_', ' ')} {parts[k] / gib:.2f}"
                                                                  for k in keys)
