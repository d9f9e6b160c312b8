// RMSNorm family (LLaMA): out[m, i] = T( x[m, i] / sqrt(mean_j x[m, j]^2 + eps) * w[i] ), math in fp32.
//
// Layout: residual stream x f32 [M, D] row-major, norm weight w f32 [D], normed output out T [M, D].
// Grid: one block per row (blockIdx.x = m); blockDim.x is a multiple of 32 (<= 1024) chosen by the launcher
// (ops._norm_threads: NORM_REGS float4 columns a thread). Each thread owns the columns i = threadIdx.x + k *
// blockDim.x (float4 columns when D % 4 == 0). When they fit in NORM_REGS float4 registers (D % 4 == 0, D / 4 <=
// NORM_REGS * blockDim.x) a thread loads all of them at once and keeps them for the scale; otherwise it reads them
// once for the sum of squares and once more (from L1/L2) to scale. Either way the per-thread sum runs over its
// columns in the same order (sumsq4) and the block sum has a fixed order, so the result is bit-identical from run
// to run and between the two paths.
#include "common.cuh"
#include "fp8_codes.cuh"

#define NORM_REGS 4  // float4 columns a thread keeps in registers (the launcher's block size assumes it)

__device__ __forceinline__ float sumsq4(float ss, float4 v) {
    return ss + (v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w);
}

// Whether a row's float4 columns fit in NORM_REGS registers a thread (regs_sumsq, norm_row).
__device__ __forceinline__ bool row_in_regs(int D) { return (D & 3) == 0 && (D >> 2) <= NORM_REGS * (int)blockDim.x; }

// sum of squares of one row (optionally adding r into x first, which writes the new x back).
__device__ __forceinline__ float row_sumsq(float* x, const float* r, int D) {
    float ss = 0.0f;
    if ((D & 3) == 0) {
        float4* x4 = reinterpret_cast<float4*>(x);            // [D/4]
        const float4* r4 = reinterpret_cast<const float4*>(r);
        for (int i = threadIdx.x; i < (D >> 2); i += blockDim.x) {
            float4 v = x4[i];
            if (r4) {
                float4 a = r4[i];
                v.x += a.x; v.y += a.y; v.z += a.z; v.w += a.w;
                x4[i] = v;
            }
            ss = sumsq4(ss, v);
        }
    } else {
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            float v = x[i];
            if (r) { v += r[i]; x[i] = v; }
            ss += v * v;
        }
    }
    return ss;
}

// out[i] = T(x[i] * inv * g[i]) for the float4 column i, v its x (row_scale's arithmetic).
__device__ __forceinline__ void scale4(T* out, float4 v, const float4* w4, float inv, int i) {
    const float4 g = w4 ? w4[i] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
    T2 lo, hi;
    lo.x = from_f(v.x * inv * g.x); lo.y = from_f(v.y * inv * g.y);
    hi.x = from_f(v.z * inv * g.z); hi.y = from_f(v.w * inv * g.w);
    T2* o2 = reinterpret_cast<T2*>(out) + 2 * i;
    o2[0] = lo;
    o2[1] = hi;
}

// out[i] = T(x[i] * inv * w[i]) for one row; w == nullptr: unit gain (T(x[i] * inv), the same bits as w = 1).
__device__ __forceinline__ void row_scale(T* out, const float* x, const float* w, float inv, int D) {
    if ((D & 3) == 0) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        const float4* w4 = reinterpret_cast<const float4*>(w);
        for (int i = threadIdx.x; i < (D >> 2); i += blockDim.x) scale4(out, x4[i], w4, inv, i);
    } else {
        for (int i = threadIdx.x; i < D; i += blockDim.x) out[i] = from_f(x[i] * inv * (w ? w[i] : 1.0f));
    }
}

// row_in_regs(D): the thread's columns (and r's) loaded at once into v, r added (x written back), their sum of
// squares in row_sumsq's order.
__device__ __forceinline__ float regs_sumsq(float4 (&v)[NORM_REGS], float* x, const float* r, int D) {
    float4* x4 = reinterpret_cast<float4*>(x);
    const float4* r4 = reinterpret_cast<const float4*>(r);
    const int n4 = D >> 2;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float4 a[NORM_REGS];
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {  // every load in flight before the first is used
        const int i = threadIdx.x + k * blockDim.x;
        v[k] = i < n4 ? x4[i] : zero;
        a[k] = r4 && i < n4 ? r4[i] : zero;
    }
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i >= n4) break;
        if (r4) {
            v[k].x += a[k].x; v[k].y += a[k].y; v[k].z += a[k].z; v[k].w += a[k].w;
            x4[i] = v[k];
        }
        ss = sumsq4(ss, v[k]);
    }
    return ss;
}

__device__ __forceinline__ void norm_row(T* out, float* x, const float* r, const float* w, float eps, int D) {
    __shared__ float scratch[32];
    if (row_in_regs(D)) {  // block-uniform
        float4 v[NORM_REGS];
        const float ss = block_sum(regs_sumsq(v, x, r, D), scratch);
        const float inv = rsqrtf(ss / (float)D + eps);
        const float4* w4 = reinterpret_cast<const float4*>(w);
#pragma unroll
        for (int k = 0; k < NORM_REGS; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < (D >> 2)) scale4(out, v[k], w4, inv, i);
        }
        return;
    }
    float ss = block_sum(row_sumsq(x, r, D), scratch);
    float inv = rsqrtf(ss / (float)D + eps);
    row_scale(out, x, w, inv, D);
}

