"""Probe (bench only, no library code): do the int4 tile GEMVs lose load rate to their rows' power-of-two pitch?
Loads only (XOR-reduced, no products) in the tile driver's exact pattern (kernels/gemv_quant_tiles.cuh mload: lane
g / t of a tile reads 16 bytes at vector 4 it + t of its pair's rows r0 and r1, the pairing of the kernel that
consumes the matrix: rows 2p, 2p + 1, or j, j + F for w13), rows `pad` 16-byte vectors longer than K / 2 bytes
(pad 0: today's layout), beside a tile-contiguous repacking (one warp load reads 512 contiguous bytes) and a
linear read of the same bytes. The tenth session's int4_pattern_probe found the row-major pattern 1-3 us slower
than the repacking on 7B (w13 15.2 vs 12.6 us) with another pairing; 70B's w13 loads alone take 63.2 us against
a 54.3 us read (s27b).

Usage: python3 -m scripts.pitch_probe [--pads 0,1,2,4,8,32] [--models 7b,13b,70b] [--out FILE]
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
probe(const uint4* __restrict__ w, unsigned* __restrict__ sink, int n_tiles, int n_it, int pitch, int half_rows) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int tile = blockIdx.x * (PWARPS / PMS) + warp / PMS, ms = warp % PMS;
    if (tile >= n_tiles) return;
    size_t r0, r1;  // the pair's rows (PSILU: j, j + F; else 2p, 2p + 1)
    if (PSILU) { r0 = 8 * (size_t)tile + g; r1 = r0 + half_rows; } else { r0 = 16 * (size_t)tile + 2 * g; r1 = r0 + 1; }
    unsigned acc = 0;
    for (int base = ms * PU; base < n_it; base += PU * PMS) {
        uint4 a[PU], b[PU];
#pragma unroll
        for (int u = 0; u < PU; ++u) {
            const int it = base + u;
            size_t i0, i1;
            if (PLAYOUT == 0) { i0 = r0 * pitch + 4 * it + t; i1 = r1 * pitch + 4 * it + t; }
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

# (model, matrix) -> (kernel, rows N, K, silu pairing)
SHAPES = {("7b", "wqkv"): ("qgemv_qkv_rope_norm", 12288, 4096, 0), ("7b", "w13"): ("qgemv_silu_norm", 22016, 4096, 1),
          ("13b", "wqkv"): ("qgemv_qkv_rope_norm", 15360, 5120, 0), ("13b", "w13"): ("qgemv_silu_norm", 27648, 5120, 1),
          ("13b", "w2"): ("qgemv_residual_ss", 5120, 13824, 0),
          ("70b", "wqkv"): ("qgemv_qkv_rope_norm", 10240, 8192, 0), ("70b", "w13"): ("qgemv_silu_norm", 57344, 8192, 1)}


def probe_us(cp, stream, ws, cfg, n_tiles, n_it, pitch, half_rows, silu, layout) -> float:
    warps, unroll, ms = cfg
    opts = tuple(f"-D{k}={v}" for k, v in dict(PWARPS=warps, PU=unroll, PMS=ms, PLAYOUT=layout, PSILU=silu).items())
    fn = cp.RawKernel(SRC, "probe", options=opts)
    sink = cp.zeros(1, cp.uint32)
    grid = (-(-n_tiles // (warps // ms)),)
    args = (sink, np.int32(n_tiles), np.int32(n_it), np.int32(pitch), np.int32(half_rows))
    return bk.graph_us(stream, lambda i: fn(grid, (32 * warps,), (ws[i],) + args), len(ws))


def shape_rows(cp, stream, model, name, pads) -> list[dict]:
    from cugraphllm.gpu import gemv_plan
    kernel, N, K, silu = SHAPES[(model, name)]
    cfg = gemv_plan.QUANT_PLANS["int4"].gemv_config(kernel, K, N // 2)
    nvec, n_tiles, n_it = K // 32, N // 16, K // 128
    nbytes = N * (nvec + max(pads)) * 16
    ws = [cp.random.randint(0, 2**31, nbytes // 4, dtype=cp.int64).astype(cp.uint32)
          for _ in range(max(2, -(-4 * bk.L2_BYTES // nbytes)))]
    used = N * K // 2
    rows = [{"model": model, "matrix": name, "variant": "linear read", "us": bk.read_floor_us(stream, ws) * used
             / nbytes}]  # the floor of the used bytes, scaled from a read of the padded buffer
    for pad in pads:
        rows.append({"model": model, "matrix": name, "variant": f"row-major pad {pad}", "pad": pad,
                     "us": probe_us(cp, stream, ws, cfg, n_tiles, n_it, nvec + pad, N // 2, silu, 0)})
    rows.append({"model": model, "matrix": name, "variant": "tile-contiguous",
                 "us": probe_us(cp, stream, ws, cfg, n_tiles, n_it, nvec, N // 2, silu, 1)})
    for r in rows:
        r.update(config=list(cfg), tb_s=used / r["us"] / 1e6)
        print(f"{model:3s} {name:5s} {str(cfg):12s} {r['variant']:18s} {r['us']:7.2f} us {r['tb_s']:5.2f} TB/s",
              file=sys.stderr)
    del ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pads", default="0,1,2,4,8,32", help="row pads in 16-byte vectors")
    ap.add_argument("--models", default="7b,13b,70b")
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args()
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    pads = [int(p) for p in args.pads.split(",")]
    rows = []
    for model, name in SHAPES:
        if model in args.models.split(","):
            rows += shape_rows(cp, stream, model, name, pads)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**bk.environment(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
