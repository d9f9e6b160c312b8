"""Quantized decode GEMVs (kernels/gemv_quant.cu through gpu/ops.py -> gpu/ops_quant.py) against the float64
product of quant.formats.dequantize on the same packed weights (tolerances in tests/quant_helpers.py and
kernel_helpers.py).

Every layer carries a random perm and gain unless stated; outputs are poisoned (NaN) first; inputs are fresh
random data; sizes are awkward (scalar paths: K not a multiple of the 16-byte vector, int4 groups not a multiple
of 32, odd row counts) and the LLaMA-2 7B / 70B shapes.
"""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import DTYPES, TOL_T, dt, host64, poison, produced_x, rand_t, rel_err, twice
import dataclasses

from quant_helpers import FMTS, deq_matvec, make_layer, tol_f32

pytestmark = pytest.mark.gpu
S = 4096
EPS = 1e-5
BIG = pytest.mark.big   # 70B shapes (slow float64 references): under the default plan only


PATHS = {"f32acc": dict(hacc=0, mma=0), "h2acc": dict(hacc=1, mma=0), "mma": dict(hacc=0, mma=1, mma_min_pairs=0),
         "f32_pipe": dict(hacc=0, mma=0, pipe=1), "h2_pipe": dict(hacc=1, mma=0, pipe=1)}


@pytest.fixture(autouse=True, params=list(PATHS))
def gemv_path(request, monkeypatch):
    """Every test under each GEMV path: fp32 products, half2 products, tensor-core tiles."""
    from cugraphllm.gpu import gemv_plan
    plan = gemv_plan.plan_for(request.node.callspec.params.get("fmt", "int4"))   # the test's format's default
    default = "mma" if plan.mma else {(0, 0): "f32acc", (1, 0): "h2acc", (0, 1): "f32_pipe",
                                      (1, 1): "h2_pipe"}[(plan.hacc, plan.pipe)]
    if request.node.get_closest_marker("big") and request.param != default:
        pytest.skip("70B shapes run under the default plan only (their float64 references take minutes)")
    for fmt in FMTS:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt,
                            dataclasses.replace(gemv_plan.QUANT_PLANS[fmt], **PATHS[request.param]))
    return request.param


# (N, K, group): awkward (scalar paths, odd N), vector paths with small groups and per-row groups, 7B, 70B.
RESIDUAL_SHAPES = [(769, 200, 40), (203, 96, 32), (515, 1024, -1), (4096, 4096, 128), (4096, 11008, 128),
                   pytest.param(8192, 28672, 128, marks=BIG)]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K,g", RESIDUAL_SHAPES)
def test_matmul_residual(cp, ops, fmt, N, K, g):
    host, w = make_layer(cp, N, K, fmt, seed=N + K, group_size=g)
    a = rand_t(cp, (1, K), "float16", seed=K)
    x0 = np.random.default_rng(N).standard_normal((1, N)).astype(np.float32)
    x = cp.asarray(x0)
    ops.matmul_residual(Residual(x), a, w)
    want = x0[0].astype(np.float64) + deq_matvec(host, host64(a)[0])
    assert rel_err(x.get()[0], want) < tol_f32(fmt)
    x2 = cp.asarray(x0)
    ops.matmul_residual(Residual(x2), a, w)
    assert cp.array_equal(x, x2), "quantized GEMV is not deterministic"


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K,g,dtype", [(203, 200, 8, "float16"), (203, 200, 8, "bfloat16"),
                                         (4096, 4096, 128, "bfloat16"), (4096, 11008, 128, "float16"),
                                         (5120, 5120, 128, "float16"), (5120, 13824, 128, "bfloat16"),  # 13B
                                         pytest.param(8192, 28672, 128, "float16", marks=BIG)])
