// Helpers shared by the prefill GEMM families (gemm.cu, gemm_quant.cu): fragment words, the block's reduction
// buffer, and the epilogue math (SiLU*up, RoPE, the qkv store to q / k cache / v cache).
// Needs WM and NTOK defined before inclusion (the block's row tiles and tokens); RED_TILES (default WM) sets the
// reduction buffer's row tiles where a warp owns more than one, RED_K (default 1) its partial sums per tile.
#pragma once
#include "common.cuh"

__device__ __forceinline__ unsigned word(const uint4& lo, const uint4& hi, int w) {
    const uint4& v = w < 4 ? lo : hi;
    int i = w & 3;
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// red[tile][token][row]: the block's sums. The WK warps of a tile add their partial sums in the fixed order
// kk = 0, 1, ... (one barrier each), so results are bitwise reproducible (no atomics). With RED_K > 1 the
// partial sums of K group k sit at red[k * RED_TILES + tile] and block_val adds them, in the same order.
#ifndef RED_TILES
#define RED_TILES WM
#endif
#ifndef RED_K
#define RED_K 1
#endif
struct Red {
    float v[RED_K * RED_TILES][NTOK][16];
};

__device__ __forceinline__ float block_val(const Red& red, int tile, int n, int r) {
    float s = red.v[tile][n][r];
#pragma unroll
    for (int k = 1; k < RED_K; ++k) s += red.v[k * RED_TILES + tile][n][r];
    return s;
}

__device__ __forceinline__ float silu_mul(float a, float b) { return a / (1.f + expf(-a)) * b; }

// RoPE on one interleaved pair (x0, x1) at table row p, pair index i: rope_cs [S, hd/2, 2] = (cos, sin).
__device__ __forceinline__ float2 rope_pair(float x0, float x1, const float* rope_cs, int p, int i, int hd) {
    const float2 cs = *reinterpret_cast<const float2*>(rope_cs + ((size_t)p * (hd / 2) + i) * 2);
    return make_float2(x0 * cs.x - x1 * cs.y, x0 * cs.y + x1 * cs.x);
}

// Writes the qkv pair at columns (o, o+1) of token n: q always (padded rows at a clamped position, so they
// stay finite), k/v only for real tokens inside the cache.
__device__ __forceinline__ void qkv_store(T* q, T* kc, T* vc, const float* rope_cs, float x0, float x1,
                                          int o, int n, int p0, int ntok, int D, int kvd, int hd, int S) {
    const int p = p0 + n;
    if (o < D) {
        const int pc = p < S ? (p < 0 ? 0 : p) : S - 1;
        float2 r = rope_pair(x0, x1, rope_cs, pc, (o % hd) >> 1, hd);
        q[(size_t)n * D + o] = from_f(r.x);
        q[(size_t)n * D + o + 1] = from_f(r.y);
        return;
    }
    if (n >= ntok || p >= S || p < 0) return;  // padded rows never touch the cache
    o -= D;
    if (o < kvd) {
        float2 r = rope_pair(x0, x1, rope_cs, p, (o % hd) >> 1, hd);
        kc[(size_t)p * kvd + o] = from_f(r.x);
        kc[(size_t)p * kvd + o + 1] = from_f(r.y);
    } else {
        o -= kvd;
        vc[(size_t)p * kvd + o] = from_f(x0);
        vc[(size_t)p * kvd + o + 1] = from_f(x1);
    }
}

union Pack8 {
    uint4 u;
    T2 h[4];
};

