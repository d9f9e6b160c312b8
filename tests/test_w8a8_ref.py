"""quant/w8a8_ref.py (the NumPy model of the GPU's fp8 W8A8 prefill) and reference.forward's w8a8 switch.

The per-token quantization against a scalar re-implementation (its own e4m3 table search, ties to even, one
float32 value at a time); the product against math.fsum of the decoded values and against the weight-only
product within the rigorous e4m3 bound; the switch off (and on without fp8 weights) bit-identical to forward().
"""
import math

import numpy as np
import pytest

from cugraphllm import reference as R
from cugraphllm.config import ModelConfig
from cugraphllm.quant import w8a8_ref as W
from cugraphllm.quant.formats import dequantize, fp8_e4m3_decode, quantize
from cugraphllm.quant.layers import QuantSpec, quantize_weights
from cugraphllm.weights import Weights

F32 = np.float32
# e4m3fn finite non-negative values by code 0..126, built here from the bit layout (not from formats.py's table)
VALUES = [(m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7) for e in range(16) for m in range(8)][:127]


def scalar_code(x: float) -> int:
    """e4m3fn code of one float: nearest of VALUES (ties to the even code = even mantissa), |x| > 448 -> 448."""
    a = min(abs(x), 448.0)
    best = min(range(127), key=lambda c: (abs(VALUES[c] - a), c % 2))
    return best | (0x80 if math.copysign(1.0, x) < 0 else 0)


def scalar_quant(a, perm=None, gain=None, storage=None):
    """The GPU's rule (kernels/gemm_quant.cu quant_act_fp8), one element at a time in float32 scalars."""
    M, K = a.shape
    codes, sa = np.zeros((M, K), np.uint8), np.zeros(M, F32)
    for m in range(M):
        row = [F32(a[m, perm[j] if perm is not None else j]) for j in range(K)]
        if storage == "float16":
            row = [F32(np.float16(v)) for v in row]
        v = [row[j] * (F32(gain[j]) if gain is not None else F32(1)) for j in range(K)]
        amax = F32(0)
        for t in v:
            amax = max(amax, F32(abs(t)))
        sa[m] = amax / F32(448) if amax > 0 else F32(1)
        inv = F32(448) / amax if amax > 0 else F32(1)
        codes[m] = [scalar_code(float(F32(t * inv))) for t in v]
    return codes, sa


def awkward_rows(rng, K):
    """Random rows of very different magnitudes, a zero row, negative zeros and exact ties of the e4m3 grid."""
    a = rng.standard_normal((7, K)).astype(F32)
    a[1] *= F32(1e30)
    a[2] *= F32(1e-30)
    a[3] = 0
    a[4, ::3] = -0.0
    a[5, :4] = [448 * 1.0001, -448, 0.5 * (VALUES[60] + VALUES[61]), 0.5 * (VALUES[61] + VALUES[62])]  # amax 448+
    a[6] = rng.uniform(-1, 1, K).astype(F32) ** 9                                     # many subnormal codes
    return a


@pytest.mark.parametrize("K", [37, 130])
@pytest.mark.parametrize("storage", [None, "float16"])
def test_quant_act_matches_scalar(K, storage):
    rng = np.random.default_rng(K)
    a = awkward_rows(rng, K)
    if storage == "float16":
        a[1] *= F32(1e-26)  # keep the huge row finite in float16
    codes, sa = W.quant_act(a, storage=storage)
    want_c, want_s = scalar_quant(a, storage=storage)
    np.testing.assert_array_equal(codes, want_c)
    np.testing.assert_array_equal(sa, want_s)
    assert sa[3] == 1 and not codes[3].any()              # zero row: scale 1, all codes +0
    assert (codes[4, ::3] == 0x80).all()                   # -0 keeps its sign
    assert np.abs(fp8_e4m3_decode(codes)).max() == 448     # the row maxima reach 448, never beyond (satfinite)


def test_quant_act_perm_gain():
    rng = np.random.default_rng(5)
    K = 48
    a = rng.standard_normal((5, K)).astype(F32)
    perm, gain = rng.permutation(K).astype(np.int32), rng.uniform(0.5, 2, K).astype(F32)
    codes, sa = W.quant_act(a, perm, gain)
    want_c, want_s = scalar_quant(a, perm, gain)
    np.testing.assert_array_equal(codes, want_c)
    np.testing.assert_array_equal(sa, want_s)


def test_round_storage_bfloat16():
    rng = np.random.default_rng(9)
    a = (rng.standard_normal(4001) * 10.0 ** rng.integers(-20, 20, 4001)).astype(F32)
    got = W.round_storage(a, "bfloat16")
    for x, g in zip(a[:300], got[:300]):  # nearest bfloat16 (8 mantissa bits), ties to even, by float64 arithmetic
        e = math.frexp(float(x))[1]
        step = 2.0 ** (e - 8)
        q = float(x) / step
        r = math.floor(q) + (1 if q - math.floor(q) > 0.5 or (q - math.floor(q) == 0.5 and math.floor(q) % 2) else 0)
        assert float(g) == r * step
    assert np.all(np.abs(got - a) <= np.abs(a) * 2.0 ** -8)
    with pytest.raises(ValueError, match="storage"):
        W.round_storage(a, "float8")


