"""Probe (issue #10): is a decode GEMV faster when its weights already sit in L2? Each 7B decode GEMV of bench_quant
(the step's fused forms), per format, timed twice in one process: cold (a graph cycling over weight copies > 4x
L2, bench_quant's method) and hot (one copy, called again and again, so that a matrix smaller than L2 is read from
it), beside the bare streaming read of the same bytes cold and hot. Where hot is much faster than cold, the GEMV is
bound by the latency of its DRAM reads, not its instructions, and prefetching the next GEMV's weights into L2 while
the current one runs could pay; where hot ~ cold, it could not.

Usage: python3 -m scripts.l2_probe [--formats int4,int8,fp8,fp16] [--matrices wqkv+norm,..] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys

from scripts import bench_kernels as bk
from scripts import bench_quant as bq


def one(fmt: str, name: str, T, group: int) -> dict:
    """cold / hot us of one GEMV and of the bare read of its packed weights."""
    cp = bk._cp()
    stream = cp.cuda.Stream(non_blocking=True)
    op, N, K = bq.MATS[name]
    ws, wbytes = bq.weight_copies(fmt, N, K, T, group, name)
    fn, _ = bq.case(op, N, K, ws, T)
    floor_ws = [w if fmt == "fp16" else w.qweight for w in ws]
    row = {"format": fmt, "matrix": name, "N": N, "K": K, "mb": wbytes / 1e6,
           "cold_us": bk.graph_us(stream, fn, len(ws)), "hot_us": bk.graph_us(stream, fn, 1),
           "read_cold_us": bk.read_floor_us(stream, floor_ws), "read_hot_us": bk.read_floor_us(stream, floor_ws[:1])}
    del ws, floor_ws
    cp.get_default_memory_pool().free_all_blocks()
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--formats", default="int4,int8,fp8,fp16", help="comma list of weight formats")
    p.add_argument("--matrices", default="wqkv+norm,wo+ss,w13+norm,w2+ss", help="comma list of bench_quant names")
    p.add_argument("--group-size", type=int, default=128, help="int4 group size")
    p.add_argument("--out", default=None, help="JSON file for the rows")
    a = p.parse_args(argv)
    unknown = sorted(set(a.matrices.split(",")) - set(bq.MATS))
    if unknown:
        p.error(f"--matrices: unknown {', '.join(unknown)} (known: {', '.join(bq.MATS)})")
    if bk.gpu_missing("l2_probe"):
        return 2
    from cugraphllm.bench_env import versions
    rows = []
    for fmt in a.formats.split(","):
        for name in a.matrices.split(","):
            rows.append(one(fmt, name, bk._dtype("float16"), a.group_size))
            r = rows[-1]
            print(f"{fmt:5s} {name:10s} {r['mb']:6.1f} MB  cold {r['cold_us']:7.2f}  hot {r['hot_us']:7.2f} us  "
                  f"(read {r['read_cold_us']:6.2f} / {r['read_hot_us']:6.2f})", file=sys.stderr)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"versions": versions("cuda"), "l2_bytes": bk.L2_BYTES, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
