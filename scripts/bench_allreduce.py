"""A/B of the tensor-parallel collective backends in one run: NCCL against the custom one-shot all-reduces over NVLink
peer access (gpu/allreduce.py: the flag protocol "custom" and the value-as-flag protocol "lamport"), each on a fresh
TP engine with dummy weights (hybrid mode, greedy).

Per backend: decode ms/token (median inter-token interval of `--reps` generations of `--new-tokens` after a
`--prompt-len` prompt, and the GPU's own per-step time from the engine's CUDA events), the collectives of one decode
step alone (tp_runtime.time_collectives: 2 all-reduces per layer of D f32 and the logits all-gather), and the
microseconds of one all-reduce of 4096 / 5120 / 8192 f32 and of one logits all-gather (tp_runtime.time_collective:
a graph of 64 back-to-back calls; the fused residual kernel is not in these, only in ms/token), and of one
all-reduce at prefill sizes, 128 x D and 512 x D f32 per rank (lamport's ar_lamport_wide; custom hands these to NCCL;
the engine's context is at least 512 so that comm.part has 512 rows). Backends: nccl,
custom-unfused / lamport-unfused (the all-reduce, then kernels/tp.cu's add: every value as NCCL computes it, so the
greedy tokens must be identical) and custom / lamport (the all-reduce fused with the residual update: the norm's
partial sums add in another order, so their tokens may differ from NCCL's after many steps, but the two protocols
compute the same bits, so custom's and lamport's tokens must be identical); the script prints whether the tokens
agree (exit code 1 where either rule is broken) and lamport's change against custom.

    NCCL_NVLS_ENABLE=0 python3 -m scripts.bench_allreduce [--preset llama-2-7b] [--tp 2] [--out FILE.json]
        [--max-seq-len N] [--prefill-rows 128,512]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cugraphllm.bench import gpu_times, prompts_for, time_generation
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams


def log(msg: str) -> None:
    print(f"[bench_allreduce {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(backend: str, config: ModelConfig, args) -> dict:
    """One engine on `backend`: decode timings, collective timings and the greedy tokens of the first prompt."""
    from cugraphllm.gpu import tp_runtime
    from cugraphllm.gpu.allreduce import ENV, FUSE_ENV
    from cugraphllm.gpu.tp_engine import TPEngine
    os.environ[ENV] = backend.split("-")[0]
    os.environ[FUSE_ENV] = "0" if backend.endswith("-unfused") else "1"
    t0 = time.perf_counter()
    S = max(args.max_seq_len or 0, args.prompt_len + args.new_tokens + 16)
    e = TPEngine(config, None, RuntimeConfig(backend="cuda", mode=args.mode, tp=args.tp, max_seq_len=S))
    try:
        e.wait_ready()
        log(f"{backend}: engine ready in {time.perf_counter() - t0:.1f} s ({e.allreduce})")
        greedy = SamplingParams()
        prompts = prompts_for(args.prompt_len, args.reps + 1, config.vocab_size, 0)
        time_generation(e, prompts[0], args.new_tokens, greedy)  # warm-up
        itl, steps, tokens = [], [], None
        for i, p in enumerate(prompts[1:]):
            _, gaps = time_generation(e, p, args.new_tokens, greedy)
            itl.append(1e3 * float(np.median(gaps)))
            g = gpu_times(e)
            if g is not None and g[1] is not None:
                steps.append(g[1])
            if i == 0:
                e.reset()
                tokens = list(e.generate(p, greedy, args.new_tokens))
        row = {"backend": backend, "tpot_ms": float(np.median(itl)), "tpot_ms_runs": itl,
               "gpu_step_ms": float(np.median(steps)) if steps else None,
               "collectives_us_per_step": e.collective_us(reps=20)}
        D = config.dim
        row["allreduce_us"] = {str(n): tp_runtime.time_collective(e, "allreduce", n) for n in (4096, 5120, 8192, D)}
        row["allgather_us"] = tp_runtime.time_collective(e, "allgather")
        rows = e.ranks[0].comm.part.shape[0]  # time_collective takes n <= part's rows x D
        row["allreduce_prefill_us"] = {f"{m}x{D}": tp_runtime.time_collective(e, "allreduce", m * D, calls=16)
                                       for m in args.prefill_rows if m <= rows}
        row["tokens"] = tokens
    finally:
        e.close()
        gc.collect()
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="llama-2-7b")
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--mode", default="hybrid", choices=["graph", "hybrid"])
    ap.add_argument("--backends", default="nccl,custom-unfused,custom,lamport-unfused,lamport",
                    help="comma-separated: nccl, custom / lamport (all-reduce fused with the residual update), "
                         "custom-unfused, lamport-unfused")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-seq-len", type=int, default=512, help="engine context (>= 512: prefill rows of 512)")
    ap.add_argument("--prefill-rows", type=lambda v: [int(x) for x in v.split(",")], default=[128, 512],
                    help="comma-separated rows M of the prefill all-reduces timed (M x D f32 per rank)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from cugraphllm.gpu.tp import nvls_off
    nvls_off()
    config = ModelConfig.from_preset(args.preset)
    rows = [measure(b.strip(), config, args) for b in args.backends.split(",")]
    exact, twins, same = report(rows, args)
    if args.out:
        args.out.write_text(json.dumps({"preset": args.preset, "tp": args.tp, "mode": args.mode,
                                        "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                                        "tokens_identical": same, "results": rows}, indent=1))
    return 0 if exact and twins else 1


def report(rows: list, args) -> tuple[bool, bool, bool]:
    """The table, the token checks and lamport against custom; returns (nccl and the unfused backends agree, custom
    and lamport agree, all agree)."""
    print(f"{args.preset} TP{args.tp} {args.mode}, dummy weights, prompt {args.prompt_len}, {args.new_tokens} new, "
          f"context {max(args.max_seq_len or 0, args.prompt_len + args.new_tokens + 16)}")
    print(f"{'backend':>15} {'ms/token':>9} {'GPU ms/step':>11} {'coll us/step':>12} "
          + " ".join(f"{'AR ' + n + ' us':>10}" for n in ("4096", "5120", "8192")) + f" {'AG us':>7}")
    for r in rows:
        ar = r["allreduce_us"]
        print(f"{r['backend']:>15} {r['tpot_ms']:9.3f} {r['gpu_step_ms'] or float('nan'):11.3f} "
              f"{r['collectives_us_per_step']:12.1f} " + " ".join(f"{ar[n]:10.2f}" for n in ("4096", "5120", "8192"))
              + f" {r['allgather_us']:7.2f}")
    same = len({tuple(r["tokens"]) for r in rows}) == 1
    fused = {"custom", "lamport"}
    exact = len({tuple(r["tokens"]) for r in rows if r["backend"] not in fused}) <= 1
    twins = len({tuple(r["tokens"]) for r in rows if r["backend"] in fused}) <= 1
    for r in rows:
        print(f"{r['backend']:>15} prefill all-reduce: " + "  ".join(
            f"{k} f32 {v:8.2f} us ({4 * np.prod([int(x) for x in k.split('x')]) / v / 1e3:4.0f} GB/s)"
            for k, v in r.get("allreduce_prefill_us", {}).items()))
    print(f"greedy tokens identical across backends: {same} (nccl and the unfused ones: {exact}; custom and lamport: "
          f"{twins})")
    by = {r["backend"]: r for r in rows}
    for base in ("custom", "custom-unfused"):
        new, old = by.get(base.replace("custom", "lamport")), by.get(base)
        if new and old:
            ar = "  ".join(f"AR {n} {new['allreduce_us'][n] - old['allreduce_us'][n]:+.2f} us"
                           for n in ("4096", "8192"))
            print(f"{new['backend']} vs {base}: {new['tpot_ms'] - old['tpot_ms']:+.3f} ms/token, "
                  f"{new['collectives_us_per_step'] - old['collectives_us_per_step']:+.1f} coll us/step, {ar}")
    return exact, twins, same


if __name__ == "__main__":
    sys.exit(main())
