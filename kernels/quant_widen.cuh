// Weight-format helpers shared by the quantized prefill kernels (gemm_quant.cu, gemm_quant_tc.cu): layouts of
// cugraphllm/quant/formats.py, QFMT 0 fp8 e4m3 (f32 row scales), 1 int8 (f32 row scales), 2 int4 (fp16 group
// scales and zero points). A "piece" is 8 consecutive columns of one weight row: 8 bytes (fp8 / int8) or one
// 32-bit word (int4). widen() turns a piece into 8 T values (4 fragment words, columns (2i, 2i+1) in word i):
// fp8 / int8 exactly (fp8 as value * 2^-8), their row scale applied to the fp32 sums (row_scale()); int4 as
// T(s * (q - z)), rounded once.
#pragma once
#include "common.cuh"

#ifndef QFMT
#define QFMT 2
#endif

__device__ __forceinline__ unsigned pack2(float a, float b) {
    T2 v;
    v.x = from_f(a);
    v.y = from_f(b);
    return *reinterpret_cast<unsigned*>(&v);
}

__device__ __forceinline__ unsigned ld_nc_u32(const void* p) {
    unsigned v;
    asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(v) : "l"(p));
    return v;
}

__device__ __forceinline__ uint2 ld_nc_u64(const void* p) {
    uint2 v;
    asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}

// Two e4m3 codes (bits [7:0], [15:8]) -> fp16x2 bits of their values * 2^-8: sign to bit 15, exponent and
// mantissa to bits [13:7] (e4m3 bias 7, fp16 bias 15: the exponent fields line up, subnormals included).
__device__ __forceinline__ unsigned e4m3x2_h2(unsigned u) {
    return ((u & 0x80u) << 8) | ((u & 0x7fu) << 7) | ((u & 0x8000u) << 16) | ((u & 0x7f00u) << 15);
}

// The raw packed bytes of one 8-column piece of one weight row (loaded early, widened at the mma).
#if QFMT == 2
struct RawW {
    unsigned q;           // 8 nibbles, column i at bits 4i
    unsigned short s, z;  // fp16 bits of the group's scale and zero point
};
#else
typedef uint2 RawW;       // 8 bytes, column i in byte i
#endif


// int4 piece -> 4 words of T(s * (q_c - z)), c = 2i, 2i + 1. fp16: q | 0x6400 is the half 1024 + q (the magic-number
// trick, no int->float convert); (1024 + q) - (1024 + z) is exact, one rounding in the multiply, as the fp32 path.
// bf16 (7 mantissa bits): in fp32, s * (q - z) exact there, then rounded once.
__device__ __forceinline__ uint4 widen_int4(unsigned q, unsigned short sb, unsigned short zb) {
    unsigned o[4];
#ifdef CG_BF16
    const float s = __half2float(__ushort_as_half(sb)), z = __half2float(__ushort_as_half(zb));
#pragma unroll
    for (int i = 0; i < 4; ++i)
        o[i] = pack2(s * ((float)((q >> (8 * i)) & 0xfu) - z), s * ((float)((q >> (8 * i + 4)) & 0xfu) - z));
#else
    const __half2 s2 = __half2half2(__ushort_as_half(sb));
    const __half2 z2 = __half2half2(__hadd(__ushort_as_half(zb), __ushort_as_half((unsigned short)0x6400u)));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const unsigned u = q >> (8 * i);  // column 2i at bits [3:0] -> low half, 2i + 1 at [7:4] -> high half
        unsigned w = (u & 0xfu) | ((u << 12) & 0xf0000u) | 0x64006400u;
        __half2 h = __hmul2(__hsub2(*reinterpret_cast<__half2*>(&w), z2), s2);
        o[i] = *reinterpret_cast<unsigned*>(&h);
    }
#endif
    return make_uint4(o[0], o[1], o[2], o[3]);
}

// 8 T values (4 fragment words, columns (2i, 2i+1) in word i) of a raw piece, before the row scale.
__device__ __forceinline__ uint4 widen(const RawW& v) {
#if QFMT == 2
    return widen_int4(v.q, v.s, v.z);
#else
    unsigned o[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const unsigned u = ((i < 2 ? v.x : v.y) >> (16 * (i & 1))) & 0xffffu;  // columns 2i, 2i + 1
#if QFMT == 0
        unsigned h = e4m3x2_h2(u);
#ifdef CG_BF16
        float2 f = __half22float2(*reinterpret_cast<__half2*>(&h));
        o[i] = pack2(f.x, f.y);
#else
        o[i] = h;
#endif
#elif defined(CG_BF16)
        o[i] = pack2((float)(signed char)(u & 0xffu), (float)(signed char)(u >> 8));
#else
        // int8 in fp16: (q + 128) | 0x6400 is the half 1024 + q + 128 (exact up to 2047); minus 1152 is exact
        unsigned w = (((u & 0xffu) | ((u << 8) & 0xff0000u)) ^ 0x00800080u) | 0x64006400u;
        __half2 h = __hsub2(*reinterpret_cast<__half2*>(&w), __half2half2(__ushort_as_half((unsigned short)0x6480u)));
        o[i] = *reinterpret_cast<unsigned*>(&h);
#endif
    }
    return make_uint4(o[0], o[1], o[2], o[3]);
#endif
}

// The factor the fp32 sums of weight row o take in the epilogue.
__device__ __forceinline__ float row_scale(const float* rs, int o) {
#if QFMT == 0
    return rs[o] * 256.f;
#elif QFMT == 1
    return rs[o];
#else
    return 1.f;
#endif
}

