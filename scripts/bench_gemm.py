"""Prefill GEMM benchmark: per 7B shape and M, our kernel (+fused epilogue), cuBLAS (ctypes) + our epilogue,
cuBLAS GemmEx alone (ctypes, T output), and cupy.matmul (eager) as the reference rate.

Timing: the op is captured R times into one CUDA graph over rotating weight copies (> L2, as successive layers
are), CUDA events around each replay, median / R. The variants of one shape are timed in interleaved rounds
(ROUNDS x one replay of each), so that clock drift under tensor-core load (M = 512 GEMMs vary by ~10% from one
minute to the next on the H100) falls on all of them alike and their ratio holds. cupy.matmul cannot be captured:
it is timed eagerly (R calls between two events, median of the batches), so at small M it may include host
launch overhead.
Usage: python3 -m scripts.bench_gemm [--out benchmarks/results/gemm_<date>.json] [--tune [--tune-only REGEX]]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
from pathlib import Path

import numpy as np


MS = (16, 32, 64, 128, 256, 512)
# name: (op, K, N)  N = GEMM output columns
SHAPES = {"wqkv": ("qkv", 4096, 12288), "wo": ("residual", 4096, 4096),
          "w13": ("silu", 4096, 22016), "w2": ("residual", 11008, 4096)}
R, REPS, ROUNDS = 20, 25, 15


def _median_ms(run, reps=REPS):
    import cupy as cp
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        run()
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b))
    return float(np.median(times))


def _graph(stream, fn, n_copies):
    """Capture R calls fn(i % n_copies) into a graph (after a warm-up call on each copy)."""
    import cupy as cp
    cp.cuda.Device().synchronize()  # operands made on the legacy stream, which `stream` does not wait for
    with stream:
        for i in range(n_copies):
            fn(i)  # warm-up: compile, cuBLAS heuristics, scratch
        stream.begin_capture()
        for i in range(R):
            fn(i % n_copies)
        g = stream.end_capture()
        g.launch()
        stream.synchronize()
    return g


def _graph_time_us(stream, fn, n_copies):
    """Median time per call in us of R captured calls."""
    g = _graph(stream, fn, n_copies)
    with stream:
        return _median_ms(g.launch) * 1000 / R


def _interleaved_us(stream, graphs: dict) -> dict:
    """{name: median us per call} over ROUNDS rounds that replay every graph in turn."""
    times = {k: [] for k in graphs}
    with stream:
        for _ in range(ROUNDS):
            for k, g in graphs.items():
                times[k].append(_median_ms(g.launch, 3) * 1000 / R)
    return {k: float(np.median(v)) for k, v in times.items()}


def operands(rng, M, K, N, dtype):
    """Activations a [M, K] and weight copies [N, K] (together > 2x L2) of one GEMM: (a, ws, number of copies)."""
    import cupy as cp
    n_copies = max(2, int(np.ceil(200e6 / (N * K * 2))))
    a = (rng.standard_normal((M, K), dtype=cp.float32)).astype(dtype)
    ws = [(rng.standard_normal((N, K), dtype=cp.float32) * np.float32(K ** -0.5)).astype(dtype)
          for _ in range(n_copies)]
    return a, ws, n_copies


def _operands(op, M, K, N, dtype):
    """Activations, weight copies (together > 2x L2) and outputs of one op."""
    import cupy as cp
    rng = cp.random.default_rng(0)
    a, ws, n_copies = operands(rng, M, K, N, dtype)
    d = dict(a=a, ws=ws, n=n_copies, c=cp.empty((M, N), dtype))
    if op == "residual":
        d["x"] = rng.standard_normal((M, N), dtype=cp.float32)
    elif op == "silu":
        d["h"] = cp.empty((M, N // 2), dtype)
    else:
        S, hd = 4096, 128
        kvd = (N - K) // 2
        from cugraphllm.reference import rope_table
        d.update(q=cp.empty((M, K), dtype), kc=cp.zeros((S, kvd // hd, hd), dtype),
                 vc=cp.zeros((S, kvd // hd, hd), dtype), rope=cp.asarray(rope_table(S, hd, 1e4).astype(np.float32)),
                 pos=cp.asarray([100], cp.int32), nt=cp.asarray([M], cp.int32))
    return d


def _op_call(op, d, impl):
    from cugraphllm.gpu import gemm
    if op == "residual":
        return lambda i: gemm.matmul_residual(d["x"], d["a"], d["ws"][i], impl=impl)
    if op == "silu":
        return lambda i: gemm.matmul_silu(d["h"], d["a"], d["ws"][i], impl=impl)
    return lambda i: gemm.qkv_rope(d["q"], d["a"], d["ws"][i], d["rope"], d["kc"], d["vc"], d["pos"], d["nt"],
                                   impl=impl)


def _rates(us, M, K, N, out_bytes):
    flops = 2.0 * M * N * K
    nbytes = N * K * 2 + M * K * 2 + out_bytes
    return {"us": round(us, 2), "tflops": round(flops / us / 1e6, 1), "gbps": round(nbytes / us / 1e3, 1)}


def bench_shape(name, M, dtype, stream, tune):
    import cupy as cp
    from cugraphllm.gpu import cublas, gemm
    op, K, N = SHAPES[name]
    d = _operands(op, M, K, N, dtype)
    out_bytes = M * N * {"residual": 8, "silu": 1, "qkv": 2}[op]  # residual reads+writes f32 x; h is [M, N/2]
    row = {"shape": name, "op": op, "M": M, "K": K, "N": N}
    gemm_only = lambda i: cublas.handle().gemm_nt(d["c"], d["a"], d["ws"][i])  # noqa: E731
    graphs = {"cublas_gemm": _graph(stream, gemm_only, d["n"]),
              "auto": _graph(stream, _op_call(op, d, "auto"), d["n"]),
              "cublas_epi": _graph(stream, _op_call(op, d, "cublas"), d["n"])}
    if M <= gemm.OWN_MAX_M:
        graphs["own"] = _graph(stream, _op_call(op, d, "own"), d["n"])
    for k, us in _interleaved_us(stream, graphs).items():
        row[k] = _rates(us, M, K, N, M * N * 2 if k == "cublas_gemm" else out_bytes)
    if M <= gemm.OWN_MAX_M and tune:
        row["own_configs"] = _tune(op, d, stream, M, K, N, out_bytes, tune if isinstance(tune, str) else "")
    with stream:
        wt = [w.T for w in d["ws"]]
        cp.matmul(d["a"], wt[0], out=d["c"])
        k = [0]

        def eager():
            for _ in range(R):
                k[0] = (k[0] + 1) % d["n"]
                cp.matmul(d["a"], wt[k[0]], out=d["c"])
        row["cupy_matmul"] = _rates(_median_ms(eager, 10) * 1000 / R, M, K, N, M * N * 2)
    return row


# own-kernel configs (WM, WK, STAGES[, RT, XS, PF, WS, PR]) that --tune times; named WMxWKxSTAGES, + "r<RT>",
# "s" (XS), "p<PF>", "w" (WS 1) or "w<WS>" (row loads), "q" (PR)
TUNE_CONFIGS = ((2, 4, 2), (2, 8, 2), (2, 2, 2), (4, 2, 2), (4, 4, 2), (1, 8, 2), (1, 16, 2), (2, 4, 3),
                (2, 8, 3), (2, 2, 3), (4, 2, 3), (1, 8, 3), (2, 4, 4), (2, 16, 2),
                # RT = 2 row tiles per warp (x loads per weight byte halved)
                (1, 4, 2, 2, 0), (1, 8, 2, 2, 0), (1, 16, 2, 2, 0), (2, 2, 2, 2, 0), (2, 4, 2, 2, 0), (2, 8, 2, 2, 0),
                # XS: x in a shared-memory ring (cp.async), RT 1 and 2
                (2, 4, 2, 1, 1), (2, 8, 2, 1, 1), (4, 2, 2, 1, 1), (4, 4, 2, 1, 1), (2, 4, 3, 1, 1), (4, 2, 3, 1, 1),
                (1, 8, 2, 2, 1), (2, 2, 2, 2, 1), (2, 4, 2, 2, 1), (2, 8, 2, 2, 1), (4, 2, 2, 2, 1), (2, 4, 3, 2, 1),
                # PF: L2 prefetch hint (1: 128 B, 2: 256 B) on the best configs of the H200 sweep and on RT = 2
                (2, 4, 2, 1, 0, 1), (2, 4, 2, 1, 0, 2), (1, 8, 2, 1, 0, 2), (2, 2, 2, 1, 0, 2), (2, 16, 2, 1, 0, 2),
                (1, 8, 2, 2, 0, 2), (2, 4, 2, 2, 0, 2), (2, 4, 2, 2, 1, 2),
                # WS: W through a per-warp cp.async ring (whole 128-byte row segments per request), with XS / RT / PF
                (2, 4, 2, 1, 0, 0, 1), (2, 2, 3, 1, 0, 0, 1), (2, 2, 4, 1, 0, 0, 1), (1, 4, 4, 1, 0, 0, 1),
                (2, 2, 3, 1, 1, 0, 1), (2, 2, 2, 2, 1, 0, 1), (1, 4, 3, 1, 0, 2, 1), (2, 2, 3, 1, 1, 2, 1),
                (1, 2, 4, 2, 0, 0, 1), (1, 2, 3, 2, 0, 2, 1), (1, 8, 2, 1, 0, 2, 1),
                # PR: one barrier for the K-group reduction (the WK-turn reduction ends every block)
                (2, 4, 2, 1, 0, 0, 0, 1), (2, 8, 2, 1, 0, 0, 0, 1), (2, 2, 2, 1, 0, 0, 0, 1),
                (1, 8, 2, 1, 0, 0, 0, 1), (2, 16, 2, 1, 0, 0, 0, 1), (1, 16, 2, 1, 0, 0, 0, 1),
                (1, 8, 2, 2, 0, 0, 0, 1), (2, 4, 2, 2, 0, 0, 0, 1), (2, 2, 3, 1, 1, 0, 1, 1), (2, 8, 2, 1, 0, 2, 0, 1),
                # WS 2 / 3 / 4: row loads (1 / 2 / 4 whole rows a warp load, kernels/gemm_rowload.cuh)
                (1, 4, 2, 1, 0, 0, 2, 1), (2, 2, 2, 1, 0, 0, 2), (1, 5, 2, 1, 0, 0, 2, 1), (1, 4, 2, 1, 0, 2, 2, 1),
                (1, 8, 2, 1, 0, 0, 3, 1), (2, 4, 2, 1, 0, 0, 3), (1, 8, 2, 1, 0, 2, 3, 1), (2, 4, 2, 1, 0, 1, 3),
                (1, 10, 2, 1, 0, 0, 3), (1, 16, 2, 1, 0, 0, 4, 1), (2, 8, 2, 1, 0, 0, 4), (1, 16, 2, 1, 0, 0, 4),
                (2, 4, 2, 1, 0, 0, 4))


def _cfg_name(cfg):
    from cugraphllm.gpu.gemm import full_config
    wm, wk, st, rt, xs, pf, ws, pr = full_config(cfg)
    return (f"{wm}x{wk}x{st}" + (f"r{rt}" if rt != 1 else "") + ("s" if xs else "") + (f"p{pf}" if pf else "")
            + ("w" if ws == 1 else f"w{ws}" if ws else "") + ("q" if pr else ""))


def _tune(op, d, stream, M, K, N, out_bytes, only: str = ""):
    """{config name: us} of TUNE_CONFIGS (those whose name matches the regular expression `only`, if given)."""
    from cugraphllm.gpu import gemm
    saved, out = dict(gemm.OWN_CONFIG), {}
    nt = (M + 7) // 8
    for cfg in TUNE_CONFIGS:
        if only and not re.search(only, _cfg_name(cfg)):
            continue
        if gemm.own_config_ok(op, gemm.full_config(cfg), nt):
            continue  # not buildable for this op / NT (odd tiles for silu, XS ring over 48 KiB)
        gemm.OWN_CONFIG[(op, nt)] = cfg
        try:
            us = _graph_time_us(stream, _op_call(op, d, "own"), d["n"])
            out[_cfg_name(cfg)] = round(us, 2)
        except Exception as exc:  # e.g. too many registers for the block size
            out[_cfg_name(cfg)] = f"error: {exc}"[:120]
    gemm.OWN_CONFIG.clear()
    gemm.OWN_CONFIG.update(saved)
    return out


def copy_bandwidth():
    import cupy as cp
    a = cp.ones(1 << 29, cp.uint8)
    b = cp.empty_like(a)
    ms = _median_ms(lambda: cp.copyto(b, a), 10)
    return round(2 * a.nbytes / ms / 1e6, 1)  # GB/s, bytes read + written


def environment():
    import cupy as cp
    props = cp.cuda.runtime.getDeviceProperties(0)
    return {"device": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            "sms": props["multiProcessorCount"], "driver": cp.cuda.runtime.driverGetVersion(),
            "runtime": cp.cuda.runtime.runtimeGetVersion(), "cupy": cp.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds")}


def _summary(res, M):
    """7B layer = wqkv + wo + w13 + w2 at this M: gemm.py's pick (auto) against cuBLAS GEMM alone, x32 layers."""
    rows = [r for r in res["rows"] if r["M"] == M]
    auto = sum(r["auto"]["us"] for r in rows)
    gemm_only = sum(r["cublas_gemm"]["us"] for r in rows)
    s = {"M": M, "layer_auto_us": round(auto, 1), "layer_cublas_gemm_us": round(gemm_only, 1),
         "model_32_layers_ms": round(32 * auto / 1000, 2),
         "auto_vs_cublas_gemm": {r["shape"]: round(r["cublas_gemm"]["us"] / r["auto"]["us"], 3) for r in rows}}
    res.setdefault("summary", []).append(s)
    print("  summary", json.dumps(s), flush=True)


