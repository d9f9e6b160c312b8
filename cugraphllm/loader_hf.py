"""Hugging Face LLaMA folders: config.json + model.safetensors, or shards + model.safetensors.index.json.

RoPE: Hugging Face's conversion stores each head's q/k rows permuted for rotate-half,
`w_hf = w.view(H, Dh/2, 2, D).transpose(1, 2).reshape(H*Dh, D)`. Our internal convention is
interleaved pairs (Meta, llama2.c), so the loader applies the inverse,
`w = w_hf.view(H, 2, Dh/2, D).transpose(1, 2).reshape(H*Dh, D)`, with H = n_heads for wq and
n_kv_heads for wk. fp32, fp16 and bf16 tensors load; an absent lm_head.weight (or
tie_word_embeddings) means the classifier is the token embedding.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import CheckpointError, ConfigError
from .loader_common import Progress, Tensor, build_weights
from .safetensors_io import SafetensorsFile, bf16_to_f32

# The one checkpoint-name map: Hugging Face name -> internal name ({i} = layer index).
HF_TO_INTERNAL = {
    "model.embed_tokens.weight": "tok_embeddings",
    "model.layers.{i}.input_layernorm.weight": "attention_norm",
    "model.layers.{i}.self_attn.q_proj.weight": "wq",
    "model.layers.{i}.self_attn.k_proj.weight": "wk",
    "model.layers.{i}.self_attn.v_proj.weight": "wv",
    "model.layers.{i}.self_attn.o_proj.weight": "wo",
    "model.layers.{i}.post_attention_layernorm.weight": "ffn_norm",
    "model.layers.{i}.mlp.gate_proj.weight": "w1",
    "model.layers.{i}.mlp.down_proj.weight": "w2",
    "model.layers.{i}.mlp.up_proj.weight": "w3",
    "model.norm.weight": "norm",
    "lm_head.weight": "output",
}
INTERNAL_TO_HF = {v: k for k, v in HF_TO_INTERNAL.items()}
# buffers some exports carry that hold no weights (recomputed at run time)
_IGNORED = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def hf_name(name: str, layer: int | None) -> str:
    return INTERNAL_TO_HF[name].replace("{i}", str(layer))


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _read_index(path: Path) -> dict[str, str]:
    try:
        index = json.loads(path.read_text())
        weight_map = index["weight_map"]
        assert isinstance(weight_map, dict) and all(isinstance(v, str) for v in weight_map.values())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AssertionError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors index ({type(e).__name__}: {e})") from None
    return weight_map


def _locate(folder: Path) -> dict[str, SafetensorsFile]:
    """name -> open file holding it, from the index or the single file."""
    if (folder / INDEX).is_file():
        weight_map, files = _read_index(folder / INDEX), {}
        for name, fname in weight_map.items():
            shard = folder / fname
            if fname not in files:
                if not shard.is_file():
                    raise CheckpointError(f"{folder / INDEX}: tensor {name!r} is in shard {fname}, "
                                          f"which does not exist")
                files[fname] = SafetensorsFile(shard)
            if name not in files[fname].tensors:
                raise CheckpointError(f"{shard}: tensor {name!r} is listed in {INDEX} but absent")
        if not weight_map:
            raise CheckpointError(f"{folder / INDEX}: weight_map lists no tensors")
        return {name: files[fname] for name, fname in weight_map.items()}
    candidates = [folder / SINGLE] if (folder / SINGLE).is_file() else sorted(folder.glob("*.safetensors"))
    if len(candidates) != 1:
        other = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt*")]
        hint = f" ({', '.join(other)} not supported: convert to safetensors)" if other else ""
        what = "no" if not candidates else f"{len(candidates)} .safetensors files but no"
        raise CheckpointError(f"{folder}: {what} {SINGLE} or {INDEX}{hint}")
    f = SafetensorsFile(candidates[0])
    if not f.tensors:
        raise CheckpointError(f"{f.path}: holds no tensors")
    return {name: f for name in f.tensors}


def _check_names(cfg: ModelConfig, located: dict) -> None:
    """Every tensor must be one the config expects (missing ones are reported as they are read)."""
    expected = {hf_name(n, i) for n in ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm",
                                        "w1", "w2", "w3") for i in range(cfg.n_layers)}
    expected |= {hf_name(n, None) for n in ("tok_embeddings", "norm", "output")}
    for name in sorted(located):
        if name not in expected and not _IGNORED.fullmatch(name):
            raise CheckpointError(f"{located[name].path}: unexpected tensor {name!r} (config: "
                                  f"{cfg.n_layers} layers)")


def _tensor(f: SafetensorsFile, name: str) -> Tensor:
    where = f"{f.path}: tensor {name!r}"
    raw = f.raw(name)
    if f.dtype(name) == "BF16":
        return Tensor(raw, where, decode=bf16_to_f32, native=False, release=f.release)
    return Tensor(raw, where, release=f.release)


def load_hf(folder: Path, dtype: str, progress: bool | None, lazy: bool = False,
            quant=None) -> tuple[ModelConfig, object]:
    located = _locate(folder)  # first: "no weights here" is the more useful message for a bare folder
    try:
        cfg = ModelConfig.from_hf_json(folder / "config.json")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    total = sum(f.size for f in {id(f): f for f in located.values()}.values())
    show = progress if progress is not None else total > (1 << 30)
    from .quant.checkpoint import find_quant_config, load_quantized
    qc = find_quant_config(folder)  # GPTQ / AWQ / ours: a quantized folder has its own tensor names
    if qc is not None:
        if quant is not None:
            raise CheckpointError(f"{qc['source']}: the model is already quantized ({qc['method']}); --quant "
                                  "quantizes 16/32-bit checkpoints only: drop --quant")
        return load_quantized(folder, cfg, located, qc, dtype, show)
    if "lm_head.weight" not in located and not cfg.tie_embeddings:
        cfg = cfg.with_(tie_embeddings=True)  # absent classifier: HF would tie it to the embedding
    _check_names(cfg, located)

    label = folder / INDEX if (folder / INDEX).is_file() else next(iter(located.values())).path

    def get(name: str, layer: int | None) -> Tensor:
        key = hf_name(name, layer)
        if key not in located:
            raise CheckpointError(f"{label}: missing tensor {key!r}")
        return _tensor(located[key], key)

    weights = build_weights(cfg, get, dtype, Progress(show, str(folder), cfg.n_layers), permuted=True, lazy=lazy,
                            quant=quant)
    return cfg, weights


def unpermute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF rotate-half row order -> interleaved pairs, for one q or k matrix [n_heads*Dh, D]."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)
