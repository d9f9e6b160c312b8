"""`cugraphllm bench` with per-shape 16-bit GEMV launch configs added for the run (bench only): the end-to-end A/B
of gemv_plan.GEMV_SHAPES entries, as device_lib.sh plan_bench does for the quantized plans.

    python3 -m scripts.gemv16_plan_bench "KERNEL:K:PAIRS=WARPS:UNROLL:KSPLIT;..." BENCH_ARGS..
("-" adds nothing.) The 16-bit plan reads GEMV_SHAPES at each call (gemv_plan.fp16_plan), so the entries apply
to every launch of the engine built after this.
"""
from __future__ import annotations

import sys


def apply(spec: str) -> None:
    from cugraphllm.gpu import gemv_plan
    if spec == "-":
        return
    for item in spec.split(";"):
        shape, cfg = item.split("=")
        kernel, K, pairs = shape.split(":")
        gemv_plan.GEMV_SHAPES[(kernel, int(K), int(pairs))] = tuple(int(v) for v in cfg.split(":"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("gemv16_plan_bench: error: usage: SHAPES BENCH_ARGS..", file=sys.stderr)
        return 2
    apply(argv[0])
    from cugraphllm.cli import main as cli
    return cli(["bench"] + argv[1:])


if __name__ == "__main__":
    sys.exit(main())
