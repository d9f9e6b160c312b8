"""Decode with sampling against greedy, end to end (issue #13, item 2: "within 1% of greedy").

One 7B fp16 hybrid engine (dummy weights); per prompt length, ROUNDS rounds of one greedy and one sampled
generation (T 0.8, top-p 0.9) of NEW tokens each, interleaved so clock drift hits both alike. Reports the median
inter-token interval of each mode and their ratio. The sampler is the process's default (CUGRAPHLLM_SAMPLER).

    python3 -m scripts.sample_vs_greedy [--lengths 10,500] [--new-tokens 128] [--rounds 3] [--out F.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", default="10,500", help="comma-separated prompt lengths")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="greedy + sampled runs per length")
    ap.add_argument("--out", type=Path, default=Path("sample_vs_greedy.json"))
    args = ap.parse_args()
    from cugraphllm.bench import prompts_for, time_generation
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.engines import _make_engine
    from cugraphllm.sampling import SamplingParams
    lengths = [int(v) for v in args.lengths.split(",")]
    e = _make_engine(ModelConfig.from_preset("llama-2-7b"),
                     RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=max(lengths) + args.new_tokens + 64))
    e.wait_ready()
    modes = {"greedy": SamplingParams(), "sampled": SamplingParams(temperature=0.8, top_p=0.9, seed=1)}
    rows = []
    for n in lengths:
        prompt = prompts_for(n, 1, e.config.vocab_size, 0)[0]
        for p in modes.values():
            time_generation(e, prompt, args.new_tokens, p)  # warm-up: graphs captured for both modes
        itl = {m: [] for m in modes}
        for _ in range(args.rounds):
            for m, p in modes.items():
                itl[m] += time_generation(e, prompt, args.new_tokens, p)[1]
        med = {m: 1e3 * float(np.median(v)) for m, v in itl.items()}
        rows.append({"prompt_len": n, "itl_p50_ms": {m: round(v, 4) for m, v in med.items()},
                     "sampled_over_greedy": round(med["sampled"] / med["greedy"], 4)})
        print(json.dumps(rows[-1]), flush=True)
    from scripts.bench_kernels import environment
    args.out.write_text(json.dumps({**environment(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
                                    "sampler": os.environ.get("CUGRAPHLLM_SAMPLER", "default"),
                                    "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