def test_matmul_residual_stats(cp, ops, fmt, N, K, g, dtype):
    """x += a @ W.T with xh = T(new x) and ss = chunk sums of new x^2 in the model-wide chunking (13B's wo and w2:
    int4 on its mma_shapes tile configs under the default path)."""
    host, w = make_layer(cp, N, K, fmt, seed=N * 3 + K, group_size=g)
    a = rand_t(cp, (1, K), dtype, seed=K + 1)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    x, xn, ss = cp.asarray(x0), poison(cp, (1, N), dt(cp, dtype)), poison(cp, ((N + 1) // 2,), cp.float32)
    ops.matmul_residual(Residual(x, xn, ss), a, w)
    xh = x.get()[0]
    assert rel_err(xh, x0[0].astype(np.float64) + deq_matvec(host, host64(a)[0])) < tol_f32(fmt)
    np.testing.assert_array_equal(host64(xn)[0], xh.astype(dt(cp, dtype)).astype(np.float64))
    n, c = ops.norm_partials(N), ops.norm_chunk(N)
    got = ss.get()
    assert np.all(np.isfinite(got[:n])) and np.all(np.isnan(got[n:])), "ss written outside its partials"
    want = np.array([np.sum(xh[j * c:(j + 1) * c].astype(np.float64) ** 2) for j in range(n)])
    assert rel_err(got[:n], want) < 1e-5


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("V,K,g", [(769, 200, 40), (32000, 4096, 128), (32000, 8192, -1)])
def test_matmul_logits(cp, ops, fmt, dtype, V, K, g):
    host, w = make_layer(cp, V, K, fmt, seed=V + K, group_size=g)
    a = rand_t(cp, (1, K), dtype, seed=K + 3)
    logits = poison(cp, (1, V), cp.float32)
    ops.matmul_logits(logits, a, w)
    assert rel_err(logits.get()[0], deq_matvec(host, host64(a)[0])) < tol_f32(fmt)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("F,K,g,dtype", [(385, 200, 40, "float16"), (385, 200, 40, "bfloat16"),
                                         (11008, 4096, 128, "float16"), (11008, 4096, 128, "bfloat16"),
                                         pytest.param(28672, 8192, 128, "float16", marks=BIG)])
def test_matmul_silu(cp, ops, fmt, F, K, g, dtype):
    host, w13 = make_layer(cp, 2 * F, K, fmt, seed=F + K, group_size=g)
    a = rand_t(cp, (1, K), dtype, seed=K + 5)
    h = poison(cp, (1, F), dt(cp, dtype))
    ops.matmul_silu(h, a, w13)
    y = deq_matvec(host, host64(a)[0])
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T[dtype]


# (dim, n_heads, n_kv_heads, group)
QKV_SHAPES = [(192, 6, 2, 32), (4096, 32, 32, 128), pytest.param(8192, 64, 8, 128, marks=BIG)]


def qkv_reference(host, a64, table, D, kvd, H, KVH, hd, pos, y=None):
    y = deq_matvec(host, a64) if y is None else y
    q = ref.apply_rope(y[:D].reshape(1, H, hd), np.array([pos]), table).reshape(D)
    k = ref.apply_rope(y[D:D + kvd].reshape(1, KVH, hd), np.array([pos]), table).reshape(kvd)
    return q, k, y[D + kvd:]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D,H,KVH,g", QKV_SHAPES)
def test_qkv_rope(cp, ops, fmt, dtype, D, H, KVH, g):
    hd = D // H
    kvd = KVH * hd
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    host, wqkv = make_layer(cp, D + 2 * kvd, D, fmt, seed=D + H, group_size=g)
    kc0, vc0 = rand_t(cp, (S, KVH, hd), dtype, seed=1), rand_t(cp, (S, KVH, hd), dtype, seed=2)
    xn = rand_t(cp, (1, D), dtype, seed=D + 11)
    y = deq_matvec(host, host64(xn)[0])  # the product once; RoPE and the cache row change with pos
    for pos in (0, 511, 4095):
        q = poison(cp, (1, D), dt(cp, dtype))
        kc, vc = kc0.copy(), vc0.copy()
        ops.qkv_rope(q, xn, wqkv, rope, kc, vc, cp.asarray([pos], dtype=cp.int32), cp.ones(1, cp.int32))
        qr, kr, vr = qkv_reference(host, None, table, D, kvd, H, KVH, hd, pos, y)
        assert rel_err(host64(q)[0], qr) < TOL_T[dtype], f"q at pos {pos}"
        assert rel_err(host64(kc[pos]).reshape(kvd), kr) < TOL_T[dtype], f"k at pos {pos}"
        assert rel_err(host64(vc[pos]).reshape(kvd), vr) < TOL_T[dtype], f"v at pos {pos}"
        others = np.arange(S) != pos
        assert cp.array_equal(kc[others], kc0[others]) and cp.array_equal(vc[others], vc0[others])


@pytest.mark.parametrize("fmt", FMTS)
def test_qkv_rope_never_writes_outside(cp, ops, fmt):
    D, H, KVH = 192, 6, 2
    hd, kvd = D // H, 2 * (D // H)
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * kvd, D, fmt, seed=3, group_size=64)
    kc, vc = rand_t(cp, (S, KVH, hd), "float16", seed=4), rand_t(cp, (S, KVH, hd), "float16", seed=5)
    kc0, vc0 = kc.copy(), vc.copy()
    for pos, n in ((S, 1), (S + 7, 1), (5, 0)):
        q = poison(cp, (1, D), cp.float16)
        ops.qkv_rope(q, rand_t(cp, (1, D), "float16", 6), wqkv, rope, kc, vc, cp.asarray([pos], dtype=cp.int32),
                     cp.asarray([n], dtype=cp.int32))
        assert bool(cp.isfinite(q).all())
        assert cp.array_equal(kc, kc0) and cp.array_equal(vc, vc0)


# ---- fused norms: x, xn = T(x), ss from the decode embedding; the GEMV applies inv_rms ------------------------
def normed64(x):
    return ref.rmsnorm(host64(x)[0], np.ones(x.shape[1]), EPS)


SIZES = {"awkward": (200, 10, 2, 385, 769, 40), "7B": (4096, 32, 32, 11008, 32000, 128),
         "70B": (8192, 64, 8, 28672, 32000, 128)}  # D, H, KVH, F, V, group
FUSED = [pytest.param(s, d, f, marks=[BIG] if s == "70B" else [])
         for f in FMTS for s, d in (("awkward", "float16"), ("awkward", "bfloat16"), ("7B", "float16"),
                                    ("7B", "bfloat16"), ("70B", "float16"))]


@pytest.mark.parametrize("size,dtype,fmt", FUSED)
def test_norm_matmul_silu(cp, ops, size, dtype, fmt):
    D, _, _, F, _, g = SIZES[size]
    host, w13 = make_layer(cp, 2 * F, D, fmt, seed=F, group_size=g)  # the norm gain rides in w13.gain
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=F + 2)
    h = twice(cp, lambda out: ops.norm_matmul_silu(out, Residual(x, xn, ss), EPS, w13), (1, F), dt(cp, dtype))
    y = deq_matvec(host, normed64(x))
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T[dtype]


