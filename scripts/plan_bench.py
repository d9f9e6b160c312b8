"""`cugraphllm bench` with a launch plan changed for the run (bench only): the end-to-end A/B of plan entries, one
process per variant. Three kinds of plan:

    python3 -m scripts.plan_bench attn BPS KNOBS BENCH_ARGS..     # decode attention (gpu/attention_plan.py)
    python3 -m scripts.plan_bench gemv16 SHAPES BENCH_ARGS..      # 16-bit GEMV shape entries (gemv_plan.GEMV_SHAPES)
    python3 -m scripts.plan_bench quant FMT FIELDS BENCH_ARGS..   # a quantized format's QuantPlan fields

attn: BPS blocks an SM for the split-K grid (0 keeps it), KNOBS "unroll=4,n_warps=4" (ints) replacing
attention.DECODE_KNOBS entries, or "-". gemv16: "KERNEL:K:PAIRS=WARPS:UNROLL:KSPLIT;..." entries added to
GEMV_SHAPES (the 16-bit plan reads it at each call), or "-". quant: FMT one of gemv_plan.QUANT_PLANS, FIELDS
"pipe=1, unroll=4" (keyword syntax, Python literals, tuples included) replacing fields of its QuantPlan. Each
applies to every engine built after it (TP ranks included). (This replaces attn_plan_bench.py, gemv16_plan_bench.py
and device_lib.sh's plan_bench heredoc, which the device scripts before 2026-12-01 name.)
"""
from __future__ import annotations

import ast
import dataclasses
import sys

USAGE = {"attn": "BPS KNOBS", "gemv16": "SHAPES", "quant": "FMT FIELDS"}


def apply_attn(bps: int, knobs: str) -> None:
    from cugraphllm.gpu import attention
    if knobs != "-":
        attention.DECODE_KNOBS.update({k: int(v) for k, v in (kv.split("=") for kv in knobs.split(","))})
    if bps:
        init = attention.Attention.__init__

        def with_bps(self, *a, **k):
            k.setdefault("blocks_per_sm", bps)
            init(self, *a, **k)
        attention.Attention.__init__ = with_bps


def apply_gemv16(spec: str) -> None:
    from cugraphllm.gpu import gemv_plan
    if spec == "-":
        return
    for item in spec.split(";"):
        shape, cfg = item.split("=")
        kernel, K, pairs = shape.split(":")
        gemv_plan.GEMV_SHAPES[(kernel, int(K), int(pairs))] = tuple(int(v) for v in cfg.split(":"))


def apply_quant(fmt: str, fields: str) -> None:
    from cugraphllm.gpu import gemv_plan
    if fields == "-":
        return
    call = ast.parse(f"f({fields})", mode="eval").body  # keyword syntax: values may be tuples with commas
    if call.args:
        raise ValueError("FIELDS takes name=value pairs only")
    gemv_plan.QUANT_PLANS[fmt] = dataclasses.replace(
        gemv_plan.QUANT_PLANS[fmt], **{k.arg: ast.literal_eval(k.value) for k in call.keywords})


def apply(kind: str, args: list[str]) -> None:
    if kind == "attn":
        apply_attn(int(args[0]), args[1])
    elif kind == "gemv16":
        apply_gemv16(args[0])
    else:
        apply_quant(args[0], args[1])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kind = argv[0] if argv else None
    n = len(USAGE[kind].split()) if kind in USAGE else 0
    if kind not in USAGE or len(argv) < 1 + n:
        print("plan_bench: error: usage: " + " | ".join(f"{k} {u} BENCH_ARGS.." for k, u in USAGE.items()),
              file=sys.stderr)
        return 2
    try:
        apply(kind, argv[1:1 + n])
    except (ValueError, KeyError, TypeError, SyntaxError) as e:
        print(f"plan_bench: error: {kind} {' '.join(argv[1:1 + n])}: {e}", file=sys.stderr)
        return 2
    from cugraphllm.cli import main as cli
    return cli(["bench"] + argv[1 + n:])


if __name__ == "__main__":
    sys.exit(main())
