"""QG_KO on the GPU (the bench-only switch of scripts/quant_knockout.py) on the row-pair residual GEMV each format
runs for 7B wo+ss (fp8 pipelined, int8 / int4 half2): under QG_KO 0 (through the script's patched compile) the
output matches the float64 product and equals the engine's bit for bit; QG_KO 4 writes none of x, xh, ss; QG_KO 2
writes them, wrong. The script then runs end to end on a small subset and hands ops_quant back unpatched.
Timings are not checked (benchmarks only)."""
import json

import numpy as np
import pytest

from cugraphllm.gpu.state import Residual
from kernel_helpers import host64, poison, rand_t, rel_err
from quant_helpers import FMTS, deq_matvec, make_layer, tol_f32
from scripts import quant_knockout as qk

pytestmark = pytest.mark.gpu


@pytest.fixture
def oq(monkeypatch):
    """ops_quant, its get_function and cache restored after the test (a knocked-out module must not leak)."""
    from cugraphllm.gpu import ops_quant
    monkeypatch.setattr(ops_quant, "get_function", ops_quant.get_function)
    ops_quant._cache.clear()
    yield ops_quant
    ops_quant._cache.clear()


def _run(cp, ops, w, a, x0, N):
    x, xh, ss = cp.asarray(x0), poison(cp, (1, N), cp.float16), poison(cp, (N,), cp.float32)
    ops.matmul_residual(Residual(x, xh, ss), a, w)
    cp.cuda.Device().synchronize()
    return x.get(), host64(xh), ss.get()


@pytest.mark.parametrize("fmt", FMTS)
def test_residual_under_knockouts(cp, ops, oq, fmt):
    N, K = 4096, 4096
    host, w = make_layer(cp, N, K, fmt, seed=17 + len(fmt))
    a = rand_t(cp, (1, K), "float16", seed=23)
    x0 = np.random.default_rng(29).standard_normal((1, N)).astype(np.float32)
    engine = _run(cp, ops, w, a, x0, N)
    assert rel_err(engine[0][0], x0[0].astype(np.float64) + deq_matvec(host, host64(a)[0])) < tol_f32(fmt)
    n = ops.norm_partials(N)
    got = {}
    for ko in (0, 4, 2):
        qk.with_ko(ko)
        got[ko] = _run(cp, ops, w, a, x0, N)
    for e, g in zip(engine, got[0]):
        np.testing.assert_array_equal(g, e)
    x4, xh4, ss4 = got[4]
    np.testing.assert_array_equal(x4, x0)  # no epilogue: x not added to, xh and ss left poisoned
    assert np.all(np.isnan(xh4)) and np.all(np.isnan(ss4))
    x2, xh2, ss2 = got[2]  # products replaced by folded weight bits: written, finite, wrong
    assert not np.array_equal(x2, engine[0]) and not np.array_equal(x2, x0)
    assert np.all(np.isfinite(x2)) and np.all(np.isfinite(ss2[:n])) and not np.any(np.isnan(xh2))


def test_script_runs_a_subset(cp, oq, tmp_path):
    keep = oq.get_function
    out = tmp_path / "ko.json"
    assert qk.main(["--formats", "int8", "--matrices", "wo+ss", "--kos", "0,7", "--jobs", "1", "--out", str(out)]) == 0
    assert oq.get_function is keep and not oq._cache
    doc = json.loads(out.read_text())
    drv = qk.driver(qk.compile_defines("int8", "wo+ss"))
    assert [(r["format"], r["matrix"], r["ko"], r["driver"]) for r in doc["rows"]] == [
        ("int8", "wo+ss", 0, drv), ("int8", "wo+ss", 7, drv)]
    assert all(r["us"] > 0 and r["read_floor_us"] > 0 for r in doc["rows"])
