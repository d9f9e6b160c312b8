"""Is the 7% between fp8 prefill products a bug or sensitivity? (bench only; the open question of
benchmarks/results/tenth_2026-11-30/s18e.) On 7B-width 2-layer random weights, the last logits of a 500-token prompt
from engines that differ in one thing each, relative L2:
  fp16 vs fp16 with the embedding table perturbed by a relative 1e-3, ~2 fp16 ulps (how far a tiny input change
  moves 16-bit logits),
  fp8 unscaled vs fp8 unscaled perturbed, fp8 outer-scaled vs fp8 outer-scaled perturbed (the same, through W8A8),
  fp8 unscaled vs fp8 outer-scaled (the 7% in question), and each fp8 engine against fp16.
If the perturbed fp8 pairs move as much as the two products differ while fp16 barely moves, the 7% is e4m3
activation-code flips amplified by these weights, not a wrong product. Usage: python3 -m scripts.fp8_sensitivity
"""
from __future__ import annotations

import gc
import os
import sys

import numpy as np

from cugraphllm.config import RuntimeConfig
from scripts.fp8_rows_diag import CFG, logits  # the same 7B-width 2-layer model, poisoned last-logits readout
N_PROMPT = 500


def last_logits(weights, quant, outer: bool, prompt) -> np.ndarray:
    import cupy as cp
    from cugraphllm.gpu.engine import CudaEngine
    os.environ["CUGRAPHLLM_FP8_OUTER_SCALE"] = "1" if outer else "0"
    e = CudaEngine(CFG, weights, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=1024, quant=quant))
    out = logits(e, [prompt])
    del e
    gc.collect()
    cp.get_default_memory_pool().free_all_blocks()
    return out


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> None:
    import dataclasses
    from cugraphllm.loader import dummy_checkpoint
    w = dummy_checkpoint(CFG, seed=13, dtype="float32").weights
    rng = np.random.default_rng(5)
    emb = w.tok_embeddings
    w2 = dataclasses.replace(w, tok_embeddings=emb * (1 + 1e-3 * rng.standard_normal(emb.shape)).astype(emb.dtype))
    prompt = rng.integers(0, CFG.vocab_size, N_PROMPT).tolist()
    runs = {}
    for name, (weights, quant, outer) in {"fp16": (w, None, True), "fp16'": (w2, None, True),
                                          "fp8u": (w, "fp8", False), "fp8u'": (w2, "fp8", False),
                                          "fp8o": (w, "fp8", True), "fp8o'": (w2, "fp8", True)}.items():
        runs[name] = last_logits(weights, quant, outer, prompt)
    for a, b in [("fp16", "fp16'"), ("fp8u", "fp8u'"), ("fp8o", "fp8o'"), ("fp8u", "fp8o"), ("fp16", "fp8u"),
                 ("fp16", "fp8o")]:
        print(f"{a:6s} vs {b:6s} {rel(runs[a], runs[b]):.5f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
