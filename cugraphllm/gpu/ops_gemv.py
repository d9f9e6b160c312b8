"""The GEMV-backed linear ops of gpu/ops.py (re-exported there; same contracts): qkv_rope, matmul_residual,
matmul_silu, matmul_logits and their norm_* forms. M == 1 launches kernels/gemv.cu; M > 1 goes to gpu/gemm.py;
a QuantLinear weight to gpu/ops_quant.py; a residual stream with a communicator to gpu/ops_tp.py. The helpers
(checks, the GEMV launcher ops._launch_gemv) are reached through the ops module at call time, so whatever wraps or
replaces them there (scripts/decode_anatomy.py, the tests' fakes) sees these launches too.
"""
from __future__ import annotations

import numpy as np

from . import ops as _ops
from ..quant.formats import QuantLinear
from .ops_norm import rmsnorm, rmsnorm_last


def _qkv_check(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    M, D, S, KVH, hd = _ops._qkv_geometry(q, k_cache)
    kvd = KVH * hd
    Mx, K, t = _ops._gemv_check("xn", xn, "wqkv", wqkv, D + 2 * kvd)
    _ops._qkv_checks(q, k_cache, v_cache, rope_cs, pos, n_tokens, Mx, t)
    args = (q, k_cache, v_cache, xn, wqkv, rope_cs, pos, n_tokens,
            np.int32(D), np.int32(kvd), np.int32(hd), np.int32(S), np.int32(K))
    return M, K, t, (D + 2 * kvd) // 2, args


def qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    """q T [M, D], k/v rows into the caches T [S, KVH, Dh] at pos+m (< S, m < n_tokens), RoPE on q and k."""
    if isinstance(wqkv, QuantLinear):
        return _ops._quant().qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    M, K, t, pairs, args = _qkv_check(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    if M > 1:
        from . import gemm
        return gemm.qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _ops._launch_gemv("gemv_qkv_rope", t, K, pairs, args)


def norm_qkv_rope(q, r, eps, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    """qkv_rope of rmsnorm(r.x f32 [M, D]) with attention_norm folded into wqkv. Decode: r.xn and r.ss as written
    by the producer of x (read only); prefill: r.xn T [M, D] receives the unit-gain norm of x."""
    if isinstance(wqkv, QuantLinear):
        return _ops._quant().norm_qkv_rope(q, r, eps, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1 and r.pnorm:
        from . import gemm
        _ops._check_pnorm(r, M, D, _ops._tname("xn", xn))
        _qkv_check(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
        return gemm.qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, ss=r.ss, eps=eps)
    if M > 1:
        rmsnorm(xn, x, None, eps)
        return qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _, K, t, pairs, args = _qkv_check(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _ops._launch_gemv("gemv_qkv_rope_norm", t, K, pairs, args + extra)


def matmul_residual(r, a, w):
    """r.x f32 [M, N] += a T [M, K] @ w T [N, K].T. Decode (M == 1) with r.ss: also r.xn T [1, N] = T(new x) and
    r.ss, the partial sums of squares of the new x that the next norm_* op reads (N = D). With r.comm (tensor
    parallelism) a and w are this rank's slices along K and the product is summed across ranks."""
    if r.comm is not None:
        return _ops.residual_allreduce(r, a, w)
    if isinstance(w, QuantLinear):
        return _ops._quant().matmul_residual(r, a, w)
    x, xh, ss = r.x, r.xn, r.ss
    M, N = _ops._rows("x", x)
    Ma, K, t = _ops._gemv_check("a", a, "w", w, N)
    if Ma != M:
        raise ValueError(f"matmul_residual: a has {Ma} rows, x has {M}")
    _ops._check("x", x, dtype="float32", align=8)
    if M > 1:
        from . import gemm
        if r.pnorm:
            _ops._check_pnorm(r, M, N, t)
            return gemm.matmul_residual(x, a, w, xh=xh, ss=ss)
        return gemm.matmul_residual(x, a, w)
    if ss is not None:
        _ops._check_stats(xh, ss, N, t)
        return _ops._launch_gemv("gemv_residual_ss", t, K, (N + 1) // 2, (x, xh, ss, a, w, np.int32(N), np.int32(K)))
    _ops._launch_gemv("gemv_residual", t, K, (N + 1) // 2, (x, a, w, np.int32(N), np.int32(K)))


def _silu_check(h, xn, w13):
    M, F = _ops._rows("h", h)
    Mx, K, t = _ops._gemv_check("xn", xn, "w13", w13, 2 * F)
    if Mx != M:
        raise ValueError(f"matmul_silu: xn has {Mx} rows, h has {M}")
    _ops._check("h", h, dtype=t)
    return M, F, K, t


def matmul_silu(h, xn, w13):
    """h T [M, F] = silu(xn @ w1.T) * (xn @ w3.T), w13 = [w1; w3] T [2F, K]."""
    if isinstance(w13, QuantLinear):
        return _ops._quant().matmul_silu(h, xn, w13)
    M, F, K, t = _silu_check(h, xn, w13)
    if M > 1:
        from . import gemm
        return gemm.matmul_silu(h, xn, w13)
    _ops._launch_gemv("gemv_silu", t, K, F, (h, xn, w13, np.int32(F), np.int32(K)))


def norm_matmul_silu(h, r, eps, w13):
    """matmul_silu of rmsnorm(r.x f32 [M, D]) with ffn_norm folded into w13; r.xn and r.ss as in norm_qkv_rope."""
    if isinstance(w13, QuantLinear):
        return _ops._quant().norm_matmul_silu(h, r, eps, w13)
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1 and r.pnorm:
        from . import gemm
        _ops._check_pnorm(r, M, D, _ops._tname("xn", xn))
        _silu_check(h, xn, w13)
        return gemm.matmul_silu(h, xn, w13, ss=r.ss, eps=eps)
    if M > 1:
        rmsnorm(xn, x, None, eps)
        return matmul_silu(h, xn, w13)
    _, F, K, t = _silu_check(h, xn, w13)
    _ops._launch_gemv("gemv_silu_norm", t, K, F, (h, xn, w13, np.int32(F), np.int32(K)) + extra)


def _logits_check(logits, xn, w):
    _, V = _ops._rows("logits", logits)
    _ops._check("logits", logits, shape=(1, V), dtype="float32")
    M, K, t = _ops._gemv_check("xn", xn, "w", w, V)
    if M != 1:
        raise ValueError(f"matmul_logits: xn must have 1 row (use rmsnorm_last in prefill), got {M}")
    return V, K, t


def matmul_logits(logits, xn, w):
    """logits f32 [1, V] = xn T [1, K] @ w T [V, K].T"""
    if isinstance(w, QuantLinear):
        return _ops._quant().matmul_logits(logits, xn, w)
    V, K, t = _logits_check(logits, xn, w)
    _ops._launch_gemv("gemv_logits", t, K, (V + 1) // 2, (logits, xn, w, np.int32(V), np.int32(K)))


def norm_matmul_logits(logits, r, eps, w, n_tokens):
    """logits f32 [1, V] = rmsnorm(r.x[n_tokens - 1]) @ w.T with the final norm folded into w. Decode: r.xn and
    r.ss as in norm_qkv_rope; prefill: r.xn[0] receives the unit-gain norm of row n_tokens[0] - 1 of r.x f32
    [M, D]. With r.comm: w holds this rank's vocabulary rows, its logits go to r.comm.logits f32 [1, V / ranks]
    and are all-gathered into logits (rank order = vocabulary order)."""
    if r.comm is not None:
        local = r.comm.logits
        if logits.ndim != 2 or logits.shape[0] != 1 or logits.shape[1] != local.shape[1] * r.comm.world:
            raise ValueError(f"norm_matmul_logits: logits {tuple(logits.shape)} is not [1, {r.comm.world} x "
                             f"{local.shape[1]}]")
        _ops._check("logits", logits, dtype="float32")
        _logits_local(local, r, eps, w, n_tokens)
        return r.comm.all_gather(local, logits)
    _logits_local(logits, r, eps, w, n_tokens)


def _logits_local(logits, r, eps, w, n_tokens):
    if isinstance(w, QuantLinear):
        return _ops._quant().norm_matmul_logits(logits, r, eps, w, n_tokens)
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1:
        rmsnorm_last(xn[:1], x, None, eps, n_tokens)
        return matmul_logits(logits, xn[:1], w)
    _ops._scalar("n_tokens", n_tokens)
    V, K, t = _logits_check(logits, xn, w)
    _ops._launch_gemv("gemv_logits_norm", t, K, (V + 1) // 2, (logits, xn, w, np.int32(V), np.int32(K)) + extra)
