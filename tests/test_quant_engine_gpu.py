"""Quantized weights on the GPU end to end: quantize-at-load bit for bit against quant.formats.quantize, packed
uploads (norm gain into the gain vector), dummy quantized weights, and the cuda engine on quantized stories260K
against the NumPy engine on the same weights dequantized.

Engine tolerance (logits, ||gpu - ref|| / ||ref|| per step): 2e-2, as tests/test_engine_gpu.py for float16: both
engines use the same dequantized matrices, so the difference is the GPU's 16-bit activations and KV cache.
"""
import dataclasses

import numpy as np
import pytest

from cugraphllm.config import RuntimeConfig
from cugraphllm.quant.formats import QuantLinear, dequantize, quantize
from cugraphllm.sampling import SamplingParams

pytestmark = pytest.mark.gpu
FMTS = ["fp8", "int8", "int4"]
GREEDY = SamplingParams()


def same_layer(dev: QuantLinear, host: QuantLinear):
    assert dev.fmt == host.fmt and tuple(dev.shape) == tuple(host.shape) and dev.group_size == host.group_size
    for name in ("qweight", "scales", "zeros"):
        a, b = getattr(dev, name), getattr(host, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a.get(), b, err_msg=name)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("N,K,g,src", [(203, 200, 40, "float32"), (769, 96, 32, "float16"),
                                       (1061, 4096, 128, "float32"), (600, 1024, -1, "bfloat16")])
def test_quantize_at_load_is_bit_exact(cp, qu, fmt, N, K, g, src):
    """Gain folded in fp32, then round to nearest on the GPU == formats.quantize(W * gain) on the host."""
    import ml_dtypes
    rng = np.random.default_rng(N + K)
    w = (rng.standard_normal((N, K)) * 0.05).astype(np.float32)
    w[3, :] = 0.0                     # an all-zero row (scale 1)
    w[5, : K // 2] = 7.5              # outliers: saturating / clamped codes
    w = w.astype(ml_dtypes.bfloat16 if src == "bfloat16" else src)
    gain = (1 + 0.3 * rng.standard_normal(K)).astype(np.float32)
    dev = qu.quantize_host(w, gain, fmt, g)
    same_layer(dev, quantize(np.asarray(w, np.float32) * gain, fmt, g))


def test_quantize_rows_chunks_match_whole(cp, qu, monkeypatch):
    """Row chunks (quant_upload.CHUNK_ELEMS values each) do not change the result: every statistic is per row."""
    monkeypatch.setattr(qu, "CHUNK_ELEMS", 64 * 256)  # 64-row chunks of a [133, 256] matrix
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((133, 256)) * 0.05).astype(np.float32)
    for fmt in FMTS:
        same_layer(qu.quantize_host(w, None, fmt, 64), quantize(w, fmt, 64))


def test_upload_packed_moves_the_norm_into_gain(cp, qu):
    rng = np.random.default_rng(2)
    host = quantize((rng.standard_normal((48, 256)) * 0.05).astype(np.float32), "int4", 64)
    host.perm = rng.permutation(256).astype(np.int32)
    host.gain = (1 + 0.1 * rng.standard_normal(256)).astype(np.float32)
    norm = (1 + 0.3 * rng.standard_normal(256)).astype(np.float32)
    dev = qu.upload_packed(host, norm)
    same_layer(dev, host)
    np.testing.assert_array_equal(dev.perm.get(), host.perm)
    np.testing.assert_array_equal(dev.gain.get(), norm[host.perm] * host.gain)
    # the effective matrix is W with the norm on its input columns
    eff = dequantize(dev.map(lambda a: a.get()))
    np.testing.assert_allclose(eff, dequantize(host) * norm[None, :], rtol=1e-6)