@pytest.mark.parametrize("size,dtype,fmt", FUSED)
def test_norm_matmul_logits(cp, ops, size, dtype, fmt):
    D, _, _, _, V, g = SIZES[size]
    host, w = make_layer(cp, V, D, fmt, seed=V + D, group_size=g)
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=D + 8)
    n = cp.ones(1, cp.int32)
    logits = twice(cp, lambda out: ops.norm_matmul_logits(out, Residual(x, xn, ss), EPS, w, n), (1, V), cp.float32)
    assert rel_err(logits.get()[0], deq_matvec(host, normed64(x))) < TOL_T[dtype]


@pytest.mark.parametrize("size,dtype,fmt", FUSED)
def test_norm_qkv_rope(cp, ops, size, dtype, fmt):
    D, H, KVH, _, _, g = SIZES[size]
    hd = D // H
    kvd = KVH * hd
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    host, wqkv = make_layer(cp, D + 2 * kvd, D, fmt, seed=D + H, group_size=g)
    pos, n = 511, cp.ones(1, cp.int32)
    x, xn, ss = produced_x(cp, ops, D, dtype, seed=D + 10)
    kc, vc = rand_t(cp, (S, KVH, hd), dtype, seed=1), rand_t(cp, (S, KVH, hd), dtype, seed=2)
    kv_rows = []

    def run(q):
        ops.norm_qkv_rope(q, Residual(x, xn, ss), EPS, wqkv, rope, kc, vc, cp.asarray([pos], dtype=cp.int32), n)
        kv_rows.append((kc[pos].copy(), vc[pos].copy()))
    q = twice(cp, run, (1, D), dt(cp, dtype))
    assert cp.array_equal(kv_rows[0][0], kv_rows[1][0]) and cp.array_equal(kv_rows[0][1], kv_rows[1][1])
    qr, kr, vr = qkv_reference(host, normed64(x), table, D, kvd, H, KVH, hd, pos)
    assert rel_err(host64(q)[0], qr) < TOL_T[dtype]
    assert rel_err(host64(kc[pos]).reshape(kvd), kr) < TOL_T[dtype]
    assert rel_err(host64(vc[pos]).reshape(kvd), vr) < TOL_T[dtype]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("perm,gain", [(False, False), (True, False), (False, True)])
