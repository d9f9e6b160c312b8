"""A/B of prefill settings by the time of the captured prefill graphs themselves (no host TTFT noise): one engine per
setting, built in turn in this process (dummy weights, hybrid mode), each chosen bucket's greedy prefill graph
replayed --reps times back to back, wall clock around them after a sync, in --rounds interleaved rounds (the median
per bucket; the rows hold token 0, and --random also times each graph with bench's random prompt ids in its rows: at
512 7B rows the GPU works at its power limit and token 0 in every row runs ~9% faster than random ids,
benchmarks/results/thirtieth_2026-12-03/s38c; knockouts that leave a GEMM's input unwritten change its data too).
Settings: tune0 / tune1 = the prefill GEMM tuning of gpu/gemm_tune.py off / on (its choices are printed for tune1),
or environment variables VAR=VALUE, or both joined by ';' (e.g. CUGRAPHLLM_ALLREDUCE=nccl,
tune0;CUGRAPHLLM_FP8_OUTER_SCALE=0), or module attributes (gemm.AUTO_RESIDUAL_MAX_K=11008) or entries of a dict
attribute (gemm.OWN_CONFIG[('residual'|2)]=(1|8|2|1|0|0|3|1): '|' stands for ',' in these literals), or knockouts (bench only:
the graph is captured without that work, so its rows compute nonsense): ko:allreduce (the prefill residual all-reduce
and add of tensor parallelism), ko:gemm (every prefill GEMM, cuBLAS and our own), ko:attn (prefill attention),
ko:norm (the prefill RMSNorms before wqkv and w13), ko:epi (the stand-alone epilogues after a cuBLAS GEMM: qkv RoPE
and cache stores, SiLU * up). --quant fp8|int8|int4 quantizes the dummy weights at load.

    python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,256,512 --order tune0,tune1,tune0,tune1
    python3 -m scripts.prefill_ab --quant fp8 --buckets 128,512 --partial 12 \
        --order "tune0;CUGRAPHLLM_FP8_OUTER_SCALE=0,tune1;CUGRAPHLLM_FP8_OUTER_SCALE=1"
    python3 -m scripts.prefill_ab --quant fp8 --buckets 128,512 --partial 12 \
        --order "tune1;CUGRAPHLLM_FP8_FUSE_ACTQ=0,tune1;CUGRAPHLLM_FP8_FUSE_ACTQ=2"    # gpu/fp8_actq.py
    python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 \
        --order "tune1,tune1;ko:allreduce,tune1;ko:gemm,tune1;ko:attn"                 # where the time goes
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path

import numpy as np


_ENV_SET: dict = {}


_ATTR_SET: dict = {}
_ITEM_SET: list = []  # (dict, key, old value or _MISSING) of module.NAME[KEY]=VALUE settings, undone in reverse
_MISSING = object()


def _knockouts() -> dict:
    """ko:NAME -> [(owner, attribute, replacement)]: prefill work (M > 1) replaced by nothing."""
    # ops before ops_gemv: ops loads it (importing ops_gemv first meets the two modules' import cycle)
    from cugraphllm.gpu import allreduce, attention, gemm, gemm_tune, ops, ops_gemv  # noqa: F401
    nt, norm = gemm_tune.gemm_nt, ops_gemv.rmsnorm  # ops_gemv's own binding: the prefill norms call that name

    def gemm_nt(c, a, w, accumulate=False):
        if a.shape[0] == 1:
            nt(c, a, w, accumulate)
    return {"allreduce": [(allreduce.CustomComm, "all_reduce_add", lambda self, p, x: True)],
            "gemm": [(gemm_tune, "gemm_nt", gemm_nt), (gemm, "_launch_own", lambda *a, **k: None)],
            "attn": [(attention.Attention, "prefill", lambda self, *a, **k: None)],
            "epi": [(gemm, "_epi_launch", lambda *a, **k: None)],
            "norm": [(ops_gemv, "rmsnorm", lambda out, x, w, eps: norm(out, x, w, eps) if x.shape[0] == 1 else None)]}


def apply(setting: str) -> None:
    """';'-joined tune0 / tune1, VAR=VALUE environment variables and module.NAME=VALUE attributes of a
    cugraphllm.gpu module (VALUE a Python literal, e.g. pdl.PREFILL=False) (the previous setting's are undone)."""
    import ast
    import importlib
    from cugraphllm.gpu import gemm_tune
    gemm_tune._CHOICE.clear()
    gemm_tune._TIMES.clear()
    for k, v in _ENV_SET.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    _ENV_SET.clear()
    for (mod, name), v in _ATTR_SET.items():
        setattr(mod, name, v)
    _ATTR_SET.clear()
    for d, key, v in reversed(_ITEM_SET):
        d.pop(key) if v is _MISSING else d.__setitem__(key, v)
    _ITEM_SET.clear()
    for item in setting.split(";"):
        if item in ("tune0", "tune1"):
            gemm_tune.TUNE = item == "tune1"
        elif item.startswith("ko:"):
            for owner, name, fn in _knockouts()[item[3:]]:
                _ATTR_SET.setdefault((owner, name), getattr(owner, name))
                setattr(owner, name, fn)
        elif "=" in item and "." in item.split("=", 1)[0]:
            path, v = item.split("=", 1)
            path, _, key = path.partition("[")  # module.NAME[KEY]=VALUE sets one entry of a dict attribute
            mod = importlib.import_module("cugraphllm.gpu." + path.rsplit(".", 1)[0])
            name = path.rsplit(".", 1)[1]
            if not hasattr(mod, name):
                raise SystemExit(f"{path}: no such attribute")
            value = ast.literal_eval(v.replace("|", ","))  # '|' for the commas that --order splits on
            if key:
                d, k = getattr(mod, name), ast.literal_eval(key.rstrip("]").replace("|", ","))
                _ITEM_SET.append((d, k, d.get(k, _MISSING)))
                d[k] = value
            else:
                _ATTR_SET.setdefault((mod, name), getattr(mod, name))
                setattr(mod, name, value)
        elif "=" in item:
            k, v = item.split("=", 1)
            _ENV_SET.setdefault(k, os.environ.get(k))
            os.environ[k] = v
        else:
            raise SystemExit(f"unknown setting {item!r} in {setting!r}")


def graph_ms(e, bucket: int, reps: int, n: int | None = None, prompt=None, gap_ms: float = 0.0) -> float:
    """ms per replay of the greedy prefill graph of `bucket` rows with n real tokens (default: all rows); prompt:
    the ids in those rows (default: whatever the buffer holds, token 0 before any generate()). Back to back (gap_ms
    0), each replay's sampler advances pos, so successive replays attend ever more keys (up to reps x bucket): what
    position-dependent work (the prefill attention) costs at a prompt's first step is timed by `bench` TTFT, at pos 0
    every sample (benchmarks/results/twentythird_2026-12-02/s31d). gap_ms > 0: idle that long before each replay, each
    one from pos 0 and timed alone (wall clock between syncs; the median), as a user's prompts come: back-to-back
    long prefills slow down under the GPU's power management (twentyninth_2026-12-03/s37h)."""
    rows = bucket if n is None else n
    e._set_step(pos=0, n=rows, prompt=prompt)
    e.rt.step("prefill", bucket, True)  # warm replay
    e.sync()
    if gap_ms:
        t = []
        for _ in range(reps):
            e._set_step(pos=0, n=rows, prompt=prompt)
            e.sync()
            time.sleep(gap_ms / 1000)
            t0 = time.perf_counter()
            e.rt.step("prefill", bucket, True)
            e.sync()
            t.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(t))
    t0 = time.perf_counter()
    for _ in range(reps):
        e.rt.step("prefill", bucket, True)
    e.sync()
    return 1e3 * (time.perf_counter() - t0) / reps


