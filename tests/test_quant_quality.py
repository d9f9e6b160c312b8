"""Quality of the formats on the NumPy backend (the full table: scripts/quant_quality.py): stories260K greedy
agreement and perplexity against fp32, per-element error bounds on 7B-shaped matrices, and the logit-error order
of the formats on random weights."""
import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.quant import quality as Q
from cugraphllm.quant.formats import dequantize, fp8_e4m3_decode, quantize
from cugraphllm.quant.layers import QuantSpec, quantize_weights
from cugraphllm.reference import forward
from cugraphllm.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def stories(stories_dir):
    ck = load_checkpoint(stories_dir / "stories260K.bin")
    tok = Tokenizer.load(stories_dir / "tok512.model")
    prompt, ids = tok.encode("Once upon a time", bos=True), tok.encode(Q.TEXT, bos=True)
    return ck, prompt, ids, Q.greedy(ck.config, ck.weights, prompt), Q.perplexity(ck.config, ck.weights, ids)


# (format, group, min greedy tokens equal to fp32 of 60, max perplexity ratio to fp32)
@pytest.mark.parametrize("fmt,g,agree,ppl", [("int8", 128, 60, 1.005), ("fp8", 128, 50, 1.02),
                                             ("int4", 32, 10, 1.2), ("int4", -1, 10, 1.2)])
def test_stories260k_quality(stories, stories_dir, fmt, g, agree, ppl):
    ck, prompt, ids, base, base_ppl = stories
    q = load_checkpoint(stories_dir / "stories260K.bin", quant=QuantSpec(fmt, g, strict=False))
    tokens = Q.greedy(q.config, q.weights, prompt)
    assert Q.agreement(tokens, base)[0] >= agree, (tokens, base)
    assert 0.97 < Q.perplexity(q.config, q.weights, ids) / base_ppl < ppl


@pytest.mark.parametrize("fmt,g", [("fp8", 0), ("int8", 0), ("int4", 128), ("int4", 32), ("int4", -1)])
def test_error_bounds_on_7b_rows(fmt, g):
    """Rows of the 7B down projection (K = 11008, an awkward row count): every element within half a step."""
    rng = np.random.default_rng([11, len(fmt), g + 1])
    w = (rng.standard_normal((203, 11008)) * 0.02 * rng.uniform(0.2, 3, (203, 1))).astype(np.float32)
    ql = quantize(w, fmt, g)
    err = np.abs(dequantize(ql) - w)
    if fmt == "fp8":  # 3 mantissa bits: half an ulp is 2**-4 of the value (2**-10 below the normal range)
        s = ql.scales.astype(np.float64)[:, None]
        assert np.all(err <= s * np.maximum(np.abs(w) / s * 2.0 ** -4, 2.0 ** -10) * (1 + 1e-6))
        assert np.array_equal(np.abs(fp8_e4m3_decode(ql.qweight)).max(axis=1), np.full(203, 448.0))
    else:
        step = ql.scales.astype(np.float64)
        step = step[:, None] if fmt == "int8" else np.repeat(step, ql.group_size, axis=1)
        if fmt == "int8":
            assert np.all(err <= 0.5 * step * (1 + 1e-4))  # w / s is rounded to float32
        else:  # fp16 scale and integer zero point: a group's extreme may clip past half a step, never a whole one
            assert np.all(err <= step) and np.mean(err > 0.5 * step * (1 + 1e-3)) < 1e-3
    assert err.max() > 0


def test_logit_error_order_of_formats():
    """On random weights (2 layers, dim 256): int8 < fp8 < int4 g32 < int4 g128 < int4 per row, with bounds."""
    cfg = ModelConfig(dim=256, n_layers=2, n_heads=8, n_kv_heads=8, vocab_size=500, hidden_dim=768, max_seq_len=16)
    ids = np.random.default_rng(4).integers(0, cfg.vocab_size, 6)
    ref = forward(cfg, dummy_weights(cfg, seed=9, dtype="float16"), ids)
    rms = {}
    for fmt, g in (("int8", 128), ("fp8", 128), ("int4", 32), ("int4", 128), ("int4", -1)):
        got = forward(cfg, quantize_weights(dummy_weights(cfg, seed=9, dtype="float16"), QuantSpec(fmt, g)), ids)
        rms[(fmt, g)] = Q.logit_error(ref, got)["rms_err_over_sd"]
    order = [rms[k] for k in (("int8", 128), ("fp8", 128), ("int4", 32), ("int4", 128), ("int4", -1))]
    assert order == sorted(order) and 0 < order[0] < 0.05 and order[1] < 0.15 and order[-1] < 1.0, rms
