// Dequantizing dot products of a weight row pair with the staged activation: the formats, launch-shape defines and
// staged-activation helpers of kernels/gemv_quant.cu (which holds the epilogues and the extern "C" kernels and
// documents the design), with its prologue (the fused norm's ss and the activation loaded in one round, for every
// staging) in gemv_quant_prologue.cuh; the drivers follow in gemv_quant_pairs.cuh (row pairs, fp32 staging) and
// gemv_quant_mma.cuh / gemv_quant_tiles.cuh (tensor-core tiles). Included once per module; QFMT and QG_* may be
// set before.
#pragma once
#include "common.cuh"

#ifndef QFMT
#define QFMT 3            // 1 fp8, 2 int8, 3 int4
#endif
#ifndef QG_WARPS
#define QG_WARPS 16       // warps per block
#endif
#ifndef QG_UNROLL
#define QG_UNROLL 2       // 16-byte weight loads in flight per row per lane
#endif
#ifndef QG_KSPLIT
#define QG_KSPLIT 1       // warps of one block sharing a row pair
#endif
#ifndef QG_HACC
#define QG_HACC 0         // 1: half staging and half2 products per weight vector (gemv_quant_h2.cuh)
#endif
#ifndef QG_PFS
#define QG_PFS 0          // > 0: prefetch into L2 the weights this many loop steps ahead (no registers held)
#endif
#ifndef QG_PIPE
#define QG_PIPE 0         // 1: the pipelined row-pair loop (gemv_quant_pipe.cuh); the tiles ignore it
#endif
#ifndef QG_MMA
#define QG_MMA 0          // 1: tensor-core dot products of 8-pair tiles (gemv_quant_mma.cuh; needs QG_KSPLIT 1)
#endif
#ifndef QG_LDCG
#define QG_LDCG 1         // a and the ss partials (the previous kernel's output) through __ldcg; 0: ld.global.nc
#endif
#ifndef QG_CURSOR
#define QG_CURSOR 0       // 1: int4 tiles load through per-lane cursors (gemv_quant_cursor.cuh; CUGRAPHLLM_QG_CURSOR)
#endif
// QG_KO (bench only: scripts/quant_knockout.py, scripts/int4_knockout.py; default 0): bits that knock a phase out of
// both drivers to time what it costs (results are then wrong): 1 the prologue after pdl_enter (no activation or ss
// loads, no staging), 2 the products (the loaded weight words folded into the sums instead), 4 the epilogues;
// half / tile stagings only: 8 the staging's second pass (loads, conversion, stores), 16 the |x| max pass; tiles
// only: 32 the staging's shuffle trees (its block sums); int4 cursor tiles only: 128 the loop's scale / zero loads.
// QG_PARK: the half / tile stagings read a once, its chunks parked in shared memory between the two passes
// (xpro_load); 0: read twice. Off by default where it measured or compiled worse (nineteenth session, H200, s27g /
// s27h): the int4 half2 unsplit GEMVs (70B wo 15.5 -> 19.5 us, w2 43.4 -> 51.5; 7B's split w2 12.30 -> 11.83) and
// the 16-warp 8-bit tiles (4 more bytes of spills; in no default plan).
#ifndef QG_PARK
#define QG_PARK (!((QFMT == 3 && QG_HACC && !QG_MMA && QG_KSPLIT == 1) || (QFMT != 3 && QG_MMA && QG_WARPS >= 16)))
#endif
#ifndef QG_KO
#define QG_KO 0
#endif
// QG_TILED 1: the tiles read the tile-contiguous layout (tile T = 8 pairs, iteration it: the 16-byte vectors t of
// its pairs' rows r0 at (T n_it + it) 64 + 4 g + t, r1 at + 32: one warp load reads 512 contiguous bytes). KO 64
// (bench only) times that access pattern on row-major bytes (the sums are then wrong).
#ifndef QG_TILED
#define QG_TILED ((QG_KO & 64) != 0)
#endif
#define QG_ITV (QG_TILED ? 64 : 4)   // 16-byte vectors from a lane's vector of iteration it to that of it + 1
#define QG_THREADS (QG_WARPS * 32)
// Blocks an SM a kernel is compiled for: the pipelined row pairs at 64 registers (their two fragments would take
// nvcc to 77-93 on int4 / int8, one 512-thread block an SM), and 512-thread tiles too (int4 LM head / 70B w13:
// ptxas put them at 64 registers with spills or at 83-84, one block an SM, from one edit to the next), and the
// 256-thread cursor tiles at 3 (int4: 80 registers, as the others' ptxas picks unbounded; fp8 / int8: 72-80, no
// spills, where unbounded ptxas took 64 and spilled), otherwise no bound.
#if (QG_PIPE && !QG_MMA) || (QG_MMA && QG_THREADS == 512)
#define QG_BOUNDS __launch_bounds__(QG_THREADS, QG_THREADS < 1024 ? 1024 / QG_THREADS : 1)  // 65536 / (64 x threads)
#elif QG_MMA && QG_CURSOR && QG_THREADS == 256
#define QG_BOUNDS __launch_bounds__(256, 3)  // cursor tiles (gemv_quant_cursor.cuh): <= 80 registers
#else
#define QG_BOUNDS __launch_bounds__(QG_THREADS)
#endif
#define QG_PAIRS (QG_WARPS / QG_KSPLIT)
#if QFMT == 3
#define QG_EPV 32         // weight values per 16-byte vector
#else
#define QG_EPV 16
#endif

