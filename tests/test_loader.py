"""Checkpoint loading: llama2.c .bin, Hugging Face folders built from it by convert.py (single file,
shards, fp32/fp16/bf16, tied or separate lm_head), q/k un-permutation, golden tokens from both formats,
memory mapping without copies, dummy weights. Bad inputs are in test_loader_errors.py."""
import json
import tracemalloc

import numpy as np
import pytest
from conftest import stories_golden

from cugraphllm.config import ModelConfig
from cugraphllm.convert import convert_llama2c_to_hf, permute_rows, write_hf
from cugraphllm.loader import Checkpoint, dummy_checkpoint, dummy_weights, load_checkpoint, parse_model_arg
from cugraphllm.loader_common import expected_shape
from cugraphllm.loader_hf import unpermute_rows
from cugraphllm.safetensors_io import SafetensorsFile, bf16_to_f32, f32_to_bf16

HEADER_260K = (64, 172, 5, 8, 4, 512, 512)


@pytest.fixture(scope="module")
def bin_path(stories_dir):
    return stories_dir / "stories260K.bin"


@pytest.fixture(scope="module")
def bin_ck(bin_path):
    return load_checkpoint(bin_path)


def _arrays(w):
    """name -> array of every tensor in Weights, in a fixed order."""
    out = {"tok_embeddings": w.tok_embeddings, "norm": w.norm, "output": w.output}
    for i, lw in enumerate(w.layers):
        out.update({f"{k}[{i}]": v for k, v in vars(lw).items()})
    return out


def _assert_weights(got, want, cmp):
    a, b = _arrays(got), _arrays(want)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        cmp(k, a[k], b[k])


def _exact(k, x, y):
    np.testing.assert_array_equal(x, y, err_msg=k)


# ---- llama2.c ------------------------------------------------------------------------------------------------
def test_llama2c_stories260k(bin_ck, bin_path, stories_dir):
    cfg, w = bin_ck.config, bin_ck.weights
    assert cfg == ModelConfig.from_llama2c_header(HEADER_260K)
    assert bin_ck.source == "llama2c" and bin_ck.tokenizer_path == stories_dir / "tok512.model"
    assert w.output is w.tok_embeddings and len(w.layers) == 5
    assert tuple(bin_ck) == (cfg, w, bin_ck.tokenizer_path)
    for k, a in _arrays(w).items():
        assert a.dtype == np.float32, k
    # independent offsets (README section 3): wk of layer 3 and w3 of layer 4 straight from the file
    D, L, V, KV, F = 64, 5, 512, 32, 172
    flat = np.fromfile(bin_path, dtype="<f4", offset=28)
    o_wk = V * D + L * D + L * D * D
    np.testing.assert_array_equal(w.layers[3].wqkv[D:D + KV], flat[o_wk + 3 * KV * D:][:KV * D].reshape(KV, D))
    o_w3 = o_wk + 2 * L * KV * D + L * D * D + L * D + 2 * L * F * D
    np.testing.assert_array_equal(w.layers[4].w13[F:], flat[o_w3 + 4 * F * D:][:F * D].reshape(F, D))
    np.testing.assert_array_equal(w.norm, flat[o_w3 + L * F * D:][:D])
    assert flat.size - (o_w3 + L * F * D + D) == 2 * 512 * 4  # the skipped RoPE tables, then nothing


def test_llama2c_float16(bin_ck, bin_path):
    w16 = load_checkpoint(bin_path, dtype="float16").weights
    for k, a in _arrays(w16).items():
        want = _arrays(bin_ck.weights)[k]
        assert a.dtype == (np.float32 if "norm" in k else np.float16), k
        np.testing.assert_array_equal(a, want.astype(a.dtype), err_msg=k)


def _write_bin(path, header, body: np.ndarray):
    with open(path, "wb") as f:
        f.write(np.asarray(header, "<i4").tobytes() + np.asarray(body, "<f4").tobytes())


