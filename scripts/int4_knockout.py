"""Knockout profile of the int4 tensor-core tile GEMVs (bench only): each 7B tile matrix (wqkv + norm + RoPE, w13 +
norm + SiLU) graph-timed as the decode step runs it, with phases knocked out by kernels/gemv_quant_tiles.cuh QG_KO
(1 the prologue after pdl_enter, 2 the products, 4 the epilogues; results wrong, timing only), beside a bare read
of the same packed bytes. Where the loads alone run near the read floor (scripts/int4_pattern_probe.py), the rows
say which phase holds the rest.

Usage: python3 -m scripts.int4_knockout [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

from scripts import bench_kernels as bk
from scripts import bench_quant as bq

KOS = (0, 1, 2, 4, 3, 5, 6, 7)


def with_ko(ko: int):
    """Make ops_quant compile its GEMVs with QG_KO = ko (a fresh cache)."""
    from cugraphllm.gpu import cuda_kernels as ck
    from cugraphllm.gpu import ops_quant as oq
    oq._cache.clear()
    oq.get_function = lambda file, kernel, defines=None, options=(), dtype=None: ck.get_function(
        file, kernel, {**(defines or {}), "QG_KO": ko}, options, dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args()
    cp = bk._cp()
    stream = cp.cuda.Stream(non_blocking=True)
    T = bk._dtype("float16")
    rows = []
    for name in ("wqkv+norm", "w13+norm"):
        op, N, K = bq.MATS[name]
        ws, _ = bq.weight_copies("int4", N, K, T, 128)
        floor = bk.read_floor_us(stream, [w.qweight for w in ws])
        rows.append({"matrix": name, "ko": "read floor", "us": floor})
        for ko in KOS:
            with_ko(ko)
            fn, _ = bq.case(op, N, K, ws, T)
            rows.append({"matrix": name, "ko": ko, "us": bk.graph_us(stream, fn, len(ws))})
        for r in rows:
            if r["matrix"] == name:
                print(f"{name:10s} ko {r['ko']!s:10s} {r['us']:7.2f} us", file=sys.stderr)
        del ws
        cp.get_default_memory_pool().free_all_blocks()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
