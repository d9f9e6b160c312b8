"""Decode kernels (kernels/{embedding,rmsnorm,gemv,sampling}.cu through cugraphllm.gpu.ops) against NumPy float64.

Tolerances, on ||out - ref|| / ||ref|| with the reference computed in float64 from the same T-rounded inputs:
- outputs stored in T: float16 2e-3, bfloat16 1.6e-2 (one rounding to T dominates: 2^-11 / 2^-8 per element);
- float32 outputs (logits, residual, embedding, the new x of add_rmsnorm): 1e-5 (fp32 accumulation only).
- fused-norm ops (norm_qkv_rope, norm_matmul_silu, norm_matmul_logits) against rmsnorm-then-matmul in float64 with
  the UNFOLDED weights and gain: TOL_T for every output, logits included (the activation T(x) and the folded
  weights T(W * g) are each rounded once to T before the fp32 dot products).
Every output is poisoned (NaN) before each run, inputs are fresh random data, and the GEMV shapes are awkward
sizes plus the LLaMA-2 7B/13B/70B shapes (70B GQA: 64 heads, 8 KV heads).
"""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual

pytestmark = pytest.mark.gpu

DTYPES = ["float16", "bfloat16"]
TOL_T = {"float16": 2e-3, "bfloat16": 1.6e-2}
TOL_F32 = 1e-5
POSITIONS = [0, 1, 511, 4095]
S = 4096


@pytest.fixture(scope="module")
def cp():
    import cupy
    return cupy


@pytest.fixture(scope="module")
def ops():
    from cugraphllm.gpu import ops
    return ops


def dt(cp, name):
    if name == "float16":
        return cp.float16
    import ml_dtypes
    return ml_dtypes.bfloat16


def rand_t(cp, shape, name, seed, scale=1.0):
    """Random T array made on the GPU (fast for the 70B shapes)."""
    g = cp.random.default_rng(seed).standard_normal(shape, dtype=cp.float32) * np.float32(scale)
    return g.astype(dt(cp, name))


def host64(a):
    return a.get().astype(np.float64)


def poison(cp, shape, dtype):
    return cp.full(shape, np.nan, dtype=dtype)


def rel_err(out, want):
    out = np.asarray(out, np.float64)
    assert np.all(np.isfinite(out)), "output has non-finite values (unwritten?)"
    return float(np.linalg.norm(out - want) / np.linalg.norm(want))


def matvec64(w, a64, chunk=8192):
    """float64 W [N, K] @ a [K] from a device T matrix, in row chunks (the 70B matrices are large)."""
    return np.concatenate([host64(w[i:i + chunk]) @ a64 for i in range(0, w.shape[0], chunk)])


# ---- embedding and norms -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("V,D,M", [(769, 200, 7), (769, 203, 3), (32000, 4096, 5)])
def test_embedding(cp, ops, dtype, V, D, M):
    table = rand_t(cp, (V, D), dtype, seed=V + D)
    tokens = cp.asarray(np.random.default_rng(M).integers(0, V, M).astype(np.int32))
    x = poison(cp, (M, D), cp.float32)
    ops.embedding(Residual(x), table, tokens)
    np.testing.assert_array_equal(x.get(), host64(table)[tokens.get()])


