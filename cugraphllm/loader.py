"""Checkpoints -> (ModelConfig, Weights, tokenizer path): Hugging Face folders, llama2.c .bin, dummy.

Internal convention for every format (see weights.py): matrices [out, in], fused wqkv = wq|wk|wv and
w13 = w1|w3, RoPE as interleaved pairs (Meta / llama2.c). Hugging Face checkpoints store q/k rows
permuted for rotate-half; loader_hf un-permutes them at load. llama2.c files are already interleaved.

Matrices come back in `dtype` (float32 or float16 NumPy storage); norms are always float32. Sources are
memory-mapped and copied layer by layer into the fused arrays, so a checkpoint is never held twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import PRESETS, ModelConfig
from .errors import CheckpointError, ConfigError, TokenizerError
from .loader_hf import is_hf_dir, load_hf
from .loader_llama2c import load_llama2c, looks_like_llama2c, read_header
from .tokenizer import find_tokenizer_in
from .weights import LayerWeights, Weights

DTYPES = ("float32", "float16")
WEIGHTS_DIR = Path("weights")  # default home of checkpoints, relative to the working directory


@dataclass
class Checkpoint:
    config: ModelConfig
    weights: Weights  # numpy arrays
    tokenizer_path: Path | None
    source: str  # "hf" | "llama2c" | "dummy"

    def __iter__(self):
        """`config, weights, tokenizer_path = load_checkpoint(...)` (DESIGN.md's tuple form)."""
        return iter((self.config, self.weights, self.tokenizer_path))


def parse_model_arg(s: str | Path) -> tuple[str, object]:
    """"dummy:<preset>" -> ("dummy", preset); anything else -> ("path", Path)."""
    if isinstance(s, str) and s.startswith("dummy:"):
        name = s[len("dummy:"):]
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r} in {s!r}; known: {', '.join(sorted(PRESETS))}")
        return "dummy", name
    return "path", Path(s).expanduser()


def _resolve(path: Path) -> Path:
    if path.exists():
        return path
    alt = WEIGHTS_DIR / path
    if not path.is_absolute() and alt.exists():
        return alt
    raise CheckpointError(f"{path}: no such file or folder" +
                          ("" if path.is_absolute() else f" (nor {alt})"))


def _find_tokenizer(tokenizer, near: Path) -> Path | None:
    """The `tokenizer` argument (a file, or a folder holding tokenizer.model or a single *.model), else the
    same search beside the checkpoint; None when there is none."""
    if tokenizer is not None:
        p = Path(tokenizer).expanduser()
        found = find_tokenizer_in(p) if p.is_dir() else p
        if found is None or not found.is_file():
            raise TokenizerError(f"{p}: tokenizer file not found" +
                                 (" (the folder holds no tokenizer.model nor a single *.model)" if p.is_dir() else ""))
        return found
    return find_tokenizer_in(near)


def _locate(path) -> tuple[str, Path]:
    """("hf", folder) or ("llama2c", .bin file) for a checkpoint argument (a file or a folder)."""
    path = _resolve(path)
    if path.is_file() and path.suffix in (".safetensors", ".json"):
        if not is_hf_dir(path.parent):
            raise CheckpointError(f"{path}: no config.json beside it (a Hugging Face folder needs one)")
        path = path.parent  # a file inside a Hugging Face folder: load the folder
    if is_hf_dir(path):
        return "hf", path
    if path.is_dir():
        bins = [p for p in sorted(path.glob("*.bin")) if looks_like_llama2c(p)]
        if len(bins) != 1:
            what = "no config.json and no" if not bins else f"{len(bins)} llama2.c files and no"
            raise CheckpointError(f"{path}: {what} llama2.c .bin checkpoint (folder without weights)")
        path = bins[0]
    return "llama2c", path


