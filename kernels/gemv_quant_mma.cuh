// The tensor-core path of the quantized decode GEMVs (QG_MMA = 1, included by gemv_quant_pairs.cuh): the products
// of 16 weight rows with the activation run on mma.sync.m16n8k16 (f16 x f16 -> f32), so a weight value costs
// ~0.6 (int4: one LOP3 per two values, one HMMA per eight a lane) to ~0.9 (int8 / fp8) instructions instead of the
// 1.6-2 of the half2 path: the int4 GEMVs there were issue-bound (ncu: IPC 0.77 a scheduler, 29% of DRAM peak).
//
// A warp owns a tile of 8 row pairs (the pairs of `rows`, as in gemv_quant_pairs.cuh): lane (g = lane / 4, t = lane % 4)
// loads 16 bytes of pair g's rows r0 (A rows g) and r1 (A rows g + 8) at vector 4 it + t of tile iteration it,
// QM_COLS = 4 x (values per vector) columns per iteration. Which k slot of an mma holds which column is free (the
// sum is over k); it only has to agree between A (the weights, any row) and B (the activation, any column of the
// n = 8 output columns: all eight hold the same x, so every lane of row g ends with row g's sum). So the weights
// keep their packed layout:
//   int4 word (nibbles n0..n7 of columns c..c+7): (w & 0x000f000f) | 0x64006400 = half2 (1024 + n0, 1024 + n4),
//     (w & 0x00f000f0) | .. = (1024 + 16 n1, 1024 + 16 n5); the word >> 8 gives (n2, n6) and 16 x (n3, n7).
//     mma 1: A = {(n0,n4), (n2,n6)} of r0 and r1, B = {x(c, c+4), x(c+2, c+6)}; mma 2: the 16 x ones, B = x / 16.
//   int8 word (bytes of columns c..c+3): bytes ^ 0x80 under the half 1024 exponent = 1152 + q (one PRMT a pair).
//   fp8 word: cvt.rn.f16x2.e4m3x2 per pair.
// The constant offset (1024 / 1152 times each staged value) is the same for every row: the staging adds it up per
// iteration block (blk.x); the int4 zero point needs the block's sum of x (blk.y): for each row and iteration,
// sum (q - z) x = C - blk.x - z blk.y, times the group scale (groups of 128 columns or more: whole iterations).
//
// Staging: xh half [K], chunk f (8 columns) at slot qm_slot(f), holding x_j * xscale in the mma order: int4
// (c, c+4, c+2, c+6, then c+1, c+5, c+3, c+7 divided by 16), 8-bit formats natural. xscale = 2^e puts max |x|
// in [2^14, 2^15): no half overflows, and small x stay out of the half subnormals. Products are exact in the fp32
// accumulator; the offsets' size (~1024 x) costs ~2^-13 of the result's scale at most, within TOL_H2.
#pragma once

#ifndef QG_MSPLIT
#define QG_MSPLIT 1       // warps sharing one tile over interleaved K iterations
#endif
#define QM_TILES (QG_WARPS / QG_MSPLIT)   // 8-pair tiles per block
#define QM_PAIRS (8 * QM_TILES)           // row pairs per block
#define QM_ROUNDS (QM_PAIRS / QG_WARPS)   // epilogue rounds of QG_WARPS pairs (one pair a warp, as qgemv_pairs)
// a block's pairs fill whole epilogue rounds: more than 8 warps a tile would leave QM_ROUNDS 0 (no output written)
static_assert(QG_WARPS % QG_MSPLIT == 0 && QG_MSPLIT <= 8, "tiles: QG_MSPLIT must divide QG_WARPS and be <= 8");
#define QM_COLS (4 * QG_EPV)              // columns per tile iteration: int4 128, int8 / fp8 64
#define QM_CPB (QM_COLS / 8)              // staged chunks per iteration block
#if QFMT == 3
#define QM_OFF 1024.0f
#elif QFMT == 2
#define QM_OFF 1152.0f
#else
#define QM_OFF 0.0f
#endif