def generate_ms(e, lengths, rounds: int) -> dict:
    """The bench's path: GPU prefill ms (median of `rounds`) of generate() on a random prompt of each length."""
    from cugraphllm.bench import gpu_times, prompts_for, time_generation
    from cugraphllm.sampling import SamplingParams
    out = {}
    for n in lengths:
        p = prompts_for(n, 1, e.config.vocab_size, 0)[0]
        t = []
        for _ in range(rounds):
            time_generation(e, p, 2, SamplingParams())
            g = gpu_times(e)
            t.append(g[0] if g else float("nan"))
        out[f"generate{n}"] = round(float(np.median(t)), 3)
    return out


def time_buckets(e, buckets, args) -> tuple[dict, dict]:
    """Median ms per bucket of the full prefill graph (with --random also "<bucket>r": the same graph with random
    prompt ids in its rows, interleaved), and (--partial) of the same graph with the last rows padding (a prompt
    shorter than its bucket), in --rounds interleaved rounds."""
    from cugraphllm.bench import prompts_for
    ms = {str(b): [] for b in buckets}
    part = {b: [] for b in buckets if args.partial and b > args.partial}
    for _ in range(args.rounds):
        for b in buckets:
            ms[str(b)].append(graph_ms(e, b, args.reps, prompt=np.zeros(b, np.int32), gap_ms=args.gap_ms))
            if args.random:
                ids = prompts_for(b, 1, e.config.vocab_size, 0)[0]
                ms.setdefault(f"{b}r", []).append(graph_ms(e, b, args.reps, prompt=ids, gap_ms=args.gap_ms))
            if b in part:
                part[b].append(graph_ms(e, b, args.reps, b - args.partial, prompt=np.zeros(b, np.int32),
                                        gap_ms=args.gap_ms))
    return ({k: round(float(np.median(v)), 3) for k, v in ms.items()},
            {f"{b}n{b - args.partial}": round(float(np.median(v)), 3) for b, v in part.items()})


