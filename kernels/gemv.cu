// Decode GEMV (M = 1) with fused epilogues: y[r] = sum_k W[r, k] * a[k], fp32 accumulation.
//
// Layout: W T [N, K] row-major ([out, in], as checkpoints store it); activation a T [K] (normed x, attention
// output or SiLU product); outputs per kernel below.
// Grid mapping: one warp computes TWO weight rows (r0, r1) over the whole of K, so that an epilogue that needs
// a pair (RoPE rotates rows 2i and 2i+1; SwiGLU combines gate row j with up row F + j) has both values in one
// lane. A block holds GEMV_WARPS independent warps; grid = ceil(n_pairs / GEMV_WARPS). For every LLaMA-2 shape
// there are >= 2048 pairs, i.e. >= 15 warps per SM of an H100 in one wave, so no split-K is needed and each
// output is reduced by exactly one warp in a fixed order: results are bit-identical run to run.
// Bandwidth: each lane issues 2 * GEMV_UNROLL independent 16-byte weight loads (L1 bypassed) before it uses
// them; the first batch is issued before the block stages `a` into shared memory, so the staging latency hides
// under the first weight fetch. The warp sum is a shuffle butterfly. K % 8 != 0 falls back to scalar loads.
#include "common.cuh"

#ifndef GEMV_WARPS
#define GEMV_WARPS 4
#endif
#ifndef GEMV_UNROLL
#define GEMV_UNROLL 4
#endif
#define GEMV_THREADS (GEMV_WARPS * 32)

// Copy a T [K] into shared memory xs T [K] (16-byte chunks when K % 8 == 0).
__device__ __forceinline__ void stage_x(T* xs, const T* __restrict__ a, int K) {
    if ((K & 7) == 0) {
        const uint4* a4 = reinterpret_cast<const uint4*>(a);
        uint4* x4 = reinterpret_cast<uint4*>(xs);
        for (int i = threadIdx.x; i < (K >> 3); i += blockDim.x) x4[i] = a4[i];
    } else {
        for (int i = threadIdx.x; i < K; i += blockDim.x) xs[i] = a[i];
    }
}

__device__ __forceinline__ void load_chunk(uint4 (&b0)[GEMV_UNROLL], uint4 (&b1)[GEMV_UNROLL],
                                           const uint4* w0, const uint4* w1, int base, int nvec) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; ++u) {
        int idx = base + u * 32 + lane;
        b0[u] = idx < nvec ? ld_stream16(w0 + idx) : make_uint4(0u, 0u, 0u, 0u);
        b1[u] = idx < nvec ? ld_stream16(w1 + idx) : make_uint4(0u, 0u, 0u, 0u);
    }
}

// y0 = W[r0, :] . a and y1 = W[r1, :] . a, in every lane of the warp. All threads of the block must call this
// (it stages `a` and has a barrier); inactive warps pass active = false and get zeros.
__device__ __forceinline__ float2 gemv_pair(const T* __restrict__ W, size_t r0, size_t r1, bool active,
                                            const T* __restrict__ a, T* xs, int K) {
    const int lane = threadIdx.x & 31;
    const int nvec = K >> 3;
    const bool vec = (K & 7) == 0;
    const uint4* w0 = reinterpret_cast<const uint4*>(W + r0 * K);  // [nvec]
    const uint4* w1 = reinterpret_cast<const uint4*>(W + r1 * K);
    uint4 b0[GEMV_UNROLL], b1[GEMV_UNROLL];
    if (vec && active) load_chunk(b0, b1, w0, w1, 0, nvec);  // in flight while `a` is staged
    stage_x(xs, a, K);
    __syncthreads();
    float acc0 = 0.0f, acc1 = 0.0f;
    if (!active) return make_float2(0.0f, 0.0f);
    if (vec) {
        const uint4* x4 = reinterpret_cast<const uint4*>(xs);
        for (int base = 0; base < nvec; base += 32 * GEMV_UNROLL) {
            if (base > 0) load_chunk(b0, b1, w0, w1, base, nvec);
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; ++u) {
                int idx = base + u * 32 + lane;
                if (idx < nvec) {
                    uint4 xv = x4[idx];
                    acc0 = dot8(b0[u], xv, acc0);
                    acc1 = dot8(b1[u], xv, acc1);
                }
            }
        }
    } else {
        const T* p0 = W + r0 * K;
        const T* p1 = W + r1 * K;
        for (int k = lane; k < K; k += 32) {
            float xv = to_f(xs[k]);
            acc0 = fmaf(to_f(p0[k]), xv, acc0);
            acc1 = fmaf(to_f(p1[k]), xv, acc1);
        }
    }
    return make_float2(warp_sum(acc0), warp_sum(acc1));
}

