"""Probe (bench only, no library code): an fp8 decode GEMV on the e4m3 tensor cores (W8A8) from fragment-packed
weights. Today's fp8 GEMV converts every weight pair to f16 (F2FP) and its products alone take as long as its loads
(scripts/ring_probe.py). Here the activation is quantized to e4m3 once per block (one per-token scale, as the fp8
prefill does) and the weights feed `mma.sync.m16n8k32.e4m3` as they are: a 16-row tile's 16 x 32 block is stored as
the 32 lanes' A fragments (16 bytes a lane, 512 contiguous bytes a warp load), tiles of 16 rows contiguous over K.
Columns 1-7 of B repeat column 0 (every lane group reads the same x bytes); column 0 of C is the result.

Variants per 7B shape: warps a block, K split over KS warps a tile, U k-steps of loads ahead; loads only (XOR
fold), products only (no loads); a linear read beside. Weights cycle over copies > 4x L2 (bench_kernels.graph_us).
Checked against NumPy: float64 products of the e4m3 weights and the e4m3-rounded activation.

int8 (the same with IMMA, s8 x s8, x quantized symmetric per token): the native integer tensor-core path.
On sm_90 `mma.sync ... e4m3` compiles to F2FP converts and HMMA (the fp8 rows measure that); only wgmma is native.

Usage: python3 -m scripts.mma8_probe [--formats int8,fp8] [--shapes wo,w2,wqkv,w13] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts.ring_probe import LDW_SRC, SHAPES, e4m3_to_f64, run_all

SRC = LDW_SRC + r"""
#include <cuda_fp16.h>
// int8 (QI8 1): IMMA, native on sm_80+; fp8: e4m3 mma.sync, which sm_90 compiles to F2FP converts and HMMA.
// codes2(lo, hi): two activation values as 8-bit codes of the format (saturating, nearest); XMAX its largest code.
#if QI8
// c holds s32 sums in float registers' bits (|sum| <= K * 127^2 < 2^31 for K <= 11008)
__device__ __forceinline__ void mma8(float (&c)[4], uint4 a, uint2 b) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+r"(reinterpret_cast<int&>(c[0])), "+r"(reinterpret_cast<int&>(c[1])),
                   "+r"(reinterpret_cast<int&>(c[2])), "+r"(reinterpret_cast<int&>(c[3]))
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b.x), "r"(b.y));
}
__device__ __forceinline__ float acc_value(float c) { return (float)__float_as_int(c); }
__device__ __forceinline__ unsigned short codes2(float lo, float hi) {
    const int l = max(-127, min(127, __float2int_rn(lo))), h = max(-127, min(127, __float2int_rn(hi)));
    return (unsigned short)((l & 0xff) | ((h & 0xff) << 8));
}
#define XMAX 127.0f
#else
__device__ __forceinline__ void mma8(float (&c)[4], uint4 a, uint2 b) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b.x), "r"(b.y));
}
__device__ __forceinline__ float acc_value(float c) { return c; }
__device__ __forceinline__ unsigned short codes2(float lo, float hi) {
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
}
#define XMAX 448.0f
#endif

