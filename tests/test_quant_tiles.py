"""The tile-contiguous int4 layout on the CPU (gpu/quant_tiles.py): the permutation against the index formula the
decode tiles (kernels/gemv_quant_tiles.cuh tile_pair / tile_rows) and the dequantizing slabs
(kernels/gemm_quant.cu tiled_word) use, its inverse, which matrices of the LLaMA-2 shapes it picks, and the
guards around it. The GPU kernels on it: tests/test_quant_tiles_gpu.py.
"""
import dataclasses

import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import gemv_plan, quant_tiles as qt
from cugraphllm.quant.formats import QuantLinear, dequantize, quantize


def words(N, K, seed=0):
    return np.random.default_rng(seed).integers(0, 2**32, (N, K // 8), dtype=np.uint64).astype(np.uint32)


def tiled_word(row, c, K, N, tiles):
    """kernels/gemm_quant.cu tiled_word, transcribed: the word of int4 (row, column c)."""
    p = row >> 1 if tiles == 1 else row % (N >> 1)
    h = row & 1 if tiles == 1 else row // (N >> 1)
    v = (((p >> 3) * (K >> 7) + (c >> 7)) * 2 + h) * 32 + 4 * (p & 7) + ((c >> 5) & 3)
    return 4 * v + ((c >> 3) & 3)


@pytest.mark.parametrize("pairing", [1, 2])
@pytest.mark.parametrize("N,K", [(16, 128), (48, 384), (160, 1408)])
def test_layout_matches_the_kernels_index(pairing, N, K):
    q = words(N, K, N + K)
    t = tile_flat = qt.tile_qweight(q, pairing).reshape(-1)
    assert t.shape == (N * K // 8,) and tile_flat.dtype == np.uint32
    n_it = K // 128
    for row in range(N):
        for c in range(0, K, 8):
            assert tile_flat[tiled_word(row, c, K, N, pairing)] == q[row, c // 8], (row, c)
    # the decode tiles' view: lane (g, t) of tile T, iteration it reads vector ((T n_it + it) 2 + h) 32 + 4 g + t
    vec = tile_flat.reshape(-1, 4)
    for p in range(N // 2):
        T, g = divmod(p, 8)
        rows = (2 * p, 2 * p + 1) if pairing == 1 else (p, p + N // 2)
        for h, r in enumerate(rows):
            for it in range(n_it):
                for lane_t in range(4):
                    v = ((T * n_it + it) * 2 + h) * 32 + 4 * g + lane_t
                    np.testing.assert_array_equal(vec[v], q[r, 16 * it + 4 * lane_t:16 * it + 4 * lane_t + 4])


@pytest.mark.parametrize("pairing", [1, 2])
def test_untile_inverts(pairing):
    q = words(96, 512, 3)
    t = qt.tile_qweight(q, pairing)
    assert not np.array_equal(t, q)
    np.testing.assert_array_equal(qt.untile_qweight(t, pairing), q)


def _int4(N, K, group=128):
    return QuantLinear("int4", np.zeros((N, K // 8), np.uint32), np.ones((N, K // group), np.float16), (N, K),
                       zeros=np.zeros((N, K // group), np.float16), group_size=group)


@pytest.mark.parametrize("preset,want", [
    ("llama-2-7b", {"wqkv": 0, "wo": 0, "w13": 0, "w2": 0, "output": 0}),    # K 4096 < tiled_min_k
    ("llama-2-13b", {"wqkv": 1, "wo": 1, "w13": 2, "w2": 1, "output": 1}),
    ("llama-2-70b", {"wqkv": 1, "wo": 1, "w13": 2, "w2": 1, "output": 1})])
def test_which_matrices_are_tiled(preset, want):
    """Exactly the matrices the decode step runs on the tiles (gemv_plan use_mma of their kernel)."""
    c = ModelConfig.from_preset(preset)
    shapes = {"wqkv": (c.qkv_dim, c.dim), "wo": (c.dim, c.dim), "w13": (2 * c.hidden_dim, c.dim),
              "w2": (c.dim, c.hidden_dim), "output": (c.vocab_size, c.dim)}
    got = {f: qt.pairing_for(_int4(*shapes[f]), f) for f in shapes}
    assert got == want


def test_what_stays_row_major(monkeypatch):
    assert qt.pairing_for(_int4(27648, 5120), "w13") == 2
    assert qt.pairing_for(_int4(27648, 5120 + 64, 64), "w13") == 0        # K not whole iterations
    assert qt.pairing_for(_int4(27648, 5120, 64), "w13") == 0             # a group inside an iteration
    assert qt.pairing_for(_int4(27640, 5120), "w13") == 0                 # rows not whole tiles
    assert qt.pairing_for(_int4(27648, 5120), "attention_norm") == 0
    w8 = quantize(np.ones((32, 256), np.float32), "int8")
    assert qt.pairing_for(w8, "wqkv") == 0
    assert qt.pairing_for(dataclasses.replace(_int4(27648, 5120), tiles=2), "w13") == 0  # already tiled
    monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4",
                        dataclasses.replace(gemv_plan.QUANT_PLANS["int4"], tiled_min_k=8192))
    assert qt.pairing_for(_int4(27648, 5120), "w13") == 0                 # below tiled_min_k


def test_env_off_tiles_nothing(monkeypatch):
    from cugraphllm.weights import LayerWeights, Weights
    lw = LayerWeights(None, _int4(15360, 5120), _int4(5120, 5120), None, _int4(27648, 5120), _int4(5120, 13824))
    w = Weights(None, [lw], None, None)
    monkeypatch.setenv(qt.TILED_ENV, "0")
    assert qt.tile_weights(w) == 0 and lw.w13.tiles == 0
    monkeypatch.setenv(qt.TILED_ENV, "1")
    assert qt.tile_weights(w) == 4 and (lw.wqkv.tiles, lw.wo.tiles, lw.w13.tiles, lw.w2.tiles) == (1, 1, 2, 1)


def test_dequantize_refuses_a_tiled_layer():
    ql = quantize(np.random.default_rng(0).standard_normal((16, 128)).astype(np.float32), "int4", 128)
    with pytest.raises(ValueError, match="tile-contiguous"):
        dequantize(dataclasses.replace(ql, tiles=1))
    assert dataclasses.replace(ql, tiles=1).map(lambda a: a).tiles == 1


def test_a_tiled_weight_takes_the_tiles_whatever_the_plan():
    p = gemv_plan.QUANT_PLANS["int4"]
    assert not p.use_mma(2048, "qgemv_residual_ss", 4096)                   # 7B wo: half2 by the plan
    assert p.gemv_config("qgemv_residual_ss", 4096, 2048, tiled=True) == p.mma_config(2048)
