// Prefill GEMM (M = 2..64 tokens) on tensor cores, "swap AB" form, with the fused epilogues of DESIGN.md,
// plus the stand-alone epilogues that follow a cuBLAS GEMM for larger M. This file holds the configuration and
// the warps' main loop (warp_gemm; its XS / WS rings in gemm_rings.cuh); included at its end, gemm_fused.cuh holds
// the entry kernels with their fused epilogues and the fused prefill norm, gemm_rows.cuh the stand-alone epilogues.
//
// Swap AB: the weight rows are the MMA's M dimension (16 rows per row tile) and the tokens its N dimension
// (NT tiles of 8), so each warp streams W[16 * RT rows, K] straight from global memory into mma.sync m16n8k16
// fragments. The K order inside a 64-column chunk is permuted (same permutation for W and X, so the dot
// product is unchanged) so that each thread's A/B fragments come from two 16-byte loads per row:
// thread (g = lane/4, t = lane%4) loads columns [t*8, t*8+8) and [32+t*8, 32+t*8+8) of row g and g+8;
// its 8 32-bit words w0..w7 feed k-step s as (w[2s], w[2s+1]).
// Block: WM warps x RT row tiles each (TILES = WM * RT tiles of 16 rows) x WK warps along K (chunks
// interleaved); partial sums are reduced through shared memory, then the whole block applies the epilogue in
// fp32 and rounds once. A warp's RT tiles share its x fragments: at M = 16 (NT = 2) a 64-column chunk costs
// 4 * RT weight loads and 4 x loads per thread, so RT = 2 halves the x loads per weight byte.
// x comes through L1 into registers (XS = 0, one chunk per pipeline stage), or (XS = 1) the WM warps that
// share a K chunk copy it once into a shared-memory ring of STAGES chunks (cp.async, zero-filled past M and K;
// 16-byte units XOR-swizzled by token so the fragment reads are conflict-free) and read it from there after
// one barrier per chunk among themselves (named barrier 1 + kk, hence WK <= 15 when WM > 1).
// W comes straight into registers (WS = 0: each load instruction reads 8 rows x 64 bytes, half lines), or
// (WS = 1) each warp copies its chunks into its own ring with cp.async, 4 whole 128-byte row segments per
// instruction, and reads the fragments back (same swizzle); the rings cost no registers per stage in flight.
// XS and WS share one cp.async pipeline of STAGES chunks; all of it is in static shared memory (<= 48 KiB).
// WS >= 2 ("row loads", gemm_rowload.cuh): each warp load reads whole rows (2: 1 row x 512 bytes, 3: 2 x 256, 4:
// 4 x 128) into registers, and the fragments come back through a per-warp shared-memory buffer; XS must be 0.
//
// Compile-time: NT (token tiles of 8, M <= 8*NT), WM, WK, STAGES, RT, XS, PF, WS (defaults below, the
// launcher's gemm.OWN_CONFIG). Storage dtype T from common.cuh (CG_BF16).
#include "common.cuh"

#ifndef NT
#define NT 2
#endif
#ifndef WM
#define WM 2
#endif
#ifndef WK
#define WK 4
#endif
#ifndef STAGES
#define STAGES 2  // chunks of operands in registers: 1 being multiplied, STAGES-1 loads in flight
#endif
#ifndef RT
#define RT 1      // row tiles of 16 per warp
#endif
#ifndef XS
#define XS 0      // 1: x chunks staged in shared memory (cp.async ring of STAGES chunks per K group)
#endif
#ifndef PF
#define PF 0      // L2 prefetch size hint of the weight loads: 0 none, 1 128 bytes, 2 256 bytes
#endif
#ifndef WS
#define WS 0      // 1: W chunks through a per-warp shared-memory ring (cp.async, whole 128-byte row segments);
                  // 2 / 3 / 4: row loads (1 / 2 / 4 rows a warp load) through a per-warp buffer
#endif
#ifndef PR
#define PR 0      // 1: all WK partial sums stored at once (one barrier), added by the epilogue in the same order
#endif
#define NTOK (NT * 8)
#define NTHREADS (WM * WK * 32)
#define TILES (WM * RT)
#define RED_TILES TILES
#define RED_K (PR ? WK : 1)
#include "gemm_common.cuh"
#if PF == 2
#define PF_OP ".L2::256B"
#elif PF == 1
#define PF_OP ".L2::128B"
#else
#define PF_OP ""
#endif

