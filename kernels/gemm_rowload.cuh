// warp_gemm of kernels/gemm.cu for WS >= 2 ("row loads"). Included by gemm.cu in place of its register / ring main
// loop; not a stand-alone header.
//
// Why: a 16-row tile's loads reach the bare read when one warp load spans one row (512 bytes) and lose ~12 us a 7B
// layer in the register path's 8 rows x 64 bytes (scripts/rowgeo_probe.py, benchmarks/HISTORY.md thirty-seventh
// session). Here each warp load reads RLR whole rows' SCOL columns (WS 2: 1 row x 512 bytes, 3: 2 x 256, 4: 4 x
// 128); the warp stores them to its own shared-memory buffer (16 rows x SCOL columns a tile, 16-byte units XOR-
// swizzled by row parity: conflict-free stores and reads) and reads back the register path's fragments (row g and
// g + 8, units t and 4 + t of each 64-column chunk; the same K permutation, so mma_regs is shared). The next
// superstep's loads are issued before this one's stores, so two supersteps' weights are in flight a warp. x comes
// through L1 as in the register path (XS = 0), a superstep's chunks issued before its W stores (they overlap).
// Warp (tile, kk) takes supersteps kk, kk + WK, ... of SCOL columns (so its partial sum covers other K chunks than
// the register path's chunks kk, kk + WK, ...: a different fixed order, bitwise stable run to run); reduce_acc as in
// the other paths.
#pragma once

static_assert(!XS, "WS >= 2 (row loads) reads x through L1: XS must be 0");
#define RLR (WS == 2 ? 1 : WS == 3 ? 2 : 4)  // rows a warp load
#define SCOL (256 / RLR)                     // columns a superstep
#define CPR (32 / RLR)                       // 16-byte units a row a superstep
#define NLD (16 / RLR)                       // loads a tile a superstep

struct RowLoads {
    uint4 v[RT][NLD];
};

// Lane's loads of the superstep at column col: load j of tile i is rows j * RLR .. of the tile; this lane reads
// row j * RLR + lane / CPR, unit lane % CPR (zero past the tile's rows or K: K % 8 == 0, whole units).
__device__ __forceinline__ void rl_load(RowLoads& r, const TileRows& tr, int K, int col, int lane) {
    const int lr = lane / CPR, cc = col + (lane % CPR) * 8;
#pragma unroll
    for (int i = 0; i < RT; ++i)
#pragma unroll
        for (int j = 0; j < NLD; ++j) {
            const int row = tr.row0[i] + j * RLR + lr;
            r.v[i][j] = (row < tr.nrows[i] && cc < K) ? ld_stream(tr.w[i] + (size_t)row * K + cc)
                                                     : make_uint4(0, 0, 0, 0);
        }
}

__device__ __forceinline__ int rl_slot(int row, int unit) { return row * CPR + (unit ^ ((row & 1) << 2)); }

__device__ __forceinline__ void warp_gemm(Red& red, const T* __restrict__ x, const TileRows& tr, int M, int K) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = warp % WM, kk = warp / WM, g = lane >> 2, t = lane & 3;
    __shared__ __align__(16) uint4 ex[WM * WK][RT][16 * CPR];
    uint4 (*buf)[16 * CPR] = ex[warp];
    const T* xt = x + t * 8;
    float acc[RT][NT][4] = {};
    RowLoads cur, nxt = {};  // nxt stays zero past the last superstep (never used there)
    int col = kk * SCOL;
    if (col < K) rl_load(cur, tr, K, col, lane);
    for (; col < K; col += WK * SCOL) {
        if (col + WK * SCOL < K) rl_load(nxt, tr, K, col + WK * SCOL, lane);  // in flight during this superstep
        XFrag xf[SCOL / 64];
#pragma unroll
        for (int q = 0; q < SCOL / 64; ++q)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int cc = col + 64 * q + 32 * h;
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = j * 8 + g;
                    xf[q].x[j][h] = (cc + t * 8 < K && n < M)
                        ? __ldg(reinterpret_cast<const uint4*>(xt + (size_t)n * K + cc)) : make_uint4(0, 0, 0, 0);
                }
            }
#pragma unroll
        for (int i = 0; i < RT; ++i)
#pragma unroll
            for (int j = 0; j < NLD; ++j) buf[i][rl_slot(j * RLR + lane / CPR, lane % CPR)] = cur.v[i][j];
        __syncwarp();
#pragma unroll
        for (int q = 0; q < SCOL / 64; ++q) {
            WFrag wf;
#pragma unroll
            for (int i = 0; i < RT; ++i)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    wf.w[i][0][h] = buf[i][rl_slot(g, 8 * q + 4 * h + t)];
                    wf.w[i][1][h] = buf[i][rl_slot(g + 8, 8 * q + 4 * h + t)];
                }
            mma_regs(acc, wf, xf[q]);
        }
        __syncwarp();  // the next superstep's stores overwrite buf
        cur = nxt;
    }
    reduce_acc(red, acc, tile, kk, g, t);
}
