"""Why the inter-token P99 / P50 is above 1.03 (issue #13): per-token intervals of 7B decode, next to the GPU's SM
clock and power read by nvidia-smi in the background during the same runs.

bench's ITL samples at prompt 10 climb within each 128-token run (3.27 -> 3.44 ms, benchmarks/results/
fp8call_2026-11-30/bench/paper_7b.json) and start low again in the next run. If the SM clock falls in step with
that, the spread comes from the GPU's clock management under sustained load, not from the steps themselves.

Per run: host intervals between tokens (bench's time_generation), the clock samples whose timestamps fall inside
the run, and per quarter of the run the median interval and the median SM clock. Runs are separated by --gap-s of
idle time (bench's runs follow each other with almost none). --prefills N puts N first-token-only generations
(bench's TTFT samples; the paper protocol takes 100 a length) before each run, with their median SM clock / power.

    python3 -m scripts.itl_drift [--runs 4] [--prompt-len 10] [--new-tokens 128] [--gap-s 0.5] [--prefills 0]
                                 [--prefill-len 500] [--out F.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

import numpy as np

QUERY = "timestamp,clocks.sm,power.draw,temperature.gpu"


def start_clock_log(path: Path, gpu: int, period_ms: int) -> subprocess.Popen:
    return subprocess.Popen(["nvidia-smi", "-i", str(gpu), f"--query-gpu={QUERY}", "--format=csv,noheader,nounits",
                             f"-lms={period_ms}"], stdout=path.open("w"), stderr=subprocess.STDOUT)


def read_clock_log(path: Path) -> list[tuple[float, float, float]]:
    """(unix time, SM MHz, W) per sample; nvidia-smi's timestamp is local wall time with milliseconds."""
    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((t, float(parts[1]), float(parts[2])))
        except (ValueError, IndexError):
            continue
    return rows


def one_run(engine, prompt, n: int) -> tuple[float, list[float]]:
    """(wall time of the first token, the n - 1 token times) of one generation, through bench's own loop
    (time_generation). Its clock starts after the reset, within a millisecond of `start`: far below the
    nvidia-smi sampling period these times are matched against."""
    from cugraphllm.bench import time_generation
    from cugraphllm.sampling import SamplingParams
    start = time.time()
    ttft, itl = time_generation(engine, prompt, n, SamplingParams())
    first = start + ttft
    return first, [first + float(t) for t in np.cumsum(itl)]


def quarters(times, itl, clocks) -> list[dict]:
    """Median interval and median SM clock / power per quarter of one run."""
    out = []
    edges = np.linspace(0, len(itl), 5).astype(int)
    for a, b in zip(edges, edges[1:]):
        t0, t1 = times[a], times[b - 1] if b > a else times[a]
        c = [(mhz, w) for t, mhz, w in clocks if t0 - 0.05 <= t <= t1 + 0.05]
        out.append({"itl_ms": round(1e3 * float(np.median(itl[a:b])), 4),
                    "sm_mhz": float(np.median([m for m, _ in c])) if c else None,
                    "power_w": float(np.median([w for _, w in c])) if c else None, "clock_samples": len(c)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gap-s", type=float, default=0.5, help="idle seconds between runs")
    ap.add_argument("--period-ms", type=int, default=20, help="nvidia-smi sampling period")
    ap.add_argument("--gpu", type=int, default=0, help="nvidia-smi index of the GPU the engine uses")
    ap.add_argument("--prefills", type=int, default=0, help="first-token-only generations before each run")
    ap.add_argument("--prefill-len", type=int, default=500, help="their prompt length")
    ap.add_argument("--out", type=Path, default=Path("itl_drift.json"))
    args = ap.parse_args()
    from cugraphllm.bench import prompts_for
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.engines import _make_engine
    S = max(args.prompt_len + args.new_tokens, args.prefill_len + 1) + 64
    e = _make_engine(ModelConfig.from_preset("llama-2-7b"), RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=S))
    e.wait_ready()
    prompt = prompts_for(args.prompt_len, 1, e.config.vocab_size, 0)[0]
    long = prompts_for(args.prefill_len, 1, e.config.vocab_size, 1)[0]
    one_run(e, prompt, args.new_tokens)  # warm-up: every graph captured
    one_run(e, long, 1)
    log = args.out.with_suffix(".clocks.csv")
    smi = start_clock_log(log, args.gpu, args.period_ms)
    runs = []
    try:
        time.sleep(1.0)
        for _ in range(args.runs):
            burst = time.time()
            for _ in range(args.prefills):
                one_run(e, long, 1)
            first, times = one_run(e, prompt, args.new_tokens)
            runs.append(([first] + times, burst if args.prefills else None))
            time.sleep(args.gap_s)
    finally:
        smi.terminate()
        smi.wait()
    clocks = read_clock_log(log)
    rows = []
    for r, burst in runs:
        itl = np.diff(r)
        rows.append({"itl_p50_ms": round(1e3 * float(np.median(itl)), 4),
                     "itl_p99_ms": round(1e3 * float(np.percentile(itl, 99)), 4), "quarters": quarters(r, itl, clocks)})
        print(json.dumps(rows[-1]), flush=True)
        rows[-1]["itl_ms"] = [round(1e3 * float(v), 4) for v in itl]  # every interval, in the JSON only
        if burst is not None:  # the prefills' clock: samples from the burst's start to the run's first token
            c = [(mhz, w) for t, mhz, w in clocks if burst <= t <= r[0]]
            rows[-1]["prefills"] = {"seconds": round(r[0] - burst, 3), "clock_samples": len(c),
                                    "sm_mhz": float(np.median([m for m, _ in c])) if c else None,
                                    "power_w": float(np.median([w for _, w in c])) if c else None}
            print(json.dumps({"prefills": rows[-1]["prefills"]}), flush=True)
    args.out.write_text(json.dumps({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                    "args": {k: str(v) for k, v in vars(args).items()}, "clock_samples": len(clocks),
                                    "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