#if QFMT == 1 && !(defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890)
#define QG_FP8_SOFT 1     // software e4m3 decode: values come out 2^-8 too small
#endif

// ---- staged activation ---------------------------------------------------------------------------------------
// *p for a value the previous kernel wrote (a, ss). QG_LDCG (default; CUGRAPHLLM_QG_LDCG=0 in gpu/ops_quant.py turns
// it off): ld.global.cg (L2, coherent) instead of the read-only ld.global.nc the compiler picks for `const
// __restrict__` data, whose L1 lines are not guaranteed fresh when PDL lets kernels that read and write it overlap
// (with nc the int4 LM head on 16-warp tiles read stale a / ss: benchmarks/results/tenth_2026-11-30/plgfix).
#if QG_LDCG
#define QG_LDP(p) __ldcg(p)
#else
#define QG_LDP(p) (*(p))
#endif

// float4 slot of float4 index f: XOR the low 3 bits with the line (8 float4 = 128 bytes) index.
__device__ __forceinline__ int swz(int f) { return (f & ~7) | ((f ^ (f >> 3)) & 7); }
__device__ __forceinline__ int xs_idx(int k) { return swz(k >> 2) * 4 + (k & 3); }
__device__ __forceinline__ float4 xs4(const float* xs, int f) { return reinterpret_cast<const float4*>(xs)[swz(f)]; }

__device__ __forceinline__ __half2 u2h(unsigned u) { return *reinterpret_cast<const __half2*>(&u); }
// 16-byte chunk f (8 staged half values) of a half staging (gemv_quant_h2.cuh, gemv_quant_mma.cuh)
__device__ __forceinline__ uint4 xh_chunk(const __half* xh, int f) {
    return reinterpret_cast<const uint4*>(xh)[swz(f)];
}

// Weight arguments of one quantized matrix.
struct QArgs {
    const unsigned char* q;   // packed rows: fp8/int8 K bytes a row, int4 K/2 bytes a row
    const void* scales;       // fp8/int8: f32 [N]; int4: f16 [N, K / gs]
    const __half* zeros;      // int4: f16 [N, K / gs]
    const int* perm;          // int32 [K] or nullptr
    const float* gain;        // f32 [K] or nullptr
    int K, gs;
    int gsh;                  // int4: log2(gs / 32) when that is a whole power of two (vector path), else -1
};

// x_j = gain[j] * a[perm[j]] (nullptr perm / gain: identity / ones), one column at a time
__device__ __forceinline__ float staged_x(const T* __restrict__ a, const QArgs& w, int j) {
    const float v = to_f(QG_LDP(a + (w.perm ? w.perm[j] : j)));
    return w.gain ? v * w.gain[j] : v;
}

