"""Quantized weights end to end on the cuda backend against the NumPy engine (which dequantizes the same packed
tensors): quantize at load (fp8, int8, int4 with and without the LM head), GPTQ with desc_act, AWQ, and our saved
folder. Written on the CPU side of #10 for the lead to run once the GPU side is merged (marker `gpu`).

Tolerance (logits, ||gpu - ref|| / ||ref|| per step): 2e-2, as float16 in test_engine_gpu.py -- both engines use
the same dequantized weights, so what differs is the 16-bit activations and accumulation order.
"""
import numpy as np
import pytest

from cugraphllm.config import RuntimeConfig
from cugraphllm.sampling import SamplingParams
from quant_ckpt_helpers import SMALL, small_weights

pytestmark = pytest.mark.gpu
TOL = 2e-2


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _compare(config, weights, mode="hybrid"):
    """Per-step logits of CudaEngine vs the NumPy forward: a 7-token prefill, then 9 decode steps."""
    import cupy as cp
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.reference import forward, new_kv_cache
    gpu = CudaEngine(config, weights, RuntimeConfig(backend="cuda", mode=mode, max_seq_len=32))
    tokens = [int(t) for t in np.random.default_rng(5).integers(0, config.vocab_size, 16)]
    kv = new_kv_cache(config, 32)
    errs = []
    try:
        gpu.s.logits.fill(np.nan)  # poisoned: a step that writes nothing fails
        cp.cuda.Device().synchronize()  # the fill ran on the legacy stream; the engine's non-blocking one won't wait
        list(gpu.generate(tokens[:7], SamplingParams(), 1))
        errs.append(_rel(gpu.s.logits.get()[0], forward(config, weights, tokens[:7], 0, kv)[-1]))
        for i in range(7, 16):
            list(gpu.generate([tokens[i]], SamplingParams(), 1))
            errs.append(_rel(gpu.s.logits.get()[0], forward(config, weights, [tokens[i]], i, kv)[-1]))
    finally:
        if hasattr(gpu, "close"):
            gpu.close()
    assert max(errs) < TOL, errs


def _small_hf(tmp_path):
    from cugraphllm.convert import write_hf
    w = small_weights(5, final_norm=False)
    return write_hf(tmp_path / "hf", SMALL, w, dtype="float16"), w


@pytest.mark.parametrize("fmt,g,head", [("fp8", 128, False), ("int8", 128, True), ("int4", 128, False),
                                        ("int4", 32, True), ("int4", -1, False)])
def test_quantize_at_load_matches_numpy(tmp_path, fmt, g, head):
    from cugraphllm.loader import load_checkpoint
    from cugraphllm.quant.layers import QuantSpec
    folder, _ = _small_hf(tmp_path)
    ck = load_checkpoint(folder, dtype="float16", quant=QuantSpec(fmt, g, head))
    _compare(ck.config, ck.weights)


@pytest.mark.parametrize("method,g,desc_act", [("gptq", 32, True), ("gptq", -1, False), ("awq", 128, False)])
def test_gptq_awq_match_numpy(tmp_path, method, g, desc_act):
    """int4 with perm (desc_act) and QuantLinear.gain (the norm gains GPTQ / AWQ cannot fold)."""
    from cugraphllm.loader import load_checkpoint
    from quant_ckpt_helpers import write_int4_folder
    _, w = _small_hf(tmp_path)
    write_int4_folder(tmp_path / method, SMALL, w, method, g, desc_act=desc_act, seed=3)
    ck = load_checkpoint(tmp_path / method, dtype="float16")
    assert ck.weights.layers[0].wqkv.gain is not None
    _compare(ck.config, ck.weights)


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_saved_folder_matches_numpy(tmp_path, mode):
    from cugraphllm.loader import load_checkpoint
    from cugraphllm.quant.saved import quantize_model
    folder, _ = _small_hf(tmp_path)
    out = quantize_model(folder, tmp_path / "q", "int4", 64, True, progress=False)
    ck = load_checkpoint(out, dtype="float16")
    _compare(ck.config, ck.weights, mode)
