"""The "lt" path of gemm_quant.py: fp8 weights (e4m3 codes, f32 row scales sw), W8A8 through cuBLASLt (sm_89+).

The activations are quantized per token first (kernels/gemm_quant.cu quant_act_fp8: e4m3 codes aq [M, K] and the
f32 token scale sa [M], perm / gain applied on the way). The product then goes one of two ways:
- scaled (CUGRAPHLLM_FP8_OUTER_SCALE, default 1, where cuBLASLt can: gpu/cublaslt.py outer_scale_ok, sm_90):
  cuBLASLt applies sa[m] * sw[n] itself (outer-vector scaling) and writes
    residual: x f32 += directly (D = C = x, beta = 1): no epilogue kernel at all;
    silu / qkv: D = T [M, cols] into the g scratch (half the bytes of f32), then gemm.cu's 16-bit epilogues
                (silu_mul_rows, qkv_rope_rows: the ones the dequant path runs);
- unscaled (CUGRAPHLLM_FP8_OUTER_SCALE=0, or where the probe / heuristic / alignment / cublasLtMatmul says no):
  d f32 [M, N] unscaled, then gemm_quant.cu's w8a8_*_rows epilogues apply sa, sw with the residual / SiLU*up / RoPE.
CUGRAPHLLM_FP8_FUSE_ACTQ=1/2 (default 2; gpu/fp8_actq.py) moves the quantization into the producers: the prefill
norm and the SiLU*up epilogues write the codes, which _quant then takes instead of re-reading the 16-bit input.
Either product goes through gemm_tune.fp8_matmul (per-shape algorithm, CUGRAPHLLM_GEMM_TUNE).
Buffers (aq, sa, d, g) are gemm_quant's workspace; shapes as there (M rows, N output rows of W, K columns).
"""
from __future__ import annotations

import numpy as np

from .env import env_bit, env_int

_THREADS = 256
_REFUSED: set = set()  # (device, N, M, K, D type, accumulate) whose scaled cublasLtMatmul returned an error status


def outer_enabled() -> bool:
    """CUGRAPHLLM_FP8_OUTER_SCALE (read at each eager or captured call, so one process can A/B it): 1 / unset / blank
    on, 0 off, a one-line ConfigError otherwise."""
    return env_bit("CUGRAPHLLM_FP8_OUTER_SCALE")


def outer_min_rows() -> int:
    """Fewest rows M that take the scaled product (CUGRAPHLLM_FP8_OUTER_MIN_ROWS, default 384). A 7B layer's four
    fp8 products on the H200, unscaled -> scaled (benchmarks/results/fp8call_2026-11-30/fp8_ab.json and
    samp_2026-11-30/fp8_ab_mid.json): 136 -> 148 us at M = 128, 163 -> 197 at 192, 179 -> 177 at 256, 231 -> 218
    at 384, 292 -> 261 at 512 (at small M, wo / w2's beta = 1 accumulate into f32 and w13 lose). A whole number
    >= 0 (0, as tests and scripts/bench_fp8_ab.py set: the scaled product at every M), else a one-line ConfigError."""
    return env_int("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", 384, 0)


def scaled(out_dtype, accumulate: bool, w, sa, M: int) -> bool:
    """Whether this call takes the scaled product: switch on, at least outer_min_rows() rows, the device probe
    passed for this D type, a heuristic algorithm for the shape that has not been refused, and 16-byte aligned
    scale vectors (the docs state no alignment for them: kept safe)."""
    from . import cublas, cublaslt
    N, K = w.shape
    return (outer_enabled() and M >= outer_min_rows() and w.scales.data.ptr % 16 == 0 and sa.data.ptr % 16 == 0
            and _refusal_key(N, M, K, out_dtype, accumulate) not in _REFUSED
            and cublaslt.outer_scale_ok(out_dtype, accumulate)
            and cublaslt.handle().outer_plan_ok(N, M, K, cublas._dtype_code(out_dtype)))


def _refusal_key(N, M, K, out_dtype, accumulate) -> tuple:
    from .cuda_kernels import device_id
    return (device_id(), N, M, K, str(out_dtype), bool(accumulate))


def _try_scaled(d, aq, sa, w, accumulate: bool) -> bool:
    """d (=|+=) sa[m] * sw[n] * (aq @ W.T) through cuBLASLt's outer-vector scaling; False (nothing written: cuBLASLt
    checks its arguments before launching) and the shape remembered where cublasLtMatmul refuses it."""
    from . import gemm_tune
    from .cublas import CublasError
    try:
        gemm_tune.fp8_matmul(d, aq, w.qweight, sa, w.scales, accumulate=accumulate)
        return True
    except CublasError:
        _REFUSED.add(_refusal_key(w.shape[0], aq.shape[0], w.shape[1], d.dtype, accumulate))
        return False