// y [N] f32 = (W . x) * rs[row]; w: [N / 16 tiles][K / 32 steps][32 lanes] uint4 (A fragments); x half [K].
// Block: QW warps = QW / QKS tiles, each tile's K steps split over QKS warps (step s to warp s % QKS).
extern "C" __global__ void __launch_bounds__(QW * 32)
probe(const uint4* __restrict__ w, const float* __restrict__ rs, const __half* __restrict__ x, float* __restrict__ y,
      int N, int K) {
    extern __shared__ uint2 xq[];          // [K / 32][4]: k-step s, lane quad t: bytes 4t..4t+3 and 16+4t..16+4t+3
    __shared__ float red[QW][16];
    __shared__ float amax[QW];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ks = warp % QKS;
    const int nsteps = K / 32, ntiles = N / 16, tpb = QW / QKS, G = gridDim.x * tpb;
    const int tile0 = blockIdx.x * tpb + warp / QKS;
    // a tile's steps for one warp, rounded up to whole rounds of QU (steps past K load zeros)
    const int nst = ((nsteps + QKS - 1) / QKS + QU - 1) / QU * QU;
    const int first = blockIdx.x * tpb, total = (first < ntiles ? (ntiles - 1 - first) / G + 1 : 0) * nst;
    // the load cursor: tile, its step count j (0..nst), step s = ks + j * QKS, pointer; no divisions a step
    int lt = tile0, lj = 0, ls = ks;
#if QLAYOUT   // step-major: [step][tile][lane]: the warps of the GPU at one step read neighbouring 512-byte blocks
    const uint4* lp = w + ((size_t)ks * ntiles + tile0) * 32 + lane;
    const size_t lstride = (size_t)QKS * ntiles * 32;
#else         // tile-major: [tile][step][lane]: each warp streams its own contiguous run
    const uint4* lp = w + ((size_t)tile0 * nsteps + ks) * 32 + lane;
    const size_t lstride = QKS * 32;
#endif
    auto load = [&]() -> uint4 {
#if QKO == 2
        const uint4 v = make_uint4(0x38383838u ^ (unsigned)ls, 0xb8383838u, 0x3838b838u ^ (unsigned)lj, 0x38383838u);
#else
        const uint4 v = (lt < ntiles && ls < nsteps) ? ldw(lp) : make_uint4(0u, 0u, 0u, 0u);
#endif
        if (++lj == nst) {
            lj = 0;
            lt += G;
            ls = ks;
#if QLAYOUT
            lp = w + ((size_t)ks * ntiles + lt) * 32 + lane;
#else
            lp = w + ((size_t)lt * nsteps + ks) * 32 + lane;
#endif
        } else {
            ls += QKS;
            lp += lstride;
        }
        return v;
    };
    uint4 a[QU];
#pragma unroll
    for (int u = 0; u < QU; ++u) a[u] = load();   // before the staging
    // prologue: x in 16-byte chunks held in registers (blockDim >= 256: <= 8 a thread for K <= 16384), max |x| ->
    // per-token scale XMAX / max, x to 8-bit codes in fragment order
    uint4 xc[8];
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int c = threadIdx.x + j * blockDim.x;
        xc[j] = c < K / 8 ? reinterpret_cast<const uint4*>(x)[c] : make_uint4(0u, 0u, 0u, 0u);
        const __half2* h = reinterpret_cast<const __half2*>(&xc[j]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float2 f = __half22float2(h[e]);
            m = fmaxf(m, fmaxf(fabsf(f.x), fabsf(f.y)));
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) amax[warp] = m;
    __syncthreads();
    m = 0.0f;
#pragma unroll
    for (int i = 0; i < QW; ++i) m = fmaxf(m, amax[i]);
    const float sc = m > 0.0f ? XMAX / m : 1.0f;
    unsigned* xw = reinterpret_cast<unsigned*>(xq);   // word (4 s + t) * 2 + h: bytes 16 h + 4 t .. + 3 of step s
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int c = threadIdx.x + j * blockDim.x;   // columns 8c .. 8c + 7: step c / 4, bytes 8 (c % 4) ..
        if (c < K / 8) {
            const __half2* h = reinterpret_cast<const __half2*>(&xc[j]);
            float f[8];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float2 v = __half22float2(h[e]);
                f[2 * e] = v.x * sc;
                f[2 * e + 1] = v.y * sc;
            }
            const int st = c >> 2, cc = c & 3, t0 = (cc & 1) * 2, hh = cc >> 1;
            xw[(st * 4 + t0) * 2 + hh] = codes2(f[0], f[1]) | ((unsigned)codes2(f[2], f[3]) << 16);
            xw[(st * 4 + t0 + 1) * 2 + hh] = codes2(f[4], f[5]) | ((unsigned)codes2(f[6], f[7]) << 16);
        }
    }
    __syncthreads();
    const float inv_sc = 1.0f / sc;
    float c[QU][4];   // one accumulator set per u: no dependent chain of mma on one set
