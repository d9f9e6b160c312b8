"""The quantized GEMV staging's variant gives the same bits as the default: CUGRAPHLLM_QG_PARK=0 (the activation read
twice, as before the nineteenth session). int4 qkv and SiLU GEMVs, plain and fused-norm, on the 7B shapes and on awkward
ones under forced tile configs (K of 11 tile iterations: partial staging rounds; inactive pairs in the last tile;
8 and 16 warps). Outputs NaN-poisoned first, all written, compared bit for bit.
"""
import functools

import pytest

from kernel_helpers import produced_x, rand_t
from quant_helpers import int4_plan_setter, make_layer, qkv_case, qkv_outputs, same_bits, silu_outputs

pytestmark = pytest.mark.gpu
EPS, S, POS = 1e-5, 64, 37
CONFIGS = {"default": {}, "w8m4": dict(mma_min_pairs=0, warps=8, ksplit=4),
           "w8m2": dict(mma_min_pairs=0, warps=8, ksplit=2), "w16m2": dict(mma_min_pairs=0, warps=16, ksplit=2)}
# (environment variable, value): each variant against the default build
VARIANTS = [("CUGRAPHLLM_QG_PARK", "0")]


@pytest.fixture
def plan(monkeypatch):
    return int4_plan_setter(monkeypatch, CONFIGS)


def against_default(monkeypatch, run, env: str, value: str) -> tuple:
    """(run() under the default build, run() with env=value)."""
    monkeypatch.delenv("CUGRAPHLLM_QG_PARK", raising=False)
    want = run()
    monkeypatch.setenv(env, value)
    return want, run()


@pytest.mark.parametrize("env,value", VARIANTS)
@pytest.mark.parametrize("name,D,H,KVH,cfg", [("7B", 4096, 32, 32, "default"), ("awk", 1408, 44, 4, "w8m4"),
                                             ("awk", 1408, 44, 4, "w16m2")])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_qkv_same_bits(cp, ops, plan, monkeypatch, env, value, name, D, H, KVH, cfg, norm):
    plan(cfg)
    hd, rope, wqkv, a, res = qkv_case(cp, ops, D, H, KVH, S)
    run = functools.partial(qkv_outputs, cp, ops, wqkv, a, res, rope, POS, KVH, hd, S, EPS, norm)
    same_bits(("q", "k", "v"), *against_default(monkeypatch, run, env, value), f"{env}={value}")


@pytest.mark.parametrize("env,value", VARIANTS)
@pytest.mark.parametrize("name,F,K,cfg", [("7B", 11008, 4096, "default"), ("awk", 389, 1408, "w8m2"),
                                          ("awk", 389, 1408, "w16m2")])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_silu_same_bits(cp, ops, plan, monkeypatch, env, value, name, F, K, cfg, norm):
    plan(cfg)
    _, w13 = make_layer(cp, 2 * F, K, "int4", seed=F + K)
    a = rand_t(cp, (1, K), "float16", seed=K + 5)
    res = produced_x(cp, ops, K, "float16", seed=K + 6)
    run = functools.partial(silu_outputs, cp, ops, w13, a, res, EPS, norm)
    same_bits(("h",), *against_default(monkeypatch, run, env, value), f"{env}={value}")
