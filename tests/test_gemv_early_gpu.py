"""CUGRAPHLLM_GEMV_EARLY (kernels/gemv.cu GEMV_EARLY): the qkv and residual epilogues with their inputs loaded right
after pdl_enter (3: both bits) or after the weight stream (0) must write bit-identical outputs, every output poisoned first,
on LLaMA-2 7B shapes (and an odd N for the residual's one-row tail); one of them is also checked against float64.
The switch is read at each launch and is part of ops._fn's cache key, so setenv switches within one process."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import (DTYPES, S, TOL_F32, TOL_T, dt, host64, matvec64, poison, produced_x, qkv_reference,
                            rand_t, rel_err, stats_buffers)

pytestmark = pytest.mark.gpu
EPS = 1e-5


def both(monkeypatch, run):
    """run() under GEMV_EARLY 0, then 3 (both epilogues' loads early)."""
    outs = []
    for v in ("0", "3"):
        monkeypatch.setenv("CUGRAPHLLM_GEMV_EARLY", v)
        outs.append(run())
    return outs


def same_bits(cp, a, b) -> bool:
    """Bit for bit, NaN (unwritten poison) included."""
    u = {2: cp.uint16, 4: cp.uint32}[a.dtype.itemsize]
    return bool(cp.array_equal(a.view(u), b.view(u)))


# (pos, n_tokens): first / middle / last cache row, no write (n_tokens 0), a position past S (RoPE row clamped,
# no write).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos,n_tok", [(0, 1), (511, 1), (S - 1, 1), (511, 0), (S + 3, 1)])
def test_qkv_rope_norm_early_same_bits(cp, ops, state, monkeypatch, dtype, pos, n_tok):
    D, H, KVH = 4096, 32, 32
    hd = D // H
    kvd = KVH * hd
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    wqkv = rand_t(cp, (D + 2 * kvd, D), dtype, seed=pos + 31, scale=D ** -0.5)
    g = (1 + 0.3 * np.random.default_rng(pos).standard_normal(D)).astype(np.float32)
    wf = state.fold_columns(wqkv, cp.asarray(g))
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=pos + 5)
    p_dev, n_dev = cp.asarray([pos], dtype=cp.int32), cp.asarray([n_tok], dtype=cp.int32)

    def run():
        q = poison(cp, (1, D), dt(cp, dtype))
        kc, vc = poison(cp, (S, KVH, hd), dt(cp, dtype)), poison(cp, (S, KVH, hd), dt(cp, dtype))
        ops.norm_qkv_rope(q, Residual(x, xn, ss), EPS, wf, rope, kc, vc, p_dev, n_dev)
        return q, kc, vc
    (q0, k0, v0), (q1, k1, v1) = both(monkeypatch, run)
    assert same_bits(cp, q0, q1) and same_bits(cp, k0, k1) and same_bits(cp, v0, v1)
    written = n_tok > 0 and pos < S
    nan_bits = int(poison(cp, (1,), dt(cp, dtype)).view(cp.uint16)[0])
    for c in (k1, v1):  # only row pos written, if any
        assert int((c.view(cp.uint16) == nan_bits).sum()) == (S - written) * kvd
    qr, kr, vr = qkv_reference(wqkv, ref.rmsnorm(host64(x)[0], g.astype(np.float64), EPS), table, D, kvd, H, KVH,
                               hd, min(pos, S - 1))
    assert rel_err(host64(q1)[0], qr) < TOL_T[dtype]
    if written:
        assert rel_err(host64(k1[pos]).reshape(kvd), kr) < TOL_T[dtype]
        assert rel_err(host64(v1[pos]).reshape(kvd), vr) < TOL_T[dtype]


# wo and w2 of 7B (gemv_residual_ss with the ss chunking of decode), an odd N (the last pair has one row).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stats", [True, False], ids=["ss", "plain"])
@pytest.mark.parametrize("N,K", [(4096, 4096), (4096, 11008), (769, 200)])
def test_residual_early_same_bits(cp, ops, monkeypatch, dtype, stats, N, K):
    w = rand_t(cp, (N, K), dtype, seed=N + K, scale=K ** -0.5)
    a = rand_t(cp, (1, K), dtype, seed=K + 1)
    x0 = (np.random.default_rng(N * K).standard_normal((1, N)) * 2 + 0.3).astype(np.float32)

    def run():
        x, xn, ss = stats_buffers(cp, N, dtype)
        x[...] = cp.asarray(x0)
        ops.matmul_residual(Residual(x, xn, ss) if stats else Residual(x), a, w)
        return x, xn, ss
    (x_0, xn0, ss0), (x_1, xn1, ss1) = both(monkeypatch, run)
    assert same_bits(cp, x_0, x_1) and same_bits(cp, xn0, xn1) and same_bits(cp, ss0, ss1)
    assert rel_err(x_1.get()[0], x0[0].astype(np.float64) + matvec64(w, host64(a)[0])) < TOL_F32
    if stats:
        np.testing.assert_array_equal(host64(xn1)[0], x_1.get()[0].astype(dt(cp, dtype)).astype(np.float64))
        n = ops.norm_partials(N)
        assert np.all(np.isfinite(ss1.get()[:n])) and np.all(np.isnan(ss1.get()[n:]))