// f[0..7] = x of columns 8i .. 8i + 7 (no perm) from v, chunk i of a (8 T values)
__device__ __forceinline__ void chunk_f(float* f, uint4 v, const QArgs& w, int i) {
    const unsigned* vp = reinterpret_cast<const unsigned*>(&v);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        float2 p = to_f2(*reinterpret_cast<const T2*>(vp + e));
        f[2 * e] = p.x;
        f[2 * e + 1] = p.y;
    }
    if (w.gain) {
        const float4 g0 = reinterpret_cast<const float4*>(w.gain)[2 * i];
        const float4 g1 = reinterpret_cast<const float4*>(w.gain)[2 * i + 1];
        f[0] *= g0.x; f[1] *= g0.y; f[2] *= g0.z; f[3] *= g0.w;
        f[4] *= g1.x; f[5] *= g1.y; f[6] *= g1.z; f[7] *= g1.w;
    }
}

// chunk i of a (8 T values) as one 16-byte word: a vector load, or 8 gathers through perm
__device__ __forceinline__ uint4 a_chunk(const T* __restrict__ a, const QArgs& w, int i) {
    if (w.perm == nullptr) return QG_LDP(reinterpret_cast<const uint4*>(a) + i);
    union { uint4 u; T t[8]; } c;
#pragma unroll
    for (int e = 0; e < 8; ++e) c.t[e] = QG_LDP(a + w.perm[8 * i + e]);
    return c.u;
}

// f[0..7] = x of columns 8i .. 8i + 7 (K a multiple of 8)
__device__ __forceinline__ void x_chunk(float* f, const T* __restrict__ a, const QArgs& w, int i) {
    chunk_f(f, a_chunk(a, w, i), w, i);
}

// fn(f, i) for this thread's chunks i = from, from + blockDim.x, ... < nchunk, f their x (x_chunk); the loads of
// two chunks are issued together (long K: 7B w2 2.7 chunks a thread of 512, 70B w2 7). keep(v, i) first sees chunk
// i's raw 16 bytes (the half stagings' max pass parks them in shared memory: xpro_load).
template <class Fn, class Keep>
__device__ __forceinline__ void for_chunks(const T* __restrict__ a, const QArgs& w, int from, int nchunk, Fn fn,
                                           Keep keep) {
    for (int i = from; i < nchunk; i += 2 * blockDim.x) {
        const int j = i + blockDim.x;
        const uint4 v0 = a_chunk(a, w, i), v1 = j < nchunk ? a_chunk(a, w, j) : make_uint4(0u, 0u, 0u, 0u);
        float f[8];
        keep(v0, i);
        chunk_f(f, v0, w, i);
        fn(f, i);
        if (j < nchunk) {
            keep(v1, j);
            chunk_f(f, v1, w, j);
            fn(f, j);
        }
    }
}

template <class Fn>
__device__ __forceinline__ void for_chunks(const T* __restrict__ a, const QArgs& w, int from, int nchunk, Fn fn) {
    for_chunks(a, w, from, nchunk, fn, [](const uint4&, int) {});
}

#include "gemv_quant_prologue.cuh"

// ---- dequantizing dot products of one 16-byte vector of two rows with the staged activation -----------------
#if QFMT == 1
// two e4m3 codes (bytes 0 (low) and 1 of b) -> f16x2 bits
__device__ __forceinline__ unsigned e4m3x2_f16x2(unsigned b) {
    unsigned h;
#ifdef QG_FP8_SOFT
    unsigned t = __byte_perm(b, 0u, 0x1404);                // byte0 -> bits 8..15, byte1 -> bits 24..31
    h = (t & 0x80008000u) | ((t >> 1) & 0x3F803F80u);       // sign kept, exponent+mantissa into f16 bits 7..13
#else
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"((unsigned short)b));
#endif
    return h;
}
__device__ __forceinline__ float2 e4m3x2(unsigned b) {
    const unsigned h = e4m3x2_f16x2(b);
    return __half22float2(*reinterpret_cast<const __half2*>(&h));
}
#define QG_ROW_FACTOR_FP8_SOFT 256.0f
#endif

