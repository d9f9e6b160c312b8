// Weights on the device without temporaries (gpu/state.py): the staged upload's conversion into the storage dtype T
// with the norm gain folded in, and seeded dummy weights made in place.
//
// convert_rows: one staged chunk of rows [n = rows * K] in the source dtype S (float16; float32 with -DSRC_F32;
//   bfloat16 with -DSRC_BF16)
//   -> out T [n]: out[i] = T(float(in[i]) * gain[i % K]), the product in fp32 and rounded once (round to nearest
//   even, as CuPy's astype); gain == nullptr means unit gain (a pure conversion).
// fill_normal: out T [n] = T(scale * z_i), z_i ~ N(0, 1) from a counter-based hash of (key, i): splitmix64 of
//   key + i * golden ratio, its top 24 bits u1 in (0, 1] and next 24 bits u2 in [0, 1), Box-Muller
//   z = sqrt(-2 ln u1) * cos(2 pi u2). Deterministic for a key, independent of the launch shape.
// Both are grid-stride loops over 64-bit indices (a 70B w13 has 470M elements).
#include "common.cuh"

#if defined(SRC_F32)
typedef float S;
__device__ __forceinline__ float src_f(S x) { return x; }
#elif defined(SRC_BF16)
typedef __nv_bfloat16 S;
__device__ __forceinline__ float src_f(S x) { return __bfloat162float(x); }
#else
typedef __half S;
__device__ __forceinline__ float src_f(S x) { return __half2float(x); }
#endif

extern "C" __global__ void convert_rows(T* __restrict__ out, const S* __restrict__ in,
                                        const float* __restrict__ gain, long long n, int K) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = src_f(in[i]);
        if (gain != nullptr) v = __fmul_rn(v, gain[i % K]);  // never contracted into an FMA
        out[i] = from_f(v);
    }
}

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

extern "C" __global__ void fill_normal(T* __restrict__ out, long long n, unsigned long long key, float scale) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const unsigned long long h = mix64(key + (unsigned long long)i * 0x9e3779b97f4a7c15ULL);
        const float u1 = (float)((h >> 40) + 1) * (1.0f / 16777216.0f);
        const float u2 = (float)((h >> 16) & 0xFFFFFFULL) * (1.0f / 16777216.0f);
        out[i] = from_f(scale * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
    }
}
