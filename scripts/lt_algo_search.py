"""cuBLASLt configurations OUTSIDE the heuristic's list for the 7B prefill GEMMs (issue #13 item 3: >= 80% of the
~790 TFLOP/s tensor peak at 512 rows on an H200).

Per shape (x [M, K] @ W [N, K].T, our [out, in] weights, set up exactly as LtHandle.matmul16: fp16 operands, wqkv /
w13 into an fp16 output, wo / w2 accumulated into the f32 residual with beta = 1, as prefill does):
 1. GemmEx and the heuristic's first 8 algorithms (LtHandle.algos, gemm_tune's candidates);
 2. every algorithm id (cublasLtMatmulAlgoGetIds), its capabilities, the configurations they allow
    (gpu/cublaslt_search.enumerate_configs: tile x stages x split-K x swizzle x cluster shape, pruned and ordered,
    at most --max-configs), each set and checked (cublasLtMatmulAlgoCheck; workspace <= LtHandle's 32 MiB), run once
    and compared with the heuristic's first algorithm (max |diff| / max |ref| < 1e-2, NaN-poisoned output first),
    then timed in chunks of CHUNK (gemm_tune's method: an L2 flush before each run, CUDA events, everything queued
    before one synchronize, rounds interleaving the configs, median of --reps) until --seconds run out;
 3. a final interleaved round (--final-reps) of GemmEx, the 8 heuristic algorithms and the --final best searched
    configurations: the reported times come from this round only.

    python3 -m scripts.lt_algo_search [--ms 128,512] [--shapes wqkv,wo,w13,w2] [--seconds 25] [--max-configs 3000]
        [--clusters 0,2,3,5] [--out benchmarks/results/lt_algo_search_DATE.json]

Whole run with the defaults: 8 shapes x (--seconds + ~3 s of setup and final round): about 4 minutes on an H200.
The JSON (written after each shape) carries scripts/bench_kernels.environment(); a table is printed at the end.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from cugraphllm.gpu import cublaslt_search as ls

SHAPES = {"wqkv": (12288, 4096, False), "wo": (4096, 4096, True), "w13": (22016, 4096, False),
          "w2": (4096, 11008, True)}  # name: (N, K, accumulate into f32)
PEAK = 790.0      # TFLOP/s, the H200's dense fp16 tensor peak the issue measures against
HEUR = 8          # heuristic algorithms timed (gemm_tune.TUNE_ALGOS)
TOL = 1e-2        # max |diff| / max |ref| against the heuristic's first algorithm
CHUNK = 48        # configurations per screening round


# ---- report (pure) ---------------------------------------------------------------------------------------
def tflops(M: int, N: int, K: int, ms: float) -> float:
    return 2.0 * M * N * K / (ms * 1e-3) / 1e12


def entry(M: int, N: int, K: int, ms: float | None, peak: float, **extra) -> dict | None:
    """{ms, tflops, pct_peak, ...} of one timed candidate; None when it was not timed."""
    if ms is None:
        return None
    tf = tflops(M, N, K, ms)
    return {"ms": round(ms, 5), "tflops": round(tf, 1), "pct_peak": round(100.0 * tf / peak, 1), **extra}


def shape_report(name: str, M: int, N: int, K: int, accumulate: bool, final: dict, heur_cfgs: list,
                 searched: list, counts: dict, peak: float = PEAK) -> dict:
    """One shape's JSON row. final: {"gemmex" | ("heur", i) | ("search", j): median ms of the final round};
    heur_cfgs: the heuristic algorithms' Config; searched: the finalists' Config, in ("search", j) order."""
    heur = [entry(M, N, K, final.get(("heur", i)), peak, index=i, config=c.describe())
            for i, c in enumerate(heur_cfgs)]
    heur = [h for h in heur if h]
    srch = [entry(M, N, K, final.get(("search", j)), peak, config=c.describe(),
                  same_as_heuristic=next((i for i, h in enumerate(heur_cfgs) if h == c), None))
            for j, c in enumerate(searched)]
    srch = sorted((s for s in srch if s), key=lambda s: s["ms"])
    best_h = min(heur, key=lambda h: h["ms"], default=None)
    row = {"shape": name, "M": M, "N": N, "K": K, "out": "float32 (beta 1)" if accumulate else "float16",
           "gemmex": entry(M, N, K, final.get("gemmex"), peak), "heuristic0": heur[0] if heur else None,
           "best_heuristic": best_h, "best_search": srch[0] if srch else None, "finalists": srch, "counts": counts}
    base = best_h["ms"] if best_h else None
    row["search_speedup_vs_best_heuristic"] = round(base / srch[0]["ms"], 4) if base and srch else None
    return row


def _cell(e: dict | None) -> str:
    return f"{e['ms'] * 1e3:8.1f} {e['tflops']:6.1f} {e['pct_peak']:5.1f}%" if e else f"{'-':>22s}"


def format_table(rows: list[dict]) -> str:
    """The printed summary: per shape GemmEx, heuristic #0, best of 8 heuristic, best searched (us, TFLOP/s, %
    of peak) and the searched winner's configuration."""
    head = (f"{'shape':5s} {'M':>4s} {'N':>6s} {'K':>6s} | {'gemmex us   TF/s  peak':>22s} | "
            f"{'heur0':>22s} | {'best heur':>22s} | {'best search':>22s} | config")
    lines = [head, "-" * len(head)]
    for r in rows:
        bs = r["best_search"]
        cfg = "" if not bs else (f"id{bs['config']['algo_id']} {bs['config']['tile_name']} "
                                 f"{bs['config']['stages_name']} sk{bs['config']['splitk']} "
                                 f"sw{bs['config']['swizzle']} cl {bs['config']['cluster_name']}")
        lines.append(f"{r['shape']:5s} {r['M']:4d} {r['N']:6d} {r['K']:6d} | {_cell(r['gemmex'])} | "
                     f"{_cell(r['heuristic0'])} | {_cell(r['best_heuristic'])} | {_cell(bs)} | {cfg}")
    return "\n".join(lines)


