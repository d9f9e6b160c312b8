"""The int4 tiles' raw staging (CUGRAPHLLM_QG_RAWX=1, kernels/gemv_quant_mma.cuh QG_RAWX; prepared, not default): x
staged as written (no max, no scale, natural order), the 16 n products in a chain of their own; fp16 activations
only (bf16 builds keep the scaled staging: bf16 x can leave the half range). It changes the
rounding of the staged x (exact now, where the default scales and divides by 16), so it is compared with the default
build within a tolerance, and with NumPy float64 (formats.dequantize) on the 7B shapes and awkward ones, 8- and
16-warp tiles, plain and fused-norm, row-major and tile-contiguous weights. Outputs NaN-poisoned first.
Tolerance (||out - want|| / ||want||): 2e-3 against the default build and NumPy, the outputs being fp16 (2^-11).
"""
import functools

import numpy as np
import pytest

from kernel_helpers import rand_t
from quant_helpers import (deq_matvec, int4_plan_setter, make_layer, qkv_case, qkv_outputs, residual_ss_outputs,
                           silu_outputs)

pytestmark = pytest.mark.gpu
EPS, S, POS, TOL = 1e-5, 64, 37, 2e-3
CONFIGS = {"default": {}, "w8m4": dict(mma_min_pairs=0, warps=8, ksplit=4),
           "w16m2": dict(mma_min_pairs=0, warps=16, ksplit=2), "w8m8": dict(mma_min_pairs=0, warps=8, ksplit=8)}


@pytest.fixture
def plan(monkeypatch):
    return int4_plan_setter(monkeypatch, CONFIGS)


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def both(monkeypatch, run) -> tuple:
    """(run() under the default build, run() with CUGRAPHLLM_QG_RAWX=1); every output finite (all written)."""
    monkeypatch.delenv("CUGRAPHLLM_QG_RAWX", raising=False)
    want = run()
    monkeypatch.setenv("CUGRAPHLLM_QG_RAWX", "1")
    got = run()
    for g in got:
        assert np.isfinite(g).all(), "not all written"
    return want, got


def maybe_tiled(w, tiles):
    from cugraphllm.gpu.quant_tiles import tiled
    return tiled(w, tiles) if tiles else w


@pytest.mark.parametrize("name,D,H,KVH,cfg", [("7B", 4096, 32, 32, "default"), ("awk", 1280, 40, 5, "w16m2"),
                                             ("awk", 1280, 40, 5, "w8m4")])
@pytest.mark.parametrize("tiles", [0, 1], ids=["rows", "tiled"])
def test_qkv_norm(cp, ops, plan, monkeypatch, name, D, H, KVH, cfg, tiles):
    plan(cfg)
    hd, rope, w, a, res = qkv_case(cp, ops, D, H, KVH, S)
    run = functools.partial(qkv_outputs, cp, ops, maybe_tiled(w, tiles), a, res, rope, POS, KVH, hd, S, EPS, True)
    want, got = both(monkeypatch, run)
    for n, x, y in zip(("q", "k", "v"), got, want):
        assert rel(x, y) < TOL, f"{n}: {rel(x, y):.2e} against the default build"


@pytest.mark.parametrize("name,F,K,cfg", [("7B", 11008, 4096, "default"), ("awk", 392, 1408, "w8m4"),
                                          ("awk", 392, 1408, "w16m2")])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_silu(cp, ops, plan, monkeypatch, name, F, K, cfg, norm):
    from kernel_helpers import produced_x
    plan(cfg)
    _, w = make_layer(cp, 2 * F, K, "int4", seed=F + K)
    a = rand_t(cp, (1, K), "float16", seed=K + 5)
    res = produced_x(cp, ops, K, "float16", seed=K + 6)
    want, got = both(monkeypatch, functools.partial(silu_outputs, cp, ops, w, a, res, EPS, norm))
    assert rel(got[0], want[0]) < TOL, f"h: {rel(got[0], want[0]):.2e} against the default build"


@pytest.mark.parametrize("name,N,K,cfg", [("7B w2", 4096, 11008, "w8m8"), ("13B wo", 5120, 5120, "default"),
                                          ("awk", 1280, 1408, "w8m8")])
@pytest.mark.parametrize("tiles", [0, 1], ids=["rows", "tiled"])
def test_residual_ss_against_numpy(cp, ops, plan, monkeypatch, name, N, K, cfg, tiles):
    """x += W a against float64 W a (the dequantized packed matrix), and the default build."""
    plan(cfg)
    host, w = make_layer(cp, N, K, "int4", seed=N + K, perm=False, gain=False)
    a = rand_t(cp, (1, K), "float16", seed=K + 7)
    x0 = np.random.default_rng(N).standard_normal((1, N)).astype(np.float32)
    want, got = both(monkeypatch, lambda: residual_ss_outputs(cp, ops, maybe_tiled(w, tiles), a, x0))
    ref = deq_matvec(host, a.get().astype(np.float64)[0])
    assert rel(got[0] - x0, ref) < TOL, f"x: {rel(got[0] - x0, ref):.2e} against NumPy"
    assert rel(got[0] - x0, want[0] - x0) < TOL
