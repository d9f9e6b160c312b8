"""Benchmark the tensor-core prefill attention against the Numba prefill kernel on LLaMA-2-7B shapes, write JSON.

    python3 -m scripts.bench_attention_prefill --out benchmarks/results/attention_prefill_$(date +%F).json

LLaMA-2-7B: 32 heads, 32 KV heads, head_dim 128, fp16, context 4096. For each query bucket M (n_tokens = M) and
start position pos, a CUDA graph of 32 launches (one per layer, over 32 distinct layer views of a 2 GiB KV cache, so
L2 does not hold the keys) is replayed and timed with events: `ms_32_layers` is one replay. Also reports the kernel's
registers/local memory and the largest difference between the two kernels' outputs (same inputs).
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from cugraphllm.config import ModelConfig
from cugraphllm.gpu.attention import Attention
from cugraphllm.gpu.attention_prefill import PrefillKernel

try:  # one graph-timing harness for both; `python3 -m scripts.X` from the checkout, or the file itself
    from scripts.bench_attention import LAYERS, graph_time_us
except ImportError:
    from bench_attention import LAYERS, graph_time_us

BUCKETS = (16, 32, 64, 128, 192, 256, 384, 512)


def graph_ms(stream, launch, reps):
    """Device milliseconds of one replay of a graph holding `launch(layer)` for every layer."""
    return graph_time_us(stream, launch, reps) * LAYERS / 1e3


def versions():
    import cupy as cp
    from importlib import metadata
    v = {"python": platform.python_version(), "cupy": cp.__version__, "numpy": np.__version__,
         "driver": cp.cuda.runtime.driverGetVersion(), "runtime": cp.cuda.runtime.runtimeGetVersion()}
    for dist in ("numba-cuda", "numba"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v[dist] = None
    return v


def run(config, ctx, positions, reps, buckets=BUCKETS, numba_ref=True):
    import cupy as cp
    ours = PrefillKernel.for_config(config, "float16", ctx)
    if numba_ref:
        numba = Attention(config, ctx, dtype="float16", cache_dir=tempfile.mkdtemp(prefix="attn_cache_"))
        numba.prefill_impl = "numba"
        numba.prepare("prefill", None)
    S, KVH, hd = ctx, config.n_kv_heads, config.head_dim
    cache = cp.random.standard_normal((LAYERS, 2, S, KVH, hd), dtype=cp.float32).astype(cp.float16)
    q = cp.random.standard_normal((max(buckets), config.dim), dtype=cp.float32).astype(cp.float16)
    att, ref = cp.empty_like(q), cp.empty_like(q)
    pos, ntok = cp.zeros(1, cp.int32), cp.zeros(1, cp.int32)
    stream = cp.cuda.Stream(non_blocking=True)
    rows = []
    for p in positions:
        for m in buckets:
            if p + m > ctx:
                continue
            pos.fill(p)
            ntok.fill(m)
            row = {"M": m, "pos": p}
            row["ours_ms_32_layers"] = graph_ms(
                stream, lambda l: ours.launch(att[:m], q[:m], cache[l, 0], cache[l, 1], pos, ntok), reps)
            if numba_ref:
                row["numba_ms_32_layers"] = graph_ms(
                    stream, lambda l: numba.prefill(ref[:m], q[:m], cache[l, 0], cache[l, 1], pos, ntok, m), reps)
                row["speedup"] = row["numba_ms_32_layers"] / row["ours_ms_32_layers"]
            flops = 4 * config.n_heads * hd * sum(p + i + 1 for i in range(m)) * LAYERS  # QK^T + PV, causal
            row["ours_TFLOPs"] = flops / row["ours_ms_32_layers"] / 1e9
            if numba_ref:
                row["max_abs_diff_vs_numba"] = float(cp.abs(att[:m].astype(cp.float32)
                                                            - ref[:m].astype(cp.float32)).max())
            rows.append(row)
            print(json.dumps(row), flush=True)
    attrs = ours.fn.attributes
    kernel = {"num_regs": attrs.get("num_regs"), "local_size_bytes": attrs.get("local_size_bytes"),
              "dynamic_smem_bytes": ours.smem}
    return rows, kernel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"benchmarks/results/attention_prefill_{datetime.date.today()}.json")
    ap.add_argument("--positions", default="0,1024", help="start positions (comma-separated)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--buckets", default=",".join(map(str, BUCKETS)), help="query rows M (comma-separated)")
    ap.add_argument("--no-numba", action="store_true", help="time only the tensor-core kernel (no Numba reference)")
    args = ap.parse_args()
    import cupy as cp
    config = ModelConfig.from_preset("llama-2-7b")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "versions": versions(),
              "shapes": "llama-2-7b: 32 heads, 32 kv heads, head_dim 128, fp16, context 4096, n_tokens = M",
              "timing": f"CUDA events over {args.reps} replays of a graph of {LAYERS} launches (one per layer view)",
              "command": " ".join(sys.argv)}
    positions = [int(x) for x in args.positions.split(",")]
    buckets = tuple(int(x) for x in args.buckets.split(","))
    result["prefill"], result["kernel"] = run(config, 4096, positions, args.reps, buckets, not args.no_numba)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "prefill"}, indent=1))


if __name__ == "__main__":
    main()
