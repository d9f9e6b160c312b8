"""Embedding gather and the RMSNorm kernels (kernels/embedding.cu, rmsnorm.cu) against NumPy float64;
tolerances in kernel_helpers.py."""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import DTYPES, TOL_F32, TOL_T, dt, host64, poison, rand_t, rel_err

pytestmark = pytest.mark.gpu


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
