"""QuantPlan.mma_waves=1 (gpu/gemv_plan.py waves_config: int4 tile configs by wave fill; int4's default since the
twelfth session) on the shapes where it departs from the fixed rule, against the float64 product of the same packed
weights: 7680 row pairs (13B wqkv) on 16 warps, 4 a tile (logits GEMV); 6912 (13B TP2 w13) on 16 / 4 (SiLU GEMV);
4096 (70B wo) on 16 / 8 with the residual-with-ss epilogue (tiles at every size). Outputs NaN-poisoned first."""
import dataclasses

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, dt, host64, poison, rand_t, rel_err
from quant_helpers import deq_matvec, make_layer, tol_f32

pytestmark = pytest.mark.gpu


@pytest.fixture
def waves(monkeypatch):
    from cugraphllm.gpu import gemv_plan, ops_quant
    plan = dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], mma_waves=1, mma_min_pairs=0, mma_shapes=())
    monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4", plan)
    monkeypatch.setattr(ops_quant, "_cache", {})
    return plan


def test_logits_13b_wqkv_rows(cp, ops, waves):
    N, K = 15360, 5120
    assert waves.gemv_config("qgemv_logits", K, N // 2) == (16, 2, 4)
    host, w = make_layer(cp, N, K, "int4", seed=N + K, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 3)
    out = poison(cp, (1, N), cp.float32)
    ops.matmul_logits(out, a, w)
    assert rel_err(out.get()[0], deq_matvec(host, host64(a)[0])) < tol_f32("int4")


def test_silu_13b_tp2_w13(cp, ops, waves):
    F, K = 6912, 5120
    assert waves.gemv_config("qgemv_silu", K, F) == (16, 2, 4)
    host, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + K, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 4)
    h = poison(cp, (1, F), dt(cp, "float16"))
    ops.matmul_silu(h, a, w13)
    y = deq_matvec(host, host64(a)[0])
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]


def test_residual_ss_70b_wo(cp, ops, waves):
    N, K = 8192, 8192
    assert waves.gemv_config("qgemv_residual_ss", K, N // 2) == (16, 2, 8)
    host, w = make_layer(cp, N, K, "int4", seed=N * 3 + K, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 5)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    x, xn, ss = cp.asarray(x0), poison(cp, (1, N), cp.float16), poison(cp, ((N + 1) // 2,), cp.float32)
    ops.matmul_residual(Residual(x, xn, ss), a, w)
    xh = x.get()[0]
    assert rel_err(xh, x0[0].astype(np.float64) + deq_matvec(host, host64(a)[0])) < tol_f32("int4")
    np.testing.assert_array_equal(host64(xn)[0], xh.astype(np.float16).astype(np.float64))
    n, c = ops.norm_partials(N), ops.norm_chunk(N)
    want = np.array([np.sum(xh[j * c:(j + 1) * c].astype(np.float64) ** 2) for j in range(n)])
    got = ss.get()
    assert np.all(np.isfinite(got[:n])) and np.all(np.isnan(got[n:])), "ss written outside its partials"
    assert rel_err(got[:n], want) < 1e-5
