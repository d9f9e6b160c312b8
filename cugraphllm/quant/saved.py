"""Our quantized folder (`python -m cugraphllm quantize`): config.json + model.safetensors in OUR internal layout.

Tensors carry the internal names and conventions (weights.py: fused wqkv / w13, interleaved RoPE rows, folded
norms): a 16-bit matrix is `layers.{i}.{field}`, a quantized one `layers.{i}.{field}.{part}` with part in qweight,
scales, zeros, perm, gain (formats.py layouts; the format follows from qweight's dtype: U8 fp8, I8 int8, U32
int4, and the int4 group from the scales' width). Globals: tok_embeddings, norm, output (absent when tied).
config.json is a Hugging Face LLaMA config plus quantization_config {quant_method "cugraphllm", format,
group_size, quant_head, version 1}; the folder loads with no requantization.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import CheckpointError
from ..loader_common import Progress, Tensor, fuse
from ..safetensors_io import write_safetensors_typed
from ..weights import LayerWeights, Weights
from .formats import FORMATS, QuantLinear
from .layers import check_quant

VERSION = 1
PARTS = ("qweight", "scales", "zeros", "perm", "gain")
_FMT_OF = {np.dtype(np.uint8): "fp8", np.dtype(np.int8): "int8", np.dtype(np.uint32): "int4"}
FIELDS = ("attention_norm", "wqkv", "wo", "ffn_norm", "w13", "w2")


def parse_config(qc: dict, source: str) -> dict:
    if qc.get("version") != VERSION or qc.get("format") not in FORMATS:
        raise CheckpointError(f"{source}: cugraphllm quantization_config version {qc.get('version')!r} / format "
                              f"{qc.get('format')!r}; supported: version {VERSION}, format {', '.join(FORMATS)}")
    return {"method": "cugraphllm", "format": qc["format"], "group_size": qc.get("group_size"),
            "quant_head": bool(qc.get("quant_head", False))}


def _entries(name: str, a) -> dict:
    if isinstance(a, QuantLinear):
        return {f"{name}.{p}": getattr(a, p) for p in PARTS if getattr(a, p) is not None}
    return {name: a}


def save_quantized(out_dir, cfg: ModelConfig, w: Weights, fmt: str, group_size: int, quant_head: bool,
                   tokenizer=None, plain_dtype: str = "float16", progress: bool = True) -> Path:
    """Write a loaded (quantized) Weights as our folder; 16-bit arrays in plain_dtype, norms float32."""
    from ..convert import hf_config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tied = w.output is w.tok_embeddings
    conf = hf_config(cfg.with_(tie_embeddings=tied), plain_dtype)
    conf["quantization_config"] = {"quant_method": "cugraphllm", "version": VERSION, "format": fmt,
                                   "group_size": group_size, "quant_head": quant_head}

    def cast(a):
        if isinstance(a, QuantLinear):
            return a
        return np.asarray(a, np.float32 if a.ndim == 1 else plain_dtype)
    tensors = {"tok_embeddings": cast(w.tok_embeddings), "norm": cast(w.norm)}
    for i, lw in enumerate(w.layers):
        for f in FIELDS:
            tensors.update(_entries(f"layers.{i}.{f}", cast(getattr(lw, f))))
    if not tied:
        tensors.update(_entries("output", cast(w.output)))
    if progress:
        print(f"writing {out / 'model.safetensors'} ({sum(a.nbytes for a in tensors.values()) / 1e9:.2f} GB)",
              file=sys.stderr, flush=True)
    write_safetensors_typed(out / "model.safetensors", tensors, metadata={"format": "cugraphllm"})
    (out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    if tokenizer is not None:
        shutil.copyfile(tokenizer, out / "tokenizer.model")
    return out


def _expected(cfg: ModelConfig, field: str) -> tuple:
    D, F, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    return {"wqkv": (cfg.qkv_dim, D), "wo": (D, D), "w13": (2 * F, D), "w2": (D, F), "output": (V, D),
            "tok_embeddings": (V, D), "norm": (D,), "attention_norm": (D,), "ffn_norm": (D,)}[field]


def load_saved(folder: Path, cfg: ModelConfig, located: dict, qc: dict, dtype: str, show: bool) -> Weights:
    from .checkpoint import Tensors
    ts = Tensors(located, qc["source"])
    expected = {"tok_embeddings", "norm", "output"} | {f"layers.{i}.{f}" for i in range(cfg.n_layers)
                                                       for f in FIELDS}
    for name in sorted(located):
        if name not in expected and name.rsplit(".", 1)[0] not in expected | {"output"}:
            raise CheckpointError(f"{located[name].path}: unexpected tensor {name!r} (config: {cfg.n_layers} "
                                  "layers, cugraphllm layout)")

    def get(name: str, field: str):
        shape = _expected(cfg, field)
        if ts.has(name + ".qweight"):
            arrs = {p: ts(f"{name}.{p}")[0] for p in PARTS if ts.has(f"{name}.{p}")}
            fmt = _FMT_OF.get(np.dtype(arrs["qweight"].dtype))
            if fmt is None:
                raise CheckpointError(f"{ts.where(name + '.qweight')}: dtype {arrs['qweight'].dtype}; supported: "
                                      "uint8 (fp8), int8, uint32 (int4)")
            sc = arrs.get("scales", np.zeros(0))
            g = shape[1] // sc.shape[1] if fmt == "int4" and sc.ndim == 2 and sc.shape[1] else 0
            ql = QuantLinear(fmt, arrs["qweight"], sc, shape, arrs.get("zeros"), g, arrs.get("perm"),
                             arrs.get("gain"))
            return check_quant(ql, ts.where(name + ".qweight"))
        raw, where = ts(name)
        t = Tensor(raw, where)
        if tuple(raw.shape) != shape:
            raise CheckpointError(f"{where}: shape {list(raw.shape)} does not match the config, which expects "
                                  f"{list(shape)}")
        return fuse([(t, 0)], np.dtype(np.float32 if len(shape) == 1 else dtype))

    progress = Progress(show, str(folder), cfg.n_layers)
    tok = get("tok_embeddings", "tok_embeddings")
    layers = []
    for i in range(cfg.n_layers):
        progress.layer(i)
        layers.append(LayerWeights(**{f: get(f"layers.{i}.{f}", f) for f in FIELDS}))
    out = get("output", "output") if (ts.has("output") or ts.has("output.qweight")) else tok
    w = Weights(tok_embeddings=tok, layers=layers, norm=get("norm", "norm"), output=out)
    progress.done(w.nbytes())
    return w



def quantize_model(model, out_dir, fmt: str, group_size: int = 128, quant_head: bool = False, tokenizer=None,
                   progress: bool = True) -> Path:
    """`python -m cugraphllm quantize`: load `model` quantizing layer by layer, write our folder to out_dir.
    16-bit tensors are kept float32 for a float32 checkpoint (llama2.c), float16 otherwise."""
    from ..loader import load_checkpoint
    from .layers import QuantSpec
    spec = QuantSpec(fmt, group_size, quant_head)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise CheckpointError(f"{out_dir}: exists and is not a folder")
    ck = load_checkpoint(model, tokenizer=tokenizer, dtype="float32", progress=progress, quant=spec)
    plain = "float32" if ck.config.dtype == "float32" else "float16"
    out = save_quantized(out_dir, ck.config, ck.weights, fmt, group_size, quant_head, ck.tokenizer_path, plain,
                         progress)
    if progress:
        print(f"wrote {out} ({fmt}, group {group_size}, head {'quantized' if quant_head else '16-bit'})",
              file=sys.stderr, flush=True)
    return out
