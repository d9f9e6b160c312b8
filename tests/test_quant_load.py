"""Quantize at load (--quant fp8|int8|int4, --group-size, --quant-head): norm gains folded before quantizing, layer
by layer; our saved folder (`quantize`) loads as the same weights with no requantization; the NumPy backend runs
every format through the dequantized matrices; flags on the CLI, LLM.load and RuntimeConfig; one-line errors."""
import json
import tracemalloc

import numpy as np
import pytest

from cugraphllm.api import LLM
from cugraphllm.cli import main
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.convert import write_hf
from cugraphllm.errors import CheckpointError, ConfigError
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.quant.formats import QuantLinear, dequantize, fp8_e4m3_encode, fp8_e4m3_encode_f32, quantize
from cugraphllm.quant.layers import QuantSpec
from cugraphllm.quant.saved import quantize_model
from cugraphllm.reference import forward
from quant_ckpt_helpers import SMALL, small_weights



@pytest.fixture(scope="module")
def small_hf(tmp_path_factory):
    """An fp16 Hugging Face folder with random weights and non-unit norm gains."""
    return write_hf(tmp_path_factory.mktemp("small") / "hf", SMALL, small_weights(5), dtype="float16")


def _same_ql(a: QuantLinear, b: QuantLinear, what):
    assert a.fmt == b.fmt and tuple(a.shape) == tuple(b.shape) and a.group_size == b.group_size, what
    for part in ("qweight", "scales", "zeros", "perm", "gain"):
        x, y = getattr(a, part), getattr(b, part)
        assert (x is None) == (y is None), (what, part)
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=f"{what}.{part}")


@pytest.mark.parametrize("fmt,g,head", [("fp8", 128, False), ("int8", 128, True), ("int4", 128, False),
                                        ("int4", 32, True), ("int4", -1, False)])
def test_quantize_at_load_folds_norms_first(small_hf, fmt, g, head):
    plain = load_checkpoint(small_hf).weights
    got = load_checkpoint(small_hf, quant=QuantSpec(fmt, g, head)).weights
    for i, (a, b) in enumerate(zip(got.layers, plain.layers)):
        _same_ql(a.wqkv, quantize(b.wqkv * b.attention_norm[None, :], fmt, g), f"layer {i} wqkv")
        _same_ql(a.w13, quantize(b.w13 * b.ffn_norm[None, :], fmt, g), f"layer {i} w13")
        _same_ql(a.wo, quantize(b.wo, fmt, g), f"layer {i} wo")
        _same_ql(a.w2, quantize(b.w2, fmt, g), f"layer {i} w2")
        np.testing.assert_array_equal(a.attention_norm, 1)
        np.testing.assert_array_equal(a.ffn_norm, 1)
    np.testing.assert_array_equal(got.tok_embeddings, plain.tok_embeddings)  # the embedding stays 16-bit
    if head:
        _same_ql(got.output, quantize(plain.output * plain.norm[None, :], fmt, g), "output")
        np.testing.assert_array_equal(got.norm, 1)
    else:
        np.testing.assert_array_equal(got.output, plain.output)
        np.testing.assert_array_equal(got.norm, plain.norm)
    # the NumPy backend: the quantized model equals the plain model holding the dequantized matrices
    dense = load_checkpoint(small_hf, quant=QuantSpec(fmt, g, head)).weights
    for lw in dense.layers:
        for k in ("wqkv", "wo", "w13", "w2"):
            setattr(lw, k, dequantize(getattr(lw, k)).astype(np.float32))
    if head:
        dense.output = dequantize(dense.output).astype(np.float32)
    tokens = np.random.default_rng(1).integers(0, SMALL.vocab_size, 7)
    want = forward(SMALL, dense, tokens)
    out = forward(SMALL, got, tokens)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert np.abs(out - forward(SMALL, plain, tokens)).max() > 0  # quantization did change the numbers


def test_saved_folder_loads_without_requantization(tmp_path, small_hf, stories_dir):
    for model, spec in ((small_hf, QuantSpec("int4", 32, True)), (stories_dir / "stories260K.bin", QuantSpec("fp8"))):
        out = quantize_model(model, tmp_path / spec.fmt, spec.fmt, spec.group_size, spec.quant_head, progress=False)
        conf = json.loads((out / "config.json").read_text())["quantization_config"]
        assert conf["quant_method"] == "cugraphllm" and conf["format"] == spec.fmt
        direct = load_checkpoint(model, quant=spec)
        saved = load_checkpoint(out)
        assert saved.config.tie_embeddings == (direct.weights.output is direct.weights.tok_embeddings)
        for i, (a, b) in enumerate(zip(saved.weights.layers, direct.weights.layers)):
            for k in ("wqkv", "wo", "w13", "w2"):
                _same_ql(getattr(a, k), getattr(b, k), f"layer {i} {k}")
        cfg = direct.config
        tokens = np.random.default_rng(2).integers(0, cfg.vocab_size, 9)
        want = forward(cfg, direct.weights, tokens)
        np.testing.assert_allclose(forward(saved.config, saved.weights, tokens), want, rtol=1e-3,
                                   atol=2e-3 * np.abs(want).max())  # 16-bit tensors of an fp16 source: fp16
        with pytest.raises(CheckpointError, match="already quantized \\(cugraphllm\\)"):
            load_checkpoint(out, quant=QuantSpec("int8"))


