"""The tile-contiguous int4 layout (gpu/quant_tiles.py) gives the bits of the row-major one, wherever it is read:
the decode GEMVs (qkv, SiLU, residual + ss, LM head; plain and fused-norm) under the same tile config, the prefill
paths that take it (the wgmma kernel through its 5-D tensor map, the dequantizing slabs), and a whole engine with
every matrix tiled against CUGRAPHLLM_QG_TILED=0. The row-major runs are checked against NumPy by
test_quant_gpu.py / test_quant_prefill_gpu.py; here each tiled output is compared with its row-major twin bit for
bit (NaN-poisoned first: all written). Shapes: the 7B ones, and awkward ones with inactive tiles in the last block.
"""
import dataclasses
import functools

import numpy as np
import pytest

from cugraphllm import reference as ref
from kernel_helpers import produced_x, rand_t
from quant_helpers import (int4_plan_setter, make_layer, qkv_case, qkv_outputs, residual_ss_outputs, same_bits,
                           silu_outputs)

pytestmark = pytest.mark.gpu
EPS, S, POS = 1e-5, 64, 37
CONFIGS = {"default": {}, "w8m4": dict(mma_min_pairs=0, warps=8, ksplit=4),
           "w16m2": dict(mma_min_pairs=0, warps=16, ksplit=2), "w8m8": dict(mma_min_pairs=0, warps=8, ksplit=8)}


@pytest.fixture
def plan(monkeypatch):
    return int4_plan_setter(monkeypatch, CONFIGS)


def tiled(w, pairing):
    from cugraphllm.gpu.quant_tiles import tiled as tile
    return tile(w, pairing)


@pytest.mark.parametrize("name,D,H,KVH,cfg", [("7B", 4096, 32, 32, "default"), ("awk", 1280, 40, 5, "w16m2"),
                                             ("awk", 1280, 40, 5, "w8m4")])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_qkv(cp, ops, plan, name, D, H, KVH, cfg, norm):
    plan(cfg)
    hd, rope, w, a, res = qkv_case(cp, ops, D, H, KVH, S)
    run = functools.partial(qkv_outputs, cp, ops, a=a, res=res, rope=rope, pos=POS, KVH=KVH, hd=hd, S=S, eps=EPS,
                            norm=norm)
    same_bits(("q", "k", "v"), run(wqkv=w), run(wqkv=tiled(w, 1)), "tiles 1")


@pytest.mark.parametrize("name,F,K,cfg", [("7B", 11008, 4096, "default"), ("awk", 392, 1408, "w8m4"),
                                          ("awk", 392, 1408, "w16m2")])
@pytest.mark.parametrize("norm", [False, True], ids=["plain", "norm"])
def test_silu(cp, ops, plan, name, F, K, cfg, norm):
    plan(cfg)
    _, w = make_layer(cp, 2 * F, K, "int4", seed=F + K)
    a = rand_t(cp, (1, K), "float16", seed=K + 5)
    res = produced_x(cp, ops, K, "float16", seed=K + 6)
    run = functools.partial(silu_outputs, cp, ops, a=a, res=res, eps=EPS, norm=norm)
    same_bits(("h",), run(w13=w), run(w13=tiled(w, 2)), "tiles 2")


@pytest.mark.parametrize("name,N,K,cfg", [("7B w2", 4096, 11008, "w8m8"), ("13B wo", 5120, 5120, "default"),
                                          ("awk", 1280, 1408, "w8m8")])
def test_residual_ss(cp, ops, plan, name, N, K, cfg):
    plan(cfg)
    _, w = make_layer(cp, N, K, "int4", seed=N + K, perm=False, gain=False)
    a = rand_t(cp, (1, K), "float16", seed=K + 7)
    x0 = np.random.default_rng(N).standard_normal((1, N)).astype(np.float32)  # host: each run uploads a copy
    same_bits(("x", "xh", "ss"), residual_ss_outputs(cp, ops, w, a, x0),
              residual_ss_outputs(cp, ops, tiled(w, 1), a, x0), "tiles 1")


@pytest.mark.parametrize("V,cfg", [(32000, "default"), (1008, "w16m2")])
def test_logits(cp, ops, plan, V, cfg):
    from kernel_helpers import poison
    plan(cfg)
    K = 4096 if V == 32000 else 1280
    _, w = make_layer(cp, V, K, "int4", seed=V, perm=False)
    a = rand_t(cp, (1, K), "float16", seed=V + 1)

    def run(wl):
        out = poison(cp, (1, V), cp.float32)
        ops.matmul_logits(out, a, wl)
        return [out.get()]
    same_bits(("logits",), run(w), run(tiled(w, 1)), "tiles 1")


def test_pairing_mismatch_is_refused(cp, ops):
    _, w = make_layer(cp, 256, 256, "int4", seed=3, perm=False, gain=False)
    h = cp.zeros((1, 128), cp.float16)
    with pytest.raises(ValueError, match="pairing 1"):
        ops.matmul_silu(h, rand_t(cp, (1, 256), "float16", seed=4), tiled(w, 1))


# ---- prefill -----------------------------------------------------------------------------------------------
def _paths(dtype):
    from cugraphllm.gpu import gemm_w4
    return ["dequant"] + (["wg"] if dtype == "float16" and gemm_w4.usable() else [])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("M,N,K", [(16, 1280, 1408), (77, 4096, 11008), (512, 4096, 4096), (200, 1280, 1408)])