#if QFMT == 3
__device__ __forceinline__ float2 nib2(unsigned w, int p) {  // (1024 + q_p, 1024 + q_{p+4}) of one word
    unsigned t = ((w >> (4 * p)) & 0x000F000Fu) | 0x64006400u;
    return __half22float2(*reinterpret_cast<const __half2*>(&t));
}
#endif

// acc{0,1} += dot(vector v of rows 0/1, xs); int4 returns the raw sums (scales applied by the caller).
__device__ __forceinline__ void dot_vec(uint4 w0, uint4 w1, const float* xs, int v, float& d0, float& d1) {
    const unsigned* p0 = reinterpret_cast<const unsigned*>(&w0);
    const unsigned* p1 = reinterpret_cast<const unsigned*>(&w1);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#if QFMT == 3
        float4 lo = xs4(xs, 8 * v + 2 * i), hi = xs4(xs, 8 * v + 2 * i + 1);  // elements 8i..8i+3, 8i+4..8i+7
        const float xl[4] = {lo.x, lo.y, lo.z, lo.w}, xh[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            float2 a = nib2(p0[i], p), b = nib2(p1[i], p);
            d0 = fmaf(a.x, xl[p], d0);
            d0 = fmaf(a.y, xh[p], d0);
            d1 = fmaf(b.x, xl[p], d1);
            d1 = fmaf(b.y, xh[p], d1);
        }
#else
        float4 x = xs4(xs, 4 * v + i);  // elements 4i..4i+3 of this vector
#if QFMT == 1
        float2 a0 = e4m3x2(p0[i]), a1 = e4m3x2(p0[i] >> 16), b0 = e4m3x2(p1[i]), b1 = e4m3x2(p1[i] >> 16);
        d0 = fmaf(a0.x, x.x, d0); d0 = fmaf(a0.y, x.y, d0); d0 = fmaf(a1.x, x.z, d0); d0 = fmaf(a1.y, x.w, d0);
        d1 = fmaf(b0.x, x.x, d1); d1 = fmaf(b0.y, x.y, d1); d1 = fmaf(b1.x, x.z, d1); d1 = fmaf(b1.y, x.w, d1);
#else   // int8: (b ^ 0x80) in the low byte of 2^23 -> 2^23 + 128 + q exactly
        const unsigned u0 = p0[i] ^ 0x80808080u, u1 = p1[i] ^ 0x80808080u;
        const float off = 8388736.0f;
        const float xv[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            d0 = fmaf(__int_as_float(__byte_perm(u0, 0x4B000000u, 0x7540 + p)) - off, xv[p], d0);
            d1 = fmaf(__int_as_float(__byte_perm(u1, 0x4B000000u, 0x7540 + p)) - off, xv[p], d1);
        }
#endif
#endif
    }
}

// Dequantized weight (without the fp8/int8 row scale) of row r, column k: the scalar path.
__device__ __forceinline__ float deq_at(const QArgs& w, size_t r, int k) {
#if QFMT == 3
    const unsigned word = reinterpret_cast<const unsigned*>(w.q)[r * (size_t)(w.K >> 3) + (k >> 3)];
    const float q = (float)((word >> (4 * (k & 7))) & 0xFu);
    const size_t g = r * (size_t)(w.K / w.gs) + k / w.gs;
    return __half2float(reinterpret_cast<const __half*>(w.scales)[g]) * (q - __half2float(w.zeros[g]));
#elif QFMT == 1
    return e4m3x2(w.q[r * (size_t)w.K + k]).x;
#else
    return (float)(signed char)w.q[r * (size_t)w.K + k];
#endif
}

__device__ __forceinline__ float row_factor(const QArgs& w, size_t r) {
#if QFMT == 3
    (void)w; (void)r;
    return 1.0f;
#elif defined(QG_FP8_SOFT)
    return reinterpret_cast<const float*>(w.scales)[r] * QG_ROW_FACTOR_FP8_SOFT;
#else
    return reinterpret_cast<const float*>(w.scales)[r];
#endif
}

#if QG_HACC
#include "gemv_quant_h2.cuh"
#endif

#include "gemv_quant_pairs.cuh"
