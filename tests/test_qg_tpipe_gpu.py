"""QuantPlan.tpipe (QG_TPIPE, kernels/gemv_quant_cursor.cuh: the cursor tiles issue the next round's loads before
this round's products) gives the same bits as the cursor loop at the same round size, in the qkv / SiLU / logits
GEMVs (plain and fused-norm): 7B shapes under the default tile configs and awkward ones under forced configs (K of 9
/ 11 iterations: tail rounds and warps whose first round is short; inactive pairs in the last tile; an odd logits
row count; 2 or 4 warps a tile), rounds of 1 and 2 iterations. Outputs are NaN-poisoned and must be finite; the 7B
w13 under tpipe=1 is also held against the float64 product.
"""
import dataclasses
import functools

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, dt, host64, poison, produced_x, rand_t, rel_err
from quant_helpers import deq_matvec, make_layer, qkv_outputs, same_bits

pytestmark = pytest.mark.gpu
EPS = 1e-5
S = 64
POS = 37
CONFIGS = {"default": {}, "w8m4": dict(mma_min_pairs=0, warps=8, ksplit=4),
           "w8m2": dict(mma_min_pairs=0, warps=8, ksplit=2)}


@pytest.fixture
def both(monkeypatch):
    """both(cfg, U, run): run() under the cursor loop and under tpipe, tiles at U iterations a round; the outputs."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    base = gemv_plan.QUANT_PLANS["int4"]
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")

    def run_both(cfg: str, U: int, run):
        out = []
        for tpipe in (0, U):
            monkeypatch.setattr(ops_quant, "_cache", {})
            plan = dataclasses.replace(base, unroll=U, mma_shapes=(), tpipe=tpipe, **CONFIGS[cfg])
            monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4", plan)
            out.append(run())
            tp = [k[-2] for k in ops_quant._cache if k[-1]]
            assert tp and all(t == int(tpipe > 0) for t in tp), f"tile compiles {tp} under tpipe={tpipe}"
        return out
    return run_both


QKV_CASES = [("7B", 4096, 32, 32, "default"), ("awk", 1152, 48, 2, "w8m4"), ("awk", 1152, 48, 2, "w8m2")]


@pytest.mark.parametrize("U", [1, 2])
@pytest.mark.parametrize("name,D,H,KVH,cfg", QKV_CASES)
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_qkv_rope_bit_identical(cp, ops, both, name, D, H, KVH, cfg, U, norm):
    hd = D // H
    kvd = KVH * hd
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * kvd, D, "int4", seed=D + H + 1, group_size=128)
    a = rand_t(cp, (1, D), "float16", seed=D + 11)
    res = produced_x(cp, ops, D, "float16", seed=D + 12)
    run = functools.partial(qkv_outputs, cp, ops, wqkv, a, res, rope, POS, KVH, hd, S, EPS, norm)
    same_bits(("q", "k", "v"), *both(cfg, U, run), f"tpipe={U}")


SILU_CASES = [("7B", 11008, 4096, "default"), ("awk", 389, 1408, "w8m4"), ("awk", 389, 1408, "w8m2")]


@pytest.mark.parametrize("U", [1, 2])
@pytest.mark.parametrize("name,F,K,cfg", SILU_CASES)
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_silu_bit_identical(cp, ops, both, name, F, K, cfg, U, norm):
    _, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + K + 1, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 15)
    x0, xn0, ss0 = produced_x(cp, ops, K, "float16", seed=K + 16)

    def run():
        h = poison(cp, (1, F), cp.float16)
        if norm:
            ops.norm_matmul_silu(h, Residual(x0.copy(), xn0.copy(), ss0.copy()), EPS, w13)
        else:
            ops.matmul_silu(h, a, w13)
        return [h.get()]
    same_bits(("h",), *both(cfg, U, run), f"tpipe={U}")


@pytest.mark.parametrize("U", [1, 2])
@pytest.mark.parametrize("V,K,cfg", [(771, 1408, "w8m4"), (771, 1152, "w8m2")])
def test_logits_bit_identical(cp, ops, both, V, K, cfg, U):
    _, w = make_layer(cp, V, K, "int4", seed=V + K + 1, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 13)

    def run():
        logits = poison(cp, (1, V), cp.float32)
        ops.matmul_logits(logits, a, w)
        return [logits.get()]
    same_bits(("logits",), *both(cfg, U, run), f"tpipe={U}")


def test_silu_tpipe_against_float64(cp, ops, monkeypatch):
    """The 7B w13 (default tile config, tpipe=1) against the float64 product."""
    from cugraphllm.gpu import gemv_plan, ops_quant
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")
    monkeypatch.setattr(ops_quant, "_cache", {})
    monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4", dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], tpipe=1))
    F, K = 11008, 4096
    host, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + 3, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 18)
    h = poison(cp, (1, F), dt(cp, "float16"))
    ops.matmul_silu(h, a, w13)
    assert any(k[-2] for k in ops_quant._cache), "no QG_TPIPE compile"
    y = deq_matvec(host, host64(a)[0])
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]
