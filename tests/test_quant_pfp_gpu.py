"""QuantPlan.pfp (QG_PFP: L2 prefetch of the next loop steps before the PDL wait only; pfp_last: with the
L2::evict_last hint, on the residual cases) changes no result: each format's fused decode GEMVs on the 7B shapes
(the fp8 pipe, the int8 / int4 half2 row pairs, the int4 tiles) give the same bits with pfp 0 and 2, and a prefetch
depth past the end of short rows (K 1152 of an awkward matrix with 4 steps) is harmless. Outputs NaN-poisoned first
and must be finite; one case a format is held against float64.
"""
import dataclasses
import functools

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, host64, poison, produced_x, rand_t, rel_err
from quant_helpers import FMTS, deq_matvec, make_layer, qkv_outputs, residual_ss_outputs, same_bits

pytestmark = pytest.mark.gpu
EPS = 1e-5
S, POS = 64, 37


def under(monkeypatch, fmt, run, depth=2, last=0):
    """run() (-> list of host arrays) with the format's plan at pfp 0, then at `depth` (with the evict_last hint
    where `last`); checks both compiles ran."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    base = gemv_plan.QUANT_PLANS[fmt]
    monkeypatch.setattr(ops_quant, "_cache", {})
    out = []
    for p in (0, depth):
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt, dataclasses.replace(base, pfp=p, pfp_last=last if p else 0))
        out.append(run())
    assert {k[-2] for k in ops_quant._cache} == {0, depth}, "a pfp compile is missing"
    return out


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K", [(4096, 11008), (4096, 4096), (203, 1152)])
@pytest.mark.parametrize("last", [0, 1], ids=["", "evict_last"])
def test_residual_ss(cp, ops, monkeypatch, fmt, N, K, last):
    _, w = make_layer(cp, N, K, fmt, seed=N + K)
    a = rand_t(cp, (1, K), "float16", seed=K)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    run = functools.partial(residual_ss_outputs, cp, ops, w, a, x0)
    same_bits(("x", "xh", "ss"), *under(monkeypatch, fmt, run, 4 if N == 203 else 2, last), "pfp")


@pytest.mark.parametrize("fmt", FMTS)
def test_norm_silu_7b(cp, ops, monkeypatch, fmt):
    F, D = 11008, 4096
    host, w13 = make_layer(cp, 2 * F, D, fmt, seed=F)
    x0, xn0, ss0 = produced_x(cp, ops, D, "float16", seed=F + 2)

    def run():
        h = poison(cp, (1, F), cp.float16)
        ops.norm_matmul_silu(h, Residual(x0.copy(), xn0.copy(), ss0.copy()), EPS, w13)
        return [h.get().astype(np.float32)]
    a, b = under(monkeypatch, fmt, run)
    same_bits(("h",), a, b, "pfp")
    y = deq_matvec(host, ref.rmsnorm(host64(x0)[0], np.ones(D), EPS))
    assert rel_err(a[0][0].astype(np.float64), ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]


@pytest.mark.parametrize("fmt", FMTS)
def test_norm_qkv_rope_7b(cp, ops, monkeypatch, fmt):
    D, H = 4096, 32
    hd = D // H
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, 3 * D, D, fmt, seed=D + H)
    a = rand_t(cp, (1, D), "float16", seed=D + 9)
    res = produced_x(cp, ops, D, "float16", seed=D + 10)
    run = functools.partial(qkv_outputs, cp, ops, wqkv, a, res, rope, POS, H, hd, S, EPS, True)
    same_bits(("q", "k", "v"), *under(monkeypatch, fmt, run), "pfp")


@pytest.mark.parametrize("fmt", FMTS)
def test_norm_logits_7b(cp, ops, monkeypatch, fmt):
    V, D = 32000, 4096
    _, w = make_layer(cp, V, D, fmt, seed=V + D)
    x0, xn0, ss0 = produced_x(cp, ops, D, "float16", seed=D + 8)
    n = cp.ones(1, cp.int32)

    def run():
        logits = poison(cp, (1, V), cp.float32)
        ops.norm_matmul_logits(logits, Residual(x0.copy(), xn0.copy(), ss0.copy()), EPS, w, n)
        return [logits.get()]
    same_bits(("logits",), *under(monkeypatch, fmt, run), "pfp")
