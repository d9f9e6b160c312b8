"""CUDA source of scripts/wg8_probe.py (sm_90a): decode GEMVs whose products run on Hopper's 8-bit tensor-core path
(wgmma m64n8k32, A from registers) with the weight bytes as loaded, instead of converting every weight on the CUDA
cores. wg8_gemv: fp8, y[r] = wscale[r] * inv_rms * sum_k W[r, k] * x_k, x_k = a[k] * gain[k] (gain optional), W e4m3
codes row-major; wgi8_gemv: the same for int8 rows (s8 x s8 planes, exact s32 sums); wg4_gemv: int4 in the
engine's packing (its section below).

fp8's activation as three e4m3 planes, B's first three columns: with v = x * 448 / max|x|, h = e4m3(v),
m = e4m3(16 (v - h)), l = e4m3(16 (16 (v - h) - m)), v = h + m / 16 + l / 256 to ~2^-12 |v| (or 2^-18 absolute near
the subnormal floor): the sums of the three columns, weighted 1, 1/16, 1/256, give the product at about fp16's
precision. The fp8 path's accumulator keeps fewer bits than f32 (s35f), so each 128-column chunk starts a fresh one
and the chunks are added in f32.

Block (tile, ks) of the grid (N / 64, KS): one 64-row tile (N % 64 == 0) over columns [ks K / KS, (ks + 1) K / KS),
WG warpgroups each taking a WG-th of those (K % (128 WG KS) == 0), their sums added in shared memory in warpgroup
order; with KS > 1 the last block of a tile to arrive adds the KS partial rows in order. Each block stages the
planes of its own columns, with its own max. P chunks are in flight a thread.

Thread (warpgroup q, warp w, lane = 4 g + t) streams rows R = 64 tile + 16 w + g and R + 8: per 128-column chunk,
bytes [32 t, 32 t + 32) of each row (fp8: two 16-byte loads a row). wgmma step s (0..3) of the chunk takes, as the
m16n8k32 A fragment of this warp (a0 = row g, k 4t..4t+3; a1 = row g + 8, same k; a2 / a3 = k + 16), the row bytes
[8 s, 8 s + 4) as a0 / a1 and [8 s + 4, 8 s + 8) as a2 / a3: so logical column (s, kl) of the chunk is physical
byte 32 t + 8 s + j with kl = 4 t + j (j < 4) or 16 + 4 t + j - 4. B is staged in that permuted order: step
S = 4 c + s at byte 256 S, K-major with no swizzle, two 8 x 16-byte core matrices (kl < 16, kl >= 16) 128 bytes
apart, row n (plane n; rows 3..7 unused) at 16 n. The H200 confirmed these layouts for fp8 (s35f).
"""