def checkpoint_config(path) -> ModelConfig:
    """The ModelConfig of a checkpoint (config.json or the llama2.c header) without reading its weights, so that
    memory can be checked before loading."""
    kind, arg = parse_model_arg(path)
    if kind == "dummy":
        return ModelConfig.from_preset(arg)
    kind, path = _locate(arg)
    return ModelConfig.from_hf_json(path / "config.json") if kind == "hf" else read_header(path)[0]


def load_checkpoint(path, tokenizer=None, dtype: str = "float32", progress: bool | None = None,
                    lazy: bool = False, quant=None) -> Checkpoint:
    """Load a Hugging Face folder or a llama2.c .bin (a file, or a folder holding one).

    progress: True/False, or None = only for checkpoints above 1 GB (lines on stderr).
    lazy: matrices are loader_common.LazyMatrix objects, read from the memory map chunk by chunk when consumed
    (the GPU upload streams them; host RAM stays bounded by a chunk). dummy: ignored (arrays).
    quant: a quant.QuantSpec to quantize at load on the host (layer by layer; the NumPy backend -- the cuda backend
    quantizes on the GPU at upload instead); GPTQ / AWQ / our quantized folders load quantized without it (passing
    it for them is an error).
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    kind, arg = parse_model_arg(path)
    if kind == "dummy":
        ck = dummy_checkpoint(arg, dtype=dtype)
        if quant is not None:
            from .quant.layers import check_spec, quantize_weights
            check_spec(ck.config, quant, str(path))
            ck.weights = quantize_weights(ck.weights, quant)
        return ck
    kind, path = _locate(arg)
    if kind == "hf":
        cfg, weights = load_hf(path, dtype, progress, lazy, quant)
        return Checkpoint(cfg, weights, _find_tokenizer(tokenizer, path), "hf")
    cfg, weights = load_llama2c(path, dtype, progress, lazy, quant)
    return Checkpoint(cfg, weights, _find_tokenizer(tokenizer, path.parent), "llama2c")


# ---- dummy weights (vLLM --load-format dummy) -------------------------------------------------------
_POOL = 1 << 22   # seeded N(0, SCALE^2) values shared by every matrix (see _fill)
_PIECE = 1 << 18  # elements copied per random offset
_SCALE = 0.02     # std of the matrices: logits and activations stay O(1) for 7B..70B shapes


def _fill(out: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill out with pieces of the pool taken at seeded random offsets: memcpy speed (a 7B model in
    seconds) instead of RNG speed (minutes), and no temporaries."""
    flat = out.reshape(-1)
    offsets = rng.integers(0, pool.size - _PIECE, size=-(-flat.size // _PIECE))
    for k, off in enumerate(offsets):
        piece = flat[k * _PIECE:(k + 1) * _PIECE]
        piece[:] = pool[off:off + piece.size]
    return out


def dummy_weights(cfg: ModelConfig, seed: int = 0, dtype: str = "float16") -> Weights:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    pool = np.random.default_rng(seed).standard_normal(_POOL, dtype=np.float32)
    pool = (pool * _SCALE).astype(dtype)
    rng = np.random.default_rng([seed, 1])
    D, F, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size

    def mat(rows, cols):
        return _fill(np.empty((rows, cols), dtype), pool, rng)

    ones = np.ones(D, np.float32)
    tok = mat(V, D)
    layers = [LayerWeights(attention_norm=ones.copy(), wqkv=mat(cfg.qkv_dim, D), wo=mat(D, D),
                           ffn_norm=ones.copy(), w13=mat(2 * F, D), w2=mat(D, F))
              for _ in range(cfg.n_layers)]
    return Weights(tok_embeddings=tok, layers=layers, norm=ones.copy(),
                   output=tok if cfg.tie_embeddings else mat(V, D))


def dummy_checkpoint(config_or_preset_name, seed: int = 0, dtype: str = "float16") -> Checkpoint:
    cfg = (config_or_preset_name if isinstance(config_or_preset_name, ModelConfig)
           else ModelConfig.from_preset(config_or_preset_name))
    return Checkpoint(cfg, dummy_weights(cfg, seed, dtype), None, "dummy")
