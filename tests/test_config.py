"""ModelConfig: Hugging Face config.json dicts, llama2.c headers, presets, and bad configs."""
import json

import pytest

from cugraphllm.config import PRESETS, ModelConfig, RuntimeConfig
from cugraphllm.errors import ConfigError

# Llama-2-70b-hf's config.json (the keys that matter), GQA with 8 KV heads
HF_70B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 8192, "intermediate_size": 28672, "num_attention_heads": 64, "num_hidden_layers": 80,
    "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
    "torch_dtype": "float16",
}


def test_hf_config_70b_gqa_matches_preset():
    cfg = ModelConfig.from_hf_config(HF_70B)
    assert cfg == PRESETS["llama-2-70b"]
    assert (cfg.n_kv_heads, cfg.head_dim, cfg.kv_dim, cfg.n_rep, cfg.qkv_dim) == (8, 128, 1024, 8, 10240)


def test_hf_config_reads_every_key():
    d = dict(HF_70B, hidden_size=96, num_attention_heads=6, num_key_value_heads=2, num_hidden_layers=3,
             intermediate_size=250, vocab_size=77, rms_norm_eps=1e-6, rope_theta=500000.0,
             tie_word_embeddings=True, torch_dtype="bfloat16", max_position_embeddings=333)
    cfg = ModelConfig.from_hf_config(d)
    assert (cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.n_layers, cfg.hidden_dim, cfg.vocab_size) == \
        (96, 6, 2, 3, 250, 77)
    assert (cfg.norm_eps, cfg.rope_theta, cfg.tie_embeddings, cfg.dtype, cfg.max_seq_len) == \
        (1e-6, 500000.0, True, "bfloat16", 333)
    assert (cfg.head_dim, cfg.kv_dim, cfg.n_rep) == (16, 32, 3)


def test_hf_config_defaults_mha_when_kv_heads_absent():
    d = {k: v for k, v in HF_70B.items() if k not in ("num_key_value_heads", "rope_theta", "rms_norm_eps",
                                                      "tie_word_embeddings")}
    cfg = ModelConfig.from_hf_config(d)
    assert cfg.n_kv_heads == cfg.n_heads == 64 and cfg.n_rep == 1
    assert (cfg.rope_theta, cfg.norm_eps, cfg.tie_embeddings) == (10000.0, 1e-5, False)


def test_hf_json_file(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(HF_70B))
    assert ModelConfig.from_hf_json(p) == PRESETS["llama-2-70b"]


@pytest.mark.parametrize("change, words", [
    ({"num_hidden_layers": None}, "n_layers"),
    ({"num_attention_heads": 7}, "divisible"),
    ({"num_key_value_heads": 5}, "divisible"),
    ({"hidden_size": 192}, "head_dim"),  # 192 / 64 heads = 3: odd, no RoPE pairs
    ({"intermediate_size": 0}, "hidden_dim"),
    ({"rms_norm_eps": "abc"}, "invalid"),
    ({"rope_theta": -1.0}, "rope_theta"),
    ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"model_type": "gpt2"}, "model_type"),
    ({"head_dim": 64}, "head_dim"),
])
def test_bad_hf_config(change, words):
    with pytest.raises(ConfigError) as e:
        ModelConfig.from_hf_config(dict(HF_70B, **change), source="weights/x/config.json")
    msg = str(e.value)
    assert msg.startswith("weights/x/config.json: ") and words in msg and "\n" not in msg


def test_hf_config_missing_key():
    d = dict(HF_70B)
    del d["vocab_size"]
    with pytest.raises(ConfigError, match="missing key 'vocab_size'"):
        ModelConfig.from_hf_config(d)


def test_hf_json_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ModelConfig.from_hf_json(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_hf_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_hf_json(tmp_path / "list.json")


def test_llama2c_header_tied_and_separate():
    tied = ModelConfig.from_llama2c_header((64, 172, 5, 8, 4, 512, 512))
    assert (tied.dim, tied.hidden_dim, tied.n_layers, tied.n_heads, tied.n_kv_heads) == (64, 172, 5, 8, 4)
    assert (tied.vocab_size, tied.max_seq_len, tied.tie_embeddings, tied.dtype) == (512, 512, True, "float32")
    assert (tied.head_dim, tied.kv_dim, tied.n_rep) == (8, 32, 2)
    sep = ModelConfig.from_llama2c_header((64, 172, 5, 8, 4, -512, 512))
    assert sep.vocab_size == 512 and not sep.tie_embeddings


@pytest.mark.parametrize("header", [(64, 172, 5, 8, 0, 512, 512), (64, 172, 0, 8, 8, 512, 512),
                                    (64, 172, 5, 6, 6, 512, 512), (0, 172, 5, 8, 4, 512, 512)])
def test_bad_llama2c_header(header):
    with pytest.raises(ConfigError):
        ModelConfig.from_llama2c_header(header)


@pytest.mark.parametrize("name, dims", [
    ("llama-2-7b", (4096, 32, 32, 32, 11008, 128)),
    ("llama-2-13b", (5120, 40, 40, 40, 13824, 128)),
    ("llama-2-70b", (8192, 80, 64, 8, 28672, 128)),
])
def test_presets(name, dims):
    c = ModelConfig.from_preset(name)
    assert (c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.head_dim) == dims
    assert c.vocab_size == 32000 and c.max_seq_len == 4096 and not c.tie_embeddings


def test_preset_parameter_counts():
    # published sizes: 6.74B, 13.0B, 69.0B
    assert abs(PRESETS["llama-2-7b"].n_params() / 6.738e9 - 1) < 1e-3
    assert abs(PRESETS["llama-2-13b"].n_params() / 13.016e9 - 1) < 1e-3
    assert abs(PRESETS["llama-2-70b"].n_params() / 68.977e9 - 1) < 1e-3


def test_small_preset_is_gqa():
    c = ModelConfig.from_preset("tiny")
    assert c.n_rep > 1 and c.n_params() < 5e6


def test_unknown_preset_and_frozen():
    with pytest.raises(ConfigError, match="unknown preset"):
        ModelConfig.from_preset("llama-3-8b")
    with pytest.raises(Exception):
        PRESETS["tiny"].dim = 3


def test_runtime_config_validation():
    assert RuntimeConfig(max_seq_len=100).context(PRESETS["tiny"]) == 100
    assert RuntimeConfig().context(PRESETS["tiny"]) == 1024
    for bad in ({"backend": "tpu"}, {"mode": "fast"}, {"dtype": "float64"}, {"max_seq_len": 0}):
        with pytest.raises(ConfigError):
            RuntimeConfig(**bad)
