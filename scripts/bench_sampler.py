"""Sampler benchmark (issue #13, "sampling in the graph"): ops.sample captured CALLS times back to back in one CUDA
graph (as in the decode graph: launch gaps included), CUDA events around each replay, median of REPS replays / CALLS
= microseconds per call. V 32000 (LLaMA-2) and 128256 (LLaMA-3); flat (randn) and peaked (randn * 8) logits; T 0.8
with top-p 0.9, T 0.8 with top-k 40, and argmax for reference; one row with a repetition penalty read from pinned
host memory (the engine's hist). Every row records the token chosen (n_tokens = 0 keeps the position, so every
call of a replay draws the same token). Each sampler implementation (ops_select.SAMPLER: new = v3, the
sample_draw_v3 kernel; v2; old = v1) is captured and timed in the same process, and `same_token` says whether they
agree.

    python3 -m scripts.bench_sampler [--samplers new,v2,old] [--ko 1,2,3,4,5] [--calls 200] [--reps 20] [--out FILE]

--ko adds rows of the v3 sampler stopped after a phase (ops_select.KO, kernels/sampling_v3.cuh SAMPLE_KO; bench
only): 1 the prep and an empty draw, 2 + the partials' merge, 3 + the binning, 4 + the ticket, 5 the prep alone.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from scripts import bench_kernels
from scripts.bench_kernels import environment

CALLS, REPS = 200, 20
VOCABS = (32000, 128256)
CASES = {  # name -> (temperature, top_p, repetition_penalty, top_k); None: argmax
    "argmax": None,
    "T0.8_topp0.9": (0.8, 0.9, 1.0, 0),
    "T0.8_topk40": (0.8, 1.0, 1.0, 40),
}
PEN_CASE = ("T0.8_topp0.9_pen1.2_pinned_hist", (0.8, 0.9, 1.2, 0))  # V 32000, flat, position 1000


def graph_us(stream, fn, calls: int, reps: int) -> float:
    """Median microseconds per call of fn() over a captured graph of `calls` calls (bench_kernels.graph_us)."""
    return bench_kernels.graph_us(stream, lambda i: fn(), 1, calls, reps)


def case_rows(stream, sampler: str, V: int, kind: str, logits, calls: int, reps: int) -> list[dict]:
    import cupy as cp
    from cugraphllm.gpu import ops, ops_select
    name, _, ko = sampler.partition(":ko")
    ops_select.SAMPLER, ops_select.KO = name, int(ko or 0)  # read at every launch, so at capture
    tok, hist = cp.full(1, -1, cp.int32), cp.zeros(4097, cp.int32)
    pos, n0, seed = cp.asarray([1000], dtype=cp.int32), cp.zeros(1, cp.int32), cp.asarray([1], dtype=cp.uint64)
    rows = []
    for name, p in CASES.items():
        if p is None:
            fn = lambda: ops.argmax(tok, hist, pos, n0, logits)  # noqa: E731
        else:
            params = cp.asarray(np.array(p, np.float32))
            fn = lambda params=params: ops.sample(tok, hist, pos, n0, logits, params, seed)  # noqa: E731
        us = graph_us(stream, fn, calls, reps)
        rows.append(dict(sampler=sampler, V=V, logits=kind, case=name, us=us, token=int(tok.get()[0])))
    if V == VOCABS[0] and kind == "flat":
        from cugraphllm.gpu.state import pinned_int32
        hist_host, hist_pinned, _mem = pinned_int32(4097)
        hist_host[:] = np.arange(4097) * 7 % V  # distinct ids: the penalty bitset is dense
        params = cp.asarray(np.array(PEN_CASE[1], np.float32))
        us = graph_us(stream, lambda: ops.sample(tok, hist_pinned, pos, n0, logits, params, seed), calls, reps)
        rows.append(dict(sampler=sampler, V=V, logits=kind, case=PEN_CASE[0], us=us, token=int(tok.get()[0])))
    return rows


def run(samplers=("new", "v2", "old"), calls: int = CALLS, reps: int = REPS) -> dict:
    import cupy as cp
    from cugraphllm.gpu import ops, ops_select, pdl  # noqa: F401  (ops first: it imports ops_select)
    doc = environment()
    doc["method"] = f"graph of {calls} back-to-back calls, CUDA events, median of {reps} replays / calls"
    doc["pdl"] = pdl.PDL
    stream = cp.cuda.Stream(non_blocking=True)
    rng = np.random.default_rng(0)
    keep, rows = (ops_select.SAMPLER, ops_select.KO), []
    try:
        for V in VOCABS:
            base = rng.standard_normal((1, V)).astype(np.float32)
            for kind, scale in (("flat", 1.0), ("peaked", 8.0)):
                logits = cp.asarray(base * np.float32(scale))
                for s in samplers:
                    rows += case_rows(stream, s, V, kind, logits, calls, reps)
    finally:
        ops_select.SAMPLER, ops_select.KO = keep
    tokens: dict = {}
    for r in rows:
        if ":ko" not in r["sampler"]:  # a knocked-out draw chooses no token
            tokens.setdefault((r["V"], r["logits"], r["case"]), set()).add(r["token"])
    for r in rows:
        r["same_token"] = len(tokens.get((r["V"], r["logits"], r["case"]), ())) == 1 or ":ko" in r["sampler"]
    doc["rows"] = rows
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samplers", default="new,v2,old", help="comma-separated: new (v3), v2, old (v1)")
    ap.add_argument("--ko", default="", help="comma-separated knockouts 1-5 of the v3 sampler (rows new:koN)")
    ap.add_argument("--calls", type=int, default=CALLS)
    ap.add_argument("--reps", type=int, default=REPS)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/sampler_<date>.json)")
    a = ap.parse_args(argv)
    ko_args = [k.strip() for k in a.ko.split(",") if k.strip()]
    kos = tuple(int(k) for k in ko_args if k in ("1", "2", "3", "4", "5"))
    samplers = tuple(s for s in a.samplers.split(",") if s)
    from cugraphllm.gpu import ops  # noqa: F401  (ops first: it imports ops_select)
    from cugraphllm.gpu.ops_select import KERNELS
    if not samplers or any(s not in KERNELS for s in samplers) or a.calls < 1 or a.reps < 1 or len(kos) < len(ko_args):
        print(f"bench_sampler: --samplers must name some of {sorted(KERNELS)}; --ko values 1-5; --calls, --reps >= 1",
              file=sys.stderr)
        return 2
    doc = run(samplers + tuple(f"new:ko{k}" for k in kos), a.calls, a.reps)
    out = Path(a.out or Path(__file__).resolve().parents[1] / "benchmarks" / "results"
               / f"sampler_{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"{doc['device']}  PDL {doc['pdl']}  {doc['method']}")
    for r in doc["rows"]:
        print(f"{r['sampler']:8} V {r['V']:6} {r['logits']:6} {r['case']:32} {r['us']:7.2f} us  token {r['token']:6}"
              f"{'' if r['same_token'] else '  TOKENS DIFFER'}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