def test_prefill_residual(cp, M, N, K, dtype):
    from cugraphllm.gpu import gemm_quant
    from test_quant_prefill_gpu import dev_quant, dev_random
    a = dev_random((M, K), dtype, 1.0, M + K)
    w = dev_quant("int4", N, K, M + N, extras=True)
    x0 = dev_random((M, N), "float32", 1.0, N)
    for impl in _paths(dtype):
        x1, x2 = x0.copy(), x0.copy()
        gemm_quant.matmul_residual(x1, a, w, impl=impl)
        gemm_quant.matmul_residual(x2, a, tiled(w, 1), impl=impl)
        same_bits(("x",), [x1.get()], [x2.get()], f"tiles 1, {impl} M={M} N={N} K={K} {dtype}")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("M,F,K", [(16, 392, 1408), (130, 11008, 4096), (512, 11008, 4096)])
def test_prefill_silu(cp, M, F, K, dtype):
    from cugraphllm.gpu import gemm_quant
    from test_gemm_gpu import _np_dtype, poison
    from test_quant_prefill_gpu import dev_quant, dev_random
    xn = dev_random((M, K), dtype, 1.0, M + K)
    w = dev_quant("int4", 2 * F, K, M + F, extras=True)
    for impl in _paths(dtype):
        hs = [cp.empty((M, F), dtype=_np_dtype(dtype)) for _ in range(2)]
        for h, wl in zip(hs, (w, tiled(w, 2))):
            poison(h)
            gemm_quant.matmul_silu(h, xn, wl, impl=impl)
        same_bits(("h",), [hs[0].get().astype(np.float32)], [hs[1].get().astype(np.float32)],
                  f"tiles 2, {impl} M={M} F={F} K={K} {dtype}")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("M,ntok,H,KVH,hd,pos", [(16, 10, 40, 5, 32, 3), (128, 100, 32, 32, 128, 0)])
def test_prefill_qkv(cp, M, ntok, H, KVH, hd, pos, dtype):
    from cugraphllm.gpu import gemm_quant
    from test_gemm_gpu import _np_dtype, poison
    from test_quant_prefill_gpu import dev_quant, dev_random
    D, kvd, SS = H * hd, KVH * hd, 256
    xn = dev_random((M, D), dtype, 1.0, M + D)
    w = dev_quant("int4", D + 2 * kvd, D, M + H, extras=True)
    rope = cp.asarray(ref.rope_table(SS, hd, 10000.0).astype(np.float32))
    pos_d, nt_d = cp.asarray([pos], dtype=cp.int32), cp.asarray([ntok], dtype=cp.int32)
    kc0, vc0 = dev_random((SS, KVH, hd), dtype, 1.0, 5), dev_random((SS, KVH, hd), dtype, 1.0, 6)
    for impl in _paths(dtype):
        outs = []
        for wl in (w, tiled(w, 1)):
            q, kc, vc = cp.empty((M, D), dtype=_np_dtype(dtype)), kc0.copy(), vc0.copy()
            poison(q)
            gemm_quant.qkv_rope(q, xn, wl, rope, kc, vc, pos_d, nt_d, impl=impl)
            outs.append([v.get().astype(np.float32) for v in (q[:ntok], kc, vc)])
        same_bits(("q", "k", "v"), *outs, f"tiles 1, {impl} M={M} {dtype}")


def test_own_and_tc_refuse_a_tiled_weight(cp):
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm_quant
    from test_quant_prefill_gpu import dev_quant, dev_random
    a, w = dev_random((16, 1408), "float16", 1.0, 1), tiled(dev_quant("int4", 1280, 1408, 2), 1)
    for impl in ("own", "tc"):
        with pytest.raises((ValueError, BackendError), match="tile-contiguous"):
            gemm_quant.matmul_residual(cp.zeros((16, 1280), cp.float32), a, w, impl=impl)


# ---- engine --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_engine_tiled_equals_rows(cp, monkeypatch, dtype):
    """Every int4 matrix tiled (tiles forced on by the plan) vs none (CUGRAPHLLM_QG_TILED=0): the same logits at
    every step of a prefill and 6 decode steps."""
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.gpu import gemv_plan, ops_quant
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.sampling import SamplingParams
    monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4",
                        dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], mma_min_pairs=0, tiled_min_k=0))
    monkeypatch.setattr(ops_quant, "_cache", {})
    cfg = ModelConfig(dim=1280, n_layers=2, n_heads=10, n_kv_heads=5, vocab_size=1008, hidden_dim=1408,
                      max_seq_len=256)
    rc = RuntimeConfig(backend="cuda", mode="hybrid", dtype=dtype, quant="int4", group_size=128, quant_head=True)
    prompt = [int(t) for t in np.random.default_rng(7).integers(0, 1008, 37)]
    logits = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("CUGRAPHLLM_QG_TILED", flag)
        e = CudaEngine.dummy(cfg, rc, seed=5)
        w = e.w.layers[0]
        assert (w.wqkv.tiles, w.wo.tiles, w.w13.tiles, w.w2.tiles, e.w.output.tiles) == (
            (1, 1, 2, 1, 1) if flag == "1" else (0, 0, 0, 0, 0))
        steps = [list(e.generate(prompt, SamplingParams(), 1))]
        got = [e.s.logits.get().copy()]
        for _ in range(6):
            steps.append(list(e.generate(steps[-1], SamplingParams(), 1)))
            got.append(e.s.logits.get().copy())
        logits[flag] = (steps, got)
        del e
    assert logits["1"][0] == logits["0"][0]
    for i, (a, b) in enumerate(zip(logits["1"][1], logits["0"][1])):
        assert np.isfinite(a).all() and np.array_equal(a, b), f"step {i}: logits differ"
