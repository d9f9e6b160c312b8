// Shared by the two one-shot all-reduce protocols of gpu/allreduce.py: allreduce.cu (per-block flags after a
// system-scope fence) and allreduce_lamport.cu (every value its own readiness signal). Both use the same layout:
// block b of a call owns elements [b * AR_CHUNK, (b + 1) * AR_CHUNK) of every slot, each thread 4 of them (one
// float4 when vec, else 4 strided scalars); both sum in rank order 0, 1, ... so they compute the same bits.
#pragma once
#ifndef AR_WORLD
#define AR_WORLD 2
#endif
#ifndef AR_THREADS
#define AR_THREADS 256
#endif
#ifndef AR_CHUNK
#define AR_CHUNK 1024
#endif
#ifndef AR_MAX_BLOCKS
#define AR_MAX_BLOCKS 64
#endif
#ifndef AR_MAX_WORLD
#define AR_MAX_WORLD 8
#endif
#include "common.cuh"

#define AR_PER (AR_CHUNK / AR_THREADS)
static_assert(AR_PER == 4, "one float4 per thread");
static_assert(AR_WORLD >= 1 && AR_WORLD <= AR_MAX_WORLD, "world size");

typedef unsigned long long u64;

__device__ __forceinline__ u64 ar_clock() {
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
// Strong (sys-scope relaxed) loads: never served from a stale L1 line.
__device__ __forceinline__ float4 ar_load4(const float* p) {
    float4 v;
    asm volatile("ld.relaxed.sys.global.v4.f32 {%0,%1,%2,%3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ float ar_load(const float* p) {
    float v;
    asm volatile("ld.relaxed.sys.global.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
    return v;
}
// 16-byte store (the compiler splits a float4 assignment built from registers into 4 scalar stores here).
__device__ __forceinline__ void ar_store4(float* p, float a, float b, float c, float d) {
    asm volatile("st.global.v4.f32 [%0], {%1,%2,%3,%4};" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}

// The AR_MAX_WORLD base addresses of every rank's buffers travel as kernel parameters (no dependent global load
// before the first store); loops over ranks are unrolled so the selects are compile-time.
#define AR_PTRS(x) u64 x##0, u64 x##1, u64 x##2, u64 x##3, u64 x##4, u64 x##5, u64 x##6, u64 x##7
#define AR_PICK(x, p) ar_pick(p, x##0, x##1, x##2, x##3, x##4, x##5, x##6, x##7)
#define AR_ARGS(x) x##0, x##1, x##2, x##3, x##4, x##5, x##6, x##7
__device__ __forceinline__ u64 ar_pick(int p, u64 x0, u64 x1, u64 x2, u64 x3, u64 x4, u64 x5, u64 x6, u64 x7) {
    return p == 0 ? x0 : p == 1 ? x1 : p == 2 ? x2 : p == 3 ? x3 : p == 4 ? x4 : p == 5 ? x5 : p == 6 ? x6 : x7;
}

// This thread's elements of block b's chunk: idx[k] (valid when < n); vec: 4 consecutive ones (one float4).
__device__ __forceinline__ void ar_index(long long* idx, int vec) {
#pragma unroll
    for (int k = 0; k < AR_PER; ++k)
        idx[k] = (long long)blockIdx.x * AR_CHUNK + (vec ? AR_PER * threadIdx.x + k : threadIdx.x + k * AR_THREADS);
}

// This thread's elements of out (vec: one 16-byte store).
__device__ __forceinline__ void ar_write(float* out, int n, int vec, const long long* idx, const float* v) {
    if (vec) {
        if (idx[0] < n) ar_store4(out + idx[0], v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int k = 0; k < AR_PER; ++k)
            if (idx[k] < n) out[idx[k]] = v[k];
    }
}

// The decode residual update after the all-reduce (vec layout): x f32 [n] += acc, xh T [n] = T(new x), ss[j] = sum
// of new x^2 over rows [j*C, (j+1)*C): per thread its 4 squares, then a butterfly over the C/4 lanes of a chunk.
// x + acc is the same f32 operation as kernels/tp.cu residual_add_ss. Every thread of the block must call it.
__device__ __forceinline__ void ar_residual_update(float* x, T* xh, float* ss, int n, int C, const long long* idx,
                                                   const float* acc) {
    float sq = 0.0f;
    if (idx[0] < n) {
        float4 v = *reinterpret_cast<const float4*>(x + idx[0]);
        v.x += acc[0], v.y += acc[1], v.z += acc[2], v.w += acc[3];
        *reinterpret_cast<float4*>(x + idx[0]) = v;
        T* h = xh + idx[0];
        h[0] = from_f(v.x), h[1] = from_f(v.y), h[2] = from_f(v.z), h[3] = from_f(v.w);
        sq = v.x * v.x;
        sq = fmaf(v.y, v.y, sq);
        sq = fmaf(v.z, v.z, sq);
        sq = fmaf(v.w, v.w, sq);
    }
    const int lanes = C / AR_PER;  // every lane of the warp takes part (no early exit above)
    for (int o = 1; o < lanes; o <<= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    if (threadIdx.x % lanes == 0 && idx[0] < n) ss[idx[0] / C] = sq;
}
