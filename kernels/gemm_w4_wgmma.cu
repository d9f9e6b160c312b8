// int4 prefill GEMM on Hopper wgmma, the weight dequantized in registers (gpu/gemm_w4.py): out [M, N] (MODE 0:
// x f32 +=, split-K allowed; MODE 1: T =) = a T [M, K] @ W [N, K].T, W our packed int4 (quant/formats.py:
// qweight uint32 [N, K / 8], element k of row n the nibble at bits 4 (k % 8) of word k / 8; scales / zeros fp16
// [N, K / GS]). fp16 activations only. Needs sm_90a (wgmma): compiled for anything else, the kernel is a stub
// that traps (CI compiles every .cu for sm_90; gemm_w4.py compiles this one with -arch=sm_90a).
//
// The weight rows are wgmma's M (64 a consumer warpgroup) and the register operand A; the tokens are wgmma's N (BT a
// tile), operand B from shared memory. CTA: WG consumer warpgroups, then the producer (one warp, or with PW a
// whole warpgroup that keeps PREGS registers a thread and hands the rest of the block's to the consumers), whose
// lane 0 issues two tensor-map copies a k-tile of 64 columns into a STAGES ring guarded by full / empty mbarriers:
// the activations (box 64 x BT fp16, 128-byte swizzle) and the packed weights (box 8 words x BW rows, 32 bytes a
// row, unswizzled).
// A consumer thread (warp w of its warpgroup, lane l, g = l / 4, t = l % 4) owns rows 16 w + g and 16 w + g + 8 of
// its warpgroup's 64; for k16 step s its A fragment (as mma.m16n8k16's) is a0 = row g, k 16 s + 2 t + {0, 1};
// a1 = row g + 8, same k; a2 / a3 = the same rows at k + 8: the two nibbles of byte t of word 2 s (a0, a1) or
// 2 s + 1 (a2, a3). Two 16-byte shared loads a row give a k-tile's eight words; byte_perm + lop3 + hsub2 make the
// exact q - z of each byte's two nibbles, one hmul2 by the scale the fp16 weight (the dequantized-slab path's
// value, one rounding). These k-tile steps (tile_in, tile_mma): gemm_w4_wgmma_consumer.cuh.
//
// Why every batch completes before the next tile's fragments are made: wgmma reads its A registers after issue,
// and ptxas neither guards a register rewritten across the loop's back edge (a race, seen) nor lets two register
// sets alternate (it serializes: C7513). So a warpgroup keeps one batch in flight; the exact q - z of the next
// tile (not wgmma operands) are made while it runs, and the other warpgroups keep the tensor cores fed. Measured
// (eighteenth session): 2 or 4 k-tiles a batch are no faster, nor is the kernel without loads; without wgmma it
// still takes 60-65% of its time: the dequantizing instruction stream is the bound, hence 256-token tiles (each
// fragment feeds twice the tokens; 128 accumulators a thread, so with PW).
// Accumulator (m64nBTk16 f32): d[4 j + 0 / 1] = row 16 w + g, tokens 8 j + 2 t + 0 / 1; d[4 j + 2 / 3] = row + 8.
// Epilogue: the tile staged token-major in the (idle) ring, then 4 consecutive rows of one token a thread:
// red.global.add.v4.f32 (MODE 0) or one 8-byte store (MODE 1).
#include <cuda_fp16.h>
#include "tma_wgmma.cuh"
#include "w4_dequant.cuh"
#include "split_sum.cuh"
#ifndef WG
#define WG 2        // consumer warpgroups, 64 weight rows each
#endif
#ifndef BT
#define BT 128      // tokens a tile: 64, 128 or 256
#endif
#ifndef STAGES
#define STAGES 4
#endif
#ifndef GS
#define GS 128      // int4 group size (a power of two >= 32), or 0: one group a row
#endif
#ifndef MODE
#define MODE 0
#endif
#ifndef FMT
#define FMT 4       // weight bits: 4 (int4, groups) or 8 (int8, one fp32 scale a row, applied in the epilogue)
#endif
#if FMT != 4 && FMT != 8
#error "FMT: 4 or 8"
#endif
#ifndef PROBE
#define PROBE 0     // bench only (wrong sums): 1 no loads after the first STAGES k-tiles, 2 no wgmma
#endif
#ifndef SERIAL
#define SERIAL 0    // K split: 1 each split adds its partial after the one before (a ticket a tile), 0 park()
#endif
#ifndef TILES
#define TILES 0     // int4 qweight layout (gpu/quant_tiles.py): 0 row-major, 1 / 2 tile-contiguous (pairing 1 / 2)
#endif
#if TILES && FMT != 4
#error "TILES: int4 only"
#endif
#ifndef PW
#define PW 0        // 1: the producer is a whole warpgroup that gives registers to the consumers (setmaxnreg)
#endif
#define BW (64 * WG)
#define NCW (4 * WG)
#define NTH (128 * WG + (PW ? 128 : 32))
// PW: the producer's registers a thread, and each consumer's: 128 (PREGS + WG CREGS) must not pass what the launch
// gave the block (NTH x 65536 / NTH rounded down to 8s: 168 / 128 / 96 at WG 2 / 3 / 4), or setmaxnreg.inc waits
// forever (a 4-warpgroup config asking for 120 hung)
#define PREGS (WG == 4 ? 24 : 40)
#define CREGS (WG == 2 ? 232 : WG == 3 ? 152 : 112)
#define X_BYTES (BT * 128)
#define WROW (8 * FMT)  // bytes of a weight row a k-tile of 64
#define W_BYTES (BW * WROW)
#define STAGE_BYTES (X_BYTES + W_BYTES)
#define NACC (BT / 2)
#if GS != 0 && (GS < 32 || (GS & (GS - 1)))
#error "GS: a power of two >= 32, or 0"
#endif
#if GS == 0
#define GSH 30
#else
#define GSH (31 - __clz(GS))
#endif

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// d [BT / 2] f32 += A (registers a0..a3) @ B (shared, K-major, 128-byte swizzle, descriptor db)
__device__ __forceinline__ void mma_rs(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                       unsigned long long db) {
#if PROBE == 2
    d[0] += __uint_as_float(a0 ^ a1 ^ a2 ^ a3);  // keeps the fragments live
#else
    wgmma_rs<BT>(d, a0, a1, a2, a3, db);
#endif
}