def norm_inputs(cp, M, D, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((M, D)) * 3 + 0.5).astype(np.float32)
    w = (1 + 0.3 * rng.standard_normal(D)).astype(np.float32)
    return x, w


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,D", [(1, 200), (3, 203), (1, 4096), (5, 5120), (2, 8192)])
def test_rmsnorm(cp, ops, dtype, M, D):
    x, w = norm_inputs(cp, M, D, seed=D)
    out = poison(cp, (M, D), dt(cp, dtype))
    ops.rmsnorm(out, cp.asarray(x), cp.asarray(w), 1e-5)
    want = ref.rmsnorm(x.astype(np.float64), w.astype(np.float64), 1e-5)
    assert rel_err(host64(out), want) < TOL_T[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,D", [(1, 200), (3, 203), (1, 4096), (4, 8192)])
def test_add_rmsnorm(cp, ops, dtype, M, D):
    x, w = norm_inputs(cp, M, D, seed=D + 1)
    r, _ = norm_inputs(cp, M, D, seed=D + 2)
    xd = cp.asarray(x)
    out = poison(cp, (M, D), dt(cp, dtype))
    ops.add_rmsnorm(xd, cp.asarray(r), out, cp.asarray(w), 1e-5)
    x64 = x.astype(np.float64) + r
    assert rel_err(xd.get(), x64) < TOL_F32
    assert rel_err(host64(out), ref.rmsnorm(x64, w.astype(np.float64), 1e-5)) < TOL_T[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 4, 6])
def test_rmsnorm_last(cp, ops, dtype, n):
    M, D = 6, 4096
    x, w = norm_inputs(cp, M, D, seed=n)
    out = poison(cp, (1, D), dt(cp, dtype))
    ops.rmsnorm_last(out, cp.asarray(x), cp.asarray(w), 1e-5, cp.asarray([n], dtype=cp.int32))
    want = ref.rmsnorm(x[n - 1:n].astype(np.float64), w.astype(np.float64), 1e-5)
    assert rel_err(host64(out), want) < TOL_T[dtype]