@pytest.mark.parametrize("fmt", FMTS)
def test_dummy_quant_weights(cp, qu, fmt):
    from cugraphllm.config import ModelConfig
    cfg = ModelConfig(dim=256, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, hidden_dim=512, max_seq_len=64)
    w = qu.dummy_quant_weights(cfg, cp.float16, fmt, 64, quant_head=True, seed=3)
    mats = [(m, s) for lw in w.layers for m, s in ((lw.wqkv, (cfg.qkv_dim, 256)), (lw.wo, (256, 256)),
                                                   (lw.w13, (1024, 256)), (lw.w2, (256, 512)))]
    for m, shape in mats + [(w.output, (300, 256))]:
        assert isinstance(m, QuantLinear) and m.fmt == fmt and tuple(m.shape) == shape
        s = m.scales.get().astype(np.float64)
        assert np.all(np.isfinite(s)) and np.all(s > 0)
        eff = dequantize(m.map(lambda a: a.get()))
        assert 0.015 < eff.std() < 0.025  # the 0.02 * N(0, 1) draw, within quantization error
    assert w.tok_embeddings.dtype == cp.float16 and bool((w.norm == 1).all())
    want = qu.weight_bytes(cfg, fmt, 64, True)[0]
    assert abs(w.nbytes() - want) <= 4 * cfg.dim * 3  # norms: the unit vector is shared on the device


# ---- engine ----------------------------------------------------------------------------------------------------
class DequantGemm:
    """Test double of gpu/gemm_quant.py (the prefill GEMMs of quantized weights, another branch) for the engine
    tests while that module is absent: dequantizes each layer once (formats.dequantize: gain and perm included)
    to the activation dtype and calls gpu/gemm.py. Decode (M == 1), the path under test, never comes here."""

    def __init__(self):
        self._dense = {}

    def _w(self, w, dtype):
        import cupy as cp
        key = (id(w), str(dtype))
        if key not in self._dense:
            self._dense[key] = (w, cp.asarray(dequantize(w.map(lambda a: a.get())).astype(np.float32)).astype(dtype))
        return self._dense[key][1]

    def qkv_rope(self, q, xn, wqkv, *rest):
        from cugraphllm.gpu import gemm
        return gemm.qkv_rope(q, xn, self._w(wqkv, xn.dtype), *rest)

    def matmul_residual(self, x, a, w):
        from cugraphllm.gpu import gemm
        return gemm.matmul_residual(x, a, self._w(w, a.dtype))

    def matmul_silu(self, h, xn, w13):
        from cugraphllm.gpu import gemm
        return gemm.matmul_silu(h, xn, self._w(w13, xn.dtype))


@pytest.fixture
def prefill_quant(monkeypatch):
    """gpu/gemm_quant.py when it is installed, else the DequantGemm double (see its docstring)."""
    import importlib
    import sys
    try:
        importlib.import_module("cugraphllm.gpu.gemm_quant")
    except ImportError:
        import cugraphllm.gpu as gpu_pkg
        double = DequantGemm()
        monkeypatch.setitem(sys.modules, "cugraphllm.gpu.gemm_quant", double)
        monkeypatch.setattr(gpu_pkg, "gemm_quant", double, raising=False)


def packed_weights(weights, fmt):
    """Host Weights whose linear layers are formats.quantize'd (int4: group 32 where it divides K, else left
    in fp32: a format is per layer), plus the same weights dequantized for the NumPy engine."""
    from cugraphllm.weights import LayerWeights, Weights

    def q(m):
        if fmt == "int4" and m.shape[1] % 32:
            return m
        return quantize(m, fmt, 32)

    def deq(m):
        return dequantize(m).astype(np.float32) if isinstance(m, QuantLinear) else m
    layers = [LayerWeights(lw.attention_norm, q(lw.wqkv), q(lw.wo), lw.ffn_norm, q(lw.w13), q(lw.w2))
              for lw in weights.layers]
    out = q(np.asarray(weights.output, np.float32))
    packed = Weights(weights.tok_embeddings, layers, weights.norm, out)
    plain = Weights(weights.tok_embeddings,
                    [LayerWeights(**{k: deq(v) for k, v in vars(lw).items()}) for lw in layers], weights.norm,
                    deq(out))
    return packed, plain


def with_quant(rc, fmt, group_size=128, quant_head=False):
    """RuntimeConfig with the quant fields (before the CLI helper's branch adds them, set them directly)."""
    names = {f.name for f in dataclasses.fields(RuntimeConfig)}
    if "quant" in names:
        return dataclasses.replace(rc, quant=fmt, group_size=group_size, quant_head=quant_head)
    for k, v in (("quant", fmt), ("group_size", group_size), ("quant_head", quant_head)):
        object.__setattr__(rc, k, v)
    return rc