def test_llama2c_separate_classifier(tmp_path, bin_path, bin_ck):
    body = np.fromfile(bin_path, dtype="<f4", offset=28)
    wcls = np.random.default_rng(3).standard_normal((512, 64)).astype(np.float32)
    header = list(HEADER_260K)
    header[5] = -512
    _write_bin(tmp_path / "sep.bin", header, np.concatenate([body, wcls.ravel()]))
    ck = load_checkpoint(tmp_path / "sep.bin")
    assert not ck.config.tie_embeddings and ck.weights.output is not ck.weights.tok_embeddings
    np.testing.assert_array_equal(ck.weights.output, wcls)
    np.testing.assert_array_equal(ck.weights.tok_embeddings, bin_ck.weights.tok_embeddings)
    assert ck.tokenizer_path is None  # nothing beside it


def test_tokenizer_resolution(tmp_path, bin_path, stories_dir):
    (tmp_path / "m.bin").symlink_to(bin_path)
    assert load_checkpoint(tmp_path / "m.bin").tokenizer_path is None
    (tmp_path / "a.model").symlink_to(stories_dir / "tok512.model")
    assert load_checkpoint(tmp_path / "m.bin").tokenizer_path == tmp_path / "a.model"  # the single *.model
    (tmp_path / "b.model").symlink_to(stories_dir / "tok512.model")
    assert load_checkpoint(tmp_path / "m.bin").tokenizer_path is None  # ambiguous
    (tmp_path / "tokenizer.model").symlink_to(stories_dir / "tok512.model")
    assert load_checkpoint(tmp_path / "m.bin").tokenizer_path == tmp_path / "tokenizer.model"
    ck = load_checkpoint(tmp_path / "m.bin", tokenizer=tmp_path / "b.model")
    assert ck.tokenizer_path == tmp_path / "b.model"


def test_folder_and_weights_dir(tmp_path, monkeypatch, stories_dir, bin_ck):
    # a folder holding one llama2.c checkpoint (tok512.bin beside it is not one), and weights/<name>
    ck = load_checkpoint(stories_dir)
    assert ck.source == "llama2c" and ck.tokenizer_path.name == "tok512.model"
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "s260").symlink_to(stories_dir)
    monkeypatch.chdir(tmp_path)
    assert load_checkpoint("s260").config == bin_ck.config


