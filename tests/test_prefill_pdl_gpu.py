"""The prefill PDL switches (A/B, off by default): attention_prefill.PDL_ATTN (the prefill attention built with
pdl_enter and launched with PDL) and gemm.PDL_RESIDUAL (the own <= 16-row residual GEMMs: weights in flight, then
pdl_enter, then x through L2). A launch that read before its wait would show as a difference from the plain
launches or as run-to-run noise: a 7B-width engine's last logits (2 layers, seeded random weights) must be bit for
bit those of the plain launches on every repeat, eagerly and from the captured graphs, at 10 / 16 prompt tokens (the
own GEMMs), 100 (cuBLAS), and 10 more onto a cached 100 (attention over the cache)."""
import gc

import numpy as np
import pytest

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams

pytestmark = pytest.mark.gpu
CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
PROMPTS = {"10": [10], "16": [16], "100": [100], "100+10": [100, 10]}  # token counts fed in turn
SWITCHES = {"attn": {"PDL_ATTN": True}, "residual": {"PDL_RESIDUAL": True},
            "both": {"PDL_ATTN": True, "PDL_RESIDUAL": True}}


@pytest.fixture(scope="module")
def setup():
    from cugraphllm.loader import dummy_checkpoint
    w = dummy_checkpoint(CFG, seed=13, dtype="float32").weights
    ids = np.random.default_rng(110).integers(0, CFG.vocab_size, 110).tolist()
    parts = {k: [ids[sum(v[:i]):sum(v[:i + 1])] for i in range(len(v))] for k, v in PROMPTS.items()}
    return w, parts


def _logits(w, parts, mode, reps):
    import cupy as cp
    from cugraphllm.gpu.engine import CudaEngine
    e = CudaEngine(CFG, w, RuntimeConfig(backend="cuda", mode=mode, max_seq_len=256))
    out = {}
    for k, ps in parts.items():
        out[k] = []
        for _ in range(reps):
            e.reset()
            for p in ps:
                e.s.logits.fill(np.nan)  # poisoned: a step that does not write the logits fails the comparison
                list(e.generate(p, SamplingParams(), 1))
            out[k].append(e.s.logits.get()[0].copy())
    del e
    gc.collect()
    cp.get_default_memory_pool().free_all_blocks()
    return out


@pytest.mark.parametrize("switch", list(SWITCHES))
@pytest.mark.parametrize("mode", ["eager", "hybrid"])
def test_prefill_pdl_switches_are_bit_identical(cp, setup, switch, mode, monkeypatch):
    from cugraphllm.gpu import attention_prefill, gemm, pdl
    if int(cp.cuda.Device().compute_capability) < 90:
        pytest.skip("PDL needs sm_90")
    monkeypatch.setattr(pdl, "PDL", True)
    w, parts = setup
    plain = _logits(w, parts, mode, 1)
    for name, value in SWITCHES[switch].items():
        monkeypatch.setattr(attention_prefill if name == "PDL_ATTN" else gemm, name, value)
    chained = _logits(w, parts, mode, 3)
    for k in parts:
        assert np.isfinite(plain[k][0]).all(), k
        for got in chained[k]:
            np.testing.assert_array_equal(got, plain[k][0], err_msg=f"{switch} {mode} {k}")
