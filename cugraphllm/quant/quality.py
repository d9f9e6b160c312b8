"""Quality of quantized weights on the NumPy backend: greedy agreement, perplexity, logit error.

Used by scripts/quant_quality.py (JSON + the README table) and tests/test_quant_quality.py.
"""
from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..reference import NumpyEngine, forward
from ..weights import Weights

# a fixed TinyStories-style text for perplexity (written for this purpose)
TEXT = ("Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his "
        "friend Sue. One day, Sue found a red ball under a tree. She threw the ball and Max ran very fast to get "
        "it. Max was happy and wagged his tail. Then it started to rain, so Sue and Max went home. Sue's mom "
        "made them warm soup, and they sat by the fire. Max fell asleep and dreamed about the red ball.")


def greedy(cfg: ModelConfig, w: Weights, prompt: list[int], n: int = 60) -> list[int]:
    from ..sampling import SamplingParams
    eng = NumpyEngine(cfg, w, min(cfg.max_seq_len, len(prompt) + n + 1))
    return list(eng.generate(prompt, SamplingParams(temperature=0.0), n))


def agreement(a: list[int], b: list[int]) -> tuple[int, int]:
    """(tokens equal position by position, length of the common prefix)."""
    same = [x == y for x, y in zip(a, b)]
    prefix = next((i for i, s in enumerate(same) if not s), len(same))
    return int(sum(same)), prefix


def perplexity(cfg: ModelConfig, w: Weights, ids: list[int]) -> float:
    """exp(mean negative log-likelihood) of ids[1:] given their prefixes (teacher forcing, one forward)."""
    ids = ids[:cfg.max_seq_len]
    logits = forward(cfg, w, ids[:-1]).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))


def logit_error(ref: np.ndarray, got: np.ndarray) -> dict:
    """max |got - ref| and RMS error, both over the standard deviation of ref."""
    d = np.asarray(got, np.float64) - np.asarray(ref, np.float64)
    sd = float(np.asarray(ref, np.float64).std())
    return {"max_err_over_sd": float(np.abs(d).max() / sd), "rms_err_over_sd": float(np.sqrt((d * d).mean()) / sd)}
