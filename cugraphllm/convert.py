"""Write a llama2.c .bin checkpoint as a Hugging Face LLaMA folder (config.json + safetensors).

The writer mirrors Hugging Face's own conversion: q/k rows are permuted from interleaved pairs to the
rotate-half order, `w.view(H, Dh/2, 2, D).transpose(1, 2).reshape(H*Dh, D)` (H = n_kv_heads for k),
so the folder loads in transformers and, through loader_hf's inverse, back into identical Weights.
Used by scripts/convert_llama2c_to_hf.py and by the tests (single file, shards, fp16/bf16, tied or not).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .loader import load_checkpoint
from .loader_hf import INDEX, SINGLE, hf_name
from .safetensors_io import NUMPY_TO_ST, write_safetensors
from .weights import Weights


def permute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Interleaved-pair row order -> HF rotate-half order, for one q or k matrix [n_heads*Dh, D]."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_config(cfg: ModelConfig, dtype: str) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": cfg.dim, "intermediate_size": cfg.hidden_dim,
        "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "num_hidden_layers": cfg.n_layers, "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta, "rope_scaling": None, "tie_word_embeddings": cfg.tie_embeddings,
        "torch_dtype": dtype, "bos_token_id": 1, "eos_token_id": 2,
        "attention_bias": False, "mlp_bias": False, "initializer_range": 0.02,
    }


def hf_tensors(cfg: ModelConfig, w: Weights) -> dict[str, np.ndarray]:
    """HF name -> array (q/k permuted), in HF's order: embeddings, layers, norm, lm_head."""
    D, KV, F = cfg.dim, cfg.kv_dim, cfg.hidden_dim
    out = {hf_name("tok_embeddings", None): w.tok_embeddings}
    for i, lw in enumerate(w.layers):
        parts = {"attention_norm": lw.attention_norm,
                 "wq": permute_rows(lw.wqkv[:D], cfg.n_heads),
                 "wk": permute_rows(lw.wqkv[D:D + KV], cfg.n_kv_heads),
                 "wv": lw.wqkv[D + KV:], "wo": lw.wo, "ffn_norm": lw.ffn_norm,
                 "w1": lw.w13[:F], "w2": lw.w2, "w3": lw.w13[F:]}
        out.update({hf_name(k, i): v for k, v in parts.items()})
    out[hf_name("norm", None)] = w.norm
    if not cfg.tie_embeddings:
        out[hf_name("output", None)] = w.output
    return out


def _split(names: list[str], shards: int) -> list[list[str]]:
    """Contiguous groups of names, one per shard (the last shards may hold fewer)."""
    per = -(-len(names) // shards)
    return [names[k * per:(k + 1) * per] for k in range(shards)]


def write_hf(out_dir, cfg: ModelConfig, weights: Weights, dtype: str = "float32", shards: int = 1,
             tokenizer=None) -> Path:
    """Write config.json, model.safetensors (shards == 1) or shards + index, and tokenizer.model."""
    if dtype not in NUMPY_TO_ST:
        raise ValueError(f"dtype must be one of {list(NUMPY_TO_ST)}, got {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(hf_config(cfg, dtype), indent=2) + "\n")
    tensors = hf_tensors(cfg, weights)
    if shards <= 1:
        write_safetensors(out / SINGLE, tensors, dtype, metadata={"format": "pt"})
    else:
        weight_map, total = {}, 0
        for k, group in enumerate(_split(list(tensors), shards)):
            fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            total += write_safetensors(out / fname, {n: tensors[n] for n in group}, dtype,
                                       metadata={"format": "pt"})
            weight_map.update({n: fname for n in group})
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    if tokenizer is not None:
        shutil.copyfile(tokenizer, out / "tokenizer.model")
    return out


def convert_llama2c_to_hf(bin_path, out_dir, dtype: str = "float32", shards: int = 1,
                          tie: bool | None = None, tokenizer=None) -> Path:
    """llama2.c .bin -> HF folder. tie=False writes a separate lm_head even for a tied model; the
    tokenizer (argument, or the one found beside the .bin) is copied as tokenizer.model."""
    ck = load_checkpoint(bin_path, tokenizer=tokenizer, dtype="float32")
    cfg = ck.config if tie is None else ck.config.with_(tie_embeddings=tie)
    if not cfg.tie_embeddings and ck.weights.output is ck.weights.tok_embeddings:
        ck.weights.output = np.array(ck.weights.tok_embeddings)  # a real, separate lm_head tensor
    return write_hf(out_dir, cfg, ck.weights, dtype=dtype, shards=shards, tokenizer=ck.tokenizer_path)


__all__ = ["permute_rows", "hf_config", "hf_tensors", "write_hf", "convert_llama2c_to_hf"]
