// Weight fragments of kernels/gemm_w4_wgmma.cu: packed int4 / int8 bytes to the exact fp16 values wgmma's A
// operand takes (tests/test_gemm_w4_cpu.py emulates cvt8 bit for bit).
#pragma once
#include <cuda_fp16.h>

__device__ __forceinline__ unsigned h2u(__half2 h) { return *reinterpret_cast<unsigned*>(&h); }
__device__ __forceinline__ __half2 u2h(unsigned u) { return *reinterpret_cast<__half2*>(&u); }

// byte t of w (nibbles lo, hi) -> half2 (lo - z, hi - z), exact: sel puts byte t in both halves; the lop3 keeps lo
// in the low half's bits 0-3 under 0x6400 (1024 + lo) and hi in the high half's bits 4-7 under 0x5400 (64 + hi: the
// ulp is 1/16 there); zb = (1024 + z, 64 + z).
__device__ __forceinline__ unsigned diff(unsigned w, unsigned sel, __half2 zb) {
    const unsigned v = __byte_perm(w, 0u, sel);
    unsigned h;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h) : "r"(v), "r"(0x00F0000Fu), "r"(0x54006400u));  // (v & m) | c
    return h2u(__hsub2(u2h(h), zb));
}

// int8: bytes 2t, 2t + 1 of the 8-byte pair (lo, hi) -> half2 of their exact values: sel puts them at bytes 0 and 2;
// the lop3 ((v & m) ^ c) keeps them there, flips their sign bits (offset binary: 128 + q) and sets 0x64 above
// (1024 + 128 + q)
__device__ __forceinline__ unsigned cvt8(unsigned lo, unsigned hi, unsigned sel) {
    const unsigned v = __byte_perm(lo, hi, sel);
    unsigned h;
    asm("lop3.b32 %0, %1, %2, %3, 0x6a;" : "=r"(h) : "r"(v), "r"(0x00FF00FFu), "r"(0x64806480u));
    return h2u(__hsub2(u2h(h), __float2half2_rn(1152.0f)));
}

struct GroupVals { __half2 s0, z0, s1, z1; };  // rows g and g + 8: scale (doubled), (1024 + zero, 64 + zero)

__device__ __forceinline__ GroupVals group_vals(const __half* sc, const __half* zr, int r0, int r1, int ng, int gi) {
    gi = min(gi, ng - 1);  // a k-tile past K (zero-filled weights) reads the last group
    const __half s0 = __ldg(sc + (size_t)r0 * ng + gi), s1 = __ldg(sc + (size_t)r1 * ng + gi);
    const __half z0 = __ldg(zr + (size_t)r0 * ng + gi), z1 = __ldg(zr + (size_t)r1 * ng + gi);
    const __half2 base = __floats2half2_rn(1024.0f, 64.0f);
    return {__half2half2(s0), __hadd2(__half2half2(z0), base), __half2half2(s1), __hadd2(__half2half2(z1), base)};
}
