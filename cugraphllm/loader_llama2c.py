"""llama2.c legacy ("version 0") fp32 checkpoints: a 28-byte header of seven int32
(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then float32 tensors grouped by
tensor (all layers of wq, then all of wk, ...), the two unused RoPE tables, and, when vocab_size < 0, a
separate classifier. Layout described in ../shared/models/README.md section 3.

q/k rows are already in the interleaved-pair RoPE order we use internally: no permutation.
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import CheckpointError, ConfigError
from .loader_common import Progress, Tensor, build_weights
from .safetensors_io import release_pages

HEADER = struct.Struct("<7i")
_MAGIC_V1 = 0x616B3432  # "ak42": newer llama2.c exports (v1 fp32, v2 int8), a different layout


def read_header(path: Path) -> tuple[ModelConfig, int]:
    """(config, file size) after checking that the size matches the header."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER.size)
            size = f.seek(0, 2)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(head) < HEADER.size:
        raise CheckpointError(f"{path}: {size} bytes is too short for a llama2.c checkpoint header")
    header = HEADER.unpack(head)
    if header[0] == _MAGIC_V1:
        raise CheckpointError(f"{path}: llama2.c export version {header[1]} is not supported; export with "
                              "the legacy version 0 (fp32) format")
    try:
        cfg = ModelConfig.from_llama2c_header(header, source=str(path))
    except ConfigError as e:
        raise CheckpointError(f"{path}: header {list(header)} is not a llama2.c config ({e})") from None
    want = HEADER.size + 4 * sum(int(np.prod(s)) for _, s in _layout(cfg))
    if size != want:
        raise CheckpointError(f"{path}: file size {size} does not match its header {list(header)}, which "
                              f"implies {want} bytes (truncated or not a llama2.c checkpoint)")
    return cfg, size


def looks_like_llama2c(path: Path) -> bool:
    try:
        read_header(path)
        return True
    except CheckpointError:
        return False


def _layout(cfg: ModelConfig) -> list[tuple[str, tuple]]:
    """Stored tensors in file order, with their shapes ([L, ...] for per-layer tensors)."""
    D, F, L, V, KV, S = cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.vocab_size, cfg.kv_dim, cfg.max_seq_len
    items = [("tok_embeddings", (V, D)), ("attention_norm", (L, D)), ("wq", (L, D, D)), ("wk", (L, KV, D)),
             ("wv", (L, KV, D)), ("wo", (L, D, D)), ("ffn_norm", (L, D)), ("w1", (L, F, D)),
             ("w2", (L, D, F)), ("w3", (L, F, D)), ("norm", (D,)),
             ("freq_cis", (2, S, cfg.head_dim // 2))]  # legacy RoPE tables: skipped
    if not cfg.tie_embeddings:
        items.append(("output", (V, D)))
    return items


def load_llama2c(path: Path, dtype: str, progress: bool | None, lazy: bool = False,
                 quant=None) -> tuple[ModelConfig, object]:
    cfg, size = read_header(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    flat = np.frombuffer(mm, dtype="<f4", offset=HEADER.size)  # read-only view, no copy
    tensors, off = {}, 0
    for name, shape in _layout(cfg):
        n = int(np.prod(shape))
        tensors[name] = flat[off:off + n].reshape(shape)
        off += n

    def get(name: str, layer: int | None) -> Tensor:
        arr = tensors[name] if layer is None else tensors[name][layer]
        suffix = "" if layer is None else f"[{layer}]"
        return Tensor(arr, f"{path}: tensor '{name}{suffix}'", release=lambda view: release_pages(mm, view))

    show = progress if progress is not None else size > (1 << 30)
    weights = build_weights(cfg, get, dtype, Progress(show, str(path), cfg.n_layers), permuted=False, lazy=lazy,
                            quant=quant)
    return cfg, weights