def test_without_perm_or_gain(cp, ops, fmt, perm, gain):
    """The staging paths without a perm (vectorized) and without a gain (nullptr arguments)."""
    host, w = make_layer(cp, 1000, 4096, fmt, seed=17, group_size=128, perm=perm, gain=gain)
    a = rand_t(cp, (1, 4096), "float16", seed=18)
    logits = poison(cp, (1, 1000), cp.float32)
    ops.matmul_logits(logits, a, w)
    assert rel_err(logits.get()[0], deq_matvec(host, host64(a)[0])) < tol_f32(fmt)


def test_mixed_formats_share_the_ss_chunking(cp, ops):
    """A quantized residual producer feeds a 16-bit fused-norm consumer and the other way round."""
    D, F = 4096, 11008
    _, w2 = make_layer(cp, D, F, "int4", seed=1)
    w13_16 = rand_t(cp, (2 * F, D), "float16", seed=2, scale=D ** -0.5)
    host13, w13_q = make_layer(cp, 2 * F, D, "fp8", seed=3, perm=False, gain=False)
    x, xn, ss = produced_x(cp, ops, D, "float16", seed=4)
    ops.matmul_residual(Residual(x, xn, ss), rand_t(cp, (1, F), "float16", seed=5), w2)
    n = normed64(x)
    for w, y_of in ((w13_16, lambda: host64(w13_16) @ n), (w13_q, lambda: deq_matvec(host13, n))):
        h = poison(cp, (1, F), cp.float16)
        ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, w)
        y = y_of()
        assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]