// out T [M, D] = rmsnorm(x f32 [M, D]) * w f32 [D]; grid (M,)
extern "C" __global__ void rmsnorm(T* __restrict__ out, const float* __restrict__ x, const float* __restrict__ w,
                                   float eps, int D) {
    const size_t row = blockIdx.x;
    norm_row(out + row * D, const_cast<float*>(x) + row * D, nullptr, w, eps, D);
}

// x f32 [M, D] += r f32 [M, D]; out T [M, D] = rmsnorm(new x) * w; grid (M,)
extern "C" __global__ void add_rmsnorm(float* __restrict__ x, const float* __restrict__ r, T* __restrict__ out,
                                       const float* __restrict__ w, float eps, int D) {
    const size_t row = blockIdx.x;
    norm_row(out + row * D, x + row * D, r + row * D, w, eps, D);
}

// out T [1, D] = rmsnorm(x f32 [M, D] row n_tokens[0]-1) * w; the row index is read on the device (prefill
// graphs serve every prompt length of a bucket). Clamped into [0, M) so a bad count never reads out of bounds.
extern "C" __global__ void rmsnorm_last(T* __restrict__ out, const float* __restrict__ x,
                                        const float* __restrict__ w, const int* __restrict__ n_tokens,
                                        float eps, int D, int M) {
    int row = min(max(n_tokens[0] - 1, 0), M - 1);
    norm_row(out, const_cast<float*>(x) + (size_t)row * D, nullptr, w, eps, D);
}

// Unit-gain variants for weights whose norm gain is folded into the consumer's columns (state.py): the prefill
// path (M > 1) of the fused-norm ops.
extern "C" __global__ void rmsnorm_unit(T* __restrict__ out, const float* __restrict__ x, float eps, int D) {
    const size_t row = blockIdx.x;
    norm_row(out + row * D, const_cast<float*>(x) + row * D, nullptr, nullptr, eps, D);
}

extern "C" __global__ void rmsnorm_last_unit(T* __restrict__ out, const float* __restrict__ x,
                                             const int* __restrict__ n_tokens, float eps, int D, int M) {
    int row = min(max(n_tokens[0] - 1, 0), M - 1);
    norm_row(out, const_cast<float*>(x) + (size_t)row * D, nullptr, nullptr, eps, D);
}

// fp8 prefill (gpu/fp8_actq.py, CUGRAPHLLM_FP8_FUSE_ACTQ): rmsnorm_unit and gemm_quant.cu's quant_act_fp8 of its
// output in one pass, the 16-bit xn never written. Per row m: xn_i = T(x_i * inv_rms) (rmsnorm_unit's bits: same
// row_sumsq / block_sum at the launcher's same block size), v_i = xn_i * gain[i] (has_gain), sa[m] and the e4m3
// codes aq[m, :] by fp8_codes.cuh's rule. D % 4 == 0; the amax and code passes take x from the registers that
// regs_sumsq filled where the row fits them (row_in_regs), else re-read it from L1 / L2.
__device__ __forceinline__ float4 xn_gain(const float4 v, const float4* g4, float inv, int i) {
    float4 y = make_float4(to_f(from_f(v.x * inv * 1.0f)), to_f(from_f(v.y * inv * 1.0f)),
                           to_f(from_f(v.z * inv * 1.0f)), to_f(from_f(v.w * inv * 1.0f)));
    if (g4) {
        const float4 g = g4[i];
        y = make_float4(y.x * g.x, y.y * g.y, y.z * g.z, y.w * g.w);
    }
    return y;
}

__device__ __forceinline__ float amax4(float amax, float4 y) {
    return fmaxf(amax, fmaxf(fmaxf(fabsf(y.x), fabsf(y.y)), fmaxf(fabsf(y.z), fabsf(y.w))));
}

extern "C" __global__ void rmsnorm_unit_fp8(unsigned char* __restrict__ aq, float* __restrict__ sa,
                                            const float* __restrict__ x, const float* __restrict__ gain, float eps,
                                            int D, int has_gain) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    float* xr = const_cast<float*>(x) + row * D;
    float4 v[NORM_REGS];  // rmsnorm_unit's sum (either path: the same bits)
    const bool regs = row_in_regs(D);
    const float ss = block_sum(regs ? regs_sumsq(v, xr, nullptr, D) : row_sumsq(xr, nullptr, D), scratch);
    const float inv = rsqrtf(ss / (float)D + eps);
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    const float4* g4 = has_gain ? reinterpret_cast<const float4*>(gain) : nullptr;
    const int n4 = D >> 2;
    float amax = 0.f;
    if (regs) {
#pragma unroll
        for (int k = 0; k < NORM_REGS; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i >= n4) break;
            amax = amax4(amax, xn_gain(v[k], g4, inv, i));
        }
    } else {
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            amax = amax4(amax, xn_gain(x4[i], g4, inv, i));
        }
    }
    amax = block_amax(amax, scratch);
    if (threadIdx.x == 0) sa[row] = fp8_scale(amax);
    const float qinv = fp8_inv(amax);
    unsigned* dst = reinterpret_cast<unsigned*>(aq + row * D);
    if (regs) {
#pragma unroll
        for (int k = 0; k < NORM_REGS; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i >= n4) break;
            dst[i] = e4m3x4(xn_gain(v[k], g4, inv, i), qinv);
        }
    } else {
        for (int i = threadIdx.x; i < n4; i += blockDim.x) dst[i] = e4m3x4(xn_gain(x4[i], g4, inv, i), qinv);
    }
}