// The CTA-local position (0 .. BW - 1: the staged tile's column order) of shared-memory weight row i. TILES 0: i;
// the tile-contiguous layouts land a tile's 16 rows as r0 of its pairs g = 0..7, then their r1 (5-D tensor map):
// TILES 1 rows 2 p, 2 p + 1 of pair p = 8 (i / 16) + i % 8; TILES 2 the w1 rows (first BW / 2) then the w3 rows.
__device__ __forceinline__ int tile_pos(int i) {
#if TILES == 1
    return (i & ~15) | ((i & 7) << 1) | ((i >> 3) & 1);
#elif TILES == 2
    return ((i >> 3) & 1) * (BW / 2) + ((i >> 4) << 3) + (i & 7);
#else
    return i;
#endif
}

// the row of W (and output column) of CTA-local position pos, or -1 past the N rows
__device__ __forceinline__ int out_row(int n0, int pos, int N) {
#if TILES == 2
    const int F = N >> 1, j = (n0 >> 1) + pos % (BW / 2);
    return j < F ? j + (pos >= BW / 2 ? F : 0) : -1;
#else
    return n0 + pos < N ? n0 + pos : -1;
#endif
}

#include "gemm_w4_wgmma_consumer.cuh"

// The CTA's tile, staged token-major in P [BT][BW + 4] (the pad spreads a warp's stores over the banks), then out.
// Rows lr / lr + 8 of the thread's accumulators go to positions tile_pos(lr) / tile_pos(lr + 8).
__device__ __forceinline__ void epilogue(float* P, const float* d, int lr, int tb, float* x, __half* out, int M,
                                         int N, int m0, int n0, float* ws, int* tickets, int* last) {
    constexpr int PS = BW + 4;
    const int p0 = tile_pos(lr), p1 = tile_pos(lr + 8);
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
        const int cc = 8 * j + 2 * tb;
        P[cc * PS + p0] = d[4 * j];
        P[(cc + 1) * PS + p0] = d[4 * j + 1];
        P[cc * PS + p1] = d[4 * j + 2];
        P[(cc + 1) * PS + p1] = d[4 * j + 3];
    }
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
#if MODE == 0
    const bool fixed = gridDim.z > 1 && tickets != nullptr;  // else each split adds its own partial (atomics)
