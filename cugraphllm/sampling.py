"""Choosing the next token: `SamplingParams`, the NumPy sampler (the oracle of the GPU sampler) and stop strings.

Rule (DESIGN.md), for the token that will sit at absolute position `pos`:
  repetition penalty (HF: logit / p if logit > 0 else logit * p, once per distinct id in `history`)
  -> temperature 0: argmax (ties -> lowest id); else logits / temperature
  -> top-k -> top-p over the kept ids sorted by descending logit (ties by ascending id)
  -> draw u = uniform(seed, pos) and pick the first kept id whose cumulative probability exceeds u * total.
The draw depends only on (seed, pos), never on earlier draws, so the same seed gives the same text on every
backend and whatever the consumer does between tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Sequence

import numpy as np

from .errors import ConfigError

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment: 2**64 / golden ratio


# bounds keep logits / temperature and the float32 device copies finite (1/1e-3 * |logit| < 3.4e38)
TEMPERATURE_RANGE = (1e-3, 1e3)   # or exactly 0 (greedy)
PENALTY_RANGE = (1e-3, 1e3)
TOP_K_MAX = 2 ** 31 - 1


def temperature_ok(v: float) -> bool:
    return v == 0 or TEMPERATURE_RANGE[0] <= v <= TEMPERATURE_RANGE[1]


def penalty_ok(v: float) -> bool:
    return PENALTY_RANGE[0] <= v <= PENALTY_RANGE[1]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0   # 0 = greedy
    top_k: int = 0             # 0 = no top-k
    top_p: float = 1.0         # 1 = no nucleus cut
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self):
        _set(self, "temperature", _real("temperature", self.temperature, temperature_ok,
                                        "0 (greedy) or in [0.001, 1000]"))
        _set(self, "top_p", _real("top_p", self.top_p, lambda v: 0 < v <= 1, "in (0, 1]"))
        _set(self, "repetition_penalty",
             _real("repetition_penalty", self.repetition_penalty, penalty_ok, "in [0.001, 1000]"))
        _set(self, "top_k", _integer("top_k", self.top_k, 0, TOP_K_MAX))
        _set(self, "seed", _integer("seed", self.seed, 0, _MASK64))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def _set(obj, name, value):
    object.__setattr__(obj, name, value)  # frozen dataclass: normalize types once, in __post_init__


def _real(name: str, v, ok, rule: str) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)) or not ok(float(v)):
        raise ConfigError(f"sampling: {name} must be a finite number {rule}, got {v!r}")
    return float(v)


def _integer(name: str, v, lo: int, hi: int | None) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral) or v < lo or (hi is not None and v > hi):
        rule = f">= {lo}" if hi is None else f"in [{lo}, 2**64)" if hi == _MASK64 else f"in [{lo}, {hi}]"
        raise ConfigError(f"sampling: {name} must be an integer {rule}, got {v!r}")
    return int(v)


def mix64(z: int) -> int:
    """splitmix64's output function (Steele, Lea, Flood 2014) on a 64-bit integer."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def uniform(seed: int, pos: int) -> float:
    """The draw for position `pos`: 24 random bits in [0, 1), exactly representable in float32 (the GPU's)."""
    return (mix64(seed * _GOLDEN + pos + 1) >> 40) / float(1 << 24)


def apply_repetition_penalty(logits: np.ndarray, history: Sequence[int], penalty: float) -> np.ndarray:
    """HF rule, once per distinct id of `history` (ids outside the vocabulary are ignored)."""
    out = np.array(logits, dtype=np.float64)  # copy: the caller's logits stay as they were
    ids = np.unique(np.asarray(history, dtype=np.int64))
    ids = ids[(ids >= 0) & (ids < out.shape[0])]
    seen = out[ids]
    out[ids] = np.where(seen > 0, seen / penalty, seen * penalty)
    return out


def ranked(logits: np.ndarray, top_k: int) -> np.ndarray:
    """Ids by descending logit, ties by ascending id; only the first `top_k` when 0 < top_k < V."""
    v = logits.shape[0]
    if 0 < top_k < v:
        kth = np.partition(logits, v - top_k)[v - top_k]      # the k-th largest logit
        cand = np.flatnonzero(logits >= kth)                  # ascending ids, every tie of the k-th included
        return cand[np.argsort(-logits[cand], kind="stable")][:top_k]
    return np.argsort(-logits, kind="stable")


def sample(logits: np.ndarray, params: SamplingParams, history: Sequence[int] = (), pos: int = 0) -> int:
    """Next token id from `logits` [V]. history: ids in the cache and sampled so far; pos: the new token's
    absolute position (= len(history) in the engines). Math in float64."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    if params.repetition_penalty != 1.0 and len(history):
        x = apply_repetition_penalty(x, history, params.repetition_penalty)
    if params.temperature == 0.0:
        return int(np.argmax(x))  # first maximum = lowest id
    x = x / params.temperature
    ids = ranked(x, params.top_k)
    p = np.exp(x[ids] - x[ids[0]])          # unnormalized softmax over the kept ids, p[0] == 1
    cum = np.cumsum(p)
    if params.top_p < 1.0:                   # nucleus: the shortest head holding top_p of the mass
        n = int(np.searchsorted(cum, params.top_p * cum[-1], side="left")) + 1
        ids, cum = ids[:n], cum[:n]
    i = int(np.searchsorted(cum, uniform(params.seed, pos) * cum[-1], side="right"))
    return int(ids[min(i, len(ids) - 1)])


class StopChecker:
    """Cuts streamed text at the first stop string, never showing part of one.

    `push(chunk) -> (text_to_emit, stopped)`: holds back the longest tail that could begin a stop string; once a
    stop string is complete, emits the text before it and reports stopped (the stop string itself is not emitted).
    As if the text came one character at a time: the first stop string to complete wins (ties: the longest).
    `flush()` returns the held-back tail when generation ends without a stop.
    """

    def __init__(self, stop: Sequence[str] | str = ()):
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        for s in stop:
            if not isinstance(s, str) or not s:
                raise ConfigError(f"stop strings must be non-empty strings, got {s!r}")
        self.stop = stop
        self.match: str | None = None  # the stop string that ended the text
        self._held = ""

    @property
    def stopped(self) -> bool:
        return self.match is not None

    def push(self, text: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        buf = self._held + text
        # the stop string completed first wins (ties: the longest), so the result does not depend on chunking
        hits = [(i + len(s), i, s) for s in self.stop if (i := buf.find(s)) >= 0]
        if hits:
            _, cut, self.match = min(hits)
            self._held = ""
            return buf[:cut], True
        keep = self._partial(buf)
        self._held = buf[len(buf) - keep:]
        return buf[:len(buf) - keep], False

    feed = push

    def flush(self) -> str:
        out, self._held = self._held, ""
        return out

    def _partial(self, buf: str) -> int:
        """Length of the longest suffix of `buf` that is a proper prefix of a stop string."""
        longest = max((len(s) for s in self.stop), default=1)
        for k in range(min(len(buf), longest - 1), 0, -1):
            tail = buf[-k:]
            if any(s.startswith(tail) for s in self.stop):
                return k
        return 0