def _quant(a, w):
    """(aq e4m3 [M, K], sa f32 [M]): the per-token quantized activations a' = gain * a[:, perm]; with
    CUGRAPHLLM_FP8_FUSE_ACTQ on, the codes its producer already wrote (fp8_actq.py) or a vectorized pass."""
    from . import fp8_actq
    from . import gemm_quant as gq
    M, K = a.shape
    aq, sa = gq._view("aq", (M, K), "uint8"), gq._view("sa", (M,), "float32")
    if fp8_actq.take(a, w) or fp8_actq.quant(a, w, aq, sa):
        return aq, sa
    perm = w.perm if w.perm is not None else w.scales  # unused pointers (flags 0)
    gain = w.gain if w.gain is not None else w.scales
    gq._launch("quant_act_fp8", "fp8", a.dtype, (M,), _THREADS,
               (aq, sa, a, perm, gain, np.int32(K), np.int32(w.perm is not None), np.int32(w.gain is not None)))
    return aq, sa


def _unscaled(aq, w):
    """d f32 [M, N] = aq @ W.T, unscaled."""
    from . import gemm_quant as gq
    from . import gemm_tune
    d = gq._view("d", (aq.shape[0], w.shape[0]), "float32")
    gemm_tune.fp8_matmul(d, aq, w.qweight)
    return d


def _scaled_t(aq, sa, w, dtype):
    """g T [M, N] = sa[m] * sw[n] * (aq @ W.T) (cuBLASLt's outer-vector scaling), or None where refused."""
    from . import gemm_quant as gq
    g = gq._view("g", (aq.shape[0], w.shape[0]), dtype)
    return g if _try_scaled(g, aq, sa, w, False) else None


def residual(x, a, w) -> None:
    """x f32 [M, N] += a T[M, K] @ W.T."""
    from . import gemm_quant as gq
    M, N = x.shape
    aq, sa = _quant(a, w)
    if scaled("float32", True, w, sa, M) and _try_scaled(x, aq, sa, w, True):
        return
    d = _unscaled(aq, w)
    gq._launch("w8a8_residual_rows", "fp8", a.dtype, ((N + _THREADS - 1) // _THREADS, M), _THREADS,
               (x, d, sa, w.scales, np.int32(N)))


def silu(h, xn, w13) -> None:
    """h T[M, F] = silu(xn @ W1.T) * (xn @ W3.T)."""
    from . import fp8_actq, gemm
    from . import gemm_quant as gq
    M, F = h.shape
    aq, sa = _quant(xn, w13)
    g = _scaled_t(aq, sa, w13, xn.dtype) if scaled(str(xn.dtype), False, w13, sa, M) else None
    if g is not None:
        if not fp8_actq.silu(h, g, sa, w13, True):  # switch on: also w2's codes (fp8_actq.py)
            gemm._epi_launch("silu_mul_rows", xn.dtype, M, F, (h, g, np.int32(F), np.int32(F % 8 == 0)))
        return
    d = _unscaled(aq, w13)
    if not fp8_actq.silu(h, d, sa, w13, False):
        gq._launch("w8a8_silu_rows", "fp8", xn.dtype, ((F + _THREADS - 1) // _THREADS, M), _THREADS,
                   (h, d, sa, w13.scales, np.int32(F)))


def qkv(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, geo: tuple) -> None:
    """gemm_quant.qkv_rope's product and epilogue; geo = (D, kvd, hd, S) as int32 kernel arguments."""
    from . import gemm
    from . import gemm_quant as gq
    M = xn.shape[0]
    NQ = wqkv.shape[0]
    D, kvd, hd = (int(v) for v in geo[:3])
    aq, sa = _quant(xn, wqkv)
    g = _scaled_t(aq, sa, wqkv, xn.dtype) if scaled(str(xn.dtype), False, wqkv, sa, M) else None
    if g is not None:
        vec = D % 8 == 0 and kvd % 8 == 0 and hd % 8 == 0
        gemm._epi_launch("qkv_rope_rows", xn.dtype, M, NQ,
                         (q, g, rope_cs, k_cache, v_cache, pos, n_tokens) + geo + (np.int32(vec),))
        return
    d = _unscaled(aq, wqkv)
    gq._launch("w8a8_qkv_rope_rows", "fp8", xn.dtype, ((NQ // 2 + _THREADS - 1) // _THREADS, M), _THREADS,
               (q, d, sa, wqkv.scales, rope_cs, k_cache, v_cache, pos, n_tokens) + geo)


def probe(dtype) -> dict:
    """Outside capture: {D type: cuBLASLt's outer scaling works} for the T output (silu / qkv) and the f32
    accumulate (residual), each probed once per device (gpu/cublaslt.py outer_scale_ok)."""
    from . import cublaslt
    return {str(dtype): cublaslt.outer_scale_ok(dtype, False), "float32": cublaslt.outer_scale_ok("float32", True)}


def warmup(dtype, rows, shapes) -> None:
    """Outside capture: the probes and, per (N, K) in shapes and M in rows, the plans of both products (heuristics
    are host work; made here, nothing is queried during capture)."""
    from . import cublas, cublaslt, fp8_actq
    fp8_actq.warmup(dtype)
    lt = cublaslt.handle()
    ok = probe(dtype)
    for M in rows:
        for N, K in shapes:
            lt.plan(N, M, K)
            for out, good in ok.items():
                if good:
                    lt.outer_plan_ok(N, M, K, cublas._dtype_code(out))