#if SERIAL
    int* ticket = tickets + blockIdx.y * gridDim.x + blockIdx.x;
    const float* part = nullptr;
    if (fixed) await_turn<NCW * 32>(ticket);
#else
    const float* part = fixed ? park<NCW * 32, BT, BW>(P, ws, tickets, last) : nullptr;
    if (fixed && part == nullptr) return;
#endif
#endif
    for (int e = threadIdx.x; e < BT * (BW / 4); e += NCW * 32) {
        const int tok = e / (BW / 4), row = 4 * (e % (BW / 4)), orow = out_row(n0, row, N);
        if (m0 + tok >= M || orow < 0) continue;
        float4 v = *reinterpret_cast<const float4*>(P + tok * PS + row);
#if MODE == 0
        if (part != nullptr) {
            v = __ldcg(reinterpret_cast<const float4*>(part + tok * BW + row));
            for (int z = 1; z < (int)gridDim.z; ++z) {
                const float4 u = __ldcg(reinterpret_cast<const float4*>(part + (size_t)z * (BT * BW) + tok * BW + row));
                v.x += u.x, v.y += u.y, v.z += u.z, v.w += u.w;
            }
        }
#endif
        const float vv[4] = {v.x, v.y, v.z, v.w};
        const size_t o = (size_t)(m0 + tok) * N + orow;
#if MODE == 0
        if ((N & 3) == 0) {
            asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                         :: "l"(x + o), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
        } else {
            for (int q = 0; q < 4 && orow + q < N; ++q) atomicAdd(x + o + q, vv[q]);
        }
#else
        if ((N & 3) == 0) {
            const __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
            *reinterpret_cast<uint2*>(out + o) = make_uint2(h2u(lo), h2u(hi));
        } else {
            for (int q = 0; q < 4 && orow + q < N; ++q) out[o + q] = __float2half(vv[q]);
        }
#endif
    }
#if MODE == 0 && SERIAL
    if (fixed) pass_turn<NCW * 32>(ticket);
#endif
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// grid (ceil(N / BW), ceil(M / BT), splits; MODE 1: splits 1), NTH threads, dynamic shared memory
// max(STAGES * STAGE_BYTES, BT * (BW + 4) * 4) + 1024. tw: map of qweight (int4: uint32 [N, K / 8], box 8 x BW;
// TILES: the 5-D (16 words, g 8, r0 / r1 2, K / 128, N / 16) of the tile-contiguous words, box (8, 8, 2, 1, BW / 16);
// int8: its bytes as uint32 [N, K / 4], box 16 x BW; no swizzle), ta: map of a (fp16 [M, K], box 64 x BT, 128-byte
// swizzle); both zero-fill out of bounds. int4: K % 32 == 0, GS | K; int8: K % 16 == 0 (the weight map's rows are
// 16-byte multiples). splits > 1: ws f32 [tiles][splits][BT][BW] and tickets int32 [tiles], zero on entry (and so
// on exit), tiles = the grid's x * y; or tickets null: each split adds its partial to x by atomics (faster, not
// bit-reproducible).
extern "C" __global__ void __launch_bounds__(NTH, 1)
w4_wgmma(const __grid_constant__ TMap tw, const __grid_constant__ TMap ta, float* __restrict__ x,
         __half* __restrict__ out, const void* __restrict__ scales, const __half* __restrict__ zeros,
         float* __restrict__ ws, int* __restrict__ tickets, int M, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    __shared__ __align__(8) unsigned long long full[STAGES], empty[STAGES];
    __shared__ int last;  // park()'s verdict
    const unsigned base = (sa(smem_raw) + 1023u) & ~1023u;
    const int n0 = blockIdx.x * BW, m0 = blockIdx.y * BT;
    int kt0, kt1;
    split_ktiles(K, kt0, kt1);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) ring_init(full, empty, WG);
    __syncthreads();
    if (warp >= NCW) {  // producer
#if PW
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" :: "n"(PREGS));
#endif
        if (warp == NCW && lane == 0) {
            for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) {
                const int s = i % STAGES, round = i / STAGES;
                if (round > 0) mbar_wait(sa(&empty[s]), (round - 1) & 1);
#if PROBE == 1  // bench only: after the first fill the stages are reused as they are (no memory traffic)
                if (round > 0) {
                    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(sa(&full[s])) : "memory");
                    continue;
                }
#endif
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                             :: "r"(sa(&full[s])), "r"(STAGE_BYTES) : "memory");
                tma2d(base + s * STAGE_BYTES, &ta, kt * 64, m0, sa(&full[s]));
