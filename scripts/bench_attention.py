"""Benchmark the attention kernels on LLaMA-2-7B shapes (32 heads, head_dim 128, fp16) and write JSON.

    python3 -m scripts.bench_attention --out benchmarks/results/attention_$(date +%F).json

Decode/prefill times come from CUDA graphs of one launch per layer over 32 distinct layer views of a 2 GiB KV cache
(so L2 does not hold the keys), replayed and timed with events. Also: K/V read bandwidth against a device copy,
generic vs bucket kernel, other decode plans of the same kernel (VARIANTS: grid size, key/dim split, unroll, warps,
word width), host cost of an eager launch (CuPy-loaded cubin vs a Numba dispatcher launch), and cold vs warm prepare
(fresh cache directory, then a second Attention on the same directory).
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import attention as attn_mod
from cugraphllm.gpu.attention import Attention

LAYERS = 32
LENGTHS = [64, 128, 256, 512, 1024, 2048, 4096]
VARIANTS = {  # name: (blocks_per_sm, decode knobs); "default" is attention.DECODE_KNOBS with BLOCKS_PER_SM
    "first_try": (4, {"unroll": 4, "dsplit_keys": 0}),  # the first sweep's default (attention_2026-11-23_decode1)
    "bps3": (3, {}), "bps4": (4, {}), "unroll4": (None, {"unroll": 4}), "warps4": (None, {"n_warps": 4}),
    "dsplit_max4": (None, {"max_dsplit": 4}), "dsplit_keys16": (None, {"dsplit_keys": 16, "max_dsplit": 4}),
    "dsplit_keys64": (None, {"dsplit_keys": 64}), "short1": (None, {"short_iters": 1}),
    "short4": (None, {"short_iters": 4}), "split_always": (None, {"short_iters": 0}),
    "narrow_8byte": (None, {"wide": False}),
    # bench-only knockouts (plan knob "ko"): the ticket combine skipped; the key walk skipped (no K/V read)
    "ko_combine": (None, {"ko": 1}), "ko_walk": (None, {"ko": 2}), "ko_both": (None, {"ko": 3}),
    "cluster_on": (None, {"cluster": 1}), "early_on": (None, {"early": 1}), "early_wave": (None, {"early": 2}),
    # the 256-key bucket in one trip: a key split of two 128-key blocks (cluster combine, early loads), or 16 key
    # steps a lane (early loads on or off)
    "unroll16": (None, {"unroll": 16}), "unroll16_early": (None, {"unroll": 16, "early": 1}),
    "bps1": (1, {}),  # 7B's 1024-key bucket: 4 splits of 256 keys, cluster combine (not 8 of 128 with a ticket)
}


def graph_time_us(stream, launch, reps=20):
    """Mean device time of one `launch(layer)` measured over a graph of LAYERS launches."""
    import cupy as cp
    with stream:
        for layer in range(LAYERS):
            launch(layer)
        stream.begin_capture()
        for layer in range(LAYERS):
            launch(layer)
        g = stream.end_capture()
        g.launch(stream)
        t0, t1 = cp.cuda.Event(), cp.cuda.Event()
        t0.record(stream)
        for _ in range(reps):
            g.launch(stream)
        t1.record(stream)
        t1.synchronize()
    return cp.cuda.get_elapsed_time(t0, t1) * 1e3 / (reps * LAYERS)


def copy_bandwidth(nbytes=1 << 30):
    import cupy as cp
    a = cp.ones(nbytes // 2, dtype=cp.float16)
    b = cp.empty_like(a)
    b[...] = a
    t0, t1 = cp.cuda.Event(), cp.cuda.Event()
    t0.record()
    for _ in range(10):
        b[...] = a
    t1.record()
    t1.synchronize()
    s = cp.cuda.get_elapsed_time(t0, t1) / 1e3 / 10
    return {"bytes": nbytes, "read_GBps": nbytes / s / 1e9, "read_plus_write_GBps": 2 * nbytes / s / 1e9}


def bench_prepare(config, ctx):
    items = lambda a: [("decode", b) for b in a.decode_buckets] + [("prefill", None)]  # noqa: E731
    d = tempfile.mkdtemp(prefix="attn_cache_")
    if True:
        t = time.perf_counter()
        cold = Attention(config, ctx, cache_dir=d)
        cold.prepare_many(items(cold))
        cold_s = time.perf_counter() - t
        metas = [json.loads(p.read_text()) for p in Path(d).glob("*.json")]
        t = time.perf_counter()
        warm = Attention(config, ctx, cache_dir=d)
        warm.prepare_many(items(warm))
        warm_s = time.perf_counter() - t
    return d, {"specs": len(metas), "cold_s": cold_s, "warm_s": warm_s, "warm_compiles": warm.compiles,
            "per_spec_ptx_s": sorted(m["ptx_s"] for m in metas), "per_spec_link_s": sorted(m["link_s"] for m in metas),
            "formats": sorted({m["format"] for m in metas})}


def launch_overhead(attn, att, q, k, v, pos, n=3000):
    """Host microseconds per eager launch (kernel at length 64, shorter than the host cost)."""
    import cupy as cp
    out = {}
    pos.fill(63)
    for name, call in (("cupy_attention_decode", lambda: attn.decode(att, q, k, v, pos, bucket=64)),
                       ("cupy_raw_function", _raw_call(attn, att, q, k, v, pos))):
        call()
        cp.cuda.Device().synchronize()
        t = time.perf_counter()
        for _ in range(n):
            call()
        out[name + "_us"] = (time.perf_counter() - t) / n * 1e6
        cp.cuda.Device().synchronize()
    try:
        out.update(_numba_launch(att, q, k, v, pos, n))
    except Exception as e:  # report, do not fail the benchmark
        out["numba_error"] = f"{type(e).__name__}: {e}"[:300]
    return out


def _raw_call(attn, att, q, k, v, pos):
    fn, grid, block = attn._function("decode", 64)[:3]  # bucket 64: no cluster launch
    args = (att, q, k, v, pos, attn._part, attn._cnt)
    return lambda: fn(grid, block, args)


def _numba_launch(att, q, k, v, pos, n):
    """A Numba dispatcher launch with 7 CuPy array arguments on the current CuPy stream (what the engine would pay
    without the cubin path); the kernel body is trivial so this is host cost."""
    import cupy as cp
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    from numba import cuda

    @cuda.jit
    def touch(a, b, c, d, p, e, f):
        if cuda.grid(1) == 0:
            p[0] = p[0]

    stream = cuda.external_stream(cp.cuda.get_current_stream().ptr)
    extra = cp.zeros(4, cp.float32), cp.zeros(4, cp.int32)
    touch[1, 32, stream](att, q, k, v, pos, *extra)
    cp.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(n):
        touch[1, 32, stream](att, q, k, v, pos, *extra)
    dt = (time.perf_counter() - t) / n * 1e6
    cp.cuda.Device().synchronize()
    return {"numba_dispatcher_7_arrays_us": dt}


def _plan(a, bucket):
    sp = a.spec("decode", bucket)
    return {k: sp[k] for k in ("vec", "n_warps", "unroll", "chunk", "n_split", "n_dsplit")}


def bench_kernels(attn, config, variants, lengths=LENGTHS):
    import cupy as cp
    S, KVH, hd = attn.max_seq_len, config.n_kv_heads, config.head_dim
    cache = cp.random.standard_normal((LAYERS, 2, S, KVH, hd), dtype=cp.float32).astype(cp.float16)
    q = cp.random.standard_normal((512, config.dim), dtype=cp.float32).astype(cp.float16)
    att = cp.empty_like(q)
    pos, ntok = cp.zeros(1, cp.int32), cp.zeros(1, cp.int32)
    stream = cp.cuda.Stream(non_blocking=True)
    rows = []
    for length in lengths:
        pos.fill(length - 1)
        bucket = attn.bucket_for(length, "decode")
        row = {"length": length, "kv_bytes": 2 * length * KVH * hd * 2, "plan": _plan(attn, bucket)}
        runs = [("bucket", attn, bucket), ("generic", attn, None)]
        runs += [("v_" + name, a, a.bucket_for(length, "decode")) for name, a in variants.items()]
        for label, a, bucket in runs:
            us = graph_time_us(stream, lambda l: a.decode(att[:1], q[:1], cache[l, 0], cache[l, 1], pos, bucket))
            row[label + "_us"] = us
            if not label.startswith("v_"):
                row[label + "_GBps"] = row["kv_bytes"] / us / 1e3
        rows.append(row)
    prefill = []
    for m in attn.prefill_buckets:
        pos.fill(0)
        ntok.fill(m)
        us = graph_time_us(stream, lambda l: attn.prefill(att[:m], q[:m], cache[l, 0], cache[l, 1], pos, ntok, m))
        prefill.append({"M": m, "pos": 0, "us_per_layer": us, "ms_32_layers": us * LAYERS / 1e3})
    overhead = launch_overhead(attn, att[:1], q[:1], cache[0, 0], cache[0, 1], pos)
    return rows, prefill, overhead


def make_variants(config, cache_dir, names):
    """Attention objects for the VARIANTS `names`, compiled together (2 processes each) into the shared cache."""
    out = {}
    for name in names:
        bps, knobs = VARIANTS[name]
        a = Attention(config, 4096, cache_dir=cache_dir, blocks_per_sm=bps or attn_mod.BLOCKS_PER_SM,
                      decode_knobs=knobs)
        a.prepare_many([("decode", b) for b in a.decode_buckets], background=True, jobs=2)
        out[name] = a
    for a in out.values():
        a.prepare_many([("decode", b) for b in a.decode_buckets])
    return out


def versions():
    import cupy as cp
    from importlib import metadata
    v = {"python": platform.python_version(), "cupy": cp.__version__, "numpy": np.__version__,
         "driver": cp.cuda.runtime.driverGetVersion()}
    for dist in ("numba-cuda", "numba", "nvidia-nvvm", "nvidia-nvjitlink", "cuda-core"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v[dist] = None
    return v


def parse_lengths(text: str) -> list[int]:
    """--lengths: comma-separated key counts in 1..4096 (the bench's context)."""
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or any(not 1 <= v <= 4096 for v in out):
        raise argparse.ArgumentTypeError(f"expected comma-separated key counts in 1..4096, got {text!r}")
    return out


def summary(path) -> None:
    """One line a decode bucket of a result file: keys, key splits, then us a launch per plan."""
    for r in json.loads(Path(path).read_text())["decode"]:
        plans = " ".join(f"{k[:-3]} {v:.2f}" for k, v in r.items() if k.endswith("_us"))
        print(r["length"], r["plan"]["n_split"], plans)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"benchmarks/results/attention_{datetime.date.today()}.json")
    ap.add_argument("--no-variants", action="store_true", help="time only the default plans")
    ap.add_argument("--variants", default="", help="comma-separated names of VARIANTS to time (default: all)")
    ap.add_argument("--summary", metavar="FILE", help="print one line a decode bucket of a result FILE and exit")
    ap.add_argument("--lengths", type=parse_lengths, default=LENGTHS, metavar="N,N,..",
                    help="key counts to time decode at, each in its bucket (default: the buckets' full lengths "
                         f"{','.join(map(str, LENGTHS))}; at most 4096)")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return 0
    chosen = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in chosen):
        print(f"bench_attention: --variants must name some of {sorted(VARIANTS)}", file=sys.stderr)
        return 2
    import cupy as cp
    names = chosen or list(VARIANTS)
    config = ModelConfig.from_preset("llama-2-7b")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "versions": versions(),
              "shapes": "llama-2-7b: 32 heads, 32 kv heads, head_dim 128, fp16, context 4096",
              "command": " ".join(sys.argv)}
    cache_dir, result["prepare"] = bench_prepare(config, 4096)
    print(json.dumps(result["prepare"]), flush=True)
    attn = Attention(config, 4096, cache_dir=cache_dir)
    attn.prepare_many([("decode", b) for b in attn.decode_buckets] + [("prefill", None)])
    result["copy"] = copy_bandwidth()
    result["decode_knobs"] = {"blocks_per_sm": attn_mod.BLOCKS_PER_SM, **attn_mod.DECODE_KNOBS}
    result["variants"] = {name: {"blocks_per_sm": VARIANTS[name][0] or attn_mod.BLOCKS_PER_SM, **VARIANTS[name][1]}
                          for name in names}
    variants = {} if args.no_variants else make_variants(config, cache_dir, names)
    result["decode"], result["prefill"], result["launch_overhead"] = bench_kernels(attn, config, variants, args.lengths)
    result["decode_best"] = [min(((k[:-3], v) for k, v in r.items() if k.endswith("_us") and k != "generic_us"),
                                 key=lambda kv: kv[1]) for r in result["decode"]]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
