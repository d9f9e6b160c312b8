// Tensor parallelism (gpu/tp.py, ops.matmul_residual with a communicator): the residual update x += a @ w.T is
// split into per-GPU partial products p = a_r @ w_r.T (f32), summed across GPUs by an NCCL all-reduce into p,
// then added into the replicated residual stream here.
#include "common.cuh"

// Decode: x f32 [D] += p f32 [D]; xh T [D] = T(new x); ss[j] = sum of new x^2 over rows [j*C, (j+1)*C) ∩ [0, D)
// (the chunking of gemv_residual_ss, C = norm_chunk(D): the input of the next fused norm, kernels/gemv.cu).
// One warp per chunk, lanes strided, then a warp sum: a fixed summation order. Grid: ceil(ceil(D / C) / warps).
extern "C" __global__ void residual_add_ss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss,
                                           const float* __restrict__ p, int D, int C) {
    const int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (j * C >= D) return;  // whole warps only: warp_sum below needs every lane
    const int end = min(j * C + C, D);
    float s = 0.0f;
    for (int i = j * C + lane; i < end; i += 32) {
        const float v = x[i] + p[i];
        x[i] = v;
        xh[i] = from_f(v);
        s += v * v;
    }
    s = warp_sum(s);
    if (lane == 0) ss[j] = s;
}

// Prefill: x f32 [n] += p f32 [n] (n = M * D, the rows of a bucket). Grid-stride loop.
extern "C" __global__ void residual_add(float* __restrict__ x, const float* __restrict__ p, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] += p[i];
}
