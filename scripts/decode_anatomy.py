"""Anatomy of one decode step (issue #13, items 1 and 5): microseconds, bytes and % of the copy rate of every
kernel, the whole step as a graph replay, the idle time between kernels, and bf16 against fp16 per op.

LLaMA-2-7B shapes, dummy weights, hybrid engine (every bucket compiled, every graph captured), per dtype and per
position p (the step attends keys 0..p). Per op:
- kernel_us: single launches queued behind a spin kernel, CUDA events between them (the host has queued them all
  before the GPU reaches the first, so no host time is inside): the kernel alone, plus an event record;
- graph_us: a captured graph of CALLS back-to-back launches of the op, per launch (kernel + one launch gap, as in
  the decode graph). Layer ops cycle over the 32 layers' weights, so no launch finds its weights in L2;
- bytes: what the op must move at least (weights, K/V rows 0..p, activations read, outputs written), and
  pct_copy = bytes / kernel_us against the measured device-to-device copy rate.
The step: the engine's decode graph for p (greedy, and sampling at T 0.8 / top-p 0.9) replayed REPS times;
idle_us = step_us - sum(count * kernel_us): the time no kernel of the step runs (launch gaps, ramp-up/tail).
floor_us = all bytes of the step at the copy rate. bf16_over_fp16: kernel_us ratio per op and of the step.

    python3 -m scripts.decode_anatomy [--dtypes float16,bfloat16] [--pos 10,500,3900] [--out FILE]
    python3 -m scripts.decode_anatomy --gemv-min-blocks 0 --out B.json   # A/B: GEMV registers as before
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import sys
from pathlib import Path

import numpy as np

from cugraphllm.gpu.state import Residual

try:  # one timing harness with the kernel bench; `python3 -m scripts.decode_anatomy` or the file itself
    from scripts.bench_kernels import CALLS, REPS, copy_gbps, environment, graph_us
except ImportError:
    from bench_kernels import CALLS, REPS, copy_gbps, environment, graph_us

SPIN_SRC = r"""
extern "C" __global__ void spin(unsigned long long ns) {  // holds the stream while the host queues launches
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
"""
SPIN_NS = 3_000_000  # 3 ms: longer than the host needs to queue CALLS launches


def kernel_us(stream, fn, n: int = CALLS) -> float:
    """Median microseconds of fn(i) launched alone, i = 0..n-1, behind a spin kernel (module docstring)."""
    import cupy as cp
    spin = cp.RawKernel(SPIN_SRC, "spin")
    fn(0)  # compile and load outside the measurement
    times = []
    with stream:
        for _ in range(3):
            ev = [cp.cuda.Event() for _ in range(n + 1)]
            spin((1,), (1,), (np.uint64(SPIN_NS),))
            ev[0].record(stream)
            for i in range(n):
                fn(i)
                ev[i + 1].record(stream)
            ev[-1].synchronize()
            times += [cp.cuda.get_elapsed_time(ev[i], ev[i + 1]) for i in range(n)]
    return 1000 * float(np.median(times))


def op_table(e, p: int, n0, logits_sets):
    """name -> (launch(i), launches per step, bytes per launch) for the decode step at position p."""
    from cugraphllm.gpu import ops
    c, w, s, kv, attn = e.config, e.w, e.s, e.kv, e.attn
    D, F, V, L, b = c.dim, c.hidden_dim, c.vocab_size, c.n_layers, 2  # b: bytes per stored element
    x, xn, q, att, h, eps = s.x[:1], s.xn[:1], s.q[:1], s.att[:1], s.h[:1], c.norm_eps
    bucket = attn.bucket_for(p + 1, "decode")
    lw = [w.layers[i % L] for i in range(L)]
    layer = [kv.layer(i) for i in range(L)]
    act = 4 * D + b * D                                      # x read or written (f32) + T(x)
    table = {
        "embedding": (lambda i: ops.embedding(Residual(x, xn, s.ss), w.tok_embeddings, s.token), 1, b * D + act),
        "wqkv+norm+rope": (lambda i: ops.norm_qkv_rope(q, Residual(x, xn, s.ss), eps, lw[i].wqkv, s.rope, *layer[i],
                                                       s.pos, s.one), L, b * (c.qkv_dim * D + D + c.qkv_dim)),
        "attention": (lambda i: attn.decode(att, q, *layer[i], s.pos, bucket), L,
                      b * (2 * (p + 1) * c.kv_dim + 2 * D)),
        "wo+ss": (lambda i: ops.matmul_residual(Residual(x, xn, s.ss), att, lw[i].wo), L,
                  b * (D * D + D) + act + 4 * D),
        "w13+norm+silu": (lambda i: ops.norm_matmul_silu(h, Residual(x, xn, s.ss), eps, lw[i].w13), L,
                          b * (2 * F * D + D + F)),
        "w2+ss": (lambda i: ops.matmul_residual(Residual(x, xn, s.ss), h, lw[i].w2), L, b * (D * F + F) + act + 4 * D),
        "logits+norm": (lambda i: ops.norm_matmul_logits(s.logits, Residual(x, xn, s.ss), eps, w.output, s.one), 1,
                        b * (V * D + D) + 4 * V),
        "argmax": (lambda i: ops.argmax(s.token, s.hist, s.pos, n0, s.logits), 1, 4 * V),
    }
    for name, lg in logits_sets.items():  # not in the greedy step: count 0, reported beside it
        table[name] = (lambda i, lg=lg: ops.sample(s.token, s.hist, s.pos, n0, lg, s.params, s.seed), 0, 12 * V)
    return table, bucket


def step_us(e, p: int, greedy: bool) -> float:
    """Median microseconds of one replay of the engine's decode graph for position p (pos reset before each)."""
    import cupy as cp
    g = e.rt.graphs[e.rt._key("decode", p + 1, greedy)]
    times = []
    with e.stream:
        for _ in range(REPS):
            e.s.pos.set(np.array([p], np.int32), stream=e.stream)
            e0, e1 = cp.cuda.Event(), cp.cuda.Event()
            e0.record(e.stream)
            g.launch(e.stream)
            e1.record(e.stream)
            e1.synchronize()
            times.append(cp.cuda.get_elapsed_time(e0, e1))
    return 1000 * float(np.median(times))


def sampler_logits(V: int) -> dict:
    """Two logits rows for the sampler rows: N(0, 2.5^2) (top-p 0.9 keeps thousands) and the same with 20 ids
    raised by 12 (a peaked, LLM-like row: the nucleus is a few ids)."""
    import cupy as cp
    from cugraphllm.gpu import ops
    rng = np.random.default_rng(0)
    flat = (rng.standard_normal(V) * 2.5).astype(np.float32)
    peaked = flat.copy()
    peaked[rng.choice(V, 20, replace=False)] += 12.0
    out = {"sample_flat": cp.asarray(flat[None]), "sample_peaked": cp.asarray(peaked[None])}
    for a in out.values():
        ops.sample_workspace(a)  # allocated before any capture
    return out


def anatomy(e, p: int, copy: float) -> dict:
    import cupy as cp
    from cugraphllm.sampling import SamplingParams
    e._set_sampling(SamplingParams(temperature=0.8, top_p=0.9, seed=1))
    e.s.token.fill(7)
    e.s.pos.fill(p)
    cp.cuda.Device().synchronize()
    n0 = cp.zeros(1, cp.int32)  # selectors with n_tokens 0 leave pos where it is
    table, bucket = op_table(e, p, n0, sampler_logits(e.config.vocab_size))
    ops_out = {}
    for name, (fn, count, nbytes) in table.items():
        k = kernel_us(e.stream, fn)
        gr = graph_us(e.stream, fn, e.config.n_layers)
        ops_out[name] = {"count": count, "kernel_us": k, "graph_us": gr, "bytes": nbytes,
                         "pct_copy": 100 * nbytes / (k * 1e-6) / (copy * 1e9)}
    e.s.pos.fill(p)
    steps = {"greedy": step_us(e, p, True), "sampling": step_us(e, p, False)}
    kern = sum(o["count"] * o["kernel_us"] for o in ops_out.values())
    total_bytes = sum(o["count"] * o["bytes"] for o in ops_out.values())
    n_kernels = sum(o["count"] for o in ops_out.values())
    return {"pos": p, "bucket": bucket, "ops": ops_out, "step_us": steps, "kernels_per_step": n_kernels,
            "sum_kernel_us": kern, "sum_graph_us": sum(o["count"] * o["graph_us"] for o in ops_out.values()),
            "idle_us": steps["greedy"] - kern, "idle_per_launch_us": (steps["greedy"] - kern) / n_kernels,
            "bytes": total_bytes, "floor_us": total_bytes / (copy * 1e9) * 1e6,
            "pct_copy": 100 * total_bytes / (steps["greedy"] * 1e-6) / (copy * 1e9)}


def run_dtype(dtype: str, positions, copy: float) -> list[dict]:
    import cupy as cp
    from cugraphllm.config import ModelConfig, RuntimeConfig
    from cugraphllm.gpu.engine import CudaEngine
    e = CudaEngine.dummy(ModelConfig.from_preset("llama-2-7b"),
                         RuntimeConfig(backend="cuda", mode="hybrid", dtype=dtype, max_seq_len=4096))
    try:
        e.wait_ready()
        rows = [anatomy(e, p, copy) for p in positions]
    finally:
        e = None
        gc.collect()
        cp.get_default_memory_pool().free_all_blocks()
    return rows


def ratios(res: dict) -> dict:
    """bf16 / fp16 kernel_us per op and step_us, per position (only when both dtypes ran)."""
    if not {"float16", "bfloat16"} <= res.keys():
        return {}
    out = {}
    for a, b in zip(res["float16"], res["bfloat16"]):
        r = {k: b["ops"][k]["kernel_us"] / a["ops"][k]["kernel_us"] for k in a["ops"]}
        r["step_greedy"] = b["step_us"]["greedy"] / a["step_us"]["greedy"]
        r["sum_kernel"] = b["sum_kernel_us"] / a["sum_kernel_us"]
        out[str(a["pos"])] = r
    return out


def print_rows(dtype: str, rows) -> None:
    for r in rows:
        print(f"{dtype} pos {r['pos']} (bucket {r['bucket']}): step {r['step_us']['greedy']:.1f} us greedy, "
              f"{r['step_us']['sampling']:.1f} sampling; kernels {r['sum_kernel_us']:.1f}; idle {r['idle_us']:.1f} "
              f"({r['idle_per_launch_us']:.2f}/launch); floor {r['floor_us']:.1f}; {r['pct_copy']:.1f}% of copy")
        for name, o in r["ops"].items():
            print(f"  {name:16} x{o['count']:<3} kernel {o['kernel_us']:8.2f} us  graph {o['graph_us']:8.2f} us  "
                  f"{o['bytes'] / 1e6:8.2f} MB  {o['pct_copy']:5.1f}% copy")


def force_gemv_define(name: str, value: int) -> None:
    """A/B switch: compile every decode GEMV with -D<name>=<value> (e.g. GEMV_MIN_BLOCKS 0, ptxas's own register
    choice, the state before the bf16 occupancy fix)."""
    from cugraphllm.gpu import ops
    plain = ops._fn

    def fn(file, kernel, tname, **defines):
        return plain(file, kernel, tname, **(dict(defines, **{name: value}) if file == "gemv.cu" else defines))
    ops._fn = fn


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Per-kernel anatomy of the 7B decode step, fp16 vs bf16.")
    ap.add_argument("--dtypes", default="float16,bfloat16", help="comma-separated: float16, bfloat16")
    ap.add_argument("--pos", default="10,500,3900", help="comma-separated positions (keys attended - 1), < 4095")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/decode_anatomy_<date>.json)")
    ap.add_argument("--gemv-min-blocks", type=int, default=None,
                    help="A/B: force GEMV_MIN_BLOCKS (0 = ptxas's own register choice, as before the bf16 fix)")
    a = ap.parse_args(argv)
    dtypes = [d for d in a.dtypes.split(",") if d]
    try:
        positions = [int(p) for p in a.pos.split(",") if p]
    except ValueError:
        positions = []
    if not positions or any(not 0 <= p < 4095 for p in positions) or not set(dtypes) <= {"float16", "bfloat16"}:
        print("decode_anatomy: --pos must be integers in [0, 4095) and --dtypes float16 and/or bfloat16",
              file=sys.stderr)
        return 2
    import cupy as cp
    if a.gemv_min_blocks is not None:
        force_gemv_define("GEMV_MIN_BLOCKS", a.gemv_min_blocks)
    doc = environment()
    doc["command"] = "python3 -m scripts.decode_anatomy " + " ".join(sys.argv[1:] if argv is None else argv)
    doc["copy_GBps"] = copy_gbps(cp.cuda.Stream(non_blocking=True))
    doc["method"] = __doc__.split("\n    python3 -m")[0]
    doc["results"] = {}
    for dt in dtypes:
        doc["results"][dt] = run_dtype(dt, positions, doc["copy_GBps"])
        print_rows(dt, doc["results"][dt])
    doc["bf16_over_fp16"] = ratios(doc["results"])
    out = Path(a.out or Path(__file__).resolve().parents[1] / "benchmarks" / "results"
               / f"decode_anatomy_{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["bf16_over_fp16"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
