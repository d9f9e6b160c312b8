"""CUGRAPHLLM_QG_CURSOR=1 (kernels/gemv_quant_cursor.cuh: the int4 tile loop through per-lane load cursors) gives
the same bits as the default loop in the qkv / SiLU / logits GEMVs (plain and fused-norm), on the 7B shapes under
the default plan and on awkward ones under forced tile configs: K of 9 / 11 tile iterations (not a multiple of a
load round: tail rounds, and warps whose first round is already short), row-pair counts that leave inactive pairs
in the last tile, an odd logits row count (a pair of one row), a group size other than 128 (the cursor kernel's
fallback loop), 8 and 16 warps with 2, 4 or 8 warps a tile. Outputs are NaN-poisoned first and must be finite
(all written); one case each for logits and SiLU is also held against the float64 product (tests/quant_helpers.py).
"""
import functools

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, dt, host64, poison, produced_x, rand_t, rel_err
from quant_helpers import int4_plan_setter, deq_matvec, make_layer, qkv_outputs, same_bits, silu_outputs, tol_f32

pytestmark = pytest.mark.gpu
EPS = 1e-5
S = 64          # KV cache rows
POS = 37

# plan overrides of the int4 QuantPlan (tiles at every size; warps and warps a tile where given)
CONFIGS = {"default": {}, "rule": dict(mma_min_pairs=0), "w8m4": dict(mma_min_pairs=0, warps=8, ksplit=4),
           "w8m2": dict(mma_min_pairs=0, warps=8, ksplit=2), "w16m2": dict(mma_min_pairs=0, warps=16, ksplit=2)}


@pytest.fixture
def plan(monkeypatch):
    return int4_plan_setter(monkeypatch, CONFIGS)


def both(monkeypatch, run):
    """run() (-> list of host arrays) under CUGRAPHLLM_QG_CURSOR=0 and =1; checks a cursor module was built."""
    from cugraphllm.gpu import ops_quant
    out = {}
    for v in ("0", "1"):
        monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", v)
        out[v] = run()
    assert any(k[-1] for k in ops_quant._cache), "no QG_CURSOR=1 compile: the tiles did not run"
    assert any(not k[-1] for k in ops_quant._cache)
    return out["0"], out["1"]


# (name, D, H, KVH, group, config); awkward: D 1152 = 9 tile iterations, head_dim 24, 600 row pairs (8 short of
# a 16-pair block: inactive pairs in the last tile)
QKV_CASES = [("7B", 4096, 32, 32, 128, "default"), ("awk", 1152, 48, 2, 128, "w8m4"),
             ("awk", 1152, 48, 2, 128, "w8m2"), ("awk", 1152, 48, 2, 128, "rule"),
             ("awk", 1152, 48, 2, 128, "w16m2"), ("awk-g384", 1152, 48, 2, 384, "w8m4")]


@pytest.mark.parametrize("name,D,H,KVH,g,cfg", QKV_CASES)
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_qkv_rope_bit_identical(cp, ops, plan, monkeypatch, name, D, H, KVH, g, cfg, norm):
    plan(cfg)
    hd = D // H
    kvd = KVH * hd
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * kvd, D, "int4", seed=D + H, group_size=g)
    a = rand_t(cp, (1, D), "float16", seed=D + 1)
    res = produced_x(cp, ops, D, "float16", seed=D + 2)
    run = functools.partial(qkv_outputs, cp, ops, wqkv, a, res, rope, POS, KVH, hd, S, EPS, norm)
    same_bits(("q", "k", "v"), *both(monkeypatch, run), "QG_CURSOR=1")


# (name, F, K, group, config): awkward F 389 pairs (inactive pairs in the last tile), K 1408 = 11 iterations
SILU_CASES = [("7B", 11008, 4096, 128, "default"), ("awk", 389, 1408, 128, "w8m4"), ("awk", 389, 1408, 128, "w8m2"),
              ("awk", 389, 1408, 128, "rule"), ("awk", 389, 1408, 128, "w16m2"), ("awk-g-1", 389, 1408, -1, "w8m2")]


@pytest.mark.parametrize("name,F,K,g,cfg", SILU_CASES)
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_silu_bit_identical(cp, ops, plan, monkeypatch, name, F, K, g, cfg, norm):
    plan(cfg)
    _, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + K, group_size=g)
    a = rand_t(cp, (1, K), "float16", seed=K + 5)
    res = produced_x(cp, ops, K, "float16", seed=K + 6)
    run = functools.partial(silu_outputs, cp, ops, w13, a, res, EPS, norm)
    same_bits(("h",), *both(monkeypatch, run), "QG_CURSOR=1")


# (name, V, K, group, config): awkward V 771 rows (386 pairs, the last of one row)
LOGITS_CASES = [("7B", 32000, 4096, 128, "default"), ("awk", 771, 1408, 128, "w8m4"),
                ("awk", 771, 1152, 128, "w8m2"), ("awk", 771, 1408, 128, "w16m2"), ("awk", 771, 128, 128, "rule"),
                ("awk-g256", 771, 1280, 256, "w8m4")]


@pytest.mark.parametrize("name,V,K,g,cfg", LOGITS_CASES)
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_logits_bit_identical(cp, ops, plan, monkeypatch, name, V, K, g, cfg, norm):
    plan(cfg)
    _, w = make_layer(cp, V, K, "int4", seed=V + K, group_size=g)
    a = rand_t(cp, (1, K), "float16", seed=K + 3)
    x0, xn0, ss0 = produced_x(cp, ops, K, "float16", seed=K + 4)
    n = cp.ones(1, cp.int32)

    def run():
        logits = poison(cp, (1, V), cp.float32)
        if norm:
            ops.norm_matmul_logits(logits, Residual(x0.copy(), xn0.copy(), ss0.copy()), EPS, w, n)
        else:
            ops.matmul_logits(logits, a, w)
        return [logits.get()]
    same_bits(("logits",), *both(monkeypatch, run), "QG_CURSOR=1")


@pytest.mark.parametrize("cfg", ["default", "w8m4"])
def test_logits_cursor_against_float64(cp, ops, plan, monkeypatch, cfg):
    """The 7B LM head (default plan: 16-warp tiles) and an awkward one, under QG_CURSOR=1, against the float64
    product at the tiles' tolerance."""
    plan(cfg)
    V, K = (32000, 4096) if cfg == "default" else (771, 1408)
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")
    host, w = make_layer(cp, V, K, "int4", seed=V * 7 + K, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 9)
    logits = poison(cp, (1, V), cp.float32)
    ops.matmul_logits(logits, a, w)
    assert rel_err(logits.get()[0], deq_matvec(host, host64(a)[0])) < tol_f32("int4")


def test_silu_cursor_against_float64(cp, ops, plan, monkeypatch):
    """The 7B w13 (default plan: 8 warps, 2 a tile) under QG_CURSOR=1 against the float64 product."""
    plan("default")
    F, K = 11008, 4096
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")
    host, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + 1, group_size=128)
    a = rand_t(cp, (1, K), "float16", seed=K + 8)
    h = poison(cp, (1, F), dt(cp, "float16"))
    ops.matmul_silu(h, a, w13)
    y = deq_matvec(host, host64(a)[0])
    assert rel_err(host64(h)[0], ref.silu(y[:F]) * y[F:]) < TOL_T["float16"]
