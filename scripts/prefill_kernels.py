"""Per-kernel GPU time of one eager prefill step per bucket, for Nsight Compute (issue #13 item 3, #11 TTFT rows):
the engine is built, each bucket's step runs once to warm up, then once more between cudaProfilerStart / Stop, so

    ncu --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
        python3 -m scripts.prefill_kernels --rows 16,128 > K.csv
    python3 -m scripts.prefill_kernels --summarize K.csv --rows 16,128 [--bytes-gb 13.48 --copy-tbs 4.24]

gives every kernel of those steps alone (ncu serializes them: no PDL overlap, no launch gaps), in launch order;
--summarize groups them by kernel name per bucket (profiled steps in --rows order) with their total and share.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import sys


def run(preset: str, rows: list[int]) -> None:
    import cupy as cp
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.gpu import model
    from cugraphllm.gpu.engine import CudaEngine
    e = CudaEngine.dummy(ModelConfig.from_preset(preset), RuntimeConfig(backend="cuda", mode="eager"))
    e.wait_ready()

    def step(m: int) -> None:
        e._set_step(0, m, list(range(3, 3 + m)))
        with e.stream:
            model.forward(e.config, e.w, e.kv, e.s, e.attn, m, m, True)
        e.stream.synchronize()
    for m in rows:
        step(m)
    cp.cuda.runtime.deviceSynchronize()
    cp.cuda.profiler.start()
    for m in rows:
        step(m)
    cp.cuda.runtime.deviceSynchronize()
    cp.cuda.profiler.stop()


def summarize(path: str, rows: list[int], floor_ms: float | None) -> dict:
    """ncu's CSV (one row per kernel launch and metric) -> {bucket: {"kernels": {name: {count, ms, share}} largest
    first, "total_ms", "launches"[, "weight_floor_ms"]}}; launches are split into steps at the embedding kernel
    that starts each one."""
    with open(path) as f:
        lines = [ln for ln in f if ln.startswith('"')]
    recs = [r for r in csv.DictReader(lines) if r.get("Metric Name") == "gpu__time_duration.sum"]
    steps: list[list] = []
    for r in recs:
        name = r["Kernel Name"].split("(")[0].split("<")[0]
        if "embedding" in name or not steps:
            steps.append([])
        unit = r.get("Metric Unit", "nsecond")
        v = float(r["Metric Value"].replace(",", ""))
        steps[-1].append((name, v * {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0}.get(unit, 1e-6)))
    out = {}
    for m, st in zip(rows, steps):
        agg = collections.OrderedDict()
        for name, ms in st:
            c = agg.setdefault(name, [0, 0.0])
            c[0] += 1
            c[1] += ms
        total = sum(v[1] for v in agg.values())
        out[m] = {"kernels": {k: {"count": c, "ms": round(t, 4), "share": round(t / total, 4)}
                              for k, (c, t) in sorted(agg.items(), key=lambda kv: -kv[1][1])},
                  "total_ms": round(total, 4), "launches": len(st)}
        if floor_ms:
            out[m]["weight_floor_ms"] = floor_ms
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama-2-7b", help="model preset (dummy weights)")
    ap.add_argument("--rows", default="16,128", help="prefill buckets, in the order they are profiled")
    ap.add_argument("--summarize", metavar="CSV", help="summarize an ncu CSV of this script instead of running")
    ap.add_argument("--bytes-gb", type=float, default=None, help="weight bytes a step reads (GB), for the floor")
    ap.add_argument("--copy-tbs", type=float, default=4.24, help="copy rate (TB/s) for the floor")
    a = ap.parse_args(argv)
    rows = [int(r) for r in a.rows.split(",")]
    if a.summarize:
        floor = a.bytes_gb / a.copy_tbs if a.bytes_gb else None
        print(json.dumps(summarize(a.summarize, rows, floor), indent=1))
        return 0
    try:
        from scripts.bench_kernels import gpu_missing
    except ImportError:
        from bench_kernels import gpu_missing
    if gpu_missing("prefill_kernels"):
        return 2
    run(a.preset, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
