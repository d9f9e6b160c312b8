"""The bulk-copy tile GEMVs (QuantPlan.bulk, kernels/gemv_quant_bulk.cuh) against the float64 product of the same
packed weights, on the shapes that exercise the stage ring: several virtual blocks a block with a ring of 1-3
stages (the slots refill and their mbarriers change phase), inactive pairs in the last tile (203 rows: a pair of
one row; 385 w13 pairs: two short runs), 1, 2, 4 and 8 tiles a block, 2-8 warps a tile, fp16 and bf16. Every case checks a bulk module was built, outputs are NaN-poisoned first, and a second
run gives the same bits. test_quant_gpu.py runs its whole suite under the bulk plan as well (its "bulk" path).
"""
import dataclasses

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, dt, host64, poison, rand_t, rel_err, twice
from quant_helpers import FMTS, deq_matvec, make_layer

pytestmark = pytest.mark.gpu
TOL = 2e-3   # fp32 outputs: the tiles stage the activation in half (quant_helpers.TOL_H2)

# (warps, unroll, warps a tile), stages the ring may hold (0: what the device's shared memory holds)
# 64-row stages (w16m4) do not fit on K = 11008 (352 KB): those launches take the register tiles (checked)
CONFIGS = {"w16m8": ((16, 1, 8), 0), "w8m8-ring1": ((8, 1, 8), 1), "w8m4-ring2": ((8, 1, 4), 2),
           "w4m4-ring3": ((4, 1, 4), 3), "w16m4": ((16, 1, 4), 0)}


@pytest.fixture(params=list(CONFIGS))
def bulk(request, monkeypatch):
    """The plan of every format set to the bulk tiles under one config; a ring of n stages where asked (the cap
    is set from the stage size of the case: bulk_ring below)."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    cfg, ring = CONFIGS[request.param]
    monkeypatch.setattr(ops_quant, "_cache", {})
    for fmt in FMTS:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt, dataclasses.replace(
            gemv_plan.QUANT_PLANS[fmt], mma=1, bulk=1, bulk_cfg=cfg))
    return cfg, ring


def bulk_ring(monkeypatch, bulk, fmt, K):
    """Caps the dynamic shared memory of `fmt` at the staging plus `ring` stages (no cap for ring 0)."""
    from cugraphllm.gpu import gemv_plan
    (warps, _, ms), ring = bulk
    plan = gemv_plan.QUANT_PLANS[fmt]
    if ring:
        cap = plan.bulk_staging(K) + ring * plan.bulk_stage(K, warps, ms)
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt, dataclasses.replace(plan, bulk_smem=cap))


def built(bulk, fmt, K):
    """A bulk module was built where one stage fits (ops_quant's rule), none elsewhere."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    (warps, _, ms), _ = bulk
    fits = gemv_plan.QUANT_PLANS[fmt].bulk_fits(K, warps, ms, ops_quant._device_attrs()[1] - 4096)
    assert any(k[-1] for k in ops_quant._cache) == fits, f"bulk module built: expected {fits}"


# (N, K): 203 rows (inactive pairs, a one-row pair), K 1280 (10 int4 / 20 8-bit iterations: a short last stage);
# 7B wo and w2, and a 32000-row LM head (7-8 virtual blocks a block)
SHAPES = [(203, 1280), (4096, 4096), (4096, 11008), (32000, 4096)]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K", SHAPES)
def test_logits(cp, ops, monkeypatch, bulk, fmt, N, K):
    bulk_ring(monkeypatch, bulk, fmt, K)
    host, w = make_layer(cp, N, K, fmt, seed=N + K)
    a = rand_t(cp, (1, K), "float16", seed=K + 3)
    logits = twice(cp, lambda out: ops.matmul_logits(out, a, w), (1, N), cp.float32)
    built(bulk, fmt, K)
    assert rel_err(logits.get()[0], deq_matvec(host, host64(a)[0])) < TOL


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K,dtype", [(203, 1280, "float16"), (4096, 11008, "bfloat16"), (4096, 4096, "float16")])
def test_residual_ss(cp, ops, monkeypatch, bulk, fmt, N, K, dtype):
    bulk_ring(monkeypatch, bulk, fmt, K)
    host, w = make_layer(cp, N, K, fmt, seed=3 * N + K)
    a = rand_t(cp, (1, K), dtype, seed=K + 1)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    x, xn, ss = cp.asarray(x0), poison(cp, (1, N), dt(cp, dtype)), poison(cp, ((N + 1) // 2,), cp.float32)
    ops.matmul_residual(Residual(x, xn, ss), a, w)
    built(bulk, fmt, K)
    xh = x.get()[0]
    assert rel_err(xh, x0[0].astype(np.float64) + deq_matvec(host, host64(a)[0])) < TOL
    np.testing.assert_array_equal(host64(xn)[0], xh.astype(dt(cp, dtype)).astype(np.float64))
    n, c = ops.norm_partials(N), ops.norm_chunk(N)
    got = ss.get()
    assert np.all(np.isfinite(got[:n])) and np.all(np.isnan(got[n:])), "ss written outside its partials"
    want = np.array([np.sum(xh[j * c:(j + 1) * c].astype(np.float64) ** 2) for j in range(n)])
    assert rel_err(got[:n], want) < 1e-5


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("F,K,dtype", [(385, 1280, "bfloat16"), (11008, 4096, "float16")])
def test_silu(cp, ops, monkeypatch, bulk, fmt, F, K, dtype):
    """w13's pairs are rows j and F + j: two runs of rows a tile."""
    bulk_ring(monkeypatch, bulk, fmt, K)
    host, w13 = make_layer(cp, 2 * F, K, fmt, seed=F + K)
    a = rand_t(cp, (1, K), dtype, seed=K + 5)
    h = twice(cp, lambda out: ops.matmul_silu(out, a, w13), (1, F), dt(cp, dtype))
    built(bulk, fmt, K)
    y = deq_matvec(host, host64(a)[0])
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T[dtype]


@pytest.mark.parametrize("fmt", FMTS)
def test_qkv_rope_7b(cp, ops, monkeypatch, bulk, fmt):
    D, H, KVH, S, pos = 4096, 32, 32, 64, 37
    hd, kvd = D // H, D
    bulk_ring(monkeypatch, bulk, fmt, D)
    table = ref.rope_table(S, hd, 10000.0)
    host, wqkv = make_layer(cp, D + 2 * kvd, D, fmt, seed=D + H)
    xn = rand_t(cp, (1, D), "float16", seed=D + 11)
    q = poison(cp, (1, D), cp.float16)
    kc, vc = poison(cp, (S, KVH, hd), cp.float16), poison(cp, (S, KVH, hd), cp.float16)
    ops.qkv_rope(q, xn, wqkv, cp.asarray(table.astype(np.float32)), kc, vc, cp.asarray([pos], dtype=cp.int32),
                 cp.ones(1, cp.int32))
    built(bulk, fmt, D)
    y = deq_matvec(host, host64(xn)[0])
    qr = ref.apply_rope(y[:D].reshape(1, H, hd), np.array([pos]), table).reshape(D)
    kr = ref.apply_rope(y[D:D + kvd].reshape(1, KVH, hd), np.array([pos]), table).reshape(kvd)
    assert rel_err(host64(q)[0], qr) < TOL_T["float16"]
    assert rel_err(host64(kc[pos]).reshape(kvd), kr) < TOL_T["float16"]
    assert rel_err(host64(vc[pos]).reshape(kvd), y[D + kvd:]) < TOL_T["float16"]
