"""Every bad checkpoint input raises one CheckpointError/ConfigError line naming the file and the tensor."""
import json
import struct

import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.convert import hf_tensors, write_hf
from cugraphllm.errors import CheckpointError, ConfigError, CugraphError, TokenizerError
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.safetensors_io import write_safetensors

# small GQA model with random (never zero) weights; 3 layers so layer indices are checked
CFG = ModelConfig(dim=32, n_layers=3, n_heads=4, n_kv_heads=2, vocab_size=50, hidden_dim=40, max_seq_len=64)


def _raises(path, *words, exc=CugraphError, **kw):
    with pytest.raises(exc) as e:
        load_checkpoint(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for w in words:
        assert str(w) in msg, (w, msg)
    return msg


@pytest.fixture
def hf(tmp_path):
    return write_hf(tmp_path / "hf", CFG, dummy_weights(CFG, seed=2, dtype="float32"))


def _tensors():
    return hf_tensors(CFG, dummy_weights(CFG, seed=2, dtype="float32"))


def _rewrite(hf, change):
    ts = _tensors()
    change(ts)
    write_safetensors(hf / "model.safetensors", ts)


def _raw_file(path, header: dict, data: bytes):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


# ---- paths -----------------------------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    _raises(tmp_path / "nope", tmp_path / "nope", "no such file", exc=CheckpointError)


def test_folder_without_weights(tmp_path):
    _raises(tmp_path, tmp_path, "folder without weights", exc=CheckpointError)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    _raises(tmp_path, tmp_path, "model.safetensors", "pytorch_model.bin", exc=CheckpointError)


def test_safetensors_without_config(hf):
    (hf / "config.json").unlink()
    _raises(hf / "model.safetensors", hf / "model.safetensors", "no config.json", exc=CheckpointError)


def test_bad_arguments(hf):
    _raises(hf, "dtype", exc=ConfigError, dtype="bfloat16")
    _raises(hf, "absent.model", exc=TokenizerError, tokenizer=hf / "absent.model")


# ---- tensors -----------------------------------------------------------------------------------------------------
def test_loads_when_valid(hf):
    ck = load_checkpoint(hf)  # the fixture itself is fine: the failures below are the edits
    assert ck.config == CFG.with_(dtype="float32")


def test_missing_tensor(hf):
    _rewrite(hf, lambda ts: ts.pop("model.layers.2.mlp.up_proj.weight"))
    _raises(hf, hf / "model.safetensors", "missing tensor", "model.layers.2.mlp.up_proj.weight",
            exc=CheckpointError)


def test_unexpected_tensor(hf):
    _rewrite(hf, lambda ts: ts.update({"model.layers.0.self_attn.q_proj.bias": np.ones(32, np.float32)}))
    _raises(hf, hf / "model.safetensors", "unexpected tensor", "q_proj.bias", exc=CheckpointError)


def test_rotary_inv_freq_is_ignored(hf):
    _rewrite(hf, lambda ts: ts.update({"model.layers.1.self_attn.rotary_emb.inv_freq": np.ones(4, np.float32)}))
    assert len(load_checkpoint(hf).weights.layers) == 3


def test_wrong_shape(hf):
    def transpose_wv(ts):
        ts["model.layers.1.self_attn.v_proj.weight"] = ts["model.layers.1.self_attn.v_proj.weight"].T.copy()
    _rewrite(hf, transpose_wv)
    _raises(hf, hf / "model.safetensors", "model.layers.1.self_attn.v_proj.weight", "[32, 16]", "[16, 32]",
            exc=CheckpointError)


def test_unsupported_dtype(hf):
    ts = _tensors()
    header, data, off = {}, b"", 0
    for name, a in ts.items():
        dt, raw = ("F64", a.astype("<f8").tobytes()) if name == "model.norm.weight" else ("F32", a.tobytes())
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        data, off = data + raw, off + len(raw)
    _raw_file(hf / "model.safetensors", header, data)
    _raises(hf, hf / "model.safetensors", "model.norm.weight", "F64", exc=CheckpointError)


# ---- corrupt safetensors -----------------------------------------------------------------------------------------
def test_truncated_safetensors(hf):
    f = hf / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-10])
    _raises(hf, f, "truncated", "lm_head.weight" if not CFG.tie_embeddings else "model.norm.weight",
            exc=CheckpointError)


@pytest.mark.parametrize("content, words", [
    (b"\x05\x00\x00", ["too short"]),
    (struct.pack("<Q", 1 << 40) + b"{}", ["header length"]),
    (struct.pack("<Q", 6) + b"{nope}", ["not valid JSON"]),
    (struct.pack("<Q", 2) + b"[]", ["not a JSON object"]),
])
def test_corrupt_header(hf, content, words):
    (hf / "model.safetensors").write_bytes(content)
    _raises(hf, hf / "model.safetensors", *words, exc=CheckpointError)


