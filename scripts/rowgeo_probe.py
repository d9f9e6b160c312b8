"""Probe (bench only, no library code): does a 16-row tile's weight stream lose rate to how many rows one warp load
spans? Loads only (summed into a check word, no products) over a 16-bit [N, K] weight in the order a 16-row GEMM
walks it: one block a 16-row tile, its warps taking "supersteps" of 16 rows x 512 bytes in turn. Each superstep is
16 warp loads of 16 bytes a lane; geometry R puts R rows in one load (512 / R contiguous bytes a row): R = 8 is the
own 16-row kernel's mma fragment pattern (8 rows x 64 bytes), R = 1 the decode GEMV's (512 bytes of one row).
Layout `t` reads the same bytes as if stored tile-contiguous (each superstep's 8 KB in one piece).

Why (#13, TTFT at 10 tokens): the 16-row GEMMs stream at 3.6-3.8 TB/s against 4.67 for a bare read, and the
thirty-sixth / thirty-seventh sessions' shared-memory streams (tensor-map, persistent, stream-K) stay at 3.8-4.0
(`scripts/m16_probe.py`). If register loads of R = 1 or 2 reach the read in this order while R = 8 does not, a
16-row kernel that loads rows whole and moves the fragments between lanes by shuffles keeps the standard layout
(which cuBLAS needs for the longer prompts) and closes that gap; if only the tile-contiguous layout reaches it, the
order of the bytes in memory is what matters.

Each config is first checked: the per-block sums of the 32-bit words read, added up, equal the matrix's own sum
(mod 2^32), so every word is read exactly once. Timing: bench_kernels.graph_us over weight copies > 4x L2.

Usage: python3 -m scripts.rowgeo_probe [--shapes wo,w2,wqkv,w13] [--configs s8:4,s1:4,t1:4] [--rounds 2] [--out F]
"""
from __future__ import annotations

import sys

import numpy as np

from scripts import bench_kernels as bk, probe_cli

SHAPES = {"wo": (4096, 4096), "w2": (4096, 11008), "wqkv": (12288, 4096), "w13": (22016, 4096)}  # (N, K)
CONFIGS = "s8:4,s4:4,s2:4,s1:4,t1:4,s8:8,s1:8,t1:8,s8:4:2,s1:4:2"

CONFIG_HELP = "sR:NW[:U] / t1:NW[:U], comma-separated"

SRC = r"""
// grid (N / 16,), block GNW warps; w: N x K8 uint4 (K8 = K / 8); sink u32 [N / 16]
extern "C" __global__ void __launch_bounds__(GNW * 32)
rowgeo(const uint4* __restrict__ w, unsigned* __restrict__ sink, int K8) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nss = K8 / 32;
    const size_t tile = blockIdx.x;
    constexpr int RG = 16 / GR, LPR = 32 / GR;  // row groups a superstep, lanes a row in one load
    unsigned acc = 0u;
    for (int s0 = warp; s0 < nss; s0 += GNW * GU) {
        uint4 v[GU][16];
#pragma unroll
        for (int u = 0; u < GU; ++u) {
            const int ss = s0 + u * GNW;
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                size_t idx;
                if (GTILED) idx = ((tile * nss + ss) * 16 + j) * 32 + lane;
                else idx = (tile * 16 + (j % RG) * GR + lane / LPR) * (size_t)K8
                           + ss * 32 + (j / RG) * LPR + lane % LPR;
                v[u][j] = make_uint4(0u, 0u, 0u, 0u);
                if (ss < nss)  // volatile: issued in this order (ptxas still interleaves the sums: ~32 registers)
                    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                                 : "=r"(v[u][j].x), "=r"(v[u][j].y), "=r"(v[u][j].z), "=r"(v[u][j].w)
                                 : "l"(w + idx));
            }
        }
#pragma unroll
        for (int u = 0; u < GU; ++u)
#pragma unroll
            for (int j = 0; j < 16; ++j) acc += v[u][j].x + v[u][j].y + v[u][j].z + v[u][j].w;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) atomicAdd(sink + blockIdx.x, acc);
}
"""