# the head both probe sources share (scripts/wgh_probe_src.py too): launch-shape defines, shared-memory address, the
# no-swizzle K-major descriptor, the load-keeping wait
COMMON = r"""
#include <cuda_fp16.h>
#ifndef WG
#define WG 1            // warpgroups a block (each a WG-th of the block's columns)
#endif
#define NT (128 * WG)
#ifndef P
#define P 2             // chunks (64 bytes a thread) in flight a thread
#endif
#ifndef KO
#define KO 0            // bench only: 1 no planes (B stays zero), 2 no wgmma (the loaded words folded instead)
#endif

__device__ __forceinline__ unsigned sa(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// no-swizzle K-major descriptor: start >> 4, LBO (bits 16..29: between the core matrices along K) 128 bytes, SBO
// (bits 32..45: between 8-row groups along N) sbo bytes
__device__ __forceinline__ unsigned long long bdesc(unsigned addr, unsigned sbo = 128) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | ((unsigned long long)(128 >> 4) << 16)
           | ((unsigned long long)(sbo >> 4) << 32);
}

// waits for this warpgroup's wgmmas; the chunk's registers are inputs so that they stay allocated until here
__device__ __forceinline__ void wg_wait(const uint4 (&r)[4]) {
    asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n"
                 :: "r"(r[0].x), "r"(r[0].y), "r"(r[0].z), "r"(r[0].w), "r"(r[1].x), "r"(r[1].y), "r"(r[1].z),
                    "r"(r[1].w), "r"(r[2].x), "r"(r[2].y), "r"(r[2].z), "r"(r[2].w), "r"(r[3].x), "r"(r[3].y),
                    "r"(r[3].z), "r"(r[3].w) : "memory");
}

// K split over blocks: after this block's partial rows are stored, whether it is the last of its tile's gridDim.y
// blocks to arrive (block-uniform); the last acquires the others' stores and resets the tile's counter ctr[tile]
__device__ __forceinline__ bool last_of_tile(unsigned* ctr) {
    __shared__ int last;
    __syncthreads();  // every store of the block precedes thread 0's release (cooperative groups' grid-sync pattern)
    if (threadIdx.x == 0) {
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        const unsigned old = atomicAdd(ctr + blockIdx.x, 1u);
        last = old == gridDim.y - 1u;
        if (last) {
            asm volatile("fence.acq_rel.gpu;" ::: "memory");
            ctr[blockIdx.x] = 0u;
        }
    }
    __syncthreads();
    return last;
}

// this thread's 32 bytes of rows R (r[0..1]) and R + 8 (r[2..3]) of 128-byte chunk c (w0 / w1: the rows' first
// bytes of the block's columns)
__device__ __forceinline__ void load_chunk(uint4 (&r)[4], const unsigned char* w0, const unsigned char* w1, int c,
                                           int t) {
    const uint4* p0 = reinterpret_cast<const uint4*>(w0 + 128 * c + 32 * t);
    const uint4* p1 = reinterpret_cast<const uint4*>(w1 + 128 * c + 32 * t);
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0].x), "=r"(r[0].y), "=r"(r[0].z), "=r"(r[0].w) : "l"(p0));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[1].x), "=r"(r[1].y), "=r"(r[1].z), "=r"(r[1].w) : "l"(p0 + 1));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[2].x), "=r"(r[2].y), "=r"(r[2].z), "=r"(r[2].w) : "l"(p1));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[3].x), "=r"(r[3].y), "=r"(r[3].z), "=r"(r[3].w) : "l"(p1 + 1));
}

__device__ __forceinline__ unsigned word(const uint4 (&r)[2], int i) {  // word i (0..7) of 32 bytes
    const uint4 v = r[i >> 2];
    const int j = i & 3;
    return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}
"""