# ---- GEMV with epilogues -----------------------------------------------------------------------------------
MATVEC_SHAPES = [(769, 200), (769, 203), (4096, 4096), (4096, 11008), (5120, 5120), (5120, 13824),
                 (8192, 8192), (8192, 28672)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,K", MATVEC_SHAPES)
def test_matmul_residual(cp, ops, dtype, N, K):
    w = rand_t(cp, (N, K), dtype, seed=N * 7 + K, scale=K ** -0.5)
    a = rand_t(cp, (1, K), dtype, seed=K)
    x0 = np.random.default_rng(N).standard_normal((1, N)).astype(np.float32)
    x = cp.asarray(x0)
    ops.matmul_residual(Residual(x), a, w)
    want = x0[0].astype(np.float64) + matvec64(w, host64(a)[0])
    assert rel_err(x.get()[0], want) < TOL_F32
    x2 = cp.asarray(x0)
    ops.matmul_residual(Residual(x2), a, w)
    assert cp.array_equal(x, x2), "GEMV is not deterministic"


@pytest.mark.parametrize("cfg", [(4, 4, 1, 1), (8, 2, 2, 0), (8, 4, 4, 1), (16, 2, 4, 0), (2, 8, 1, 0),
                                 (16, 1, 8, 0), (16, 1, 4, 0)])
def test_gemv_launch_options(cp, ops, monkeypatch, cfg):
    """Every launch configuration the benchmark sweeps computes the same function (residual and qkv paths)."""
    from cugraphllm.gpu import gemv_plan
    for name, v in zip(("GEMV_WARPS", "GEMV_UNROLL", "GEMV_KSPLIT", "GEMV_XSMEM"), cfg):
        monkeypatch.setattr(gemv_plan, name, v)
    N, K = 4096, 11008
    w = rand_t(cp, (N, K), "float16", seed=sum(cfg), scale=K ** -0.5)
    a = rand_t(cp, (1, K), "float16", seed=7)
    x = cp.zeros((1, N), cp.float32) + cp.float32(0.5)
    ops.matmul_residual(Residual(x), a, w)
    assert rel_err(x.get()[0], 0.5 + matvec64(w, host64(a)[0])) < TOL_F32
    D, H = 8192, 64
    hd, kvd = D // H, 8 * (D // H)
    table = ref.rope_table(S, hd, 10000.0)
    wqkv = rand_t(cp, (D + 2 * kvd, D), "float16", seed=3, scale=D ** -0.5)
    xn = rand_t(cp, (1, D), "float16", seed=4)
    q = poison(cp, (1, D), cp.float16)
    kc, vc = rand_t(cp, (S, 8, hd), "float16", 5), rand_t(cp, (S, 8, hd), "float16", 6)
    ops.qkv_rope(q, xn, wqkv, cp.asarray(table.astype(np.float32)), kc, vc, cp.asarray([511], dtype=cp.int32),
                 cp.ones(1, cp.int32))
    qr, kr, vr = qkv_reference(wqkv, host64(xn)[0], table, D, kvd, H, 8, hd, 511)
    assert rel_err(host64(q)[0], qr) < TOL_T["float16"]
    assert rel_err(host64(kc[511]).reshape(kvd), kr) < TOL_T["float16"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("V,K", [(769, 200), (32000, 4096), (32000, 5120), (32000, 8192)])
def test_matmul_logits(cp, ops, dtype, V, K):
    w = rand_t(cp, (V, K), dtype, seed=V + K, scale=K ** -0.5)
    a = rand_t(cp, (1, K), dtype, seed=K + 3)
    logits = poison(cp, (1, V), cp.float32)
    ops.matmul_logits(logits, a, w)
    assert rel_err(logits.get()[0], matvec64(w, host64(a)[0])) < TOL_F32


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("F,K", [(385, 200), (11008, 4096), (13824, 5120), (28672, 8192)])
def test_matmul_silu(cp, ops, dtype, F, K):
    w13 = rand_t(cp, (2 * F, K), dtype, seed=F + K, scale=2 * K ** -0.5)
    a = rand_t(cp, (1, K), dtype, seed=K + 5)
    h = poison(cp, (1, F), dt(cp, dtype))
    ops.matmul_silu(h, a, w13)
    y = matvec64(w13, host64(a)[0])
    want = ref.silu(y[:F]) * y[F:]
    assert rel_err(host64(h)[0], want) < TOL_T[dtype]


QKV_SHAPES = [(192, 6, 2), (4096, 32, 32), (5120, 40, 40), (8192, 64, 8)]  # (dim, n_heads, n_kv_heads)


def qkv_reference(wqkv, a64, table, D, kvd, H, KVH, hd, pos):
    y = matvec64(wqkv, a64)
    q = ref.apply_rope(y[:D].reshape(1, H, hd), np.array([pos]), table).reshape(D)
    k = ref.apply_rope(y[D:D + kvd].reshape(1, KVH, hd), np.array([pos]), table).reshape(kvd)
    return q, k, y[D + kvd:]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D,H,KVH", QKV_SHAPES)
def test_qkv_rope(cp, ops, dtype, D, H, KVH):
    hd = D // H
    kvd = KVH * hd
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    wqkv = rand_t(cp, (D + 2 * kvd, D), dtype, seed=D + H, scale=D ** -0.5)
    kc0, vc0 = rand_t(cp, (S, KVH, hd), dtype, seed=1), rand_t(cp, (S, KVH, hd), dtype, seed=2)
    n_tokens = cp.asarray([1], dtype=cp.int32)
    for pos in POSITIONS:
        xn = rand_t(cp, (1, D), dtype, seed=pos + 11)
        q = poison(cp, (1, D), dt(cp, dtype))
        kc, vc = kc0.copy(), vc0.copy()
        ops.qkv_rope(q, xn, wqkv, rope, kc, vc, cp.asarray([pos], dtype=cp.int32), n_tokens)
        qr, kr, vr = qkv_reference(wqkv, host64(xn)[0], table, D, kvd, H, KVH, hd, pos)
        assert rel_err(host64(q)[0], qr) < TOL_T[dtype], f"q at pos {pos}"
        assert rel_err(host64(kc[pos]).reshape(kvd), kr) < TOL_T[dtype], f"k at pos {pos}"
        assert rel_err(host64(vc[pos]).reshape(kvd), vr) < TOL_T[dtype], f"v at pos {pos}"
        others = np.arange(S) != pos
        assert cp.array_equal(kc[others], kc0[others]) and cp.array_equal(vc[others], vc0[others])


@pytest.mark.parametrize("pos,n", [(S, 1), (S + 7, 1), (5, 0)])
def test_qkv_rope_never_writes_outside(cp, ops, pos, n):
    """pos >= S (or no real token) writes q but leaves the whole cache untouched."""
    D, H, KVH, dtype = 192, 6, 2, "float16"
    hd, kvd = D // H, 2 * (D // H)
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    wqkv = rand_t(cp, (D + 2 * kvd, D), dtype, seed=3, scale=D ** -0.5)
    kc, vc = rand_t(cp, (S, KVH, hd), dtype, seed=4), rand_t(cp, (S, KVH, hd), dtype, seed=5)
    kc0, vc0 = kc.copy(), vc.copy()
    q = poison(cp, (1, D), cp.float16)
    ops.qkv_rope(q, rand_t(cp, (1, D), dtype, 6), wqkv, rope, kc, vc, cp.asarray([pos], dtype=cp.int32),
                 cp.asarray([n], dtype=cp.int32))
    assert bool(cp.isfinite(q).all())
    assert cp.array_equal(kc, kc0) and cp.array_equal(vc, vc0)


# ---- fused RMSNorm (decode): producers write T(x) and partial sums of squares, consumers apply the norm ----
EPS = 1e-5
NORM_DIMS = [200, 203, 4096, 5120, 8192]


@pytest.fixture(scope="module")
def state():
    from cugraphllm.gpu import state
    return state


def stats_buffers(cp, D, dtype):
    """Poisoned (x f32 [1, D], xn T [1, D], ss f32 [(D + 1) // 2]) as Scratch sizes them."""
    return poison(cp, (1, D), cp.float32), poison(cp, (1, D), dt(cp, dtype)), poison(cp, ((D + 1) // 2,), cp.float32)


def check_stats(cp, ops, x, xn, ss, D, dtype):
    """xn == T(x) bit for bit; ss[j] = sum of x^2 over chunk j (fp32 tolerance); entries past the count untouched."""
    n, c = ops.norm_partials(D), ops.norm_chunk(D)
    xh = x.get()[0]
    np.testing.assert_array_equal(host64(xn)[0], xh.astype(dt(cp, dtype)).astype(np.float64))
    got = ss.get()
    assert np.all(np.isfinite(got[:n])) and np.all(np.isnan(got[n:])), "ss written outside its partials"
    want = np.array([np.sum(xh[j * c:(j + 1) * c].astype(np.float64) ** 2) for j in range(n)])
    assert rel_err(got[:n], want) < TOL_F32


def produced_x(cp, ops, D, dtype, seed):
    """x f32 [1, D] with xn and ss as the decode embedding writes them (a random row, mean 0.3, std 2)."""
    rng = np.random.default_rng(seed)
    table = cp.asarray((rng.standard_normal((5, D)) * 2 + 0.3).astype(np.float32)).astype(dt(cp, dtype))
    x, xn, ss = stats_buffers(cp, D, dtype)
    ops.embedding(Residual(x, xn, ss), table, cp.asarray([3], dtype=cp.int32))
    return x, xn, ss


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


def twice(cp, run, shape, dtype):
    """Run a fused op twice on fresh poisoned outputs; both results must be bit-identical."""
    outs = []
    for _ in range(2):
        out = poison(cp, shape, dtype)
        run(out)
        outs.append(out)
    assert cp.array_equal(outs[0], outs[1]), "fused op is not deterministic"
    return outs[0]


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
    logits = twice(cp, lambda out: ops.norm_matmul_logits(out, Residual(x, xn, ss), EPS, wf, n), (1, V),
                   cp.float32)
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


# ---- token selection ---------------------------------------------------------------------------------------
def selection_state(cp, pos, n=1, hist_len=S + 1, seed=0):
    rng = np.random.default_rng(seed)
    hist0 = rng.integers(0, 32000, hist_len).astype(np.int32)
    return (cp.asarray([-1], dtype=cp.int32), cp.asarray(hist0), cp.asarray([pos], dtype=cp.int32),
            cp.asarray([n], dtype=cp.int32), hist0)


@pytest.mark.parametrize("V", [769, 32000])
@pytest.mark.parametrize("pos", [0, 511, 4095])
def test_argmax(cp, ops, V, pos):
    logits = np.random.default_rng(V + pos).standard_normal(V).astype(np.float32)
    logits[V // 3] = logits[V // 2] = logits.max() + 1.0  # a tie: the lower id wins
    token, hist, dpos, n, hist0 = selection_state(cp, pos, seed=pos)
    ops.argmax(token, hist, dpos, n, cp.asarray(logits[None]))
    assert int(token.get()[0]) == V // 3 == int(np.argmax(logits))
    want = hist0.copy()
    want[pos + 1] = V // 3
    np.testing.assert_array_equal(hist.get(), want)
    assert int(dpos.get()[0]) == pos + 1


def gpu_sample(cp, ops, logits, params, seed, pos, hist0):
    token, hist, dpos, n, _ = selection_state(cp, pos)
    hist.set(hist0)
    p = cp.asarray(ops.sampling_params_array(params))
    ops.sample(token, hist, dpos, n, cp.asarray(logits[None]), p, cp.asarray([seed], dtype=cp.uint64))
    t = int(token.get()[0])
    assert int(hist.get()[pos + 1]) == t and int(dpos.get()[0]) == pos + 1
    return t


PARAM_GRID = [dict(temperature=0.0), dict(temperature=0.0, repetition_penalty=1.3),
              dict(temperature=1.0), dict(temperature=0.7, top_k=40), dict(temperature=1.3, top_k=1000),
              dict(temperature=1.0, top_p=0.9), dict(temperature=0.8, top_k=50, top_p=0.5),
              dict(temperature=1.0, top_k=1), dict(temperature=1.1, top_p=0.95, repetition_penalty=1.2),
              dict(temperature=2.0, top_k=5, repetition_penalty=0.8)]


@pytest.mark.parametrize("kw", PARAM_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sample_matches_numpy_sampler(cp, ops, kw):
    from cugraphllm.sampling import SamplingParams, sample
    V = 32000
    rng = np.random.default_rng(len(str(kw)))
    for trial in range(8):
        logits = (rng.standard_normal(V) * 2.5).astype(np.float32)
        pos = int(rng.integers(0, S - 1))
        hist0 = rng.integers(0, V, S + 1).astype(np.int32)
        params = SamplingParams(seed=int(rng.integers(0, 2**63)), **kw)
        want = sample(logits, params, hist0[:pos + 1].tolist(), pos + 1)
        got = gpu_sample(cp, ops, logits, params, params.seed, pos, hist0)
        assert got == want, f"trial {trial}: gpu {got} numpy {want}"
        if params.repetition_penalty == 1.0 and (params.temperature == 0.0 or params.top_k == 1):
            assert got == int(np.argmax(logits)), "greedy / top_k=1 must be the argmax"


def test_sample_deterministic_and_varied(cp, ops):
    from cugraphllm.sampling import SamplingParams
    V = 32000
    logits = np.random.default_rng(5).standard_normal(V).astype(np.float32)
    hist0 = np.zeros(S + 1, np.int32)
    params = SamplingParams(temperature=1.0, top_p=0.9, seed=1234)
    draws = [gpu_sample(cp, ops, logits, params, 1234, pos, hist0) for pos in range(24)]
    again = [gpu_sample(cp, ops, logits, params, 1234, pos, hist0) for pos in range(24)]
    assert draws == again
    assert len(set(draws)) > 12, "draws at different positions should differ"


# ---- graph capture -----------------------------------------------------------------------------------------
def tiny_step_state(cp, S2=64):
    D, H, KVH, F, V, dtype = 512, 8, 4, 1376, 1000, "float16"
    hd = D // H
    kvd = KVH * hd
    rng = np.random.default_rng(9)
    st = dict(
        table=rand_t(cp, (V, D), dtype, 20), wqkv=rand_t(cp, (D + 2 * kvd, D), dtype, 21, D ** -0.5),
        wo=rand_t(cp, (D, D), dtype, 22, D ** -0.5), w13=rand_t(cp, (2 * F, D), dtype, 23, D ** -0.5),
        w2=rand_t(cp, (D, F), dtype, 24, F ** -0.5), wout=rand_t(cp, (V, D), dtype, 25, D ** -0.5),
        g=cp.asarray((1 + 0.1 * rng.standard_normal(D)).astype(np.float32)),
        r=cp.asarray(rng.standard_normal((1, D)).astype(np.float32)),
        rope=cp.asarray(ref.rope_table(S2, hd, 10000.0).astype(np.float32)),
        x=cp.zeros((1, D), cp.float32), xn=cp.zeros((1, D), cp.float16), q=cp.zeros((1, D), cp.float16),
        h=cp.zeros((1, F), cp.float16), xl=cp.zeros((1, D), cp.float16), logits=cp.zeros((1, V), cp.float32),
        ss=cp.zeros((D + 1) // 2, cp.float32),
        kc0=rand_t(cp, (S2, KVH, hd), dtype, 26), vc0=rand_t(cp, (S2, KVH, hd), dtype, 27),
        hist0=cp.asarray(rng.integers(0, V, S2 + 1).astype(np.int32)),
        token=cp.zeros(1, cp.int32), pos=cp.zeros(1, cp.int32), n=cp.ones(1, cp.int32),
        params=cp.asarray(np.array([0.9, 0.95, 1.1, 20], np.float32)), seed=cp.asarray([77], dtype=cp.uint64))
    st["kc"], st["vc"], st["hist"] = st["kc0"].copy(), st["vc0"].copy(), st["hist0"].copy()
    # Made on the legacy default stream, which a non-blocking stream does not wait for: without this, a step on
    # such a stream can read weights that are still being generated behind an earlier test's queued work.
    cp.cuda.Device().synchronize()
    return st


def tiny_step(ops, s, fused=False):
    if fused:
        return tiny_fused_step(ops, s)
    ops.embedding(Residual(s["x"]), s["table"], s["token"])
    ops.rmsnorm(s["xn"], s["x"], s["g"], 1e-5)
    ops.qkv_rope(s["q"], s["xn"], s["wqkv"], s["rope"], s["kc"], s["vc"], s["pos"], s["n"])
    ops.matmul_residual(Residual(s["x"]), s["q"], s["wo"])      # q stands in for the attention output
    ops.add_rmsnorm(s["x"], s["r"], s["xn"], s["g"], 1e-5)
    ops.matmul_silu(s["h"], s["xn"], s["w13"])
    ops.matmul_residual(Residual(s["x"]), s["h"], s["w2"])
    ops.rmsnorm_last(s["xl"], s["x"], s["g"], 1e-5, s["n"])
    ops.matmul_logits(s["logits"], s["xl"], s["wout"])
    ops.sample(s["token"], s["hist"], s["pos"], s["n"], s["logits"], s["params"], s["seed"])


def tiny_fused_step(ops, s):
    """The decode step of gpu/model.py: norms fused into the GEMVs (s["g"] stands in for folded weights)."""
    x, xn, ss = s["x"], s["xn"], s["ss"]
    ops.embedding(Residual(x, xn, ss), s["table"], s["token"])
    ops.norm_qkv_rope(s["q"], Residual(x, xn, ss), 1e-5, s["wqkv"], s["rope"], s["kc"], s["vc"], s["pos"], s["n"])
    ops.matmul_residual(Residual(x, xn, ss), s["q"], s["wo"])
    ops.norm_matmul_silu(s["h"], Residual(x, xn, ss), 1e-5, s["w13"])
    ops.matmul_residual(Residual(x, xn, ss), s["h"], s["w2"])
    ops.norm_matmul_logits(s["logits"], Residual(x, xn, ss), 1e-5, s["wout"], s["n"])
    ops.sample(s["token"], s["hist"], s["pos"], s["n"], s["logits"], s["params"], s["seed"])


def reset_step(cp, s, pos, token):
    s["kc"][...] = s["kc0"]
    s["vc"][...] = s["vc0"]
    s["hist"][...] = s["hist0"]
    s["pos"].fill(pos)
    s["token"].fill(token)


OUTPUTS = ("x", "xn", "ss", "q", "kc", "vc", "h", "logits", "token", "hist", "pos")


@pytest.mark.parametrize("fused", [False, True])
def test_graph_capture_replay_matches_eager(cp, ops, fused):
    s = tiny_step_state(cp)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        reset_step(cp, s, 0, 3)
        tiny_step(ops, s, fused)  # compile and load everything before capture
        stream.begin_capture()
        tiny_step(ops, s, fused)
        graph = stream.end_capture()
        snaps = []
        for pos, tok in ((5, 17), (40, 999)):
            for mode in ("eager", "graph"):
                reset_step(cp, s, pos, tok)
                tiny_step(ops, s, fused) if mode == "eager" else graph.launch(stream)
                stream.synchronize()
                snaps.append({k: s[k].get() for k in OUTPUTS})
    for (a, b) in ((snaps[0], snaps[1]), (snaps[2], snaps[3])):
        for k in OUTPUTS:
            assert np.array_equal(a[k], b[k], equal_nan=False), f"graph replay differs from eager in {k}"
    assert snaps[1]["pos"][0] == 6 and snaps[3]["pos"][0] == 41
    assert not np.array_equal(snaps[1]["kc"][40], snaps[3]["kc"][40]), "replay must follow the device pos"


# ---- launcher checks ---------------------------------------------------------------------------------------
def test_launchers_reject_bad_inputs(cp, ops):
    w = rand_t(cp, (64, 32), "float16", 1)
    a = rand_t(cp, (1, 32), "float16", 2)
    bad = [
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 64), cp.float64)), a, w),  # x dtype
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 63), cp.float32)), a, w),  # rows
        lambda: ops.matmul_logits(cp.zeros((1, 64), cp.float32), a, w.astype(cp.float32)),  # weight dtype
        lambda: ops.matmul_logits(cp.zeros((1, 64), cp.float32), a, cp.asfortranarray(w)),  # layout
        lambda: ops.matmul_silu(cp.zeros((1, 31), cp.float16), a, w),               # 2F != rows
        lambda: ops.rmsnorm(cp.zeros((2, 32), cp.float16), cp.zeros((2, 32), cp.float32),
                            cp.ones(31, cp.float32), 1e-5),
        lambda: ops.argmax(cp.zeros(1, cp.int64), cp.zeros(9, cp.int32), cp.zeros(1, cp.int32),
                           cp.ones(1, cp.int32), cp.zeros((1, 64), cp.float32)),
        lambda: ops.embedding(Residual(cp.zeros((2, 32), cp.float32)), w, cp.zeros(1, cp.int32)),  # too few tokens
        lambda: ops.embedding(Residual(cp.zeros((1, 32), cp.float32), a, cp.zeros(1, cp.float32)), w,
                              cp.zeros(1, cp.int32)),
        lambda: ops.matmul_residual(Residual(cp.zeros((1, 64), cp.float32), None, cp.zeros(32, cp.float32)), a,
                                    w),  # no xh
        lambda: ops.norm_matmul_logits(cp.zeros((1, 64), cp.float32), Residual(cp.zeros((1, 32), cp.float32), a,
                                       cp.zeros(1, cp.float32)), 1e-5, w, cp.ones(1, cp.int32)),  # ss too short
        lambda: ops.norm_matmul_silu(cp.zeros((1, 32), cp.float16), Residual(cp.zeros((1, 32), cp.float16), a,
                                     cp.zeros(16, cp.float32)), 1e-5, w),  # x not f32
    ]
    for i, f in enumerate(bad):
        with pytest.raises(ValueError):
            f()
