"""Kernels for Nsight Compute (issue #10, #13): every decode GEMV of one LLaMA-2-7B layer (or --preset's) and the LM
head in one weight format, launched eagerly REPS times each, then (with --sample) the device sampler on 32000 random logits.
Run it under ncu, which picks the launches (-k, --launch-skip / --launch-count) and reads the counters:

  ncu --clock-control none -k regex:'gemv|sample' --launch-skip 5 --launch-count 40 \
      --section SpeedOfLight --section WarpStateStats python3 -m scripts.ncu_decode --format int4

QuantPlan fields can be replaced for the run (--plan mma=1,ksplit=2), as bench_quant's sweeps do.
Nothing is timed here: ncu's own durations and counters are the output.
"""
from __future__ import annotations

import argparse

import numpy as np

from scripts import bench_kernels as bk
from scripts import quant_knockout as qk
from scripts.bench_quant import case, mats, weight_copies


def gemvs(fmt: str, reps: int, preset: str = "llama-2-7b", only=None) -> None:
    """REPS launches of each decode GEMV of `preset` (only: the matrix names to run, bench_quant's)."""
    cp = bk._cp()
    for name, (op, N, K) in mats(preset)[0].items():
        if only and name not in only:
            continue
        wfmt = "fp16" if name.startswith("logits") else fmt
        ws, _ = weight_copies(wfmt, N, K, cp.float16, 128, name)
        fn, _ = case(op, N, K, ws, cp.float16)
        for i in range(reps):
            fn(i % len(ws))
        cp.cuda.Device().synchronize()
        del ws, fn
        cp.get_default_memory_pool().free_all_blocks()


def sampler(reps: int) -> None:
    """ops.sample on 7B-vocabulary logits: temperature 0.8, top-p 0.9 (the CLI's sampling run), flat and peaked."""
    cp = bk._cp()
    from cugraphllm.gpu import ops
    V = 32000
    token, hist = cp.zeros(1, cp.int32), cp.zeros(4097, cp.int32)
    pos, n = cp.asarray([500], cp.int32), cp.ones(1, cp.int32)
    params = cp.asarray([0.8, 0.9, 1.0, 0.0], cp.float32)
    seed = cp.asarray([7], cp.uint64)
    for spread in (1.0, 6.0):  # flat (sd 1), peaked (sd 6)
        logits = cp.asarray(np.random.default_rng(3).standard_normal((1, V)).astype(np.float32) * spread)
        ops.sample_workspace(logits)
        for _ in range(reps):
            pos[0] = 500
            ops.sample(token, hist, pos, n, logits, params, seed)
            ops.argmax(token, hist, pos, n, logits)
    cp.cuda.Device().synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", default="int4", help="fp16, fp8, int8 or int4 (default int4)")
    ap.add_argument("--plan", default={}, type=qk._plan, help="QuantPlan fields to replace, e.g. mma=1,ksplit=2")
    ap.add_argument("--reps", type=int, default=8, help="launches per kernel (default 8)")
    ap.add_argument("--sample", action="store_true", help="also run the device sampler and argmax")
    ap.add_argument("--no-gemv", action="store_true", help="skip the GEMVs")
    ap.add_argument("--preset", default="llama-2-7b", help="the model whose GEMV shapes run (default llama-2-7b)")
    ap.add_argument("--matrices", default=None, help="comma list of bench_quant matrix names (default: all five)")
    a = ap.parse_args(argv)
    if a.format != "fp16":
        qk.with_plan((a.format,), a.plan)
    if not a.no_gemv:
        gemvs(a.format, a.reps, a.preset, a.matrices.split(",") if a.matrices else None)
    if a.sample:
        sampler(a.reps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