def sweep(res, ms, row_of, line, summary, out):
    """Every (M, shape): row_of(name, M) appended to res["rows"] and printed (line(row)), summary(res, M) after
    each M; res written to out as JSON."""
    for M in ms:
        for name in SHAPES:
            row = row_of(name, M)
            res["rows"].append(row)
            print(f"M={M:4d} {name:5s} " + line(row), flush=True)
        summary(res, M)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(res, indent=1))
    print("wrote", out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"benchmarks/results/gemm_{datetime.date.today().isoformat()}.json")
    ap.add_argument("--tune", action="store_true", help="also time other (WM, WK) configs of our kernel")
    ap.add_argument("--tune-only", metavar="REGEX", default="",
                    help="with --tune: only the configs whose name matches (e.g. 'w[234]' for the row loads)")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--ms", default=",".join(map(str, MS)), help="comma list of row counts M")
    args = ap.parse_args()
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    res = {"env": environment(), "dtype": args.dtype, "copy_gbps": copy_bandwidth(), "rows": []}
    print(json.dumps(res["env"]), "copy GB/s", res["copy_gbps"], flush=True)

    def row_of(name, M):
        row = bench_shape(name, M, args.dtype, stream, (args.tune_only or True) if args.tune else False)
        cp.get_default_memory_pool().free_all_blocks()
        return row

    def line(row):
        own = row.get("own", {})
        return (f"auto {row['auto']['us']:8.1f} own {own.get('us', '-'):>8} us  cublas+epi "
                f"{row['cublas_epi']['us']:8.1f} gemm {row['cublas_gemm']['us']:8.1f} "
                f"({row['cublas_gemm']['tflops']:6.1f} TF) cupy {row['cupy_matmul']['us']:8.1f}  "
                f"tune {row.get('own_configs', '')}")

    sweep(res, [int(m) for m in args.ms.split(",")], row_of, line, _summary, args.out)


if __name__ == "__main__":
    main()