#define GEMV_PROLOGUE                                              \
    extern __shared__ uint4 gemv_smem[];                           \
    T* xs = reinterpret_cast<T*>(gemv_smem); /* [K] */             \
    const int lane = threadIdx.x & 31;                             \
    const int gw = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);

// logits f32 [N] = W T [N, K] . a T [K]   (LM head). Warp gw: rows 2gw, 2gw+1.
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
gemv_logits(float* __restrict__ out, const T* __restrict__ a, const T* __restrict__ W, int N, int K) {
    GEMV_PROLOGUE
    const size_t r0 = 2 * (size_t)gw;
    const bool active = r0 < (size_t)N, has1 = r0 + 1 < (size_t)N;
    float2 y = gemv_pair(W, r0, has1 ? r0 + 1 : r0, active, a, xs, K);
    if (!active) return;
    if (lane == 0) out[r0] = y.x;
    if (lane == 1 && has1) out[r0 + 1] = y.y;
}

// x f32 [N] += W T [N, K] . a T [K]   (wo and w2 with the residual add). Warp gw: rows 2gw, 2gw+1.
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
gemv_residual(float* __restrict__ x, const T* __restrict__ a, const T* __restrict__ W, int N, int K) {
    GEMV_PROLOGUE
    const size_t r0 = 2 * (size_t)gw;
    const bool active = r0 < (size_t)N, has1 = r0 + 1 < (size_t)N;
    float2 y = gemv_pair(W, r0, has1 ? r0 + 1 : r0, active, a, xs, K);
    if (!active) return;
    if (lane == 0) x[r0] += y.x;
    if (lane == 1 && has1) x[r0 + 1] += y.y;
}

// h T [F] = silu(g) * u with g = w13[j] . a (gate rows 0..F-1) and u = w13[F + j] . a (up rows F..2F-1);
// w13 T [2F, K]. Warp gw = j.
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
gemv_silu(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ W, int F, int K) {
    GEMV_PROLOGUE
    const size_t j = gw;
    const bool active = j < (size_t)F;
    float2 y = gemv_pair(W, j, j + F, active, a, xs, K);
    if (!active || lane != 0) return;
    float g = y.x;
    h[j] = from_f(g / (1.0f + expf(-g)) * y.y);
}

// qkv = wqkv T [D + 2*KVD, K] . a T [K]; warp gw: rows j = 2gw, 2gw + 1 (one RoPE pair).
// q rows (j < D): rotated by RoPE at position pos[0], written to q T [D].
// k rows (D <= j < D + KVD): rotated, written to k_cache T [S, KVD] at row pos[0].
// v rows: written to v_cache T [S, KVD] at row pos[0]. Cache writes only when n_tokens[0] > 0 and
// 0 <= pos < S (never out of bounds). rope_cs f32 [S, hd/2, 2] = (cos, sin) of pos * theta^(-2i/hd).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
gemv_qkv_rope(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache, const T* __restrict__ a,
              const T* __restrict__ W, const float* __restrict__ rope_cs, const int* __restrict__ pos,
              const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, int K) {
    GEMV_PROLOGUE
    const int j = 2 * gw;
    const bool active = j < D + 2 * KVD;
    float2 y = gemv_pair(W, (size_t)j, (size_t)j + 1, active, a, xs, K);
    if (!active || lane != 0) return;
    const int p = pos[0];
    if (j < D + KVD) {
        const int pr = min(max(p, 0), S - 1);  // table row; the clamp matters only for a position past S
        const float2 cs = reinterpret_cast<const float2*>(rope_cs)[(size_t)pr * (hd >> 1) + ((j % hd) >> 1)];
        y = make_float2(y.x * cs.x - y.y * cs.y, y.x * cs.y + y.y * cs.x);
    }
    T2 v;
    v.x = from_f(y.x);
    v.y = from_f(y.y);
    if (j < D) {
        reinterpret_cast<T2*>(q)[j >> 1] = v;
    } else if (n_tokens[0] > 0 && p >= 0 && p < S) {
        T* dst = (j < D + KVD ? k_cache : v_cache) + (size_t)p * KVD;  // row pos of [S, KVD]
        reinterpret_cast<T2*>(dst)[(j < D + KVD ? j - D : j - D - KVD) >> 1] = v;
    }
}
