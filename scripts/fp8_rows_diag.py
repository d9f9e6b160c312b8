"""Diagnosis (bench only) of tests/test_prefill_rows_gpu.py::test_fp8_2048_row_chunks_match_512 (H200, 2026-11-30:
the "split" prompt, 1000 then 1100 tokens, 0.069 from 512-row chunks with fp8 weights at --prefill-rows 2048).
Per setting (env) and prefill_rows (512, 2048), the last logits of prompts of 300 / 500 / 1000 / 1100 / 2100 tokens
and of 1000 then 1100 more, against a 512-row engine with the unscaled fp8 product (relative L2). (The version
that ran in tenth_2026-11-30/s18e, commit a3b0df9, also switched a GEMM-tuner candidate check that was then
removed: it made no difference.) Usage: python3 -m scripts.fp8_rows_diag
"""
from __future__ import annotations

import gc
import os
import sys

import numpy as np

from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams

CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
SETTINGS = [{}, {"CUGRAPHLLM_GEMM_TUNE": "0"}]
ENVS = ("CUGRAPHLLM_FP8_FUSE_ACTQ", "CUGRAPHLLM_FP8_OUTER_SCALE", "CUGRAPHLLM_GEMM_TUNE")
LENS = (300, 500, 1000, 1100, 2100)


def logits(e, parts):
    e.reset()
    for p in parts:
        e.s.logits.fill(np.nan)
        list(e.generate(p, SamplingParams(), 1))
    return e.s.logits.get()[0].astype(np.float64)


def run(weights, p, rows):
    import cupy as cp
    from cugraphllm.gpu import gemm_tune
    from cugraphllm.gpu.engine import CudaEngine
    gemm_tune.TUNE = os.environ.get("CUGRAPHLLM_GEMM_TUNE", "1") != "0"  # read at import: set per engine
    gemm_tune._CHOICE.clear()
    e = CudaEngine(CFG, weights, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=2304, prefill_rows=rows,
                                               quant="fp8"))
    out = {str(n): logits(e, [p[:n]]) for n in LENS}
    out["1000+1100"] = logits(e, [p[:1000], p[1000:]])
    del e
    gc.collect()
    cp.get_default_memory_pool().free_all_blocks()
    return out


def main() -> None:
    from cugraphllm.loader import dummy_checkpoint
    weights = dummy_checkpoint(CFG, seed=13, dtype="float32").weights
    p = np.random.default_rng(2100).integers(0, CFG.vocab_size, 2100).tolist()

    def setenv(d):
        for k in ENVS:
            os.environ.pop(k, None)
        os.environ.update(d)
    setenv({"CUGRAPHLLM_FP8_OUTER_SCALE": "0"})
    base = run(weights, p, 512)  # the unscaled product: the reference
    for s in SETTINGS:
        setenv(s)
        for rows in (512, 2048):
            got = run(weights, p, rows)
            errs = {k: float(np.linalg.norm(got[k] - base[k]) / np.linalg.norm(base[k])) for k in base}
            print(f"{s or 'default'} rows {rows}: " + "  ".join(f"{k} {v:.4f}" for k, v in errs.items()),
                  file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
