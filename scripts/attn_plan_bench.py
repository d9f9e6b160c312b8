"""`cugraphllm bench` with the decode attention plan's knobs replaced for the run (bench only): the A/B of
attention plans end to end, as scripts/device_lib.sh plan_bench does for the GEMV plans.

    python3 -m scripts.attn_plan_bench BPS KNOBS BENCH_ARGS..
BPS: blocks an SM for the split-K grid (attention.BLOCKS_PER_SM; 0 keeps it); KNOBS: "unroll=4,n_warps=4" (ints)
or "-" for none; the rest goes to `cugraphllm bench`.
"""
from __future__ import annotations

import sys


def apply(bps: int, knobs: str) -> None:
    """Every Attention built after this (engine, TP ranks) plans its decode buckets with these knobs."""
    from cugraphllm.gpu import attention
    if knobs != "-":
        attention.DECODE_KNOBS.update({k: int(v) for k, v in (kv.split("=") for kv in knobs.split(","))})
    if bps:
        init = attention.Attention.__init__

        def with_bps(self, *a, **k):
            k.setdefault("blocks_per_sm", bps)
            init(self, *a, **k)
        attention.Attention.__init__ = with_bps


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("attn_plan_bench: error: usage: BPS KNOBS BENCH_ARGS..", file=sys.stderr)
        return 2
    apply(int(argv[0]), argv[1])
    from cugraphllm.cli import main as cli
    return cli(["bench"] + argv[2:])


if __name__ == "__main__":
    sys.exit(main())
