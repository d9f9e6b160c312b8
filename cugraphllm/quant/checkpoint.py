"""Quantized Hugging Face folders: detection from the config, GPTQ / AWQ repack at load, and our own format.

Detection: `quantization_config` in config.json, else quantize_config.json (AutoGPTQ), else quant_config.json
(AutoAWQ); quant_method "gptq", "awq" or "cugraphllm" (ours, written by `python -m cugraphllm quantize`).
A linear stored as `<module>.qweight` is quantized, one stored as `<module>.weight` stays 16-bit (GPTQ and AWQ
leave lm_head, and any module their config excludes, unquantized). q|k|v and gate|up must share one kind.
Norm gains of GPTQ / AWQ checkpoints cannot be folded into int4 weights: the gain feeding a quantized linear goes
into its QuantLinear.gain (packed order) and the norm field holds ones (formats.py, "Norm gains").
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import CheckpointError
from ..loader_common import Progress, Tensor, _check, expected_shape, fuse
from ..loader_hf import HF_TO_INTERNAL, hf_name
from ..safetensors_io import bf16_to_f32
from ..weights import LayerWeights, Weights
from . import awq, gptq
from .repack import fuse_int4

METHODS = ("gptq", "awq", "cugraphllm")
CONFIG_FILES = ("quantize_config.json", "quant_config.json")
_INT4_PARTS = (".qweight", ".qzeros", ".scales", ".g_idx")
_IGNORED = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read the quantization config ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return d


def find_quant_config(folder: Path) -> dict | None:
    """The normalized quantization config of a folder ({method, group_size, ..., source}), or None (16-bit)."""
    qc, source = _read_json(folder / "config.json").get("quantization_config"), f"{folder / 'config.json'}"
    for name in CONFIG_FILES:
        if qc is None and (folder / name).is_file():
            qc, source = _read_json(folder / name), str(folder / name)
    if qc is None:
        return None
    if not isinstance(qc, dict):
        raise CheckpointError(f"{source}: quantization_config must be a JSON object")
    method = qc.get("quant_method") or ("awq" if "w_bit" in qc else "gptq" if "bits" in qc else None)
    method = str(method).lower()
    if method not in METHODS:
        raise CheckpointError(f"{source}: quant_method {method!r} is not supported; supported: {', '.join(METHODS)}")
    if method == "cugraphllm":
        from .saved import parse_config
        out = parse_config(qc, source)
    else:
        out = (gptq if method == "gptq" else awq).parse_config(qc, source)
    return {**out, "source": source}


class Tensors:
    """Named tensors of a folder: t(name) -> (array, where); integer dtypes allowed, bfloat16 widened."""

    def __init__(self, located: dict, label):
        self.located, self.label = located, label

    def has(self, name: str) -> bool:
        return name in self.located

    def where(self, name: str) -> str:
        f = self.located.get(name) or self.located.get(name + ".qweight") or self.located.get(name + ".weight")
        return f"{f.path if f else self.label}: tensor {name!r}"

    def __call__(self, name: str):
        f = self.located.get(name)
        if f is None:
            raise CheckpointError(f"{self.label}: missing tensor {name!r}")
        raw = f.raw(name, ints=True)
        return (bf16_to_f32(raw) if f.dtype(name) == "BF16" else raw), f"{f.path}: tensor {name!r}"

    def tensor(self, name: str) -> Tensor:
        """A float tensor for loader_common.fuse."""
        f = self.located.get(name)
        if f is None:
            raise CheckpointError(f"{self.label}: missing tensor {name!r}")
        raw, where = f.raw(name), f"{f.path}: tensor {name!r}"
        return Tensor(raw, where, bf16_to_f32, native=False) if f.dtype(name) == "BF16" else Tensor(raw, where)


def _module(name: str, layer: int | None) -> str:
    return hf_name(name, layer).removesuffix(".weight")


def _check_names(cfg: ModelConfig, located: dict) -> None:
    allowed = set()
    for key in HF_TO_INTERNAL:
        for i in (range(cfg.n_layers) if "{i}" in key else [0]):
            m = key.replace("{i}", str(i)).removesuffix(".weight")
            allowed |= {m + ".weight"} | {m + s for s in _INT4_PARTS}
    for name in sorted(located):
        if name not in allowed and not _IGNORED.fullmatch(name):
            raise CheckpointError(f"{located[name].path}: unexpected tensor {name!r} (config: {cfg.n_layers} "
                                  "layers; quantized linears hold qweight, qzeros, scales, g_idx)")


def _plain(ts: Tensors, cfg: ModelConfig, name: str, layer, dtype, heads: int = 0) -> np.ndarray:
    t = ts.tensor(hf_name(name, layer))
    _check(cfg, name, t)
    return fuse([(t, heads)], np.dtype(dtype))


def _linear(ts: Tensors, cfg: ModelConfig, qc: dict, dtype, names, layer, heads, gain):
    """(fused matrix, whether it took the gain) for q|k|v, gate|up or one linear: int4 when its modules hold
    qweight (q/k rows un-permuted per head), else 16-bit in dtype."""
    mods = [_module(n, layer) for n in names]
    kinds = [ts.has(m + ".qweight") for m in mods]
    if not any(kinds):
        parts = [(ts.tensor(m + ".weight"), h) for m, h in zip(mods, heads)]
        for n, (t, _) in zip(names, parts):
            _check(cfg, n, t)
        return fuse(parts, np.dtype(dtype)), False
    if not all(kinds):
        raise CheckpointError(f"{ts.where(mods[kinds.index(False)])}: stored 16-bit while "
                              f"{mods[kinds.index(True)]} is quantized; fused linears must share a format")
    reader = gptq.read_linear if qc["method"] == "gptq" else awq.read_linear
    parts = [reader(ts, m, *expected_shape(cfg, n), qc) for m, n in zip(mods, names)]
    parts = [p.unpermute_rows(h) if h else p for p, h in zip(parts, heads)]
    return fuse_int4(parts, "/".join(m.rsplit(".", 1)[-1] for m in mods), gain), gain is not None


def load_int4_hf(folder: Path, cfg: ModelConfig, located: dict, qc: dict, dtype: str, show: bool) -> Weights:
    """Weights of a GPTQ or AWQ folder: int4 linears repacked into our layout, the rest in `dtype`."""
    _check_names(cfg, located)
    ts = Tensors(located, qc["source"])
    progress = Progress(show, str(folder), cfg.n_layers)
    tok = _plain(ts, cfg, "tok_embeddings", None, dtype)
    layers = []
    for i in range(cfg.n_layers):
        progress.layer(i)
        an, fn = _plain(ts, cfg, "attention_norm", i, np.float32), _plain(ts, cfg, "ffn_norm", i, np.float32)
        wqkv, a_in = _linear(ts, cfg, qc, dtype, ("wq", "wk", "wv"), i, (cfg.n_heads, cfg.n_kv_heads, 0), an)
        w13, f_in = _linear(ts, cfg, qc, dtype, ("w1", "w3"), i, (0, 0), fn)
        layers.append(LayerWeights(
            attention_norm=np.ones_like(an) if a_in else an, wqkv=wqkv,
            wo=_linear(ts, cfg, qc, dtype, ("wo",), i, (0,), None)[0],
            ffn_norm=np.ones_like(fn) if f_in else fn, w13=w13,
            w2=_linear(ts, cfg, qc, dtype, ("w2",), i, (0,), None)[0]))
    norm = _plain(ts, cfg, "norm", None, np.float32)
    if ts.has("lm_head.qweight"):
        output, n_in = _linear(ts, cfg, qc, dtype, ("output",), None, (0,), norm)
        norm = np.ones_like(norm) if n_in else norm
    else:
        output = _plain(ts, cfg, "output", None, dtype) if ts.has("lm_head.weight") else tok
    w = Weights(tok_embeddings=tok, layers=layers, norm=norm, output=output)
    progress.done(w.nbytes())
    return w


def load_quantized(folder: Path, cfg: ModelConfig, located: dict, qc: dict, dtype: str,
                   show: bool) -> tuple[ModelConfig, Weights]:
    """(config, Weights) of a quantized folder: GPTQ / AWQ repacked, ours as stored."""
    if qc["method"] == "cugraphllm":
        from .saved import load_saved
        if not any(n in located for n in ("output", "output.qweight")) and not cfg.tie_embeddings:
            cfg = cfg.with_(tie_embeddings=True)
        return cfg, load_saved(folder, cfg, located, qc, dtype, show)
    if not any(n in located for n in ("lm_head.weight", "lm_head.qweight")) and not cfg.tie_embeddings:
        cfg = cfg.with_(tie_embeddings=True)  # absent classifier: tied to the embedding, as for 16-bit folders
    return cfg, load_int4_hf(folder, cfg, located, qc, dtype, show)
