"""The parts the 16-row probes share (scripts/m16_probe.py, rowgeo_probe.py, m16r_probe.py): the command line, and
per shape the timing rounds over its calls and the row's output."""
from __future__ import annotations

import argparse
import json
import sys

from scripts import bench_kernels as bk


def time_rounds(stream, calls: dict, n_copies: int, rounds: int, row: dict) -> None:
    """row["us"][name]: one graph-timed figure (bench_kernels.graph_us) a round for each call, rounds interleaved."""
    for _ in range(rounds):
        for k, fn in calls.items():
            row["us"].setdefault(k, []).append(round(bk.graph_us(stream, fn, n_copies), 2))


def emit(cp, out: dict, row: dict) -> None:
    """The shape's row printed as one JSON line and kept; the pool freed (the caller drops its weight copies first)."""
    print(json.dumps(row), flush=True)
    out["rows"].append(row)
    cp.get_default_memory_pool().free_all_blocks()


def main(name: str, description: str, shapes: dict, configs: str, config_help: str, parse_config, bench,
         argv=None) -> int:
    """--shapes / --configs / --rounds / --out; a bad config or shape is a one-line error (exit 2), as is no GPU."""
    ap = argparse.ArgumentParser(prog=f"python3 -m scripts.{name}", description=description)
    ap.add_argument("--shapes", default=",".join(shapes), help=f"comma-separated, of {', '.join(shapes)}")
    ap.add_argument("--configs", default=configs, help=config_help)
    ap.add_argument("--rounds", type=int, default=2, help="timing rounds (interleaved over the calls)")
    ap.add_argument("--out", help="JSON file")
    args = ap.parse_args(argv)
    chosen, cfgs = args.shapes.split(","), args.configs.split(",")
    try:
        for t in cfgs:
            parse_config(t)
        if any(s not in shapes for s in chosen):
            raise ValueError(f"shapes are {sorted(shapes)}")
    except ValueError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    if bk.gpu_missing(name):
        return 2
    bk.write_json(args.out, bench(chosen, cfgs, args.rounds))
    return 0