# ---- q/k permutation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_heads, hd, cols", [(8, 8, 64), (3, 10, 7), (1, 2, 5)])
def test_permute_roundtrip_and_direction(n_heads, hd, cols):
    w = np.random.default_rng(n_heads).standard_normal((n_heads * hd, cols))
    p = permute_rows(w, n_heads)
    np.testing.assert_array_equal(unpermute_rows(p, n_heads), w)
    assert not np.array_equal(p, w) or hd == 2
    # HF layout: within head h, row j*(hd/2) + i holds interleaved row 2i + j (j=0 real, j=1 imaginary)
    for h in range(n_heads):
        for i in range(hd // 2):
            for j in range(2):
                np.testing.assert_array_equal(p[h * hd + j * hd // 2 + i], w[h * hd + 2 * i + j])


# ---- Hugging Face conversions --------------------------------------------------------------------------------
CONVERSIONS = [  # (storage dtype, shards, tie)
    ("float32", 1, None), ("float32", 3, None), ("float32", 1, False), ("float32", 4, False),
    ("float16", 1, None), ("float16", 2, False), ("bfloat16", 1, None), ("bfloat16", 3, False),
]


@pytest.mark.parametrize("dtype, shards, tie", CONVERSIONS)
def test_hf_conversion_loads_same_weights(tmp_path, bin_path, bin_ck, dtype, shards, tie):
    out = convert_llama2c_to_hf(bin_path, tmp_path / "hf", dtype=dtype, shards=shards, tie=tie)
    files = sorted(p.name for p in out.iterdir())
    if shards == 1:
        assert "model.safetensors" in files
    else:
        assert f"model-{shards:05d}-of-{shards:05d}.safetensors" in files
        assert "model.safetensors.index.json" in files
    assert (out / "tokenizer.model").is_file()
    cfg_json = json.loads((out / "config.json").read_text())
    assert cfg_json["torch_dtype"] == dtype and cfg_json["num_key_value_heads"] == 4
    ck = load_checkpoint(out)
    assert ck.source == "hf" and ck.tokenizer_path == out / "tokenizer.model"
    assert ck.config == bin_ck.config.with_(dtype=dtype, tie_embeddings=tie is not False)
    assert (ck.weights.output is ck.weights.tok_embeddings) == (tie is not False)

    if dtype == "float32":
        cmp = _exact
    elif dtype == "float16":
        def cmp(k, x, y):
            np.testing.assert_array_equal(x, y.astype(np.float16).astype(np.float32), err_msg=k)
    else:
        def cmp(k, x, y):
            assert not (x.view(np.uint32) & 0xFFFF).any(), k  # every value is a bfloat16
            np.testing.assert_allclose(x, y, rtol=2 ** -8, atol=0, err_msg=k)
    _assert_weights(ck.weights, bin_ck.weights, cmp)


def test_hf_load_as_float16(tmp_path, bin_path, bin_ck):
    out = convert_llama2c_to_hf(bin_path, tmp_path / "hf", dtype="bfloat16", shards=2)
    w = load_checkpoint(out / "model-00001-of-00002.safetensors", dtype="float16").weights  # a file: its folder
    ref = load_checkpoint(out, dtype="float32").weights
    for k, a in _arrays(w).items():
        assert a.dtype == (np.float32 if "norm" in k else np.float16), k
        np.testing.assert_array_equal(a, _arrays(ref)[k].astype(a.dtype), err_msg=k)


def test_bf16_helpers():
    x = np.array([1.0, -2.5, 3.14159, 1e-30, 65504.0, np.inf, -0.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8],
                 np.float32)
    b = bf16_to_f32(f32_to_bf16(x))
    assert not (b.view(np.uint32) & 0xFFFF).any()
    np.testing.assert_allclose(b[np.isfinite(x)], x[np.isfinite(x)], rtol=2 ** -8)
    assert b[5] == np.inf and np.signbit(b[6])
    assert b[7] == 1.0 and b[8] == 1 + 4 * 2 ** -8  # ties round to even
    assert np.isnan(bf16_to_f32(f32_to_bf16(np.array([np.nan], np.float32))))[0]


def test_safetensors_interop_with_library(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(5)
    ts = {"a": rng.standard_normal((3, 5)).astype(np.float32), "b": rng.standard_normal(7).astype(np.float16)}
    st.save_file(ts, str(tmp_path / "lib.safetensors"))
    f = SafetensorsFile(tmp_path / "lib.safetensors")
    for k, v in ts.items():
        np.testing.assert_array_equal(f.raw(k), v)
    from cugraphllm.safetensors_io import write_safetensors
    write_safetensors(tmp_path / "ours.safetensors", {"a": ts["a"]}, "float16", metadata={"format": "pt"})
    back = st.load_file(str(tmp_path / "ours.safetensors"))
    np.testing.assert_array_equal(back["a"], ts["a"].astype(np.float16))


def _greedy(cfg, w, prompt, n):
    ref = pytest.importorskip("cugraphllm.reference")
    kv = ref.new_kv_cache(cfg, len(prompt) + n)
    logits, out = ref.forward(cfg, w, prompt, 0, kv)[-1], []
    for _ in range(n):
        out.append(int(np.argmax(logits)))
        logits = ref.forward(cfg, w, out[-1:], len(prompt) + len(out) - 1, kv)[-1]
    return out


def test_both_formats_give_golden_tokens(tmp_path, stories_dir, bin_path, bin_ck):
    golden = stories_golden()
    prompt, want = golden["prompt_ids"], golden["generated_ids"]
    assert _greedy(bin_ck.config, bin_ck.weights, prompt, len(want)) == want
    for shards, tie in ((1, None), (3, False)):
        out = convert_llama2c_to_hf(bin_path, tmp_path / f"hf{shards}", shards=shards, tie=tie)
        ck = load_checkpoint(out)
        assert _greedy(ck.config, ck.weights, prompt, len(want)) == want


def test_unpermute_is_needed(tmp_path, bin_path, bin_ck, stories_dir):
    """A folder whose q/k were NOT permuted loads with scrambled RoPE and other tokens: the test can fail."""
    golden = stories_golden()
    import cugraphllm.convert as conv
    orig = conv.permute_rows
    try:
        conv.permute_rows = lambda w, n: w
        out = convert_llama2c_to_hf(bin_path, tmp_path / "hf")
    finally:
        conv.permute_rows = orig
    ck = load_checkpoint(out)
    assert _greedy(ck.config, ck.weights, golden["prompt_ids"], 20) != golden["generated_ids"][:20]


# ---- memory: the mmap is not copied ----------------------------------------------------------------------------
def _mapped(a) -> bool:
    import mmap
    while a is not None and not isinstance(a, mmap.mmap):
        a = getattr(a, "base", None) if not isinstance(a, memoryview) else a.obj
    return a is not None


def test_load_maps_instead_of_copying(tmp_path):
    cfg = ModelConfig(dim=256, n_layers=4, n_heads=8, n_kv_heads=2, vocab_size=3000, hidden_dim=688)
    out = write_hf(tmp_path / "hf", cfg, dummy_weights(cfg, seed=1, dtype="float32"), dtype="float32")
    tracemalloc.start()
    try:
        w = load_checkpoint(out).weights
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    fused = sum(lw.wqkv.nbytes + lw.w13.nbytes for lw in w.layers)
    assert peak < fused + (1 << 20), (peak, fused)  # only the fused matrices are new memory
    assert peak > fused * 0.9  # tracemalloc does see NumPy's buffers, so the bound above means something
    for k, a in _arrays(w).items():
        fused_k = k.startswith(("wqkv", "w13"))
        assert _mapped(a) != fused_k, k  # everything else is a read-only view of the file's mmap
        assert a.flags.writeable == fused_k, k
    assert w.nbytes() > 4 * fused / 3


def test_progress_on_stderr(tmp_path, bin_path, capsys):
    load_checkpoint(bin_path, progress=True)
    err = capsys.readouterr().err
    assert "layer 1/5" in err and "layer 5/5" in err
    load_checkpoint(bin_path)  # 1 MB: quiet by default
    assert capsys.readouterr().err == ""


# ---- dummy weights ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", ["tiny", ModelConfig(dim=96, n_layers=3, n_heads=6, n_kv_heads=2,
                                                        vocab_size=101, hidden_dim=250)])
def test_dummy_shapes_and_values(config):
    ck = dummy_checkpoint(config, seed=7)
    assert isinstance(ck, Checkpoint) and ck.source == "dummy" and ck.tokenizer_path is None
    cfg, w = ck.config, ck.weights
    assert w.tok_embeddings.shape == expected_shape(cfg, "tok_embeddings") and len(w.layers) == cfg.n_layers
    for lw in w.layers:
        assert lw.wqkv.shape == (cfg.qkv_dim, cfg.dim) and lw.w13.shape == (2 * cfg.hidden_dim, cfg.dim)
        assert lw.wo.shape == (cfg.dim, cfg.dim) and lw.w2.shape == (cfg.dim, cfg.hidden_dim)
        assert lw.wqkv.dtype == np.float16 and lw.attention_norm.dtype == np.float32
        np.testing.assert_array_equal(lw.ffn_norm, 1.0)
    allw = np.concatenate([lw.w13.ravel() for lw in w.layers]).astype(np.float64)
    assert abs(allw.std() - 0.02) < 0.002 and abs(allw.mean()) < 0.002
    assert (w.output is w.tok_embeddings) == cfg.tie_embeddings
    assert len({lw.wqkv[0, :8].tobytes() for lw in w.layers}) == cfg.n_layers  # layers differ


def test_dummy_seeded():
    a, b, c = (dummy_checkpoint("tiny", seed=s).weights for s in (1, 1, 2))
    _assert_weights(a, b, _exact)
    assert not np.array_equal(a.layers[0].wqkv, c.layers[0].wqkv)
    assert dummy_checkpoint("tiny", dtype="float32").weights.layers[1].w2.dtype == np.float32
    d = load_checkpoint("dummy:tiny", dtype="float16")
    assert d.source == "dummy" and d.config == ModelConfig.from_preset("tiny")
    _assert_weights(d.weights, dummy_checkpoint("tiny", seed=0).weights, _exact)


def test_parse_model_arg(tmp_path):
    assert parse_model_arg("dummy:llama-2-7b") == ("dummy", "llama-2-7b")
    assert parse_model_arg(str(tmp_path)) == ("path", tmp_path)
    assert parse_model_arg(tmp_path / "x.bin") == ("path", tmp_path / "x.bin")
    from cugraphllm.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown preset"):
        parse_model_arg("dummy:gpt-5")