#pragma unroll
    for (int u = 0; u < QU; ++u) c[u][0] = c[u][1] = c[u][2] = c[u][3] = 0.0f;
    int cj = 0, cs = ks, ct = tile0;   // the consuming cursor (QU | nst: a tile ends with a round)
    for (int i = 0; i < total; i += QU) {
#pragma unroll
        for (int u = 0; u < QU; ++u) {
#if QKO == 1
            c[u][0] += __uint_as_float((a[u].x ^ a[u].y ^ a[u].z ^ a[u].w) & 0x3fffffffu);
#else
            mma8(c[u], a[u], xq[min(cs + u * QKS, nsteps - 1) * 4 + (lane & 3)]);
#endif
            a[u] = load();
        }
        cs += QU * QKS;
        cj += QU;
        if (cj == nst) {   // tile done: column 0 of C (lanes t == 0: rows g in c[0], g + 8 in c[2])
            const int tile = ct;
            cj = 0;
            cs = ks;
            ct += G;
            float r0 = 0.0f, r8 = 0.0f;
#pragma unroll
            for (int u = 0; u < QU; ++u) {
                r0 += acc_value(c[u][0]);
                r8 += acc_value(c[u][2]);
                c[u][0] = c[u][1] = c[u][2] = c[u][3] = 0.0f;
            }
            if ((lane & 3) == 0) { red[warp][lane >> 2] = r0; red[warp][(lane >> 2) + 8] = r8; }
            if (QKS > 1) __syncthreads();
            if (ks == 0 && lane < 16 && tile < ntiles) {
                float t = 0.0f;
#pragma unroll
                for (int k = 0; k < QKS; ++k) t += red[warp + k][lane];
                const int row = tile * 16 + lane;
                y[row] = t * rs[row] * inv_sc;
            }
            if (QKS > 1) __syncthreads();
        }
    }
}
"""

# (KS, U, WARPS, blocks an SM, KO, LAYOUT): K over KS warps a tile (a 16-row tile alone is too little work for a
# warp); LAYOUT 0 tile-major, 1 step-major
CONFIGS = [(c + (0,)) for c in ((8, 2, 8, 8, 0), (8, 4, 8, 8, 0), (16, 2, 16, 4, 0), (4, 2, 8, 8, 0))] + \
          [(c + (1,)) for c in ((8, 2, 8, 8, 0), (8, 4, 8, 8, 0), (16, 2, 16, 4, 0), (4, 2, 8, 8, 0),
                                 (4, 4, 8, 8, 0), (2, 4, 8, 8, 0), (8, 2, 8, 8, 1), (4, 4, 8, 8, 1),
                                 (16, 2, 16, 4, 1), (8, 4, 8, 8, 2))] + \
          [(8, 2, 8, 8, 1, 0), (16, 2, 16, 4, 1, 0)]

E4M3 = np.array([e4m3_to_f64(np.array([c]))[0] for c in range(256)])


def e4m3_round(v: np.ndarray) -> np.ndarray:
    """Nearest e4m3 value (ties: even code), saturating at +-448."""
    codes = np.array([c for c in range(256) if (c & 0x7f) != 0x7f])
    vals = E4M3[codes]
    order = np.argsort(vals, kind="stable")
    vals, codes = vals[order], codes[order]
    v = np.clip(v, -448.0, 448.0)
    i = np.clip(np.searchsorted(vals, v), 1, len(vals) - 1)
    lo, hi = vals[i - 1], vals[i]
    pick_hi = (hi - v < v - lo) | ((hi - v == v - lo) & (codes[i] % 2 == 0))
    return np.where(pick_hi, hi, lo)


def pack(b: np.ndarray) -> np.ndarray:
    """e4m3 codes [N, K] -> [N / 16, K / 32, 32 lanes, 16 bytes] A fragments of m16n8k32 (row): lane g * 4 + t holds
    rows (g, g + 8) x columns (4t.., 16 + 4t..) as a0 = (g, 4t), a1 = (g + 8, 4t), a2 = (g, 16 + 4t),
    a3 = (g + 8, 16 + 4t)."""
    N, K = b.shape
    t = b.reshape(N // 16, 16, K // 32, 32).transpose(0, 2, 1, 3)   # [tile, step, row16, col32]
    out = np.empty((N // 16, K // 32, 32, 16), np.uint8)
    for lane in range(32):
        g, q = lane >> 2, lane & 3
        for j, (r, c0) in enumerate(((g, 4 * q), (g + 8, 4 * q), (g, 16 + 4 * q), (g + 8, 16 + 4 * q))):
            out[:, :, lane, 4 * j:4 * j + 4] = t[:, :, r, c0:c0 + 4]
    return out


def run_shape(cp, stream, name, N, K, rows, sms, i8=0):
    rng = np.random.default_rng()
    rs = (rng.random(N) * 0.02 + 0.005).astype(np.float32)
    xh = rng.standard_normal(K).astype(np.float16)
    xf = xh.astype(np.float64)
    if i8:
        b = rng.integers(-127, 128, (N, K), dtype=np.int64).astype(np.int8).view(np.uint8)
        sc = np.float32(127.0) / np.float32(np.abs(xf).max())
        xq = np.clip(np.rint((xf.astype(np.float32) * sc).astype(np.float64)), -127, 127)
        ref = (b.view(np.int8).astype(np.float64) @ xq) * rs / sc
    else:
        b = rng.integers(0, 256, (N, K), dtype=np.int64)
        b = np.where((b & 0x7f) == 0x7f, 0x3c, b).astype(np.uint8)
        sc = np.float32(448.0) / np.float32(np.abs(xf).max())
        xq = e4m3_round((xf.astype(np.float32) * sc).astype(np.float64))
        ref = (E4M3[b] @ xq) * rs / sc
    tile_major = pack(b)
    n = max(2, -(-4 * bk.L2_BYTES // tile_major.nbytes))
    layouts = {}
    for lay in (0, 1):
        packed = (tile_major if lay == 0 else np.ascontiguousarray(tile_major.transpose(1, 0, 2, 3))).reshape(-1)
        layouts[lay] = [cp.asarray(np.roll(packed, 4096 * i)) if i else cp.asarray(packed) for i in range(n)]
    ws = layouts[0]
    rsd, xd = cp.asarray(rs), cp.asarray(xh)
    fmt = "int8" if i8 else "fp8"
    rows.append({"format": fmt, "matrix": name, "variant": "linear read", "us": bk.read_floor_us(stream, ws),
                 "bytes": b.nbytes})
    for cfg in CONFIGS:
        ks, u, warps, bps, ko, lay = cfg
        ws = layouts[lay]
        opts = (f"-DQKS={ks}", f"-DQU={u}", f"-DQW={warps}", f"-DQKO={ko}", f"-DQI8={i8}", f"-DQLAYOUT={lay}",
                "-std=c++17")
        fn = cp.RawKernel(SRC, "probe", options=opts)
        smem = K // 32 * 4 * 8
        tiles = N // 16
        grid = (min(-(-tiles // (warps // ks)), sms * bps),)
        y = cp.full(N, np.nan, cp.float32)
        args = lambda i: (ws[i], rsd, xd, y, np.int32(N), np.int32(K))
        try:
            us = bk.graph_us(stream, lambda i: fn(grid, (32 * warps,), args(i), shared_mem=smem), len(ws))
        except Exception as e:  # noqa: BLE001 (a probe: report and go on)
            rows.append({"format": fmt, "matrix": name, "config": list(cfg), "error": str(e)[:300]})
            print(f"{name} {cfg} error {str(e)[:300]}", file=sys.stderr)
            continue
        fn(grid, (32 * warps,), args(0), shared_mem=smem)
        got = cp.asnumpy(y).astype(np.float64)
        err = None if ko else float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        rows.append({"format": fmt, "matrix": name, "variant": ("mma8", "mma8 loads only", "mma8 products only")[ko],
                     "config": dict(zip(("ks", "u", "warps", "bps", "ko", "layout"), cfg)), "us": us,
                     "tb_s": b.nbytes / us / 1e6, "rel_err": err, "grid": grid[0]})
    for r in rows:
        if r.get("matrix") == name and r.get("format") == fmt and "us" in r:
            print(f"{fmt} W8A8 {name:5s} {r['variant']:20s} {json.dumps(r.get('config', '')):60s} {r['us']:7.2f} us"
                  f"  err {r.get('rel_err')}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="wo,w2,wqkv,w13")
    ap.add_argument("--formats", default="int8,fp8", help="int8 (IMMA) and / or fp8 (e4m3 mma.sync)")
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args(argv)
    return run_all("mma8_probe", lambda cp, stream, fmt, name, rows, sms: run_shape(cp, stream, name, *SHAPES[name],
                                                                                    rows, sms,
                                                                                    i8=int(fmt == "int8")), args)


if __name__ == "__main__":
    sys.exit(main())
