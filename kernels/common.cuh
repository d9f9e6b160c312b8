// Shared device helpers for every kernel family in kernels/*.cu.
// Storage dtype `T` is __half or __nv_bfloat16 (selected per module with -DCG_BF16), math in fp32.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#ifdef CG_BF16
typedef __nv_bfloat16 T;
typedef __nv_bfloat162 T2;
// bf16 -> f32 is a 16-bit shift. Plain integer ops, not the cuda_bf16.h intrinsics (inline asm): ptxas schedules
// them with the loads, and the decode GEMVs fit 32 registers (full occupancy) as in fp16, instead of 39-48.
__device__ __forceinline__ float to_f(T x) { return __uint_as_float((unsigned)__bfloat16_as_ushort(x) << 16); }
__device__ __forceinline__ T from_f(float x) { return __float2bfloat16(x); }
__device__ __forceinline__ float2 to_f2(T2 x) {
    const unsigned u = *reinterpret_cast<const unsigned*>(&x);
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xFFFF0000u));
}
#else
typedef __half T;
typedef __half2 T2;
__device__ __forceinline__ float to_f(T x) { return __half2float(x); }
__device__ __forceinline__ T from_f(float x) { return __float2half(x); }
__device__ __forceinline__ float2 to_f2(T2 x) { return __half22float2(x); }
#endif

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ---- additions for the norm / GEMV / sampling families -------------------------------------------------------

// 16-byte weight load that bypasses L1 (each weight byte is read once per step; keep L1 for activations).
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// fp32 dot product of two 8-element T vectors packed in uint4 (16 bytes each), accumulated into acc.
__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const unsigned* wp = reinterpret_cast<const unsigned*>(&w);
    const unsigned* xp = reinterpret_cast<const unsigned*>(&x);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        unsigned wb = wp[i], xb = xp[i];
        float2 wf = to_f2(*reinterpret_cast<const T2*>(&wb));
        float2 xf = to_f2(*reinterpret_cast<const T2*>(&xb));
        acc = fmaf(wf.x, xf.x, acc);
        acc = fmaf(wf.y, xf.y, acc);
    }
    return acc;
}

// Block-wide sum with a fixed reduction order (deterministic for a given blockDim). scratch: >= 32 floats.
// Every thread gets the result. Must be called by all threads of the block.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < nwarps ? scratch[lane] : 0.0f;
    return warp_sum(t);
}

// Tensor cores (sm_80+): c[16x8 f32] += a[16x16] * b[16x8] with T operands, fp32 accumulate (mma.sync m16n8k16).
__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
#if __CUDA_ARCH__ >= 800
#ifdef CG_BF16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
#endif
}
