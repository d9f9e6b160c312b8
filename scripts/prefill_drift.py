"""GPU prefill time of one prompt length, sample after sample, in one process: does it drift as prefills repeat
(power / thermal state) or follow the prompt's ids? Builds the engine as bench does (dummy weights of a preset,
hybrid mode), warms up, then runs `--samples` first-token generations, each with a fresh random prompt (`fresh`,
bench's prompts_for) or always the first one (`same`), optionally idle `--gap-ms` between them, and prints each
sample's GPU prefill ms (the engine's CUDA events) in order, with medians of the first 5 and of all.
Usage: python3 -m scripts.prefill_drift --preset llama-2-7b --quant int4 --length 500 --samples 60 [--order same]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def main():
    from cugraphllm.bench import gpu_times, prompts_for, time_generation
    from cugraphllm.config import PRESETS, RuntimeConfig
    from cugraphllm.engines import _make_engine
    from cugraphllm.sampling import SamplingParams
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="llama-2-7b", choices=sorted(PRESETS))
    ap.add_argument("--quant", default=None, help="fp8 | int8 | int4 (default: 16-bit weights)")
    ap.add_argument("--length", type=int, default=500, help="prompt tokens")
    ap.add_argument("--samples", type=int, default=60, help="timed first-token generations")
    ap.add_argument("--order", choices=("fresh", "same"), default="fresh", help="a new random prompt each, or one")
    ap.add_argument("--gap-ms", type=float, default=0.0, help="idle time between samples")
    ap.add_argument("--out", default="", help="write the series as JSON here")
    a = ap.parse_args()
    config = PRESETS[a.preset]
    engine = _make_engine(config, RuntimeConfig(backend="cuda", quant=a.quant, max_seq_len=max(1024, a.length + 8)))
    prompts = prompts_for(a.length, a.samples, config.vocab_size, 0)
    params = SamplingParams(temperature=0.0)
    for p in prompts[:2]:  # warm-up: graphs, compiles
        time_generation(engine, p, 1, params)
    series = []
    for i in range(a.samples):
        time_generation(engine, prompts[0 if a.order == "same" else i], 1, params)
        series.append(round(gpu_times(engine)[0], 3))
        if a.gap_ms:
            time.sleep(a.gap_ms / 1000)
    res = {"preset": a.preset, "quant": a.quant, "length": a.length, "order": a.order, "gap_ms": a.gap_ms,
           "median_first5": statistics.median(series[:5]), "median_all": statistics.median(series), "series": series}
    print(json.dumps(res), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()