def parse_config(text: str) -> tuple[int, int, int, int]:
    """sR:NW[:U] (standard layout, R rows a warp load, NW warps a block, U supersteps in flight a warp) or t1:NW[:U]
    (tile-contiguous) -> (tiled, R, NW, U)."""
    head, *rest = text.split(":")
    if len(head) < 2 or head[0] not in "st" or not head[1:].isdigit() or not 1 <= len(rest) <= 2:
        raise ValueError(f"bad config {text!r}: sR:NW[:U] or t1:NW[:U]")
    tiled, r = head[0] == "t", int(head[1:])
    nw, u = int(rest[0]), int(rest[1]) if len(rest) > 1 else 1
    if r not in (1, 2, 4, 8, 16) or (tiled and r != 1) or not 1 <= nw <= 32 or not 1 <= u <= 4:
        raise ValueError(f"bad config {text!r}: R in 1 / 2 / 4 / 8 / 16 (t: 1), NW 1-32, U 1-4")
    return int(tiled), r, nw, u


def word_index(tile: int, ss: int, j: int, lane: int, r: int, k8: int, nss: int, tiled: bool) -> int:
    """The uint4 index the kernel's lane reads in load j of superstep ss (the CUDA source's formula, for the CPU
    test)."""
    if tiled:
        return ((tile * nss + ss) * 16 + j) * 32 + lane
    rg, lpr = 16 // r, 32 // r
    return (tile * 16 + (j % rg) * r + lane // lpr) * k8 + ss * 32 + (j // rg) * lpr + lane % lpr


def build(cp, tiled: int, r: int, nw: int, u: int):
    fn = cp.RawKernel(SRC, "rowgeo", options=("-std=c++17", f"-DGR={r}", f"-DGNW={nw}", f"-DGU={u}",
                                              f"-DGTILED={tiled}"))
    return lambda w, sink: fn((w.shape[0] // 16,), (32 * nw,), (w, sink, np.int32(w.shape[1] // 8)))


def check(cp, call, w) -> bool:
    """Every 32-bit word read once: the blocks' sums add up to the matrix's sum mod 2^32."""
    sink = cp.zeros(w.shape[0] // 16, cp.uint32)
    call(w, sink)
    want = int(cp.asnumpy(w).view(np.uint32).astype(np.uint64).sum()) % (1 << 32)
    return int(cp.asnumpy(sink).astype(np.uint64).sum()) % (1 << 32) == want


def bench(shapes, configs, rounds: int) -> dict:
    import cupy as cp
    from cugraphllm.gpu import gemm
    stream = cp.cuda.Stream(non_blocking=True)
    out = {"env": bk.environment(), "rows": []}
    for name in shapes:
        N, K = SHAPES[name]
        ws = bk.weight_copies(N, K, cp.float16)
        a = bk._rand((16, K), cp.float16, 99)
        x = cp.zeros((16, N), cp.float32)
        sink = cp.zeros(N // 16, cp.uint32)
        row = {"shape": name, "N": N, "K": K, "mb": N * K * 2 / 1e6, "checks": {}, "us": {}}
        calls = {"own": lambda i: gemm.matmul_residual(x, a, ws[i], impl="own"), "read": bk.read_floor_call(ws)}
        for text in configs:
            f = build(cp, *parse_config(text))
            row["checks"][text] = check(cp, f, ws[0])
            calls[text] = (lambda f: lambda i: f(ws[i], sink))(f)
        probe_cli.time_rounds(stream, calls, len(ws), rounds, row)
        del ws
        probe_cli.emit(cp, out, row)
    return out


def main(argv=None) -> int:
    return probe_cli.main("rowgeo_probe", __doc__.splitlines()[0], SHAPES, CONFIGS, CONFIG_HELP, parse_config,
                          bench, argv)


if __name__ == "__main__":
    sys.exit(main())