#if XS || WS == 1
static_assert(STAGES >= 2, "XS / WS need STAGES >= 2 (one chunk in flight)");
#endif
#if XS
static_assert(WM == 1 || WK <= 15, "XS with WM > 1 uses named barriers 1..WK");
#endif
static_assert(WS >= 0 && WS <= 4, "WS: 0 registers, 1 cp.async ring, 2 / 3 / 4 row loads");
static_assert((XS ? STAGES * WK * NTOK * 128 : 0) + (WS == 1 ? WM * WK * STAGES * RT * 2048 : 0)
              + (WS >= 2 ? WM * WK * RT * (8192 >> (WS - 2)) : 0)
              + RED_K * TILES * NTOK * 64 <= 48 * 1024, "XS / WS rings + Red over 48 KiB static smem");


// Weights are read once: stream them past L1 so that L1 keeps the activations every warp re-reads. A load
// brings 64 of a row's 128 bytes per chunk (the other half comes with the next load, the rest of the row with
// the other K warps' chunks): PF 1 / 2 ask L2 to fetch the whole 128 / 256-byte span from DRAM at once.
__device__ __forceinline__ uint4 ld_stream(const T* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate" PF_OP ".v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// The RT row tiles of one warp: tile i covers rows [row0[i], row0[i] + 16) of w[i] (rows >= nrows[i] read as 0).
struct TileRows {
    const T* w[RT];
    int row0[RT];
    int nrows[RT];
};

// A thread's operands of one chunk: W rows g and g+8 of each of the warp's tiles, halves h = 0, 1 (columns
// t*8 + 32h); x token g of each token tile.
struct WFrag {
    uint4 w[RT][2][2];
};
struct XFrag {
    uint4 x[NT][2];
};
// What a pipeline stage holds in registers: the operands that do not come through a shared-memory ring.
struct Chunk {
#if !WS
    WFrag w;
#endif
#if !XS
    XFrag x;
#endif
};

// Per-thread row pointers (row g / g+8 of each tile, column t*8) and their in-range flags.
struct RowPtrs {
    const T* p[RT][2];
    bool ok[RT][2];
};

__device__ __forceinline__ void load_chunk(Chunk& c, const RowPtrs& rp, const T* x, int K, int M, int g,
                                           int col, int kt) {
    const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        int cc = col + 32 * h;
        [[maybe_unused]] bool ok = cc + kt < K;  // K % 8 == 0, so a 16-byte piece is all in or all out
#if !WS
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            c.w.w[i][0][h] = (rp.ok[i][0] && ok) ? ld_stream(rp.p[i][0] + cc) : z;
            c.w.w[i][1][h] = (rp.ok[i][1] && ok) ? ld_stream(rp.p[i][1] + cc) : z;
        }
#endif
#if !XS
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            int n = j * 8 + g;
            c.x.x[j][h] = (ok && n < M) ? __ldg(reinterpret_cast<const uint4*>(x + (size_t)n * K + cc)) : z;
        }
#endif
    }
}

__device__ __forceinline__ void mma_regs(float (&acc)[RT][NT][4], const WFrag& w, const XFrag& x) {
#pragma unroll
    for (int s = 0; s < 4; ++s) {
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            unsigned a[4] = {word(w.w[i][0][0], w.w[i][0][1], 2 * s), word(w.w[i][1][0], w.w[i][1][1], 2 * s),
                             word(w.w[i][0][0], w.w[i][0][1], 2 * s + 1), word(w.w[i][1][0], w.w[i][1][1], 2 * s + 1)};
#pragma unroll
            for (int j = 0; j < NT; ++j)
                mma16816(acc[i][j], a, word(x.x[j][0], x.x[j][1], 2 * s), word(x.x[j][0], x.x[j][1], 2 * s + 1));
        }
    }
}

#include "gemm_rings.cuh"  // the XS / WS shared-memory rings (cp.async)

