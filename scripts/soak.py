"""Soak: generate many tokens across chat-like turns with resets; report host and GPU memory and latency.

    python3 -m scripts.soak --preset llama-2-7b --tokens 10000 --turn 200 [--mode hybrid] [--out soak.json]

Memory is read at every reset: host RSS (/proc/self/statm), CUDA free memory, CuPy pool bytes. Growth is the
last reading minus the first one taken after the first turn (the first turn may still capture graphs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama-2-7b", help="model preset with dummy weights")
    ap.add_argument("--tokens", type=int, default=10000, help="total tokens to generate")
    ap.add_argument("--turn", type=int, default=200, help="tokens per turn; the cache resets every 4 turns")
    ap.add_argument("--mode", default="hybrid", choices=["eager", "graph", "hybrid"], help="runtime mode")
    ap.add_argument("--max-seq-len", type=int, default=2048, help="context to allocate")
    ap.add_argument("--out", default=None, help="write the JSON report here")
    a = ap.parse_args(argv)

    import cupy as cp
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.sampling import SamplingParams

    cfg = ModelConfig.from_preset(a.preset)
    eng = CudaEngine.dummy(cfg, RuntimeConfig(backend="cuda", mode=a.mode, max_seq_len=a.max_seq_len))
    rng = np.random.default_rng(0)
    pool = cp.get_default_memory_pool()
    mem, itl, done, turn = [], [], 0, 0
    while done < a.tokens:
        if turn % 4 == 0:
            eng.reset()
            mem.append({"tokens": done, "rss": rss_bytes(), "gpu_free": cp.cuda.runtime.memGetInfo()[0],
                        "pool_used": pool.used_bytes(), "pool_total": pool.total_bytes()})
        prompt = rng.integers(3, cfg.vocab_size, 16).tolist()
        params = SamplingParams(temperature=0.7 if turn % 2 else 0.0, top_p=0.9, seed=turn)
        t = time.perf_counter()
        for _ in eng.generate(prompt, params, min(a.turn, a.tokens - done)):
            now = time.perf_counter()
            itl.append(now - t)
            t = now
            done += 1
        turn += 1
        print(f"soak: {done}/{a.tokens} tokens", file=sys.stderr, flush=True)
    base = mem[1] if len(mem) > 1 else mem[0]
    ms = np.array(itl[1:]) * 1e3
    rep = {"preset": a.preset, "mode": a.mode, "tokens": done, "turns": turn,
           "rss_growth_bytes": mem[-1]["rss"] - base["rss"],
           "gpu_free_drop_bytes": base["gpu_free"] - mem[-1]["gpu_free"],
           "pool_growth_bytes": mem[-1]["pool_total"] - base["pool_total"],
           "itl_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                      "max": float(ms.max())},
           "memory_report": eng.memory_report(), "readings": mem}
    print(json.dumps({k: v for k, v in rep.items() if k != "readings"}, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
