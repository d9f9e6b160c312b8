// Embedding gather: x[m, i] = float(table[tokens[m], i]).
//
// Layout: tokens int32 [M] (device-resident, so one graph serves every step), table T [V, D] row-major,
// x f32 [M, D]. Grid (ceil(D / (8 * blockDim.x)), M): block (bx, m) converts 8-column groups of row m
// (one 16-byte load per thread when D % 8 == 0, else scalar). A token outside [0, V) is clamped into range
// so that a corrupt id never reads outside the table.
#include "common.cuh"

extern "C" __global__ void embedding(float* __restrict__ x, const T* __restrict__ table,
                                     const int* __restrict__ tokens, int V, int D) {
    const int m = blockIdx.y;
    const int tok = min(max(tokens[m], 0), V - 1);
    const T* src = table + (size_t)tok * D;   // [D]
    float* dst = x + (size_t)m * D;           // [D]
    const int g = blockIdx.x * blockDim.x + threadIdx.x;  // 8-column group
    if ((D & 7) == 0) {
        if (g >= (D >> 3)) return;
        uint4 v = *reinterpret_cast<const uint4*>(src + 8 * g);
        const T2* p = reinterpret_cast<const T2*>(&v);
        float4 a, b;
        float2 f0 = to_f2(p[0]), f1 = to_f2(p[1]), f2 = to_f2(p[2]), f3 = to_f2(p[3]);
        a.x = f0.x; a.y = f0.y; a.z = f1.x; a.w = f1.y;
        b.x = f2.x; b.y = f2.y; b.z = f3.x; b.w = f3.y;
        float4* d4 = reinterpret_cast<float4*>(dst + 8 * g);
        d4[0] = a;
        d4[1] = b;
    } else {
        for (int i = 8 * g; i < min(8 * g + 8, D); ++i) dst[i] = to_f(src[i]);
    }
}

// Decode embedding that also feeds the fused norm of the first qkv GEMV (kernels/gemv.cu, "Fused RMSNorm"):
// x f32 [D] = table[tokens[0]], xh T [D] = the same values in T (exact), ss[j] = sum of x^2 over rows
// [j*C, (j+1)*C) ∩ [0, D), in the chunking of gemv_residual_ss (C = its rows per block). One warp per chunk,
// so ss[j] has a fixed summation order. Grid: ceil(ceil(D / C) / (blockDim.x / 32)).
extern "C" __global__ void embedding_ss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss,
                                        const T* __restrict__ table, const int* __restrict__ tokens, int V,
                                        int D, int C) {
    const int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (j * C >= D) return;  // whole warps only: warp_sum below needs every lane
    const int tok = min(max(tokens[0], 0), V - 1);
    const T* src = table + (size_t)tok * D;  // [D]
    const int end = min(j * C + C, D);
    float s = 0.0f;
    for (int i = j * C + lane; i < end; i += 32) {
        const T t = src[i];
        const float v = to_f(t);
        x[i] = v;
        xh[i] = t;
        s += v * v;
    }
    s = warp_sum(s);
    if (lane == 0) ss[j] = s;
}
