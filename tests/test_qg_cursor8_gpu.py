"""The tile loop through per-lane cursors for the 8-bit formats (kernels/gemv_quant_cursor.cuh, QFMT 1 / 2; int4's
is tests/test_qg_cursor_gpu.py): fp8 and int8 on the tensor-core tiles give the same bits under
CUGRAPHLLM_QG_CURSOR=0 and =1 in the qkv / SiLU / logits / residual-with-ss GEMVs (plain and fused-norm), on the 7B
shapes and on awkward ones (K 1152 / 1408: 18 / 22 iterations of 64 columns, tail rounds; 203 or 771 rows:
inactive pairs and a one-row pair), with 8 and 16 warps and 2 or 4 warps a tile. Outputs NaN-poisoned first and
must be finite; one case a format is held against the float64 product. Today's plans keep fp8 / int8 off the
tiles (pipe / half2), so each test sets them on.
"""
import dataclasses
import functools

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import host64, poison, produced_x, rand_t, rel_err
from quant_helpers import TOL_H2, deq_matvec, make_layer, qkv_outputs, residual_ss_outputs, same_bits

pytestmark = pytest.mark.gpu
EPS = 1e-5
S, POS = 64, 37
FMTS8 = ["fp8", "int8"]
CONFIGS = {"w8m4": dict(warps=8, ksplit=4), "w8m2": dict(warps=8, ksplit=2), "w16m2": dict(warps=16, ksplit=2)}


def both(monkeypatch, fmt, cfg, run):
    """run() (-> list of host arrays) on fmt's tiles under cfg, with QG_CURSOR=0 then 1; both compiles ran."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    monkeypatch.setattr(ops_quant, "_cache", {})
    monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt, dataclasses.replace(
        gemv_plan.QUANT_PLANS[fmt], mma=1, mma_min_pairs=0, mma_shapes=(), pipe=0, hacc=0, **CONFIGS[cfg]))
    out = []
    for v in ("0", "1"):
        monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", v)
        out.append(run())
    assert sorted(k[-1] for k in ops_quant._cache) == [False, True], "a cursor or loop compile is missing"
    return out


@pytest.mark.parametrize("fmt", FMTS8)
@pytest.mark.parametrize("cfg", list(CONFIGS))
@pytest.mark.parametrize("D,H,KVH", [(4096, 32, 32), (1152, 48, 2)])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_qkv_rope(cp, ops, monkeypatch, fmt, cfg, D, H, KVH, norm):
    hd = D // H
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * KVH * hd, D, fmt, seed=D + H)
    a = rand_t(cp, (1, D), "float16", seed=D + 1)
    res = produced_x(cp, ops, D, "float16", seed=D + 2)
    run = functools.partial(qkv_outputs, cp, ops, wqkv, a, res, rope, POS, KVH, hd, S, EPS, norm)
    same_bits(("q", "k", "v"), *both(monkeypatch, fmt, cfg, run), "QG_CURSOR=1")


@pytest.mark.parametrize("fmt", FMTS8)
@pytest.mark.parametrize("cfg", list(CONFIGS))
@pytest.mark.parametrize("F,K", [(11008, 4096), (389, 1408)])
def test_norm_silu(cp, ops, monkeypatch, fmt, cfg, F, K):
    _, w13 = make_layer(cp, 2 * F, K, fmt, seed=F + K)
    x0, xn0, ss0 = produced_x(cp, ops, K, "float16", seed=K + 6)

    def run():
        h = poison(cp, (1, F), cp.float16)
        ops.norm_matmul_silu(h, Residual(x0.copy(), xn0.copy(), ss0.copy()), EPS, w13)
        return [h.get().astype(np.float32)]
    same_bits(("h",), *both(monkeypatch, fmt, cfg, run), "QG_CURSOR=1")


@pytest.mark.parametrize("fmt", FMTS8)
@pytest.mark.parametrize("cfg", list(CONFIGS))
@pytest.mark.parametrize("N,K", [(4096, 11008), (203, 1152)])
def test_residual_ss(cp, ops, monkeypatch, fmt, cfg, N, K):
    _, w = make_layer(cp, N, K, fmt, seed=N + K)
    a = rand_t(cp, (1, K), "float16", seed=K)
    x0 = (np.random.default_rng(N).standard_normal((1, N)) * 2).astype(np.float32)
    run = functools.partial(residual_ss_outputs, cp, ops, w, a, x0)
    same_bits(("x", "xh", "ss"), *both(monkeypatch, fmt, cfg, run), "QG_CURSOR=1")


@pytest.mark.parametrize("fmt", FMTS8)
@pytest.mark.parametrize("V,K", [(32000, 4096), (771, 1408)])
def test_logits_against_float64(cp, ops, monkeypatch, fmt, V, K):
    host, w = make_layer(cp, V, K, fmt, seed=V + K)
    a = rand_t(cp, (1, K), "float16", seed=K + 3)

    def run():
        logits = poison(cp, (1, V), cp.float32)
        ops.matmul_logits(logits, a, w)
        return [logits.get()]
    got, cur = both(monkeypatch, fmt, "w8m4", run)
    same_bits(("logits",), got, cur, "QG_CURSOR=1")
    assert rel_err(cur[0][0], deq_matvec(host, host64(a)[0])) < TOL_H2
