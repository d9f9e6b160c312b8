// The per-token fp8 activation rule of gemm_quant.cu quant_act_fp8, shared by the kernels that fuse it into the
// producer of the activations (rmsnorm.cu rmsnorm_unit_fp8, fp8_actq.cu): over one token row of fp32 values v_j,
// amax = max |v_j|, scale = amax / 448 (1 for an all-zero row), code_j = e4m3(v_j * (448 / amax)) rounded to
// nearest, saturating (cvt.rn.satfinite). The same expressions, so the fused kernels give the same bits.
#pragma once
#include "common.cuh"  // warp_max

__device__ __forceinline__ float fp8_inv(float amax) { return amax > 0.f ? 448.f / amax : 1.f; }
__device__ __forceinline__ float fp8_scale(float amax) { return amax > 0.f ? amax / 448.f : 1.f; }

// Two e4m3 codes in one 16-bit word, lo in the low byte (sm_89+; the launchers run these kernels only there).
__device__ __forceinline__ unsigned short e4m3x2(float lo, float hi) {
    unsigned short pair;
#if __CUDA_ARCH__ >= 890
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(pair) : "f"(hi), "f"(lo));  // hi -> upper byte
#else
    pair = 0;
    __trap();
#endif
    return pair;
}

// Four codes of v * inv packed little-endian in a 32-bit word.
__device__ __forceinline__ unsigned e4m3x4(float4 v, float inv) {
    return (unsigned)e4m3x2(v.x * inv, v.y * inv) | ((unsigned)e4m3x2(v.z * inv, v.w * inv) << 16);
}

// Block-wide max of non-negative values (exact, so any order gives the same result); every thread gets it.
// scratch: >= 32 floats, not in use by another reduction of the block.
__device__ __forceinline__ float block_amax(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    return warp_max(lane < nwarps ? scratch[lane] : 0.f);
}
