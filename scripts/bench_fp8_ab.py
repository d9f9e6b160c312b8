"""A/B of the fp8 prefill switches in one process: per 7B shape (wqkv, wo, w13, w2) and M rows, gemm_quant's fp8
"lt" op (gpu/gemm_quant_lt.py) captured under each setting
    base  = CUGRAPHLLM_FP8_OUTER_SCALE=0, tuning off   (the path before these switches: f32 d + scale epilogue)
    tune  = outer scale off, tuning on                 (gpu/gemm_tune.py fp8_matmul: fastest of 8 heuristic algos)
    outer = outer scale on, tuning off                 (cuBLASLt applies sa, sw: x += directly / T D + epilogue)
    both  = outer scale on, tuning on
and the fp16 op (gemm.py auto) for reference. Timing as scripts/bench_gemm.py: R calls captured into one graph over
rotating weight copies (> L2 together), all graphs of one (shape, M) replayed in interleaved rounds, median / R.
Each row records, per setting, whether the scaled product ran and the tuned choices (gemm_tune.report()); the summary
per M sums the four matrices of a layer (x 32 layers in ms). Weights are random packed codes.
Usage: python3 -m scripts.bench_fp8_ab [--ms 128,512] [--dtype float16] [--out benchmarks/results/fp8_ab_<date>.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os

import numpy as np

from scripts.bench_gemm import SHAPES, _graph, _interleaved_us, _op_call, _operands, environment, sweep
from scripts.bench_quant_prefill import _packed, _qop_call

SETTINGS = {"base": (False, False), "tune": (False, True), "outer": (True, False), "both": (True, True)}
FP16_TUNE = os.environ.get("CUGRAPHLLM_GEMM_TUNE", "1") != "0"
OUT = {"residual": ("float32", True), "silu": (None, False), "qkv": (None, False)}  # D of the scaled product


def apply(outer: bool, tune: bool) -> None:
    """The switches for the next eager (tuning) call and capture; earlier graphs keep what they captured."""
    from cugraphllm.gpu import gemm_tune
    os.environ["CUGRAPHLLM_FP8_OUTER_SCALE"] = "1" if outer else "0"
    os.environ["CUGRAPHLLM_FP8_OUTER_MIN_ROWS"] = "0"  # the product each setting names, at every M
    gemm_tune.TUNE = tune
    gemm_tune.forget_fp8()


def bench_shape(name, M, dtype, stream):
    import cupy as cp
    from cugraphllm.gpu import gemm_quant_lt, gemm_tune
    op, K, N = SHAPES[name]
    d = _operands(op, M, K, N, dtype)
    apply(False, FP16_TUNE)  # the fp16 reference always as the process started (CUGRAPHLLM_GEMM_TUNE)
    graphs = {"fp16": _graph(stream, _op_call(op, d, "auto"), d["n"])}
    ws = [_packed("fp8", N, K, 10 + i) for i in range(max(2, int(np.ceil(200e6 / (N * K)))))]
    row = {"shape": name, "op": op, "M": M, "K": K, "N": N}
    out, acc = OUT[op]
    for s, (outer, tune) in SETTINGS.items():
        apply(outer, tune)
        graphs[s] = _graph(stream, _qop_call(op, d, ws, "lt"), len(ws))
        row[f"{s}_scaled"] = bool(gemm_quant_lt.scaled(out or dtype, acc, ws[0], cp.zeros(M, cp.float32), M))
        row[f"{s}_tuned"] = [r for r in gemm_tune.report() if r["dtype"] == "e4m3"]
    row.update({k: round(us, 2) for k, us in _interleaved_us(stream, graphs).items()})
    del graphs, d, ws
    cp.get_default_memory_pool().free_all_blocks()
    return row


def _summary(res, M):
    rows = [r for r in res["rows"] if r["M"] == M]
    s = {"M": M}
    for k in ("fp16", *SETTINGS):
        t = sum(r[k] for r in rows)
        s[f"layer_{k}_us"] = round(t, 1)
        s[f"model_32_layers_{k}_ms"] = round(32 * t / 1000, 3)
    for k in SETTINGS:
        s[f"{k}_speedup_vs_base"] = round(s["layer_base_us"] / s[f"layer_{k}_us"], 3)
    res.setdefault("summary", []).append(s)
    print("  summary", json.dumps(s), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ms", default="128,512", help="comma list of row counts M")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--out", default=f"benchmarks/results/fp8_ab_{datetime.date.today().isoformat()}.json")
    args = ap.parse_args()
    import cupy as cp
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import cublaslt, gemm, gemm_quant, gemm_quant_lt, gemm_tune
    ms = [int(m) for m in args.ms.split(",")]
    stream = cp.cuda.Stream(non_blocking=True)
    cfg = ModelConfig.from_preset("llama-2-7b")
    gemm.prepare(max(ms), max(cfg.qkv_dim, 2 * cfg.hidden_dim), args.dtype)
    with stream:
        gemm_quant.allocate(cfg, "fp8", max(ms), args.dtype)
        probes = gemm_quant_lt.probe(args.dtype)
    env = environment()
    env.update(cublaslt=cublaslt.version(), cc=cublaslt._cc(cp.cuda.Device().id), outer_scale_probe=probes,
               tune_algos=gemm_tune.TUNE_ALGOS, tune_reps=gemm_tune.REPS, settings=SETTINGS)
    res = {"env": env, "dtype": args.dtype, "rows": []}
    print(json.dumps(env), flush=True)

    def line(row):
        return "  ".join(f"{k} {row[k]:.1f}" for k in ("fp16", *SETTINGS)) + "  scaled " + " ".join(
            f"{k}={int(row[f'{k}_scaled'])}" for k in SETTINGS)
    sweep(res, ms, lambda name, M: bench_shape(name, M, args.dtype, stream), line, _summary, args.out)


if __name__ == "__main__":
    main()
