"""Fused RMSNorm (decode): producers write T(x) and partial sums of squares, consumer GEMVs apply the norm
with the gains folded into their weights (gpu/state.py); prefill rows; tolerances in kernel_helpers.py."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import (DTYPES, S, TOL_F32, TOL_T, dt, host64, matvec64, poison, produced_x, qkv_reference,
                            rand_t, rel_err, stats_buffers, twice)

pytestmark = pytest.mark.gpu


# ---- fused RMSNorm (decode): producers write T(x) and partial sums of squares, consumers apply the norm ----
EPS = 1e-5
NORM_DIMS = [200, 203, 4096, 5120, 8192]


def check_stats(cp, ops, x, xn, ss, D, dtype):
    """xn == T(x) bit for bit; ss[j] = sum of x^2 over chunk j (fp32 tolerance); entries past the count untouched."""
    n, c = ops.norm_partials(D), ops.norm_chunk(D)
    xh = x.get()[0]
    np.testing.assert_array_equal(host64(xn)[0], xh.astype(dt(cp, dtype)).astype(np.float64))
    got = ss.get()
    assert np.all(np.isfinite(got[:n])) and np.all(np.isnan(got[n:])), "ss written outside its partials"
    want = np.array([np.sum(xh[j * c:(j + 1) * c].astype(np.float64) ** 2) for j in range(n)])
    assert rel_err(got[:n], want) < TOL_F32


def gain(cp, D, seed):
    g = (1 + 0.3 * np.random.default_rng(seed).standard_normal(D)).astype(np.float32)
    return g, cp.asarray(g)


def normed64(x, g):
    return ref.rmsnorm(host64(x)[0], g.astype(np.float64), EPS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", NORM_DIMS)
def test_embedding_stats(cp, ops, dtype, D):
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=D)
    check_stats(cp, ops, x, xn, ss, D, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,K", [(200, 769), (203, 203), (4096, 4096), (4096, 11008), (5120, 13824),
                                 (8192, 28672)])
def test_matmul_residual_stats(cp, ops, dtype, N, K):
    w = rand_t(cp, (N, K), dtype, seed=N + K, scale=K ** -0.5)
    a = rand_t(cp, (1, K), dtype, seed=K + 1)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    outs = []
    for _ in range(2):
        _, xn, ss = stats_buffers(cp, N, dtype)
        x = cp.asarray(x0)
        ops.matmul_residual(Residual(x, xn, ss), a, w)
        outs.append((x, xn, ss))
    x, xn, ss = outs[0]
    assert rel_err(x.get()[0], x0[0].astype(np.float64) + matvec64(w, host64(a)[0])) < TOL_F32
    check_stats(cp, ops, x, xn, ss, N, dtype)
    for u, v in zip(outs[0], outs[1]):
        assert cp.array_equal(u, v, equal_nan=True), "residual GEMV with stats is not deterministic"


FUSED_SHAPES = [("awkward", "float16"), ("awkward", "bfloat16"), ("7B", "float16"), ("7B", "bfloat16"),
                ("13B", "float16"), ("70B", "float16")]
SIZES = {"awkward": (203, 6, 2, 385, 769), "7B": (4096, 32, 32, 11008, 32000),
         "13B": (5120, 40, 40, 13824, 32000), "70B": (8192, 64, 8, 28672, 32000)}  # D, H, KVH, F, V


@pytest.mark.parametrize("size,dtype", FUSED_SHAPES)
def test_norm_matmul_silu(cp, ops, state, size, dtype):
    D, _, _, F, _ = SIZES[size]
    w13 = rand_t(cp, (2 * F, D), dtype, seed=F, scale=2 * D ** -0.5)
    g, gd = gain(cp, D, seed=F + 1)
    wf = state.fold_columns(w13, gd)
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=F + 2)
    h = twice(cp, lambda out: ops.norm_matmul_silu(out, Residual(x, xn, ss), EPS, wf), (1, F), dt(cp, dtype))
    y = matvec64(w13, normed64(x, g))
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T[dtype]


@pytest.mark.parametrize("size,dtype", FUSED_SHAPES)
def test_norm_matmul_logits(cp, ops, state, size, dtype):
    D, _, _, _, V = SIZES[size]
    w = rand_t(cp, (V, D), dtype, seed=V + D, scale=D ** -0.5)
    g, gd = gain(cp, D, seed=D + 7)
    wf = state.fold_columns(w, gd)
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=D + 8)
    n = cp.ones(1, cp.int32)
    logits = twice(cp, lambda out: ops.norm_matmul_logits(out, Residual(x, xn, ss), EPS, wf, n), (1, V), cp.float32)
    assert rel_err(logits.get()[0], matvec64(w, normed64(x, g))) < TOL_T[dtype]


@pytest.mark.parametrize("size,dtype", FUSED_SHAPES)
def test_norm_qkv_rope(cp, ops, state, size, dtype):
    D, H, KVH, _, _ = SIZES[size]
    D = 204 if size == "awkward" else D  # head_dim 34: divides D, even; K % 8 != 0 (scalar path)
    hd = D // H
    kvd = KVH * hd
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    wqkv = rand_t(cp, (D + 2 * kvd, D), dtype, seed=D + H, scale=D ** -0.5)
    g, gd = gain(cp, D, seed=D + 9)
    wf = state.fold_columns(wqkv, gd)
    pos, n = 511, cp.ones(1, cp.int32)
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=D + 10)
    kc, vc = rand_t(cp, (S, KVH, hd), dtype, seed=1), rand_t(cp, (S, KVH, hd), dtype, seed=2)
    kv_rows = []

    def run(q):
        ops.norm_qkv_rope(q, Residual(x, xn, ss), EPS, wf, rope, kc, vc, cp.asarray([pos], dtype=cp.int32), n)
        kv_rows.append((kc[pos].copy(), vc[pos].copy()))
    q = twice(cp, run, (1, D), dt(cp, dtype))
    assert cp.array_equal(kv_rows[0][0], kv_rows[1][0]) and cp.array_equal(kv_rows[0][1], kv_rows[1][1])
    qr, kr, vr = qkv_reference(wqkv, normed64(x, g), table, D, kvd, H, KVH, hd, pos)
    assert rel_err(host64(q)[0], qr) < TOL_T[dtype]
    assert rel_err(host64(kc[pos]).reshape(kvd), kr) < TOL_T[dtype]
    assert rel_err(host64(vc[pos]).reshape(kvd), vr) < TOL_T[dtype]


@pytest.mark.parametrize("cfg", [(4, 4, 1, 1), (8, 4, 4, 1), (2, 8, 1, 0), (16, 1, 8, 0)])
def test_fused_norm_launch_options(cp, ops, state, monkeypatch, cfg):
    """Other GEMV launch configurations change the ss chunking; producer and consumer still agree."""
    from cugraphllm.gpu import gemv_plan
    for name, v in zip(("GEMV_WARPS", "GEMV_UNROLL", "GEMV_KSPLIT", "GEMV_XSMEM"), cfg):
        monkeypatch.setattr(gemv_plan, name, v)
    D, F = 4096, 11008
    w2 = rand_t(cp, (D, F), "float16", seed=1, scale=F ** -0.5)
    hin = rand_t(cp, (1, F), "float16", seed=2)
    w13 = rand_t(cp, (2 * F, D), "float16", seed=3, scale=2 * D ** -0.5)
    g, gd = gain(cp, D, seed=4)
    x, xn, ss = produced_x(cp, ops, D, "float16", seed=5)
    ops.matmul_residual(Residual(x, xn, ss), hin, w2)
    check_stats(cp, ops, x, xn, ss, D, "float16")
    h = poison(cp, (1, F), cp.float16)
    ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, state.fold_columns(w13, gd))
    y = matvec64(w13, normed64(x, g))
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_norm_prefill_rows(cp, ops, state, dtype):
    """M > 1: the norm_* ops run the unit-gain rmsnorm and the GEMM path (logits: the row n_tokens - 1)."""
    M, D, H, KVH, F, V, n_real = 5, 512, 8, 4, 1376, 1000, 4
    hd, kvd = D // H, KVH * (D // H)
    rng = np.random.default_rng(M)
    x0 = (rng.standard_normal((M, D)) * 2 + 0.3).astype(np.float32)
    x, g = cp.asarray(x0), (1 + 0.3 * rng.standard_normal(D)).astype(np.float32)
    xn, ss = poison(cp, (M, D), dt(cp, dtype)), poison(cp, ((D + 1) // 2,), cp.float32)
    a64 = ref.rmsnorm(x0.astype(np.float64), g.astype(np.float64), EPS)  # [M, D]
    w13, wout = rand_t(cp, (2 * F, D), dtype, 1, D ** -0.5), rand_t(cp, (V, D), dtype, 2, D ** -0.5)
    wqkv = rand_t(cp, (D + 2 * kvd, D), dtype, 3, D ** -0.5)
    gd = cp.asarray(g)
    h = poison(cp, (M, F), dt(cp, dtype))
    ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, state.fold_columns(w13, gd))
    y = a64 @ host64(w13).T
    assert rel_err(host64(h), ref.silu(y[:, :F]) * y[:, F:]) < TOL_T[dtype]
    table = ref.rope_table(S, hd, 10000.0)
    q, kc, vc = (poison(cp, (M, D), dt(cp, dtype)), rand_t(cp, (S, KVH, hd), dtype, 4),
                 rand_t(cp, (S, KVH, hd), dtype, 5))
    ops.norm_qkv_rope(q, Residual(x, xn, ss), EPS, state.fold_columns(wqkv, gd), cp.asarray(table.astype(np.float32)),
                      kc, vc, cp.asarray([7], dtype=cp.int32), cp.asarray([n_real], dtype=cp.int32))
    yq = a64 @ host64(wqkv).T
    qr = ref.apply_rope(yq[:, :D].reshape(M, H, hd), np.arange(7, 7 + M), table).reshape(M, D)
    assert rel_err(host64(q), qr) < TOL_T[dtype]
    assert rel_err(host64(vc[7:7 + n_real]).reshape(n_real, kvd), yq[:n_real, D + kvd:]) < TOL_T[dtype]
    logits = poison(cp, (1, V), cp.float32)
    ops.norm_matmul_logits(logits, Residual(x, xn, ss), EPS, state.fold_columns(wout, gd),
                           cp.asarray([n_real], dtype=cp.int32))
    assert rel_err(logits.get()[0], host64(wout) @ a64[n_real - 1]) < TOL_T[dtype]
    assert bool(cp.isnan(ss).all()), "prefill must not write the decode statistics"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tied", [True, False])
def test_upload_weights_folds_gains(cp, state, dtype, tied):
    from cugraphllm.weights import LayerWeights, Weights
    D, F, V, Q = 203, 385, 97, 203 + 2 * 29
    rng = np.random.default_rng(D + tied)

    def m(r, c):
        return (rng.standard_normal((r, c)) * 0.1).astype(np.float32)

    def gn():
        return (1 + 0.3 * rng.standard_normal(D)).astype(np.float32)
    lw = LayerWeights(attention_norm=gn(), wqkv=m(Q, D), wo=m(D, D), ffn_norm=gn(), w13=m(2 * F, D), w2=m(D, F))
    emb = m(V, D)
    hw = Weights(tok_embeddings=emb, layers=[lw], norm=gn(), output=emb if tied else m(V, D))
    dw = state.upload_weights(hw, dt(cp, dtype))

    def same(dev, host):
        want = host.astype(dt(cp, dtype)).astype(np.float64)
        if dtype == "float16":
            np.testing.assert_array_equal(host64(dev), want)
        else:  # at most one bfloat16 ulp apart (either side's rounding of the same fp32 product)
            assert np.all(np.abs(host64(dev) - want) <= np.abs(want) * 2.0 ** -7)
    same(dw.layers[0].wqkv, lw.wqkv * lw.attention_norm)
    same(dw.layers[0].w13, lw.w13 * lw.ffn_norm)
    same(dw.layers[0].wo, lw.wo)
    same(dw.output, hw.output * hw.norm)
    same(dw.tok_embeddings, emb)
    assert dw.output is not dw.tok_embeddings
    for g in (dw.norm, dw.layers[0].attention_norm, dw.layers[0].ffn_norm):
        assert g.dtype == cp.float32 and bool((g == 1).all())
