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