@pytest.mark.parametrize("entry, words", [
    ({"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}, ["unknown dtype", "'F17'"]),
    ({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, ["span 8 bytes", "needs 12"]),
    ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, ["malformed"]),
    ({"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}, ["malformed"]),
    ({"dtype": "F32", "shape": [2]}, ["malformed header entry"]),
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, ["truncated"]),
])
def test_corrupt_entry(hf, entry, words):
    _raw_file(hf / "model.safetensors", {"model.norm.weight": entry}, b"\x00" * 8)
    _raises(hf, hf / "model.safetensors", "model.norm.weight", *words, exc=CheckpointError)


# ---- shards and index --------------------------------------------------------------------------------------------
@pytest.fixture
def sharded(tmp_path):
    return write_hf(tmp_path / "sh", CFG, dummy_weights(CFG, seed=2, dtype="float32"), shards=3)


def test_missing_shard(sharded):
    (sharded / "model-00002-of-00003.safetensors").unlink()
    _raises(sharded, "model.safetensors.index.json", "model-00002-of-00003.safetensors", "does not exist",
            exc=CheckpointError)


def test_index_names_absent_tensor(sharded):
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    idx["weight_map"]["model.layers.0.mlp.up_proj.weight"] = "model-00003-of-00003.safetensors"
    (sharded / "model.safetensors.index.json").write_text(json.dumps(idx))
    _raises(sharded, "model-00003-of-00003.safetensors", "model.layers.0.mlp.up_proj.weight", "absent",
            exc=CheckpointError)


def test_index_missing_tensor(sharded):
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    del idx["weight_map"]["model.embed_tokens.weight"]
    (sharded / "model.safetensors.index.json").write_text(json.dumps(idx))
    _raises(sharded, "model.safetensors.index.json", "missing tensor", "model.embed_tokens.weight",
            exc=CheckpointError)


def test_corrupt_index(sharded):
    (sharded / "model.safetensors.index.json").write_text('{"weight_map": [1]')
    _raises(sharded, "model.safetensors.index.json", "not a valid safetensors index", exc=CheckpointError)


# ---- config against weights --------------------------------------------------------------------------------------
def _edit_config(hf, **change):
    cfg = json.loads((hf / "config.json").read_text())
    cfg.update(change)
    (hf / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("change, words", [
    ({"num_hidden_layers": 2}, ["unexpected tensor", "model.layers.2.", "2 layers"]),
    ({"num_hidden_layers": 4}, ["missing tensor", "model.layers.3."]),
    ({"intermediate_size": 48}, ["model.layers.0.mlp.gate_proj.weight", "[40, 32]", "[48, 32]"]),
    ({"num_key_value_heads": 4}, ["model.layers.0.self_attn.k_proj.weight", "[16, 32]", "[32, 32]"]),
    ({"vocab_size": 51}, ["model.embed_tokens.weight", "[50, 32]"]),
])
def test_config_does_not_match_weights(hf, change, words):
    _edit_config(hf, **change)
    _raises(hf, *words, exc=CheckpointError)


def test_bad_config_json(hf):
    (hf / "config.json").write_text("{oops")
    _raises(hf, hf / "config.json", "not valid JSON", exc=CugraphError)
    _edit_config_raw = {"hidden_size": 32}
    (hf / "config.json").write_text(json.dumps(_edit_config_raw))
    _raises(hf, hf / "config.json", "missing key", exc=CugraphError)


# ---- llama2.c ------------------------------------------------------------------------------------------------------
def test_llama2c_size_does_not_match_header(tmp_path, stories_dir):
    data = (stories_dir / "stories260K.bin").read_bytes()
    for name, blob in (("short.bin", data[:-4]), ("long.bin", data + b"\0" * 8), ("tiny.bin", data[:10])):
        (tmp_path / name).write_bytes(blob)
        msg = _raises(tmp_path / name, tmp_path / name, exc=CheckpointError)
        assert ("does not match its header" in msg) or ("too short" in msg), msg


def test_llama2c_bad_headers(tmp_path):
    (tmp_path / "v1.bin").write_bytes(struct.pack("<7i", 0x616B3432, 1, 0, 0, 0, 0, 0) + b"\0" * 256)
    _raises(tmp_path / "v1.bin", tmp_path / "v1.bin", "version 1", exc=CheckpointError)
    (tmp_path / "zero.bin").write_bytes(struct.pack("<7i", 64, 172, 5, 0, 4, 512, 512) + b"\0" * 64)
    _raises(tmp_path / "zero.bin", tmp_path / "zero.bin", "n_heads", exc=CheckpointError)
