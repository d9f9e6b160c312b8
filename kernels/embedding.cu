// Embedding gather: x[m, i] = float(table[tokens[m], i]).
//
// Layout: tokens int32 [M] (device-resident, so one graph serves every step), table T [V, D] row-major,
// x f32 [M, D]. Grid (ceil(D / (8 * blockDim.x)), M): block (bx, m) converts 8-column groups of row m
// (one 16-byte load per thread when D % 8 == 0, else scalar). A token outside [0, V) is clamped into range
// so that a corrupt id never reads outside the table.
#include "common.cuh"

// dst[0..8) = the 8 values of v (16 bytes of T) in f32; returns their sum of squares (embedding_pss's partials).
__device__ __forceinline__ float widen8(float* dst, uint4 v) {
    const T2* p = reinterpret_cast<const T2*>(&v);
    float2 f0 = to_f2(p[0]), f1 = to_f2(p[1]), f2 = to_f2(p[2]), f3 = to_f2(p[3]);
    float4* d4 = reinterpret_cast<float4*>(dst);
    d4[0] = make_float4(f0.x, f0.y, f1.x, f1.y);
    d4[1] = make_float4(f2.x, f2.y, f3.x, f3.y);
    return f0.x * f0.x + f0.y * f0.y + f1.x * f1.x + f1.y * f1.y + f2.x * f2.x + f2.y * f2.y + f3.x * f3.x +
           f3.y * f3.y;
}

extern "C" __global__ void embedding(float* __restrict__ x, const T* __restrict__ table,
                                     const int* __restrict__ tokens, int V, int D) {
    const int m = blockIdx.y;
    const int tok = min(max(tokens[m], 0), V - 1);
    const T* src = table + (size_t)tok * D;   // [D]
    float* dst = x + (size_t)m * D;           // [D]
    const int g = blockIdx.x * blockDim.x + threadIdx.x;  // 8-column group
    if ((D & 7) == 0) {
        if (g >= (D >> 3)) return;
        widen8(dst + 8 * g, *reinterpret_cast<const uint4*>(src + 8 * g));
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

// Prefill embedding that also feeds the first fused prefill norm (gemm.cu norm_inv; M <= 16 rows, gpu/ops.py):
// x f32 [M, D] as `embedding`, xh T [M, D] = the same values in T (exact), ss f32 [M, D / 16], ss[m * D/16 + j] =
// sum of x[m, 16j .. 16j + 16)^2 (D % 16 == 0, launcher-checked). Grid and block as `embedding`; a thread's 8 columns
// and its neighbour's (lane ^ 1) make one 16-column partial.
extern "C" __global__ void embedding_pss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss,
                                         const T* __restrict__ table, const int* __restrict__ tokens, int V, int D) {
    const int m = blockIdx.y;
    const int tok = min(max(tokens[m], 0), V - 1);
    const int g = blockIdx.x * blockDim.x + threadIdx.x;  // 8-column group
    const bool in = g < (D >> 3);
    float q = 0.0f;
    if (in) {
        const uint4 v = *reinterpret_cast<const uint4*>(table + (size_t)tok * D + 8 * g);
        q = widen8(x + (size_t)m * D + 8 * g, v);
        *reinterpret_cast<uint4*>(xh + (size_t)m * D + 8 * g) = v;
    }
    q += __shfl_xor_sync(0xffffffffu, q, 1);
    if (in && (g & 1) == 0) ss[(size_t)m * (D >> 4) + (g >> 1)] = q;
}
