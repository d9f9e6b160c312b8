"""Decode GEMVs with their epilogues (kernels/gemv.cu: residual, SiLU, logits, qkv + RoPE + KV write) against
NumPy float64, on awkward and LLaMA-2 7B/13B/70B shapes; tolerances in kernel_helpers.py."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import (DTYPES, POSITIONS, S, TOL_F32, TOL_T, dt,
                            host64, matvec64, poison, qkv_reference, rand_t, rel_err)

pytestmark = pytest.mark.gpu


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