def test_graph_capture_replay_matches_eager(cp, ops):
    D, F = 512, 1376
    _, w13 = make_layer(cp, 2 * F, D, "int4", seed=6, group_size=64)
    _, w2 = make_layer(cp, D, F, "int8", seed=7)
    x0 = cp.asarray(np.random.default_rng(8).standard_normal((1, D)).astype(np.float32))
    xn0 = x0.astype(cp.float16)
    ss0 = cp.full(((D + 1) // 2,), float((x0 ** 2).sum()) / ops.norm_partials(D), cp.float32)
    x, xn, ss, h = x0.copy(), xn0.copy(), ss0.copy(), cp.zeros((1, F), cp.float16)
    stream = cp.cuda.Stream(non_blocking=True)

    def step():
        ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, w13)
        ops.matmul_residual(Residual(x, xn, ss), h, w2)

    def reset():
        x[...], xn[...], ss[...] = x0, xn0, ss0
    cp.cuda.Device().synchronize()
    with stream:
        reset()
        step()
        stream.begin_capture()
        step()
        graph = stream.end_capture()
        reset()
        step()
        stream.synchronize()
        eager = (x.get(), xn.get(), ss.get(), h.get())
        reset()
        graph.launch(stream)
        stream.synchronize()
        replay = (x.get(), xn.get(), ss.get(), h.get())
    for a, b in zip(eager, replay):
        np.testing.assert_array_equal(a, b)


def test_launchers_reject_bad_weights(cp, ops):
    from cugraphllm.quant.formats import QuantLinear
    _, w = make_layer(cp, 64, 256, "int4", seed=1, group_size=64)
    a = rand_t(cp, (1, 256), "float16", 2)
    x = cp.zeros((1, 64), cp.float32)
    bad = [
        QuantLinear("int4", w.qweight, w.scales, (64, 255), w.zeros, 64),                   # shape
        QuantLinear("int4", w.qweight[:, :16], w.scales, (64, 256), w.zeros, 64),           # packed width
        QuantLinear("int4", w.qweight, w.scales, (64, 256), w.zeros, 48),                   # group
        QuantLinear("int4", w.qweight, w.scales.astype(cp.float32), (64, 256), w.zeros, 64),  # scale dtype
        QuantLinear("int3", w.qweight, w.scales, (64, 256), w.zeros, 64),                   # format
        QuantLinear("int4", w.qweight, w.scales, (64, 256), w.zeros, 64, perm=cp.arange(255, dtype=cp.int32)),
        QuantLinear("fp8", w.qweight, cp.ones(64, cp.float32), (64, 256)),                  # fp8 bytes
    ]
    for i, q in enumerate(bad):
        with pytest.raises(ValueError):
            ops.matmul_residual(Residual(x), a, q)
    with pytest.raises(ValueError):
        ops.matmul_residual(Residual(x), rand_t(cp, (1, 128), "float16", 3), w)                       # activation K


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("D", [200, 256], ids=["scalar", "vector"])
def test_looping_grid_is_bit_identical(cp, ops, fmt, D, monkeypatch):
    """Fewer blocks than row-pair blocks (QuantPlan.max_blocks / persist: each block loops over row-pair blocks,
    staging the activation once and prefetching the next pair) give the same bits as one block per row-pair
    block, in every epilogue, the fused-norm and the residual-ss forms included."""
    from cugraphllm.gpu import gemv_plan
    H, KVH, F, V = (10 if D == 200 else 8), 2, 385, 769   # head_dim 20 / 32: RoPE pairs need it even
    hd = D // H
    kvd = KVH * hd
    rope = cp.asarray(ref.rope_table(64, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * kvd, D, fmt, seed=21, group_size=8 if D == 200 else 64)
    _, w13 = make_layer(cp, 2 * F, D, fmt, seed=22, group_size=8 if D == 200 else 32)
    _, wo = make_layer(cp, D, D, fmt, seed=23, group_size=8 if D == 200 else 128)
    _, wl = make_layer(cp, V, D, fmt, seed=24, group_size=-1)
    a = rand_t(cp, (1, D), "float16", seed=25)
    x0, xn0, ss0 = produced_x(cp, ops, D, "float16", seed=26)

    def outputs():
        q, h = poison(cp, (1, D), cp.float16), poison(cp, (1, F), cp.float16)
        kc, vc = poison(cp, (64, KVH, hd), cp.float16), poison(cp, (64, KVH, hd), cp.float16)
        logits = poison(cp, (1, V), cp.float32)
        x, xn, ss = x0.copy(), xn0.copy(), ss0.copy()
        pos, n = cp.asarray([5], dtype=cp.int32), cp.ones(1, cp.int32)
        ops.norm_qkv_rope(q, Residual(x, xn, ss), EPS, wqkv, rope, kc, vc, pos, n)
        ops.norm_matmul_silu(h, Residual(x, xn, ss), EPS, w13)
        ops.matmul_logits(logits, a, wl)
        ops.matmul_residual(Residual(x, xn, ss), a, wo)
        return [t.get() for t in (q, kc[5], vc[5], h, logits, x, xn, ss)]

    plans = {f: gemv_plan.QUANT_PLANS[f] for f in FMTS}
    for f in FMTS:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, f, dataclasses.replace(plans[f], persist=0, max_blocks=0))
    want = outputs()
    for f in FMTS:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, f, dataclasses.replace(plans[f], persist=1, max_blocks=3))
    for name, got, ref_ in zip(("q", "k", "v", "h", "logits", "x", "xn", "ss"), outputs(), want):
        assert np.array_equal(got, ref_, equal_nan=True), f"{name} differs with a looping grid"
    assert np.isfinite(want[4]).all() and np.isfinite(want[3]).all()