def _quant_linear(rng, N, K, perm=False, gain=False):
    ql = quantize(rng.standard_normal((N, K)).astype(F32) / np.sqrt(K), "fp8")
    if perm:
        ql.perm = rng.permutation(K).astype(np.int32)
    if gain:
        ql.gain = rng.uniform(0.5, 2, K).astype(F32)
    return ql


@pytest.mark.parametrize("perm,gain", [(False, False), (True, True)])
def test_linear_against_fsum_and_bound(perm, gain):
    rng = np.random.default_rng(17)
    M, N, K = 6, 29, 88
    ql = _quant_linear(rng, N, K, perm, gain)
    x = (rng.standard_normal((M, K)) * rng.uniform(0.01, 100, (M, 1))).astype(F32)
    y = np.full((M, N), np.nan, F32)
    y[:] = W.linear(x, ql)
    codes, sa = scalar_quant(x, ql.perm, ql.gain)
    wq = fp8_e4m3_decode(ql.qweight) * ql.scales.astype(np.float64)[:, None]   # packed order, no gain
    av = fp8_e4m3_decode(codes) * sa.astype(np.float64)[:, None]
    want = np.array([[math.fsum(av[m] * wq[n]) for n in range(N)] for m in range(M)])
    np.testing.assert_allclose(y, want, rtol=2e-7, atol=0)                    # float32 rounding of the result
    # against the weight-only product: |a_j - decoded_j| <= 2**-4 |a_j| (normals) + 2**-10 sa (subnormal step / 2)
    v = x[:, ql.perm] if perm else x
    v = v * ql.gain if gain else v
    bound = np.abs(v) @ np.abs(wq).T * 2.0 ** -4 + sa[:, None] * 2.0 ** -10 * np.abs(wq).sum(axis=1)
    err = np.abs(y - x.astype(np.float64) @ dequantize(ql).T)
    assert (err <= bound * 1.001).all() and err.max() > 0


def test_linear_refuses_other_formats():
    rng = np.random.default_rng(3)
    ql = quantize(rng.standard_normal((8, 16)).astype(F32), "int8")
    with pytest.raises(ValueError, match="fp8"):
        W.linear(np.ones((2, 16), F32), ql)


CFG = ModelConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=101, hidden_dim=152, max_seq_len=48)


@pytest.fixture(scope="module")
def models():
    from test_reference import random_weights
    w = random_weights(CFG, seed=21)
    q = Weights(tok_embeddings=w.tok_embeddings, layers=list(w.layers), norm=w.norm, output=w.output)
    return w, quantize_weights(q, QuantSpec("fp8"))


def test_switch_off_is_bit_identical(models):
    w, wq = models
    toks = np.random.default_rng(4).integers(0, CFG.vocab_size, 33)
    for weights in (w, wq):
        base = R.forward(CFG, weights, toks)
        assert np.array_equal(R.forward(CFG, weights, toks, w8a8=False), base)
    assert np.array_equal(R.forward(CFG, w, toks, w8a8="float16"), R.forward(CFG, w, toks))  # no fp8 weights
    kv1, kv2 = R.new_kv_cache(CFG, 33), R.new_kv_cache(CFG, 33)  # NumpyEngine's call: hidden_states, no switch
    assert np.array_equal(R.hidden_states(CFG, wq, toks, 0, kv1), R.hidden_states(CFG, wq, toks, 0, kv2, False))
    assert np.array_equal(kv1, kv2)


def test_switch_on_changes_only_within_fp8_error(models):
    _, wq = models
    toks = np.random.default_rng(6).integers(0, CFG.vocab_size, 40)
    base = R.forward(CFG, wq, toks).astype(np.float64)
    rel = lambda a: float(np.linalg.norm(a - base) / np.linalg.norm(base))  # noqa: E731
    on, half = R.forward(CFG, wq, toks, w8a8=True), R.forward(CFG, wq, toks, w8a8="float16")
    assert np.isfinite(on).all() and 1e-4 < rel(on) < 0.2 and 1e-4 < rel(half) < 0.2
    assert not np.array_equal(on, half)
    # the layers' first product, by hand: wqkv of the unit-gain-normed embeddings, quantized per token
    xn = R.rmsnorm(wq.tok_embeddings[toks].astype(F32), wq.layers[0].attention_norm, CFG.norm_eps)
    np.testing.assert_array_equal(R._layer_linear(True)(xn, wq.layers[0].wqkv), W.linear(xn, wq.layers[0].wqkv))
    with pytest.raises(ValueError, match="storage"):
        R.forward(CFG, wq, toks, w8a8="int8")
