"""Probe (bench only, no library code): is the int4 tile GEMVs' 2x gap to a bare read of their bytes in the access
pattern? Loads only (XOR-reduced), no products: the tile driver's pattern on today's row-major packed rows (lane
g / t: rows 2g, 2g + 1 of a 16-row tile, 16 bytes at vector 4 it + t, so one load instruction touches 8 rows x 64 B)
against the same loads from a tile-contiguous repacking (one instruction reads 512 contiguous bytes), under the
default (warps, unroll, warps per tile) and more loads up front, beside the linear grid-stride read.

Usage: python3 -m scripts.int4_pattern_probe [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

from scripts import bench_kernels as bk
from scripts import pitch_probe

# name -> (rows N, K, default (warps, unroll, warps per tile) of QuantPlan.mma_config)
SHAPES = {"wqkv": (12288, 4096, (8, 2, 4)), "w13": (22016, 4096, (8, 2, 2)), "w2": (4096, 11008, (8, 2, 8))}


def probe_us(cp, stream, ws, n_tiles, n_it, warps, unroll, ms, layout) -> float:
    """The kernel of scripts/pitch_probe.py with rows 2g, 2g + 1 of a tile and the unpadded pitch."""
    return pitch_probe.probe_us(cp, stream, ws, (warps, unroll, ms), n_tiles, n_it, 4 * n_it, 0, 0, layout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args()
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    rows = []
    for name, (N, K, (warps, unroll, ms)) in SHAPES.items():
        nbytes = N * K // 2
        ws = [cp.random.randint(0, 2**31, nbytes // 4, dtype=cp.int64).astype(cp.uint32)
              for _ in range(max(2, -(-4 * bk.L2_BYTES // nbytes)))]
        n_tiles, n_it = N // 16, K // 128
        floor = bk.read_floor_us(stream, ws)
        rows.append({"matrix": name, "variant": "linear read", "us": floor})
        for u in sorted({unroll, 4, 8}):
            for layout in (0, 1):
                us = probe_us(cp, stream, ws, n_tiles, n_it, warps, u, ms, layout)
                rows.append({"matrix": name, "variant": f"tiles w{warps} u{u} ms{ms}",
                             "layout": "row-major" if layout == 0 else "tile-contiguous", "us": us})
        for r in rows:
            if r["matrix"] == name:
                r["tb_s"] = nbytes / r["us"] / 1e6
                print(f"{name:5s} {r['variant']:22s} {r.get('layout', ''):16s} {r['us']:7.2f} us "
                      f"{r['tb_s']:5.2f} TB/s", file=sys.stderr)
        del ws
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**bk.environment(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