@pytest.mark.parametrize("fmt", FMTS)
def test_stories_quantized_matches_numpy(stories_ckpt, fmt, prefill_quant):
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.reference import NumpyEngine
    from test_engine_gpu import _step_logits
    packed, plain = packed_weights(stories_ckpt.weights, fmt)
    gpu = CudaEngine(stories_ckpt.config, packed, RuntimeConfig(backend="cuda", mode="hybrid"))
    assert fmt in gpu.describe()
    ref = NumpyEngine(stories_ckpt.config, plain)
    prompt = [1, 403, 407, 261, 378]  # "Once upon a time"
    want = list(ref.generate(prompt, GREEDY, 60))
    got = list(gpu.generate(prompt, GREEDY, 60))
    agree = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), 60)
    assert agree >= 30, f"greedy tokens diverge at {agree}: {got} vs {want}"
    gpu.reset()
    ref = NumpyEngine(stories_ckpt.config, plain)
    errs = _step_logits(gpu, ref, want[:40])
    assert errs.max() < 2e-2, (errs.argmax(), errs.max())


def folded_reference(weights, fmt):
    """What quantize-at-load computes, on the host: each norm gain folded in fp32, then formats.quantize, then
    dequantized, with unit norms; the LM head too (quant_head); the embedding as it is."""
    from cugraphllm.weights import LayerWeights, Weights

    def qd(m, g=None):
        m = np.asarray(m, np.float32) * (np.float32(1) if g is None else np.asarray(g, np.float32))
        return dequantize(quantize(m, fmt, 128)).astype(np.float32)
    one = np.ones_like(np.asarray(weights.norm, np.float32))
    layers = [LayerWeights(one, qd(lw.wqkv, lw.attention_norm), qd(lw.wo), one, qd(lw.w13, lw.ffn_norm), qd(lw.w2))
              for lw in weights.layers]
    return Weights(weights.tok_embeddings, layers, one, qd(weights.output, weights.norm))


@pytest.mark.parametrize("fmt", ["fp8", "int8"])  # stories260K's hidden_dim 172 has no int4 group (K % 8)
def test_quantize_at_load_engine(stories_ckpt, fmt, prefill_quant):
    """--quant at load (the runtime fields) on the fp32 checkpoint against the NumPy engine on the host-quantized,
    norm-folded weights (dequantized)."""
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.reference import NumpyEngine
    from test_engine_gpu import _step_logits
    rc = with_quant(RuntimeConfig(backend="cuda", mode="graph"), fmt, 128, quant_head=True)
    gpu = CudaEngine(stories_ckpt.config, stories_ckpt.weights, rc)
    assert gpu.w.output.fmt == fmt and gpu.w.layers[0].w2.fmt == fmt
    plain = folded_reference(stories_ckpt.weights, fmt)
    prompt = [1, 403, 407, 261, 378]
    want = list(NumpyEngine(stories_ckpt.config, plain).generate(prompt, GREEDY, 40))
    got = list(gpu.generate(prompt, GREEDY, 40))
    agree = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), 40)
    assert agree >= 20, f"greedy tokens diverge at {agree}: {got} vs {want}"
    gpu.reset()
    errs = _step_logits(gpu, NumpyEngine(stories_ckpt.config, plain), want[:30])
    assert errs.max() < 2e-2, (errs.argmax(), errs.max())


def test_quant_on_quantized_checkpoint_is_refused(stories_ckpt, qu, cp):
    from cugraphllm.errors import ConfigError
    packed, _ = packed_weights(stories_ckpt.weights, "int8")
    before = cp.get_default_memory_pool().used_bytes()
    with pytest.raises(ConfigError, match="already quantized"):
        qu.upload_quant_weights(packed, cp.float16, "int4")
    assert cp.get_default_memory_pool().used_bytes() == before


def test_int4_at_load_refuses_an_indivisible_layer(stories_ckpt, cp):
    """stories260K's w2 has K = 172: no int4 group fits; one ConfigError naming it, nothing left allocated."""
    import gc

    from cugraphllm.errors import ConfigError
    from cugraphllm.gpu.engine import CudaEngine
    pool = cp.get_default_memory_pool()
    gc.collect()
    before = pool.used_bytes()
    with pytest.raises(ConfigError, match=r"layers\.0\.w2 \[64, 172\]"):
        CudaEngine(stories_ckpt.config, stories_ckpt.weights, with_quant(RuntimeConfig(backend="cuda"), "int4", 32))
    gc.collect()
    assert pool.used_bytes() == before