// (a & M) | c in one LOP3 (the compiler emits an AND and an OR when both constants are immediates)
template <unsigned M>
__device__ __forceinline__ unsigned and_or(unsigned a, unsigned c) {
    unsigned d;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "n"(M), "r"(c));
    return d;
}

// c[0..3] += A (16 x 16, rows g / g+8 in a0..a3 as the PTX fragment) . B (16 x 8, b0 / b1)
__device__ __forceinline__ void mma16816(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                         unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Staged slot of 8-column chunk f: the chunks of an iteration block are stored t-fastest, so the 4 t-lanes of a
// read hit 64 contiguous bytes (no bank conflict) at a lane constant plus an immediate offset.
__device__ __forceinline__ int qm_slot(int f) {
#if QFMT == 3
    return (f & ~15) | ((f & 3) << 2) | ((f >> 2) & 3);   // f = 16 it + 4 t + i -> 16 it + 4 i + t
#else
    return (f & ~7) | ((f & 1) << 2) | ((f >> 1) & 3);    // f = 8 it + 2 t + j -> 8 it + 4 j + t
#endif
}

// chunk i's slot in the tile staging (qm_slot), where xpro_load parks it
struct MmaSlot {
    __device__ __forceinline__ int operator()(int i) const { return qm_slot(i); }
};

// the column (0..7) of chunk position p
__device__ __forceinline__ int qm_col(int p) {
#if QFMT == 3
    return ((p & 1) << 2) | (p & 4 ? 1 : 0) | (p & 2);
#else
    return p;
#endif
}

// Chunk i (< nchunk, or past it: a lane of a partial round) of the staging, f its 8 x: xh slot qm_slot(i); the
// chunk's lane of each iteration block also writes blk. Whole warps: the QM_CPB chunks of a block are QM_CPB
// aligned lanes, their sums are shuffled together. (Two or three chunks a round with their trees interleaved,
// QG_STAGEN, were no faster and are gone: twentieth session, s28a, 13B w2 19.81 -> 20.31 / 20.26 us; the trees
// alone cost 0.4 us there.)
__device__ __forceinline__ void mma_store(__half* xh, float2* blk, const float* f, int i, int nchunk, float xscale) {
    float tsum = 0.0f, xsum = 0.0f;
    if (i < nchunk) {
        __half h[8];
#pragma unroll
        for (int p = 0; p < 8; ++p) {
            const bool sixteenth = QFMT == 3 && p >= 4;
            h[p] = __float2half_rn(f[qm_col(p)] * xscale * (sixteenth ? 0.0625f : 1.0f));
            const float v = __half2float(h[p]);
            tsum += v;
            xsum += sixteenth ? 16.0f * v : v;
        }
        reinterpret_cast<uint4*>(xh)[qm_slot(i)] = *reinterpret_cast<const uint4*>(h);
    }
#pragma unroll
    for (int o = QM_CPB / 2; o > 0 && !(QG_KO & 32); o >>= 1) {  // KO 32 (bench only): no shuffle tree
        tsum += __shfl_xor_sync(0xffffffffu, tsum, o);
        xsum += __shfl_xor_sync(0xffffffffu, xsum, o);
    }
    if (i < nchunk && i % QM_CPB == 0) blk[i / QM_CPB] = make_float2(QM_OFF * tsum, xsum);
}

// Whole block, after xpro_load(.., true, xh as uint4, qm_slot) (gemv_quant_prologue.cuh; K a multiple of QM_COLS;
// chunks past the kept ones parked in their own slots, read back here and overwritten by their staging): xh and blk
// [K / QM_COLS] (float2: QM_OFF x the sum of the block's staged halves, the sum of its effective x), as described
// above; returns (inv_rms (1 without a norm), 1 / xscale); xh and blk are visible to the whole block on return. Two
// barriers: the (ss sum, |x| max) reduction, the stores.
__device__ __forceinline__ float2 stage_mma(__half* xh, float2* blk, const XPro& p, const T* __restrict__ a,
                                            const QArgs& w, const NormIn& nm) {
    __shared__ float2 pscratch[32];
    const int nchunk = w.K >> 3;
    const float2 red = block_sum_max(make_float2(p.s, p.m), pscratch, nm.ss != nullptr, true);
    const float m = red.y;
    int E = 0;
    if (m > 0.0f && m <= 3.0e38f) frexpf(m, &E);  // m = f * 2^E, f in [0.5, 1); 0, NaN-only or inf: scale 1
    const int e = max(-120, min(120, 15 - E));
    const float xscale = __int_as_float((127 + e) << 23);
#pragma unroll
    for (int r = 0; r < QG_XREGS; ++r)  // block-uniform conditions: the shuffles see all lanes
        if (!(QG_KO & 8) && r * (int)blockDim.x < nchunk)
            mma_store(xh, blk, p.x[r], threadIdx.x + r * blockDim.x, nchunk, xscale);
    for (int base = QG_XREGS * blockDim.x; !(QG_KO & 8) && base < nchunk; base += blockDim.x) {  // KO 8: no stores
        const int i = base + threadIdx.x;
        float f[8];
#if QG_PARK
        if (i < nchunk) chunk_f(f, reinterpret_cast<const uint4*>(xh)[qm_slot(i)], w, i);  // parked by xpro_load
#else
        if (i < nchunk) x_chunk(f, a, w, i);
#endif
        mma_store(xh, blk, f, i, nchunk, xscale);
    }
    __syncthreads();
    return make_float2(norm_inv_of_sum(nm, red.x, w.K), __int_as_float((127 - e) << 23));
}

// c += the products of one iteration's vectors w0 (row r0) / w1 (row r1) with the staged x; c[0] row r0, c[2] r1
__device__ __forceinline__ void tile_mma(float* c, uint4 w0, uint4 w1, const __half* xh, int it) {
    const int t = threadIdx.x & 3;
    const unsigned* p0 = reinterpret_cast<const unsigned*>(&w0);
    const unsigned* p1 = reinterpret_cast<const unsigned*>(&w1);
#if QFMT == 3
    unsigned magic = 0x64006400u;
    asm("" : "+r"(magic));  // keep it in a register: the LOP3 takes the mask as its one immediate
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint4 x = reinterpret_cast<const uint4*>(xh)[QM_CPB * it + 4 * i + t];   // columns 32 t + 8 i ..
        const unsigned u0 = p0[i], u1 = p1[i], v0 = u0 >> 8, v1 = u1 >> 8;
        mma16816(c, and_or<0x000f000fu>(u0, magic), and_or<0x000f000fu>(u1, magic),
                 and_or<0x000f000fu>(v0, magic), and_or<0x000f000fu>(v1, magic), x.x, x.y);
        mma16816(c, and_or<0x00f000f0u>(u0, magic), and_or<0x00f000f0u>(u1, magic),
                 and_or<0x00f000f0u>(v0, magic), and_or<0x00f000f0u>(v1, magic), x.z, x.w);
    }
#else
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const uint4 x = reinterpret_cast<const uint4*>(xh)[QM_CPB * it + 4 * j + t];   // columns 16 t + 8 j ..
        const unsigned xw[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const unsigned u0 = p0[2 * j + h], u1 = p1[2 * j + h];
#if QFMT == 2
            const unsigned b0 = u0 ^ 0x80808080u, b1 = u1 ^ 0x80808080u;
            mma16816(c, __byte_perm(b0, 0x64646464u, 0x4140), __byte_perm(b1, 0x64646464u, 0x4140),
                     __byte_perm(b0, 0x64646464u, 0x4342), __byte_perm(b1, 0x64646464u, 0x4342), xw[2 * h],
                     xw[2 * h + 1]);
#else
            mma16816(c, e4m3x2_f16x2(u0), e4m3x2_f16x2(u1), e4m3x2_f16x2(u0 >> 16), e4m3x2_f16x2(u1 >> 16),
                     xw[2 * h], xw[2 * h + 1]);
#endif
        }
    }
#endif
}

#include "gemv_quant_tiles.cuh"
