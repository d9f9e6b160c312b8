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

import numpy as np

from scripts import bench_kernels as bk
from scripts.ring_probe import LDW_SRC

SRC = LDW_SRC + r"""
extern "C" __global__ void __launch_bounds__(PWARPS * 32)
probe(const uint4* __restrict__ w, unsigned* __restrict__ sink, int n_tiles, int n_it) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int tile = blockIdx.x * (PWARPS / PMS) + warp / PMS, ms = warp % PMS;
    if (tile >= n_tiles) return;
    const size_t nvec = 4 * (size_t)n_it;  // 16-byte vectors a row
    unsigned acc = 0;
    for (int base = ms * PU; base < n_it; base += PU * PMS) {
        uint4 a[PU], b[PU];
#pragma unroll
        for (int u = 0; u < PU; ++u) {
            const int it = base + u;
            size_t i0, i1;
            if (PLAYOUT == 0) { i0 = (16 * (size_t)tile + 2 * g) * nvec + 4 * it + t; i1 = i0 + nvec; }
            else { i0 = ((size_t)tile * n_it + it) * 64 + lane; i1 = i0 + 32; }
            a[u] = it < n_it ? ldw(w + i0) : make_uint4(0u, 0u, 0u, 0u);
            b[u] = it < n_it ? ldw(w + i1) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < PU; ++u) acc ^= a[u].x ^ a[u].y ^ a[u].z ^ a[u].w ^ b[u].x ^ b[u].y ^ b[u].z ^ b[u].w;
    }
    if (acc == 0x9e3779b9u) sink[0] = acc;  // keeps the loads alive
}
"""

# name -> (rows N, K, default (warps, unroll, warps per tile) of QuantPlan.mma_config)
SHAPES = {"wqkv": (12288, 4096, (8, 2, 4)), "w13": (22016, 4096, (8, 2, 2)), "w2": (4096, 11008, (8, 2, 8))}


def probe_us(cp, stream, ws, n_tiles, n_it, warps, unroll, ms, layout) -> float:
    opts = ("-DPWARPS=%d" % warps, "-DPU=%d" % unroll, "-DPMS=%d" % ms, "-DPLAYOUT=%d" % layout)
    fn = cp.RawKernel(SRC, "probe", options=opts)
    sink = cp.zeros(1, cp.uint32)
    grid = (-(-n_tiles // (warps // ms)),)
    return bk.graph_us(stream, lambda i: fn(grid, (32 * warps,), (ws[i], sink, np.int32(n_tiles), np.int32(n_it))),
                       len(ws))


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