#if TILES  // the map's dims: 16 words (128 columns) of a row, g, r0 / r1, iteration, tile
                tma5d(base + s * STAGE_BYTES + X_BYTES, &tw, (kt & 1) * 8, 0, 0, kt >> 1, n0 / 16, sa(&full[s]));
#else
                tma2d(base + s * STAGE_BYTES + X_BYTES, &tw, kt * 2 * FMT, n0, sa(&full[s]));
#endif
            }
        }
        return;
    }
#if PW
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" :: "n"(CREGS));
#endif
    const int t = threadIdx.x & 127, tb = lane & 3;
    const int lr = (warp >> 2) * 64 + (t >> 5) * 16 + (lane >> 2);  // this thread's first row in the CTA tile
    const int ng = GS == 0 ? 1 : K / (GS == 0 ? 1 : GS);
    const __half* sh = static_cast<const __half*>(scales);
    const int r0 = out_row(n0, tile_pos(lr), N), r1 = out_row(n0, tile_pos(lr + 8), N);  // past N: row N - 1
    const Ctx c = {base, sa(full), sa(empty), FMT == 8 ? 0x1100u + tb * 0x2222u : tb * 0x0101u, lr,
                   r0 < 0 ? N - 1 : r0, r1 < 0 ? N - 1 : r1, ng, t, sh, zeros};
    float d[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) d[i] = 0.0f;
#if FMT == 8
    GroupVals nv0 = {}, nv1 = {};  // unused
    const float rs0 = __ldg(static_cast<const float*>(scales) + c.r0), rs1 = __ldg(static_cast<const float*>(scales)
                                                                                    + c.r1);
#else
    GroupVals nv0 = group_vals(sh, zeros, c.r0, c.r1, ng, (kt0 * 64) >> GSH), nv1 = nv0;
#if GS == 32
    nv1 = group_vals(sh, zeros, c.r0, c.r1, ng, (kt0 * 64 + 32) >> GSH);
#endif
#endif
    unsigned h[16];
    __half2 sc[4];
    if (kt0 < kt1) tile_in(c, kt0, 0, h, sc, nv0, nv1);
    for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) tile_mma(c, kt, i, kt1, h, sc, d, nv0, nv1);
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#if FMT == 8
#pragma unroll
    for (int j = 0; j < NACC; ++j) d[j] *= (j & 2) ? rs1 : rs0;  // d[4 j' + 0 / 1]: row lr, + 2 / 3: row lr + 8
#endif
    // the ring is idle once every consumer's last batch is done (bar.sync in epilogue): it holds the staged tile
    epilogue(reinterpret_cast<float*>(smem_raw + (base - sa(smem_raw))), d, lr, tb, x, out, M, N, m0, n0, ws,
             tickets, &last);
#else
    __trap();
#endif
}
