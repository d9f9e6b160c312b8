// The half2 path of the quantized decode GEMVs (QG_HACC = 1, included by gemv_quant.cuh): the fp32 path spends
// ~3 instructions per weight value (unpack, f16 -> f32 convert, FFMA) and is ALU-bound on int4; here a weight
// value costs ~1 (fp8: hardware e4m3x2 -> f16x2, HFMA2), ~1.75 (int8) or ~1.6 (int4) instructions.
//
// Staging: xh half [round_up(K, 64)] in shared memory, 16-byte chunk f (columns 8f .. 8f + 7) at chunk slot swz(f)
// (conflict-free 16-byte reads by lanes one weight vector apart), holding half(x_j * xscale), x_j = gain[j] *
// a[perm[j]]. xscale = 2^e is block-uniform: max |x_j| * xscale lies in [XMAX / 2, XMAX), so no half partial sum
// can overflow (bound per format below) whatever the activation's range (bf16 included); 1 / xscale is folded
// into the row factor. Chunk order: 8-bit formats natural (half2 i = columns 2i, 2i + 1, as the converters give
// them); int4 pairs (c, c + 4) (half2 i = columns i, i + 4, the nibbles one mask apart in a packed word).
//
// Products of one 16-byte weight vector and one row are summed in one half2 (int4: 16 products a lane, |q - z|
// <= 16 and |x| < 128 -> |sum| < 32768; int8: 8 products, |q| <= 128, |x| < 32; fp8: 8, |q| <= 448, |x| < 8),
// then widened to fp32, scaled (int4: group scale) and added to the fp32 row sum. Relative error of a vector's
// sum ~ 2^-11 * sqrt(terms), far below the weight quantization error (tests/quant_helpers.py TOL_H2).
#pragma once

#if QFMT == 3
#define QG_XMAX_LOG2 7
#elif QFMT == 2
#define QG_XMAX_LOG2 5
#else
#define QG_XMAX_LOG2 3
#endif

// position of column k in the staged order (int4: (k, k + 4) pairs), then its half index in xh
__device__ __forceinline__ int h2_pos(int k) {
#if QFMT == 3
    const int c = k & 7;
    return (k & ~7) | ((c & 3) << 1) | (c >> 2);
#else
    return k;
#endif
}
__device__ __forceinline__ int xh_idx(int k) {
    const int p = h2_pos(k);
    return swz(p >> 3) * 8 + (p & 7);
}

__device__ __forceinline__ void store_chunk(__half* xh, const float* f, float xscale, int i) {
    __half h[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) h[h2_pos(c)] = __float2half_rn(f[c] * xscale);
    reinterpret_cast<uint4*>(xh)[swz(i)] = *reinterpret_cast<const uint4*>(h);
}

// chunk i's slot in the half staging (store_chunk's), where xpro_load parks it
struct H2Slot {
    __device__ __forceinline__ int operator()(int i) const { return swz(i); }
};

// Whole block, after xpro_load(.., true, park_in(xh), H2Slot()) (gemv_quant_prologue.cuh): stage xh; returns
// (inv_rms (1 without a norm), 1 / xscale); xh is visible to the whole block on return. Two barriers: the (ss sum,
// |x| max) reduction, the stores.
__device__ __forceinline__ float2 stage_h2(__half* xh, const XPro& p, const T* __restrict__ a, const QArgs& w,
                                           const NormIn& nm) {
    __shared__ float2 pscratch[32];
    const int K = w.K;
    const float2 red = block_sum_max(make_float2(p.s, p.m), pscratch, nm.ss != nullptr, true);
    const float m = red.y;
    int E = 0;
    if (m > 0.0f && m <= 3.0e38f) frexpf(m, &E);  // m = f * 2^E, f in [0.5, 1); 0, NaN-only or inf: scale 1
    const int e = max(-120, min(120, QG_XMAX_LOG2 - E));
    const float xscale = __int_as_float((127 + e) << 23);
    if (QG_KO & 8) {  // bench only: the reduction without the staging's loads and stores
    } else if ((K & 7) == 0) {
        for_staged<QG_PARK>(p, a, w, K >> 3, [&](const float* f, int i) { store_chunk(xh, f, xscale, i); },
                            park_in(xh), H2Slot());
    } else {
        for (int j = threadIdx.x; j < K; j += blockDim.x) xh[xh_idx(j)] = __float2half_rn(staged_x(a, w, j) * xscale);
    }
    __syncthreads();
    return make_float2(norm_inv_of_sum(nm, red.x, K), __int_as_float((127 - e) << 23));
}


