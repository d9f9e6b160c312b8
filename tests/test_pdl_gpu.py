"""Programmatic dependent launch (gpu/pdl.py): chains of decode GEMVs in which each kernel reads what the one before
wrote (x, xn, ss, h), at 7B shapes so that consecutive kernels overlap, give bit-identical results with PDL on and
off, eagerly and replayed from a captured graph; a race (a kernel reading before pdl_enter's wait) would show as a
difference or as run-to-run noise."""
import numpy as np
import pytest

from cugraphllm.gpu.state import Residual
from kernel_helpers import rand_t
from quant_helpers import make_layer

pytestmark = pytest.mark.gpu
D, F, LAYERS, EPS = 4096, 11008, 3, 1e-5


def _layers(cp, fmt):
    out = []
    for i in range(LAYERS):
        if fmt == "fp16":
            out.append((rand_t(cp, (2 * F, D), "float16", 10 + i, D ** -0.5),
                        rand_t(cp, (D, F), "float16", 20 + i, F ** -0.5)))
        else:
            out.append((make_layer(cp, 2 * F, D, fmt, seed=10 + i, perm=False, gain=False)[1],
                        make_layer(cp, D, F, fmt, seed=20 + i, perm=False, gain=False)[1]))
    return out


def _run(cp, ops, layers, graph: bool):
    """x after LAYERS x (h = silu(norm(x) @ w1) * (norm(x) @ w3); x += h @ w2), starting from one embedding row."""
    rng = np.random.default_rng(5)
    table = cp.asarray((rng.standard_normal((3, D)) * 2).astype(np.float32)).astype(cp.float16)
    x, xn = cp.full((1, D), np.nan, cp.float32), cp.full((1, D), np.nan, cp.float16)
    ss, h = cp.full(((D + 1) // 2,), np.nan, cp.float32), cp.full((1, F), np.nan, cp.float16)
    tok = cp.asarray([1], dtype=cp.int32)
    cp.cuda.Device().synchronize()

    def step():
        r = Residual(x, xn, ss)
        ops.embedding(r, table, tok)
        for w13, w2 in layers:
            ops.norm_matmul_silu(h, r, EPS, w13)
            ops.matmul_residual(r, h, w2)

    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        step()  # compiles, raises limits
        if graph:
            stream.begin_capture()
            step()
            g = stream.end_capture()
            g.launch(stream)
        else:
            step()
        stream.synchronize()
    return x.get(), h.get()


@pytest.mark.parametrize("fmt", ["fp16", "fp8", "int8", "int4"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_pdl_chain_is_bit_identical(cp, ops, fmt, graph, monkeypatch):
    from cugraphllm.gpu import pdl
    if int(cp.cuda.Device().compute_capability) < 90:
        pytest.skip("PDL needs sm_90")
    layers = _layers(cp, fmt)
    cp.cuda.Device().synchronize()  # the weights are made on the null stream; the chains run on their own stream
    monkeypatch.setattr(pdl, "PDL", False)
    ref_x, ref_h = _run(cp, ops, layers, graph)
    assert np.isfinite(ref_x).all() and np.isfinite(ref_h.astype(np.float32)).all()
    monkeypatch.setattr(pdl, "PDL", True)
    for _ in range(3):
        x, h = _run(cp, ops, layers, graph)
        np.testing.assert_array_equal(x, ref_x)
        np.testing.assert_array_equal(h, ref_h)