SRC = COMMON + r"""

__device__ __forceinline__ unsigned char e4m3(float v) {
    unsigned short p;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(p) : "f"(0.0f), "f"(v));  // v -> low byte
    return (unsigned char)(p & 0xFF);
}
__device__ __forceinline__ float e4m3_f(unsigned char b) {
    unsigned h;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"((unsigned short)b));
    return __half2float(__ushort_as_half((unsigned short)(h & 0xFFFF)));
}

__device__ __forceinline__ void wg_mma(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                       unsigned long long db, int acc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(acc));
}

// int8 weights x int8 planes -> s32 (exact)
__device__ __forceinline__ void wg_mma(int (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                       unsigned long long db, int acc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k32.s32.s8.s8 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p;\n}\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(acc));
}

// the four wgmma steps of one chunk (c: its index from the start of K)
// (a fresh accumulator a chunk: the fp8 path's accumulator keeps fewer bits than f32, so the chunks' sums are added
// on the CUDA cores, as DeepSeek-V3 promotes its fp8 GEMM partials)
template <class Acc>
__device__ __forceinline__ void chunk_mma(Acc (&d)[4], const uint4 (&r)[4], unsigned bbase, int c) {
    const uint4 ra[2] = {r[0], r[1]}, rb[2] = {r[2], r[3]};
#if KO & 2
    d[0] += (Acc)((ra[0].x ^ ra[1].y ^ rb[0].z ^ rb[1].w) & 0xFFu);
    (void)bbase; (void)c;
#else
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int s = 0; s < 4; ++s)
        wg_mma(d, word(ra, 2 * s), word(rb, 2 * s), word(ra, 2 * s + 1), word(rb, 2 * s + 1),
               bdesc(bbase + 256 * (4 * c + s)), s);
#endif
}

// byte offset in B of plane n, physical column i (see the module docstring)
__device__ __forceinline__ int b_at(int i, int n) {
    const int c = i >> 7, p = i & 127, t = p >> 5, s = (p & 31) >> 3, j = p & 7;
    const int kl = j < 4 ? 4 * t + j : 16 + 4 * t + (j - 4);
    return 256 * (4 * c + s) + 128 * (kl >> 4) + 16 * n + (kl & 15);
}

__device__ __forceinline__ float block_max(float v, float* red) {
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = (threadIdx.x & 31) < NT / 32 ? red[threadIdx.x & 31] : 0.0f;
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// v[0..3] = a[c..c+3] * gain[c..c+3] (gain nullptr: ones), c a multiple of 4: the activation the planes carry
__device__ __forceinline__ void xg4(float* v, const __half* __restrict__ a, const float* __restrict__ gain, int c) {
    const uint2 h = *reinterpret_cast<const uint2*>(a + c);
    const float2 x01 = __half22float2(*reinterpret_cast<const __half2*>(&h.x));
    const float2 x23 = __half22float2(*reinterpret_cast<const __half2*>(&h.y));
    const float4 g = gain ? *reinterpret_cast<const float4*>(gain + c) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
    v[0] = x01.x * g.x;
    v[1] = x01.y * g.y;
    v[2] = x23.x * g.z;
    v[3] = x23.y * g.w;
}

// max |a[c] gain[c]| over the block's n columns, in every thread (red: block_max's scratch)
__device__ __forceinline__ float gained_max(const __half* __restrict__ a, const float* __restrict__ gain, int n,
                                            float* red) {
    float mx = 0.0f, v[4];
    for (int i = threadIdx.x; i < n / 4; i += NT) {
        xg4(v, a, gain, 4 * i);
        mx = fmaxf(mx, fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3]))));
    }
    return block_max(mx, red);
}

// the int8 planes of v (already times 127 / max); returns the rebuilt value
__device__ __forceinline__ float planes_i8(float v, signed char& h, signed char& m, signed char& l) {
    const float fh = rintf(v), r = 128.0f * (v - fh), fm = rintf(r), fl = rintf(128.0f * (r - fm));
    h = (signed char)fh;
    m = (signed char)fm;
    l = (signed char)fl;
    return fh + fm * 0.0078125f + fl * 0.00006103515625f;
}

// the planes (h, m, l) of 4 values v[0..3] (already times QMAX / max), packed a byte each: e4m3, or int8 (then
// returns the sum of the rebuilt values, which the int4 kernel's zero term needs)
template <bool I8>
__device__ __forceinline__ float planes4(const float* v, unsigned& h4, unsigned& m4, unsigned& l4) {
    if constexpr (I8) {
        h4 = m4 = l4 = 0u;
        float sum = 0.0f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            signed char h, m, l;
            sum += planes_i8(v[e], h, m, l);
            h4 |= (unsigned)(unsigned char)h << (8 * e);
            m4 |= (unsigned)(unsigned char)m << (8 * e);
            l4 |= (unsigned)(unsigned char)l << (8 * e);
        }
        return sum;
    }
    h4 = m4 = l4 = 0u;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const unsigned char h = e4m3(v[e]);
        const float r1 = 16.0f * (v[e] - e4m3_f(h));
        const unsigned char m = e4m3(r1);
        const unsigned char l = e4m3(16.0f * (r1 - e4m3_f(m)));
        h4 |= (unsigned)h << (8 * e);
        m4 |= (unsigned)m << (8 * e);
        l4 |= (unsigned)l << (8 * e);
    }
    return 0.0f;
}

// The rest of every kernel, from this thread's sums yg / yg8 of rows R / R + 8 (its columns of D, weighted): the
// four threads of a row group added (t order), warpgroups 1.. handing theirs to warpgroup 0 through `acc` (shared,
// >= 8 (WG - 1) 128 bytes), which adds them in order, times f (and wscale[row] when given); written to out, or with
// KS > 1 to part [KS, N] and added there, in order, by the last block of the tile to arrive (ctr [N / 64]).
__device__ __forceinline__ void finish(float yg, float yg8, float* acc, float f, const float* __restrict__ wscale,
                                       float* __restrict__ out, float* __restrict__ part, unsigned* __restrict__ ctr,
                                       int N) {
    const int tid = threadIdx.x, q = tid >> 7, w = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int KS = gridDim.y;
    const size_t R = 64 * (size_t)blockIdx.x + 16 * w + g;
    yg += __shfl_xor_sync(0xffffffffu, yg, 1);
    yg8 += __shfl_xor_sync(0xffffffffu, yg8, 1);
    yg += __shfl_xor_sync(0xffffffffu, yg, 2);
    yg8 += __shfl_xor_sync(0xffffffffu, yg8, 2);
    if (q > 0) {
        acc[((q - 1) * 128 + (tid & 127)) * 2] = yg;
        acc[((q - 1) * 128 + (tid & 127)) * 2 + 1] = yg8;
    }
    __syncthreads();
    if (q == 0) {
        for (int p = 0; p < WG - 1; ++p) {
            yg += acc[(p * 128 + tid) * 2];
            yg8 += acc[(p * 128 + tid) * 2 + 1];
        }
        if (t == 0) {
            float* o = KS > 1 ? part + (size_t)blockIdx.y * N : out;
            o[R] = yg * f * (wscale ? wscale[R] : 1.0f);
            o[R + 8] = yg8 * f * (wscale ? wscale[R + 8] : 1.0f);
        }
    }
    if (KS == 1) return;
    const bool last = last_of_tile(ctr);
    if (!last || tid >= 64) return;
    const size_t r = 64 * (size_t)blockIdx.x + tid;
    float y = 0.0f;
    for (int k = 0; k < KS; ++k) y += __ldcg(part + (size_t)k * N + r);
    out[r] = y;
}

// inv_rms of the fused norm from the producer's partial sums of squares (1 without ss), in every lane
__device__ __forceinline__ float rms_of(const float* __restrict__ ss, int n_ss, float eps, int K) {
    float nsum = 0.0f;
    for (int i = (threadIdx.x & 31); i < n_ss; i += 32) nsum += ss[i];
    for (int o = 16; o; o >>= 1) nsum += __shfl_xor_sync(0xffffffffu, nsum, o);
    return ss ? rsqrtf(nsum / (float)K + eps) : 1.0f;
}

// fp8 (I8 false: e4m3 x e4m3 planes, f32 D) or int8 (s8 x s8 planes, exact s32 D) weights, one byte each with an
// f32 row scale. grid (N / 64, KS), block NT threads, dynamic shared memory 8 K / KS + 8 NT bytes; with KS > 1 also
// part f32 [KS, N] and ctr u32 [N / 64] (zero; the last block of a tile resets its counter)
template <bool I8> struct AccOf { typedef float type; };  // NVRTC has no <type_traits>
template <> struct AccOf<true> { typedef int type; };

template <bool I8>
__device__ __forceinline__ void w8_body(
        float* __restrict__ out, const __half* __restrict__ a, const unsigned char* __restrict__ W,
        const float* __restrict__ wscale, const float* __restrict__ gain, const float* __restrict__ ss, int n_ss,
        float eps, int N, int K, float* __restrict__ part, unsigned* __restrict__ ctr) {
    constexpr float QMAX = I8 ? 127.0f : 448.0f, W1 = I8 ? 0.0078125f : 0.0625f, W2 = I8 ? 0.00006103515625f
                                                                                         : 0.00390625f;
    extern __shared__ __align__(128) unsigned char sm[];  // B planes [8 K / KS], then accumulators
    __shared__ float red[32];
    const int tid = threadIdx.x, q = tid >> 7, w = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int KS = gridDim.y, Kb = K / KS, k0 = blockIdx.y * Kb;   // this block's columns [k0, k0 + Kb)
    const size_t R = 64 * (size_t)blockIdx.x + 16 * w + g;
    const unsigned char* w0 = W + R * K + k0;
    const unsigned char* w1 = W + (R + 8) * K + k0;
    const int per = Kb / 128 / WG, c0 = q * per, c1 = c0 + per;  // chunks (of the block's columns) of warpgroup q
    uint4 buf[P][4];
#pragma unroll
    for (int j = 0; j < P; ++j)
        if (c0 + j < c1) load_chunk(buf[j], w0, w1, c0 + j, t);  // weights: before the wait
    asm volatile("griddepcontrol.wait;" ::: "memory");
    // stage: the max |x| of the block's columns, their three planes (B's rows 3..7 are left as they are: the
    // columns of D they give are never read)
    const float* gb = gain ? gain + k0 : nullptr;
    const float mx = gained_max(a + k0, gb, Kb, red);
    float v[4];
    const float inv = mx > 0.0f ? QMAX / mx : 1.0f, scale = mx > 0.0f ? mx / QMAX : 1.0f;
    for (int i = tid; i < Kb / 4 && !(KO & 1); i += NT) {
        xg4(v, a + k0, gb, 4 * i);
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] *= inv;
        unsigned h4, m4, l4;
        planes4<I8>(v, h4, m4, l4);
        const int at = b_at(4 * i, 0);  // 4 consecutive columns: 4 consecutive bytes of each plane row
        *reinterpret_cast<unsigned*>(sm + at) = h4;
        *reinterpret_cast<unsigned*>(sm + at + 16) = m4;
        *reinterpret_cast<unsigned*>(sm + at + 32) = l4;
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // generic-proxy stores -> wgmma's reads
    __syncthreads();
    const unsigned bbase = sa(sm);
    using Acc = typename AccOf<I8>::type;
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    Acc dc[4] = {0, 0, 0, 0};
    for (int c = c0; c < c1; c += P) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
            if (c + j < c1) {  // warpgroup-uniform
                chunk_mma(dc, buf[j], bbase, c + j);
                wg_wait(buf[j]);
#pragma unroll
                for (int i = 0; i < 4; ++i) d[i] += (float)dc[i];
                if (c + j + P < c1) load_chunk(buf[j], w0, w1, c + j + P, t);
            }
        }
    }
    // D's columns 2t, 2t + 1 in this thread (d0 / d1 row R, d2 / d3 row R + 8): planes 0, 1, 2 weigh 1, W1, W2
    const float cw0 = t == 0 ? 1.0f : t == 1 ? W2 : 0.0f, cw1 = t == 0 ? W1 : 0.0f;
    finish(cw0 * d[0] + cw1 * d[1], cw0 * d[2] + cw1 * d[3], reinterpret_cast<float*>(sm + 8 * (size_t)Kb),
           scale * rms_of(ss, n_ss, eps, K), wscale, out, part, ctr, N);
}

#define W8_PARAMS float* __restrict__ out, const __half* __restrict__ a, const unsigned char* __restrict__ W, \
    const float* __restrict__ wscale, const float* __restrict__ gain, const float* __restrict__ ss, int n_ss, \
    float eps, int N, int K, float* __restrict__ part, unsigned* __restrict__ ctr
#define W8_ARGS out, a, W, wscale, gain, ss, n_ss, eps, N, K, part, ctr
extern "C" __global__ void __launch_bounds__(NT) wg8_gemv(W8_PARAMS) { w8_body<false>(W8_ARGS); }
extern "C" __global__ void __launch_bounds__(NT) wgi8_gemv(W8_PARAMS) { w8_body<true>(W8_ARGS); }

// ---- int4 (group 128 = one chunk): wgmma m64n8k32 u8 x s8 -> s32 --------------------------------------------
// A: the nibbles widened to bytes, lo = w & 0x0F0F0F0F (nibbles 0, 2, 4, 6), hi = (w >> 4) & 0x0F0F0F0F (1, 3, 5, 7);
// step s of a chunk takes word s of the thread's 16 bytes of each row: a0 = lo (row g), a1 = lo (row g + 8),
// a2 = hi (row g), a3 = hi (row g + 8). So logical (s, kl) is physical column 32 t + 8 s + e of the chunk with
// kl = 4 t + e / 2 (e even) or 16 + 4 t + e / 2 (e odd). B: the activation as three int8 planes, v = x * 127 / max,
// h = rint(v), m = rint(128 (v - h)), l = rint(128 (128 (v - h) - m)): v = h + m / 128 + l / 16384 to 2^-15. D is
// exact (s32); each chunk's D is scaled by its group's scale, less zero * (the group's sum of rebuilt v).

__device__ __forceinline__ int b4_at(int i, int n) {
    const int c = i >> 7, p = i & 127, t = p >> 5, s = (p & 31) >> 3, e = p & 7;
    const int kl = (e & 1) ? 16 + 4 * t + (e >> 1) : 4 * t + (e >> 1);
    return 256 * (4 * c + s) + 128 * (kl >> 4) + 16 * n + (kl & 15);
}

__device__ __forceinline__ void wg_mma4(int (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                        unsigned long long db, int acc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k32.s32.u8.s8 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p;\n}\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(acc));
}

struct Chunk4 {
    uint4 r0, r1;                // 16 bytes (32 nibbles) of rows R and R + 8
    __half2 sz0, sz8;            // (scale, zero) of the chunk's group, rows R and R + 8
};

__device__ __forceinline__ void load4(Chunk4& k, const unsigned char* w0, const unsigned char* w1,
                                      const __half* s0, const __half* s8, const __half* z0, const __half* z8, int c,
                                      int t) {
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(k.r0.x), "=r"(k.r0.y), "=r"(k.r0.z), "=r"(k.r0.w) : "l"(w0 + 64 * c + 16 * t));
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(k.r1.x), "=r"(k.r1.y), "=r"(k.r1.z), "=r"(k.r1.w) : "l"(w1 + 64 * c + 16 * t));
    k.sz0 = __halves2half2(__ldg(s0 + c), __ldg(z0 + c));
    k.sz8 = __halves2half2(__ldg(s8 + c), __ldg(z8 + c));
}

__device__ __forceinline__ void wg_wait4(const Chunk4& k) {
    asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n"
                 :: "r"(k.r0.x), "r"(k.r0.y), "r"(k.r0.z), "r"(k.r0.w), "r"(k.r1.x), "r"(k.r1.y), "r"(k.r1.z),
                    "r"(k.r1.w) : "memory");
}

__device__ __forceinline__ void chunk_mma4(int (&d)[4], const Chunk4& k, unsigned bbase, int c) {
    const unsigned a[4] = {k.r0.x, k.r0.y, k.r0.z, k.r0.w}, b[4] = {k.r1.x, k.r1.y, k.r1.z, k.r1.w};
#if KO & 2
    d[0] += (int)((a[0] ^ b[1] ^ a[2] ^ b[3]) & 0xFFu);
    (void)bbase; (void)c;
#else
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int s = 0; s < 4; ++s)
        wg_mma4(d, a[s] & 0x0F0F0F0Fu, b[s] & 0x0F0F0F0Fu, (a[s] >> 4) & 0x0F0F0F0Fu, (b[s] >> 4) & 0x0F0F0F0Fu,
                bdesc(bbase + 256 * (4 * c + s)), s);
#endif
}

// grid (N / 64, KS), block NT threads, dynamic shared memory 8 K / KS + 4 K / KS / 128 + 8 NT bytes (B planes, the
// groups' sums, the accumulators); W: the engine's int4 rows (uint32 [N, K / 8]); scales / zeros f16 [N, K / 128]
extern "C" __global__ void __launch_bounds__(NT) wg4_gemv(
        float* __restrict__ out, const __half* __restrict__ a, const unsigned char* __restrict__ W,
        const __half* __restrict__ scales, const __half* __restrict__ zeros, const float* __restrict__ gain,
        const float* __restrict__ ss, int n_ss, float eps, int N, int K, float* __restrict__ part,
        unsigned* __restrict__ ctr) {
    extern __shared__ __align__(128) unsigned char sm[];
    __shared__ float red[32];
    const int tid = threadIdx.x, q = tid >> 7, w = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int KS = gridDim.y, Kb = K / KS, k0 = blockIdx.y * Kb, G = K / 128;
    const size_t R = 64 * (size_t)blockIdx.x + 16 * w + g;
    const unsigned char* w0 = W + R * (K / 2) + k0 / 2;
    const unsigned char* w1 = W + (R + 8) * (K / 2) + k0 / 2;
    const __half *s0 = scales + R * G + k0 / 128, *s8 = scales + (R + 8) * G + k0 / 128;
    const __half *z0 = zeros + R * G + k0 / 128, *z8 = zeros + (R + 8) * G + k0 / 128;
    const int per = Kb / 128 / WG, c0 = q * per, c1 = c0 + per;
    Chunk4 buf[P];
#pragma unroll
    for (int j = 0; j < P; ++j)
        if (c0 + j < c1) load4(buf[j], w0, w1, s0, s8, z0, z8, c0 + j, t);  // weights: before the wait
    asm volatile("griddepcontrol.wait;" ::: "memory");
    // stage: max |x|, the planes (8 consecutive columns a thread: 2 x 4 bytes a plane), each group's rebuilt sum
    float* xsum = reinterpret_cast<float*>(sm + 8 * (size_t)Kb);  // [Kb / 128]
    const float* gb = gain ? gain + k0 : nullptr;
    const float mx = gained_max(a + k0, gb, Kb, red);
    float v[8];
    const float inv = mx > 0.0f ? 127.0f / mx : 1.0f, scale = mx > 0.0f ? mx / 127.0f : 1.0f;
    for (int i0 = tid - lane; i0 < Kb / 8; i0 += NT) {  // warp-uniform; a group = lanes 0-15 or 16-31 of a warp
        const int i = i0 + lane;
        const bool on = i < Kb / 8;  // Kb / 8 is a multiple of 16: a half-warp is all on or all off
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = 0.0f;
        if (on) {
            xg4(v, a + k0, gb, 8 * i);
            xg4(v + 4, a + k0, gb, 8 * i + 4);
        }
        // the planes of columns 8i + {0, 2, 4, 6} (ev) and {1, 3, 5, 7} (od), and their rebuilt sum
        const float ve[4] = {v[0] * inv, v[2] * inv, v[4] * inv, v[6] * inv};
        const float vo[4] = {v[1] * inv, v[3] * inv, v[5] * inv, v[7] * inv};
        unsigned ev[3], od[3];
        float sum = planes4<true>(ve, ev[0], ev[1], ev[2]) + planes4<true>(vo, od[0], od[1], od[2]);
        if (on && !(KO & 1)) {
            const int ae = b4_at(8 * i, 0), ao = b4_at(8 * i + 1, 0);
#pragma unroll
            for (int n = 0; n < 3; ++n) {
                *reinterpret_cast<unsigned*>(sm + ae + 16 * n) = ev[n];
                *reinterpret_cast<unsigned*>(sm + ao + 16 * n) = od[n];
            }
        }
        for (int o = 8; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (on && (lane & 15) == 0) xsum[i >> 4] = sum;
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
    const unsigned bbase = sa(sm);
    // D's columns 2t, 2t + 1 here: planes 0, 1, 2 weigh 1, 1/128, 1/16384; the zero term once a row (t == 0)
    const float cw0 = t == 0 ? 1.0f : t == 1 ? 0.00006103515625f : 0.0f, cw1 = t == 0 ? 0.0078125f : 0.0f;
    float yg = 0.0f, yg8 = 0.0f;
    int dc[4] = {0, 0, 0, 0};
    for (int c = c0; c < c1; c += P) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
            if (c + j < c1) {
                chunk_mma4(dc, buf[j], bbase, c + j);
                wg_wait4(buf[j]);
                const float2 f0 = __half22float2(buf[j].sz0), f8 = __half22float2(buf[j].sz8);
                const float zs = t == 0 ? xsum[c + j] : 0.0f;
                yg += f0.x * (cw0 * (float)dc[0] + cw1 * (float)dc[1] - f0.y * zs);
                yg8 += f8.x * (cw0 * (float)dc[2] + cw1 * (float)dc[3] - f8.y * zs);
                if (c + j + P < c1) load4(buf[j], w0, w1, s0, s8, z0, z8, c + j + P, t);
            }
        }
    }
    finish(yg, yg8, reinterpret_cast<float*>(sm + 8 * (size_t)Kb + 4 * (size_t)(Kb / 128)),
           scale * rms_of(ss, n_ss, eps, K), nullptr, out, part, ctr, N);
}
"""