def measure(setting: str, args) -> dict:
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.engines import _make_engine
    from cugraphllm.gpu import gemm_tune
    apply(setting)
    buckets = [int(b) for b in args.buckets.split(",")]
    rt = RuntimeConfig(backend="cuda", mode="hybrid", tp=args.tp, max_seq_len=max(buckets) + 64, quant=args.quant)
    t0 = time.perf_counter()
    e = _make_engine(ModelConfig.from_preset(args.preset), rt)
    try:
        e.wait_ready()
        ready = time.perf_counter() - t0
        full, partial = time_buckets(e, buckets, args)
        lengths = [b - args.partial for b in buckets if args.partial and b > args.partial]
        row = {"setting": setting, "ready_s": round(ready, 1),
               "generate_prefill_gpu_ms": generate_ms(e, lengths, args.rounds), "prefill_ms": full,
               "partial_ms": partial, "tuned": gemm_tune.report()}
    finally:
        close = getattr(e, "close", None)
        if close is not None:
            close()
        del e
        gc.collect()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="llama-2-7b")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--quant", choices=("fp8", "int8", "int4"), help="quantize the dummy weights at load")
    ap.add_argument("--buckets", default="128,256,512")
    ap.add_argument("--order", default="tune0,tune1,tune0,tune1")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="idle time before each replay, each timed alone from pos 0 (default 0: back to back)")
    ap.add_argument("--partial", type=int, default=0, help="also time each bucket with this many padding rows")
    ap.add_argument("--random", action="store_true",
                    help="also replay each graph with random prompt ids in its rows (bench's prompts), interleaved")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for setting in args.order.split(","):
        row = measure(setting, args)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "tuned"}), flush=True)
        for t in row["tuned"]:
            print("   ", json.dumps(t), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"preset": args.preset, "tp": args.tp, "quant": args.quant, "reps": args.reps, "gap_ms": args.gap_ms}
        args.out.write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