# ---- command line ----------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (no usage block)
        print(f"lt_algo_search: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _ints(text: str, what: str, ok) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {text!r} is not a comma list of integers") from None
    bad = [v for v in vals if not ok(v)]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"{what}: {bad or text!r} out of range")
    return vals


def parse_args(argv=None) -> argparse.Namespace:
    ap = _Parser(description=__doc__.split("\n")[0])
    ap.add_argument("--ms", default="128,512", type=lambda t: _ints(t, "--ms", lambda v: 1 <= v <= 65536))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--seconds", type=float, default=25.0, help="screening time per shape")
    ap.add_argument("--max-configs", type=int, default=3000, help="configurations enumerated per shape")
    ap.add_argument("--splitk", default="1,2,3,4", type=lambda t: _ints(t, "--splitk", lambda v: 1 <= v <= 16))
    ap.add_argument("--clusters", default="0,2,3,5", help="cublasLtClusterShape_t ids: "
                    + ", ".join(f"{k} {v}" for k, v in ls.CLUSTER_NAMES.items()),
                    type=lambda t: _ints(t, "--clusters", lambda v: v in ls.CLUSTER_NAMES))
    ap.add_argument("--all-reductions", action="store_true", help="every supported split-K reduction scheme")
    ap.add_argument("--reps", type=int, default=5, help="screening runs per configuration")
    ap.add_argument("--final", type=int, default=6, help="searched configurations in the final round")
    ap.add_argument("--final-reps", type=int, default=25)
    ap.add_argument("--peak", type=float, default=PEAK)
    ap.add_argument("--out", type=Path,
                    default=Path(f"benchmarks/results/lt_algo_search_{datetime.date.today().isoformat()}.json"))
    args = ap.parse_args(argv)
    args.shapes = tuple(args.shapes.split(","))
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        ap.error(f"--shapes: unknown {unknown} (known: {', '.join(SHAPES)})")
    for name in ("seconds", "max_configs", "reps", "final", "final_reps", "peak"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from scripts.bench_kernels import gpu_missing
    if gpu_missing("lt_algo_search"):
        return 2
    from scripts import lt_algo_search_gpu as gpu
    from scripts.bench_kernels import environment
    from cugraphllm.gpu import cublaslt
    doc = {"env": environment(), "cublaslt_version": cublaslt.version(), "peak_tflops": args.peak,
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "rows": []}
    print(json.dumps(doc["env"]), "cuBLASLt", doc["cublaslt_version"], flush=True)
    for M in args.ms:
        for name in args.shapes:
            N, K, acc = SHAPES[name]
            t0 = time.monotonic()
            final, heur, searched, counts = gpu.search_shape(M, N, K, acc, args, doc["env"]["sm_count"])
            row = shape_report(name, M, N, K, acc, final, heur, searched, counts, args.peak)
            row["wall_s"] = round(time.monotonic() - t0, 1)
            doc["rows"].append(row)
            print(format_table([row]).splitlines()[-1], f" [{counts}]", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(doc, indent=1))  # after each shape: a crash keeps the finished ones
    print(format_table(doc["rows"]))
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