#if QFMT == 3
// sum over one word (8 nibbles, columns 8c .. 8c + 7) of (q - z) * x, into acc. zc = 1024 + z, zh = 64 + z.
// Nibbles 0 / 4 (mask 0x000f000f) give 1024 + q exactly; nibbles 1 / 5 (mask 0x00f000f0) give 1024 + 16 q, and
// (1024 + 16 q) / 16 - (64 + z) is exact in one HFMA2; the word shifted by 8 gives nibbles 2 / 6 and 3 / 7.
__device__ __forceinline__ __half2 dot_word_i4(unsigned u, uint4 x, __half2 zc, __half2 zh, __half2 acc) {
    const __half2 sixteenth = __float2half2_rn(0.0625f);
    const unsigned v = u >> 8;
    const __half2 w0 = __hsub2(u2h((u & 0x000f000fu) | 0x64006400u), zc);
    const __half2 w1 = __hfma2(u2h((u & 0x00f000f0u) | 0x64006400u), sixteenth, __hneg2(zh));
    const __half2 w2 = __hsub2(u2h((v & 0x000f000fu) | 0x64006400u), zc);
    const __half2 w3 = __hfma2(u2h((v & 0x00f000f0u) | 0x64006400u), sixteenth, __hneg2(zh));
    acc = __hfma2(w0, u2h(x.x), acc);   // x.x = (x0, x4)
    acc = __hfma2(w1, u2h(x.y), acc);   // (x1, x5)
    acc = __hfma2(w2, u2h(x.z), acc);   // (x2, x6)
    return __hfma2(w3, u2h(x.w), acc);  // (x3, x7)
}
#elif QFMT == 2
// int8 word (columns 4c .. 4c + 3) against two half2 of x: (b ^ 0x80) in the low byte of the half 1024 is
// 1152 + q exactly; minus 1152 exact.
__device__ __forceinline__ __half2 dot_word_8(unsigned u, unsigned x01, unsigned x23, __half2 acc) {
    const __half2 off = u2h(0x64806480u);
    const unsigned b = u ^ 0x80808080u;
    acc = __hfma2(__hsub2(u2h(__byte_perm(b, 0x64646464u, 0x4140)), off), u2h(x01), acc);
    return __hfma2(__hsub2(u2h(__byte_perm(b, 0x64646464u, 0x4342)), off), u2h(x23), acc);
}
#else
__device__ __forceinline__ __half2 dot_word_8(unsigned u, unsigned x01, unsigned x23, __half2 acc) {
    acc = __hfma2(u2h(e4m3x2_f16x2(u)), u2h(x01), acc);
    return __hfma2(u2h(e4m3x2_f16x2(u >> 16)), u2h(x23), acc);
}
#endif

__device__ __forceinline__ float h2sum(__half2 h) {
    const float2 f = __half22float2(h);
    return f.x + f.y;
}

// Raw sums of weight vector v (16 bytes) of rows 0 / 1 with the staged x (int4: times the group scale, minus
// nothing: q - z is taken per value). sz: int4 (scale, zero) of each row's group.
#if QFMT == 3
__device__ __forceinline__ void dot_vec_h2(uint4 w0, uint4 w1, __half2 sz0, __half2 sz1, const __half* xh, int v,
                                           float& acc0, float& acc1) {
    const __half2 c1024 = u2h(0x64006400u), c64 = u2h(0x54005400u);
    const __half2 z0 = __half2half2(__high2half(sz0)), z1 = __half2half2(__high2half(sz1));
    const __half2 zc0 = __hadd2(z0, c1024), zh0 = __hadd2(z0, c64), zc1 = __hadd2(z1, c1024), zh1 = __hadd2(z1, c64);
    const unsigned* p0 = reinterpret_cast<const unsigned*>(&w0);
    const unsigned* p1 = reinterpret_cast<const unsigned*>(&w1);
    __half2 h0 = __float2half2_rn(0.0f), h1 = h0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint4 x = xh_chunk(xh, 4 * v + i);
        h0 = dot_word_i4(p0[i], x, zc0, zh0, h0);
        h1 = dot_word_i4(p1[i], x, zc1, zh1, h1);
    }
    acc0 = fmaf(__low2float(sz0), h2sum(h0), acc0);
    acc1 = fmaf(__low2float(sz1), h2sum(h1), acc1);
}
#else
__device__ __forceinline__ void dot_vec_h2(uint4 w0, uint4 w1, const __half* xh, int v, float& acc0, float& acc1) {
    const unsigned* p0 = reinterpret_cast<const unsigned*>(&w0);
    const unsigned* p1 = reinterpret_cast<const unsigned*>(&w1);
    __half2 h0 = __float2half2_rn(0.0f), h1 = h0;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const uint4 x = xh_chunk(xh, 2 * v + j);   // columns 16v + 8j .. + 7: words 2j, 2j + 1
        h0 = dot_word_8(p0[2 * j], x.x, x.y, h0);
        h0 = dot_word_8(p0[2 * j + 1], x.z, x.w, h0);
        h1 = dot_word_8(p1[2 * j], x.x, x.y, h1);
        h1 = dot_word_8(p1[2 * j + 1], x.z, x.w, h1);
    }
    acc0 += h2sum(h0);
    acc1 += h2sum(h1);
}
#endif
