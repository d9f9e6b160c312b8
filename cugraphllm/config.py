"""Model and runtime configuration.

`ModelConfig` is the frozen blueprint of a LLaMA-architecture model (llama2.c `Config`, gpt-fast `ModelArgs`):
sizes only, with derived fields. `RuntimeConfig` holds how we run it (backend, dtype, mode, context).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    hidden_dim: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 4096
    tie_embeddings: bool = False
    dtype: str = "float16"  # storage dtype named by the checkpoint (torch_dtype); informational
    # derived in __post_init__
    head_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    n_rep: int = field(init=False)

    def __post_init__(self):
        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "hidden_dim", "max_seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"config: {name} must be a positive integer, got {v!r}")
        if self.dim % self.n_heads:
            raise ConfigError(f"config: dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"config: n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        head_dim = self.dim // self.n_heads
        if head_dim % 2:
            raise ConfigError(f"config: head_dim {head_dim} must be even for RoPE")
        if not all(isinstance(v, Real) and 0 < v < math.inf for v in (self.norm_eps, self.rope_theta)):
            raise ConfigError(f"config: norm_eps and rope_theta must be positive and finite, got "
                              f"{self.norm_eps!r} and {self.rope_theta!r}")
        object.__setattr__(self, "head_dim", head_dim)
        object.__setattr__(self, "kv_dim", self.n_kv_heads * head_dim)
        object.__setattr__(self, "n_rep", self.n_heads // self.n_kv_heads)

    @property
    def qkv_dim(self) -> int:
        """Rows of the fused wqkv: q (dim) then k (kv_dim) then v (kv_dim)."""
        return self.dim + 2 * self.kv_dim

    def n_params(self) -> int:
        per_layer = self.dim * self.qkv_dim + self.dim * self.dim + 3 * self.dim * self.hidden_dim + 2 * self.dim
        emb = self.vocab_size * self.dim
        return emb * (1 if self.tie_embeddings else 2) + self.n_layers * per_layer + self.dim

    def with_(self, **kw) -> "ModelConfig":
        return replace(self, **kw)

    # ---- constructors -------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str) -> "ModelConfig":
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return PRESETS[name]

    @classmethod
    def from_hf_config(cls, cfg: dict, source: str = "config.json") -> "ModelConfig":
        """From a Hugging Face LlamaForCausalLM config.json dict. Errors name `source`."""
        try:
            return cls._from_hf_config(cfg, source)
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(source) else f"{source}: {msg.removeprefix('config: ')}") \
                from None
        except (TypeError, ValueError, OverflowError) as e:  # "rms_norm_eps": "abc", "hidden_size": null, 1e999
            raise ConfigError(f"{source}: invalid value ({e})") from None

    @classmethod
    def _from_hf_config(cls, cfg: dict, source: str) -> "ModelConfig":
        if cfg.get("model_type", "llama") != "llama" or cfg.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"{source}: model_type {cfg.get('model_type')!r} / hidden_act "
                              f"{cfg.get('hidden_act')!r} is not a LLaMA model (llama / silu)")
        try:
            dim = cfg["hidden_size"]
            n_heads = cfg["num_attention_heads"]
            kw = dict(
                dim=dim,
                n_layers=cfg["num_hidden_layers"],
                n_heads=n_heads,
                n_kv_heads=cfg.get("num_key_value_heads") or n_heads,
                vocab_size=cfg["vocab_size"],
                hidden_dim=cfg["intermediate_size"],
            )
        except KeyError as e:
            raise ConfigError(f"{source}: missing key {e.args[0]!r}") from None
        if "head_dim" in cfg and cfg["head_dim"] not in (None, dim // max(n_heads, 1)):
            raise ConfigError(f"{source}: head_dim {cfg['head_dim']} != hidden_size/num_attention_heads")
        rope_scaling = cfg.get("rope_scaling")
        if rope_scaling:
            raise ConfigError(f"{source}: rope_scaling {rope_scaling!r} is not supported")
        return cls(
            **kw,
            norm_eps=float(cfg.get("rms_norm_eps", 1e-5)),
            rope_theta=float(cfg.get("rope_theta", 10000.0)),
            max_seq_len=int(cfg.get("max_position_embeddings", 4096)),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or "float16"),
        )

    @classmethod
    def from_hf_json(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            cfg = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(cfg, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_hf_config(cfg, source=str(path))

    @classmethod
    def from_llama2c_header(cls, header: tuple, source: str = "checkpoint") -> "ModelConfig":
        """From the seven int32 of a legacy llama2.c .bin header. Negative vocab = separate classifier."""
        dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = header
        return cls(
            dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
            vocab_size=abs(vocab_size), hidden_dim=hidden_dim, max_seq_len=seq_len,
            tie_embeddings=vocab_size > 0, dtype="float32",
        )


PRESETS: dict[str, ModelConfig] = {
    "llama-2-7b": ModelConfig(dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, vocab_size=32000,
                              hidden_dim=11008, max_seq_len=4096),
    "llama-2-13b": ModelConfig(dim=5120, n_layers=40, n_heads=40, n_kv_heads=40, vocab_size=32000,
                               hidden_dim=13824, max_seq_len=4096),
    "llama-2-70b": ModelConfig(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=32000,
                               hidden_dim=28672, max_seq_len=4096),
    # small GQA model for tests and smoke runs: fits anywhere, exercises every code path
    "tiny": ModelConfig(dim=256, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=512, hidden_dim=688,
                        max_seq_len=1024),
}


BACKENDS = ("auto", "numpy", "cuda")
MODES = ("eager", "graph", "hybrid")
# the prefill bucket ladder (gpu/attention.py make_buckets): 1.5x steps between powers of two above 128 rows;
# --prefill-rows picks the largest bucket, the chunk that a longer prompt is prefilled in
PREFILL_ROWS_SIZES = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
PREFILL_ROWS_DEFAULT = 512


def check_prefill_rows(n) -> int:
    """n if it is one of PREFILL_ROWS_SIZES (every power of two from 16 to 4096, and the 1.5x steps), else a
    one-line ConfigError."""
    if isinstance(n, bool) or not isinstance(n, int) or n not in PREFILL_ROWS_SIZES:
        raise ConfigError(f"prefill_rows must be one of {', '.join(map(str, PREFILL_ROWS_SIZES))}, got {n!r}")
    return n


@dataclass(frozen=True)
class RuntimeConfig:
    """How to run a model; separate from what the model is."""
    backend: str = "auto"        # auto | numpy | cuda
    dtype: str = "float16"       # GPU storage dtype: float16 | bfloat16 (numpy backend is always float32)
    mode: str = "hybrid"         # eager | graph | hybrid (cuda backend only)
    max_seq_len: int | None = None  # context to allocate; None = the model's max_seq_len
    seed: int = 0
    quant: str | None = None     # quantize at load: fp8 | int8 | int4 (None: as stored)
    group_size: int = 128        # int4 columns per group; -1 = one group per row
    quant_head: bool = False     # quantize the LM head too (the embedding always stays 16-bit)
    tp: int = 1                  # tensor parallel over this many GPUs (cuda backend)
    prefill_rows: int = PREFILL_ROWS_DEFAULT  # largest prefill bucket = chunk of long prompts (cuda backend)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"dtype must be float16 or bfloat16, got {self.dtype!r}")
        if not isinstance(self.tp, int) or isinstance(self.tp, bool) or self.tp < 1:
            raise ConfigError(f"tp must be a positive integer (GPUs), got {self.tp!r}")
        m = self.max_seq_len
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m <= 0):
            raise ConfigError(f"max_seq_len must be a positive integer, got {m!r}")
        check_prefill_rows(self.prefill_rows)
        self.quant_spec()  # validates quant / group_size

    def quant_spec(self):
        """The quant.QuantSpec of quantize-at-load, or None."""
        if self.quant is None:
            return None
        from .quant.layers import QuantSpec
        return QuantSpec(self.quant, self.group_size, self.quant_head)

    def context(self, model: ModelConfig) -> int:
        return min(self.max_seq_len or model.max_seq_len, model.max_seq_len)
