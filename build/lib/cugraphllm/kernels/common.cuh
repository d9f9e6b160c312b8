// Shared device helpers for every kernel family in kernels/*.cu.
// Storage dtype `T` is __half or __nv_bfloat16 (selected per module with -DCG_BF16), math in fp32.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#ifdef CG_BF16
typedef __nv_bfloat16 T;
typedef __nv_bfloat162 T2;
__device__ __forceinline__ float to_f(T x) { return __bfloat162float(x); }
__device__ __forceinline__ T from_f(float x) { return __float2bfloat16(x); }
__device__ __forceinline__ float2 to_f2(T2 x) { return __bfloat1622float2(x); }
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
