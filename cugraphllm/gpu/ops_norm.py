"""Embedding and RMSNorm launchers (kernels/embedding.cu, kernels/rmsnorm.cu), part of the ops API: gpu/ops.py
re-exports them, and its helpers (checks, the kernel cache ops._fn) are reached through the module at call time,
so that what wraps or patches ops (scripts/decode_anatomy.py, scripts/prefill_ab.py, tests) sees these too."""
from __future__ import annotations

import numpy as np

from . import ops as _ops


def embedding(r, table, tokens):
    """r.x f32 [M, D] = table T [V, D][tokens int32 [>= M]]. Decode (M == 1) with r.ss: also r.xn T [1, D] = T(x)
    and r.ss f32 [>= norm_partials(D)] = the partial sums of squares that the norm_* ops read."""
    x, xh, ss = r.x, r.xn, r.ss
    M, D = _ops._rows("x", x)
    V, Dt = _ops._rows("table", table)
    t = _ops._tname("table", table)
    _ops._check("x", x, dtype="float32", align=16)
    _ops._check("table", table, shape=(V, D), align=16 if D % 8 == 0 else 0)
    if tokens.ndim != 1 or tokens.size < M:
        raise ValueError(f"tokens: expected int32 [>= {M}], got shape {tuple(tokens.shape)}")
    _ops._check("tokens", tokens, dtype="int32")
    if M > 1 and r.pnorm:
        _ops._check_pnorm(r, M, D, t)
        _ops._fn("embedding.cu", "embedding_pss", t)(
            ((-(-D // 8) + 127) // 128, M), (128,), (x, xh, ss, table, tokens, np.int32(V), np.int32(D)))
        return
    if M == 1 and ss is not None:
        _ops._check_stats(xh, ss, D, t)
        n, chunk = _ops.norm_partials(D), _ops.norm_chunk(D)
        _ops._fn("embedding.cu", "embedding_ss", t)((-(-n // 4),), (128,), (x, xh, ss, table, tokens, np.int32(V),
                                                                         np.int32(D), np.int32(chunk)))
        return
    threads = 128
    grid = ((-(-D // 8) + threads - 1) // threads, M)
    _ops._fn("embedding.cu", "embedding", t)(grid, (threads,), (x, table, tokens, np.int32(V), np.int32(D)))


def _norm_common(out, x, w):
    M, D = _ops._rows("x", x)
    t = _ops._tname("out", out)
    _ops._check("x", x, dtype="float32", align=16 if D % 4 == 0 else 0)
    if w is not None:
        _ops._check("w", w, shape=(D,), dtype="float32", align=16 if D % 4 == 0 else 0)
    return M, D, t


def rmsnorm(out, x, w, eps):
    """out T [M, D] = rmsnorm(x f32 [M, D]) * w f32 [D]; w None: unit gain (folded into the next matrix)."""
    M, D, t = _norm_common(out, x, w)
    _ops._check("out", out, shape=(M, D), align=8 if D % 4 == 0 else 0)
    grid, block = (M,), (_ops._norm_threads(D),)
    if w is None:
        _ops._fn("rmsnorm.cu", "rmsnorm_unit", t)(grid, block, (out, x, np.float32(eps), np.int32(D)))
        return
    _ops._fn("rmsnorm.cu", "rmsnorm", t)(grid, block, (out, x, w, np.float32(eps), np.int32(D)))


def add_rmsnorm(x, r, out, w, eps):
    """x f32 [M, D] += r f32 [M, D]; out T [M, D] = rmsnorm(x) * w, in one pass."""
    M, D, t = _norm_common(out, x, w)
    _ops._check("r", r, shape=(M, D), dtype="float32", align=16 if D % 4 == 0 else 0)
    _ops._check("out", out, shape=(M, D), align=8 if D % 4 == 0 else 0)
    _ops._fn("rmsnorm.cu", "add_rmsnorm", t)((M,), (_ops._norm_threads(D),),
                                             (x, r, out, w, np.float32(eps), np.int32(D)))


def rmsnorm_last(out, x, w, eps, n_tokens):
    """out T [1, D] = rmsnorm(x[n_tokens[0] - 1]) * w (w None: unit gain); the row is read on the device."""
    M, D, t = _norm_common(out, x, w)
    _ops._check("out", out, shape=(1, D), align=8 if D % 4 == 0 else 0)
    _ops._scalar("n_tokens", n_tokens)
    if w is None:
        _ops._fn("rmsnorm.cu", "rmsnorm_last_unit", t)(
            (1,), (_ops._norm_threads(D),), (out, x, n_tokens, np.float32(eps), np.int32(D), np.int32(M)))
        return
    _ops._fn("rmsnorm.cu", "rmsnorm_last", t)(
        (1,), (_ops._norm_threads(D),), (out, x, w, n_tokens, np.float32(eps), np.int32(D), np.int32(M)))