// Adds the warp's sums into red[tile * RT + i], K groups in the fixed order kk = 0, 1, ... (all threads call it);
// PR: stores them at red[kk * TILES + tile * RT + i] for block_val to add.
__device__ __forceinline__ void reduce_acc(Red& red, const float (&acc)[RT][NT][4], int tile, int kk, int g, int t) {
#if PR
#pragma unroll
    for (int i = 0; i < RT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            float* v0 = &red.v[kk * TILES + tile * RT + i][j * 8 + 2 * t][0];
            v0[g] = acc[i][j][0]; v0[16 + g] = acc[i][j][1]; v0[g + 8] = acc[i][j][2]; v0[16 + g + 8] = acc[i][j][3];
        }
    __syncthreads();
#else
    for (int turn = 0; turn < WK; ++turn) {
        if (turn == kk) {
#pragma unroll
            for (int i = 0; i < RT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    float* v0 = &red.v[tile * RT + i][j * 8 + 2 * t][0];
                    float* v1 = v0 + 16;
                    const float* a = acc[i][j];
                    if (turn == 0) {
                        v0[g] = a[0]; v1[g] = a[1]; v0[g + 8] = a[2]; v1[g + 8] = a[3];
                    } else {
                        v0[g] += a[0]; v1[g] += a[1]; v0[g + 8] += a[2]; v1[g + 8] += a[3];
                    }
                }
        }
        __syncthreads();
    }
#endif
}

#if WS >= 2
#include "gemm_rowload.cuh"  // warp_gemm with row loads
#else
// Main loop of one warp: its RT row tiles (tr), all M tokens of x [M, K], chunks kk, kk+WK, ... of 64 columns,
// STAGES of them in flight (registers, plus the XS / WS rings). Adds its partial sums into red.
__device__ __forceinline__ void warp_gemm(Red& red, const T* __restrict__ x, const TileRows& tr, int M, int K) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = warp % WM, kk = warp / WM, g = lane >> 2, t = lane & 3;
    RowPtrs rp;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        rp.p[i][0] = tr.w[i] + (size_t)(tr.row0[i] + g) * K + t * 8;
        rp.p[i][1] = rp.p[i][0] + (size_t)8 * K;
        rp.ok[i][0] = tr.row0[i] + g < tr.nrows[i];
        rp.ok[i][1] = tr.row0[i] + g + 8 < tr.nrows[i];
    }
    const T* xt = x + t * 8;
    float acc[RT][NT][4] = {};
    Chunk c[STAGES];  // c[0] is multiplied while c[1..] are in flight
    constexpr int STEP = 64 * WK;
    int col = kk * 64;
#if XS || WS
    __shared__ __align__(16) uint4 xs[XS ? WK : 1][XS ? STAGES : 1][NTOK * 8];
    __shared__ __align__(16) uint4 ws[WS ? WM * WK : 1][WS ? STAGES : 1][RT][128];
    const Rings rg = make_rings(xs[XS ? kk : 0], ws[WS ? warp : 0], x, tr, M, K, tile * 32 + lane, lane);
    int rb = 0;  // ring slot of the chunk being multiplied
#endif
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        load_chunk(c[st], rp, xt, K, M, g, col + st * STEP, t * 8);
#if XS || WS
        ring_fill(rg, st, col + st * STEP, K, lane);
#endif
    }
    for (; col < K; col += STEP) {
        load_chunk(c[STAGES - 1], rp, xt, K, M, g, col + (STAGES - 1) * STEP, t * 8);
#if XS || WS
        ring_wait(kk);  // chunk `col` is in slot rb; slot rb - 1 (read last round) may be refilled
        ring_fill(rg, rb == 0 ? STAGES - 1 : rb - 1, col + (STAGES - 1) * STEP, K, lane);
        WFrag wf;
        XFrag xf;
        ring_read(wf, xf, rg, rb, c[0], g, t);
        mma_regs(acc, wf, xf);
        rb = rb == STAGES - 1 ? 0 : rb + 1;
#else
        mma_regs(acc, c[0].w, c[0].x);
#endif
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) c[st] = c[st + 1];
    }
    reduce_acc(red, acc, tile, kk, g, t);
}
#endif

#include "gemm_fused.cuh"  // the entry kernels: fused prefill norm, residual, SiLU*up, QKV + RoPE epilogues

#include "gemm_rows.cuh"  // stand-alone epilogues after a cuBLAS GEMM (large M): silu_mul_rows, qkv_rope_rows