@pytest.mark.parametrize("tensor,fn,words", [
    ("layers.0.wo.scales", lambda a: np.where(np.arange(a.size) == 3, 0, a).astype(a.dtype),
     r"tensor 'layers.0.wo.qweight': 1 scales are NaN, Inf or 0 \(first at \[3\]: 0.0\); supported: finite non-zero"),
    ("layers.1.w13.qweight", lambda a: a[:, :-1], r"tensor 'layers.1.w13.qweight': qweight has shape \[344, 63\], "
                                                  r"expected \[344, 64\] for int8 \[344, 64\]"),
])
def test_saved_folder_bad_tensors(tmp_path, stories_dir, tensor, fn, words):
    from cugraphllm.safetensors_io import SafetensorsFile, write_safetensors_typed
    out = quantize_model(stories_dir / "stories260K.bin", tmp_path / "q", "int8", progress=False)
    f = SafetensorsFile(out / "model.safetensors")
    tensors = {n: np.array(f.raw(n, ints=True)) for n in f.tensors}
    del f
    tensors[tensor] = fn(tensors[tensor])
    write_safetensors_typed(out / "model.safetensors", tensors)
    with pytest.raises(CheckpointError, match="model.safetensors: " + words):
        load_checkpoint(out)


def test_quantize_at_load_is_layer_by_layer(tmp_path):
    """Peak memory while quantizing at load: the int8 result plus a few fp32 layers of work, below the fp32 model
    (which quantizing after a whole fp32 load would need)."""
    cfg = ModelConfig(dim=256, n_layers=8, n_heads=8, n_kv_heads=8, vocab_size=64, hidden_dim=768, max_seq_len=64)
    folder = write_hf(tmp_path / "m", cfg, dummy_weights(cfg, seed=1, dtype="float32"), dtype="float16")
    linear_fp32 = 4 * cfg.n_layers * (cfg.dim * cfg.qkv_dim + cfg.dim ** 2 + 3 * cfg.dim * cfg.hidden_dim)
    tracemalloc.start()
    load_checkpoint(folder, quant=QuantSpec("int8"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < linear_fp32 / 4 + 4 * linear_fp32 / cfg.n_layers < linear_fp32, (peak, linear_fp32)


def test_fast_fp8_encoder_equals_reference():
    rng = np.random.default_rng(7)
    edge = np.array([0, -0.0, 448, -448, 449, 464, 1e9, 2 ** -6, 2 ** -7, 2 ** -9, 2 ** -10, 2 ** -10 * 1.0001,
                     3 * 2 ** -10, 1.0625, 1.1875, 240, 248, 232, -1e-30], np.float32)
    x = np.concatenate([edge, rng.standard_normal(20011).astype(np.float32) * 10.0 ** rng.integers(-4, 3, 20011)])
    np.testing.assert_array_equal(fp8_e4m3_encode_f32(x), fp8_e4m3_encode(x))


@pytest.mark.parametrize("fmt,g", [("fp8", 128), ("int8", 128), ("int4", 40), ("int4", -1)])
def test_device_quantizer_arithmetic_on_numpy(monkeypatch, fmt, g):
    """gpu/quant_upload.quantize_rows (its fp8 search is formats.fp8_e4m3_encode with xp=cupy) run with NumPy in
    place of CuPy equals formats.quantize bit for bit: the device path's arithmetic is the host rules'."""
    import sys

    from cugraphllm.gpu import quant_upload
    monkeypatch.setitem(sys.modules, "cupy", np)
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((37, 200)) * 10.0 ** rng.integers(-3, 2, (37, 1))).astype(np.float32)
    w[3] = 0  # an all-zero row: scale 1
    w[5, :7] = [448, -1.0625, 1.1875, 248, -232, 3 * 2 ** -10, 2 ** -10]  # fp8 scale 1: exact e4m3 ties
    w[6, :5] = [127, -126.5, 2.5, 0.5, -3.5]                                # int8 scale 1: exact rint ties
    want = quantize(w, fmt, g)
    q, s, z = quant_upload.quantize_rows(w, fmt, g)
    np.testing.assert_array_equal(np.asarray(q).view(np.asarray(want.qweight).dtype), want.qweight)
    np.testing.assert_array_equal(s, want.scales)
    assert (z is None) == (want.zeros is None)
    if z is not None:
        np.testing.assert_array_equal(z, want.zeros)


def test_runtime_config_and_llm_load(stories_dir):
    with pytest.raises(ConfigError, match="--quant 'int3' is not supported; supported: fp8, int8, int4"):
        RuntimeConfig(quant="int3")
    with pytest.raises(ConfigError, match="--group-size 12 is not supported"):
        RuntimeConfig(quant="int4", group_size=12)
    llm = LLM.load(stories_dir / "stories260K.bin", backend="numpy", quant="int8", progress=False)
    assert isinstance(llm.engine.weights.layers[0].wqkv, QuantLinear) and llm.runtime.quant == "int8"
    ref = LLM.load(stories_dir / "stories260K.bin", backend="numpy", progress=False)
    assert llm.generate("Once upon a time", max_new_tokens=30) == ref.generate("Once upon a time", max_new_tokens=30)
    tiny = LLM.load("dummy:tiny", tokenizer=stories_dir / "tok512.model", backend="numpy", quant="int4",
                    group_size=16, quant_head=True, progress=False)  # hidden 688 = 16 * 43
    assert isinstance(tiny.engine.weights.output, QuantLinear) and tiny.engine.weights.output.group_size == 16
    assert tiny.generate("Once", max_new_tokens=3) is not None


def test_cli_quantize_and_errors(tmp_path, stories_dir, capsys):
    model = str(stories_dir / "stories260K.bin")
    assert main(["quantize", "--model", model, "--quant", "int8", "--out", str(tmp_path / "q"), "-q"]) == 0
    assert main(["generate", "--model", str(tmp_path / "q"), "--prompt", "Once upon a time", "--backend", "numpy",
                 "--max-new-tokens", "20", "-q", "--no-echo"]) == 0
    assert main(["generate", "--model", model, "--prompt", "Once upon a time", "--backend", "numpy", "--quant",
                 "int8", "--max-new-tokens", "20", "-q", "--no-echo"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1] and len(out[0]) > 20
    for argv, words in (
            (["generate", "--model", str(tmp_path / "q"), "--prompt", "x", "--quant", "fp8"], "already quantized"),
            (["generate", "--model", model, "--prompt", "x", "--quant", "int4"],
             "wqkv [64 inputs]: int4 --group-size 128 does not divide the input dimension 64"),
            (["quantize", "--model", model, "--quant", "int4", "--group-size", "12", "--out", "x"],
             "--group-size: expected -1 or a positive multiple of 8"),
            (["quantize", "--model", model, "--out", "x"], "the following arguments are required: --quant")):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse errors exit from the parser
            rc = e.code
        assert rc == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (argv, err)


@pytest.mark.parametrize("fmt,g,perm,gain", [("fp8", 0, False, False), ("int8", 0, False, False),
                                             ("int4", 32, True, True), ("int4", -1, False, True)])
def test_float32_dequantize_equals_rounded_float64(fmt, g, perm, gain):
    """quant/dense.py (the NumPy backend's fast path) == formats.dequantize rounded once, bit for bit."""
    from cugraphllm.quant.dense import dequantize_f32
    rng = np.random.default_rng([3, g + 1])
    N, K = 2100, 352  # more rows than one step of dense.py, K = 11 * 32
    ql = quantize(rng.standard_normal((N, K)).astype(np.float32) * rng.uniform(0.01, 2, (N, 1)), fmt, g)
    if perm:
        ql.perm = rng.permutation(K).astype(np.int32)
    if gain:
        ql.gain = rng.uniform(0.2, 3, K).astype(np.float32)
    np.testing.assert_array_equal(dequantize_f32(ql), dequantize(ql).astype(np.float32))


def test_pack_int4_layout():
    """formats.pack_int4 (byte-wise since this change) against the layout, element by element."""
    from cugraphllm.quant.formats import pack_int4, unpack_int4
    q = np.random.default_rng(8).integers(0, 16, (13, 88)).astype(np.uint8)
    packed = pack_int4(q)
    assert packed.dtype == np.uint32 and packed.shape == (13, 11)
    for n in range(13):
        for k in range(88):
            assert (int(packed[n, k // 8]) >> (4 * (k % 8))) & 0xF == q[n, k]
    np.testing.assert_array_equal(unpack_int4(packed), q)
