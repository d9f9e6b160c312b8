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
// them. The activation is read through L1 (GEMV_XSMEM 0: every warp of an SM reads the same K * 2 bytes) or
// staged in shared memory (GEMV_XSMEM 1, after the first weight batch is in flight). For short matrices (wo,
// w2: 2048 row pairs) GEMV_KSPLIT warps of one block share a row pair over interleaved K chunks and their
// partial sums are added in a fixed order through shared memory: more loads in flight, still deterministic.
// The warp sum is a shuffle butterfly. K % 8 != 0 falls back to scalar loads.
//
// Fused RMSNorm (decode): the gain is folded into the consumer's weight columns at load time (state.py), so
// rmsnorm(x) @ W.T = inv_rms * (T(x) @ W'.T). The producer of x (embedding_ss, gemv_residual_ss) writes T(x)
// and per-block partial sums of squares ss[j] (rows [j*C, (j+1)*C), C = its rows per block); the consumer
// (the *_norm kernels) sums ss in a fixed order (each thread a strided slice, then block_sum) right after its
// first weight loads are in flight, and scales its fp32 dot products by inv_rms = rsqrt(sum/K + eps) in the
// epilogue. No atomics: every block computes the same inv_rms, bit-identical run to run.
// Early epilogue loads (GEMV_EARLY bits, env CUGRAPHLLM_GEMV_EARLY, gpu/gemv_plan.py; 1 residual, 2 qkv): what an
// epilogue reads from earlier kernels (residual: the old x; qkv: pos, n_tokens and the pair's RoPE (cos, sin)) is
// loaded right after pdl_enter into registers, in flight with the weight stream, instead of as dependent round
// trips after it in every warp's tail. A clear bit leaves that kernel's loads in its epilogue (same PTX as before
// the switch). Same results. Default 1: on the H200 (benchmarks/results/tenth_2026-11-30/gemv_early, 7B fp16,
// graph us per call, two rounds) wo+ss 9.95 -> 9.50 and w2+ss 21.70 -> 21.24 with the bit, but wqkv+norm+rope
// 25.0 -> 26.2 with its bit (the spill below).
// Cost: only lane 0 of a lead warp needs them, but every thread holds the registers; under the 32-register cap of
// the 16-warp configs ptxas spills 8 bytes of qkv's (pos, n_tokens) (bf16 residual: 4), so that lane waits for
// those loads at their spill store, in the prologue (the RoPE row's address needs pos there anyway).
#include "common.cuh"

#ifndef GEMV_WARPS
#define GEMV_WARPS 4      // warps per block
#endif
#ifndef GEMV_UNROLL
#define GEMV_UNROLL 4     // 16-byte loads per row per lane in flight
#endif
#ifndef GEMV_KSPLIT
#define GEMV_KSPLIT 1     // warps of one block sharing a row pair (interleaved K chunks, fixed-order sum)
#endif
#ifndef GEMV_XSMEM
#define GEMV_XSMEM 0      // 1: stage `a` in shared memory; 0: read it through L1 (no barrier, no staging)
#endif
#ifndef GEMV_EARLY
#define GEMV_EARLY 1      // bits (1 residual, 2 qkv): epilogue inputs loaded right after pdl_enter (see above)
#endif
#define GEMV_THREADS (GEMV_WARPS * 32)
// Resident blocks per SM that ptxas must allow (a register cap): a GEMV hides memory latency with warps, so the
// 16-warp configs get full occupancy (32 registers, no spills), and bf16's 8-warp config the 40 registers that
// fp16 takes by itself. 0: ptxas's own choice (an explicit 1 would let it take more registers). A/B:
// scripts/decode_anatomy.py --gemv-min-blocks 0.
#ifndef GEMV_MIN_BLOCKS
#if GEMV_THREADS >= 512
#define GEMV_MIN_BLOCKS (2048 / GEMV_THREADS)
#elif defined(CG_BF16) && GEMV_THREADS == 256
#define GEMV_MIN_BLOCKS 6
#else
#define GEMV_MIN_BLOCKS 0
#endif
#endif
#if GEMV_MIN_BLOCKS > 0
#define GEMV_BOUNDS __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS)
#else
#define GEMV_BOUNDS __launch_bounds__(GEMV_THREADS)
#endif
#define GEMV_PAIRS (GEMV_WARPS / GEMV_KSPLIT)  // row pairs per block

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

// NormIn / norm_inv / NO_NORM (the fused norm's input): common.cuh

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

// The hook of a kernel that loads no epilogue input early (GEMV_EARLY 0, or nothing to load).
struct NoEarly {
    __device__ __forceinline__ void operator()() const {}
};

// This warp's partial sums of rows r0, r1 over its K chunks (chunk c of 32 * GEMV_UNROLL vectors belongs to
// split ks = c % GEMV_KSPLIT), reduced over the warp. early(): the epilogue's loads of earlier kernels' outputs,
// called by every thread right after pdl_enter.
template <class Early>
__device__ __forceinline__ float2 warp_partial(const T* __restrict__ W, size_t r0, size_t r1, bool active,
                                               const T* __restrict__ a, T* xs, int K, int ks,
                                               const NormIn& nm, float& inv, const Early& early) {
    const int lane = threadIdx.x & 31;
    const int nvec = K >> 3;
    const bool vec = (K & 7) == 0;
    const uint4* w0 = reinterpret_cast<const uint4*>(W + r0 * K);  // [nvec]
    const uint4* w1 = reinterpret_cast<const uint4*>(W + r1 * K);
    const int step = 32 * GEMV_UNROLL * GEMV_KSPLIT;
    uint4 b0[GEMV_UNROLL], b1[GEMV_UNROLL];
    if (vec && active) load_chunk(b0, b1, w0, w1, ks * 32 * GEMV_UNROLL, nvec);  // before any staging
    pdl_enter();  // a and ss come from the previous kernel
    early();      // epilogue inputs: their round trips overlap the weight loads in flight
    if (nm.ss) inv = norm_inv(nm, K);  // L2 hits, shorter than the weight loads already in flight
#if GEMV_XSMEM
    stage_x(xs, a, K);
    __syncthreads();
    const uint4* x4 = reinterpret_cast<const uint4*>(xs);
    const T* xv_s = xs;
#else
    const uint4* x4 = reinterpret_cast<const uint4*>(a);
    const T* xv_s = a;
#endif
    float acc0 = 0.0f, acc1 = 0.0f;
    if (active && vec) {
        for (int base = ks * 32 * GEMV_UNROLL; base < nvec; base += step) {
            if (base != ks * 32 * GEMV_UNROLL) load_chunk(b0, b1, w0, w1, base, nvec);
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; ++u) {
                int idx = base + u * 32 + lane;
                if (idx < nvec) {
#if GEMV_XSMEM
                    uint4 xv = x4[idx];
#else
                    uint4 xv = __ldg(x4 + idx);
#endif
                    acc0 = dot8(b0[u], xv, acc0);
                    acc1 = dot8(b1[u], xv, acc1);
                }
            }
        }
    } else if (active) {
        const T* p0 = W + r0 * K;
        const T* p1 = W + r1 * K;
        for (int k = ks * 32 + lane; k < K; k += 32 * GEMV_KSPLIT) {
            float xv = to_f(xv_s[k]);
            acc0 = fmaf(to_f(p0[k]), xv, acc0);
            acc1 = fmaf(to_f(p1[k]), xv, acc1);
        }
    }
    return make_float2(warp_sum(acc0), warp_sum(acc1));
}

// y0 = W[r0, :] . a and y1 = W[r1, :] . a (times inv_rms when nm.ss), valid in split 0's warp (every lane).
// All threads of the block call this (it may hold barriers); inactive warps pass active = false. early: see
// warp_partial.
template <class Early = NoEarly>
__device__ __forceinline__ float2 gemv_pair(const T* __restrict__ W, size_t r0, size_t r1, bool active,
                                            const T* __restrict__ a, T* xs, int K, const NormIn& nm,
                                            const Early& early = Early{}) {
    const int ks = (threadIdx.x >> 5) % GEMV_KSPLIT;
    float inv = 1.0f;
    float2 y = ksplit_sum<GEMV_KSPLIT, GEMV_WARPS>(warp_partial(W, r0, r1, active, a, xs, K, ks, nm, inv, early));
    if (nm.ss) {
        y.x *= inv;
        y.y *= inv;
    }
    return y;
}

#define GEMV_PROLOGUE                                              \
    extern __shared__ uint4 gemv_smem[];                           \
    T* xs = reinterpret_cast<T*>(gemv_smem); /* [K] */             \
    const int lane = threadIdx.x & 31;                             \
    const int pair = (threadIdx.x >> 5) / GEMV_KSPLIT;             \
    const bool lead = (threadIdx.x >> 5) % GEMV_KSPLIT == 0;       \
    const int gw = blockIdx.x * GEMV_PAIRS + pair;                 \
    (void)lane;


// logits f32 [N] = W T [N, K] . a T [K]   (LM head). Warp gw: rows 2gw, 2gw+1.
__device__ __forceinline__ void logits_body(float* __restrict__ out, const T* __restrict__ a,
                                            const T* __restrict__ W, int N, int K, const NormIn& nm) {
    GEMV_PROLOGUE
    const size_t r0 = 2 * (size_t)gw;
    const bool active = r0 < (size_t)N, has1 = r0 + 1 < (size_t)N;
    float2 y = gemv_pair(W, r0, has1 ? r0 + 1 : r0, active, a, xs, K, nm);
    if (!active || !lead) return;
    if (lane == 0) out[r0] = y.x;
    if (lane == 1 && has1) out[r0 + 1] = y.y;
}

extern "C" __global__ void GEMV_BOUNDS
gemv_logits(float* __restrict__ out, const T* __restrict__ a, const T* __restrict__ W, int N, int K) {
    logits_body(out, a, W, N, K, NO_NORM);
}

// Fused final norm: a = T(x) and ss as written by the producer of x; W has the norm gain folded in.
extern "C" __global__ void GEMV_BOUNDS
gemv_logits_norm(float* __restrict__ out, const T* __restrict__ a, const T* __restrict__ W, int N, int K,
                 const float* __restrict__ ss, int n_ss, float eps) {
    logits_body(out, a, W, N, K, NormIn{ss, n_ss, eps});
}

// x f32 [N] += W T [N, K] . a T [K]   (wo and w2 with the residual add). Warp gw: rows 2gw, 2gw+1.
// With ss: also xh T [N] = T(new x) and ss[blockIdx.x] = sum of new x^2 over this block's 2 * GEMV_PAIRS rows
// (pairs added in order), the input of the next fused norm.
__device__ __forceinline__ void residual_body(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss,
                                              const T* __restrict__ a, const T* __restrict__ W, int N, int K) {
    GEMV_PROLOGUE
    const size_t r0 = 2 * (size_t)gw;
    const bool active = r0 < (size_t)N, has1 = r0 + 1 < (size_t)N;
#if GEMV_EARLY & 1
    const bool store = active && lead && lane == 0;  // the one lane of a row pair that updates x
    float2 x0;  // old x[r0], x[r0 + 1]
    auto early = [&] { if (store) x0 = residual_pair_load(x, r0, has1); };
    float2 y = gemv_pair(W, r0, has1 ? r0 + 1 : r0, active, a, xs, K, NO_NORM, early);
    const float sq = store ? residual_pair_add(x, xh, ss != nullptr, r0, has1, x0, y) : 0.0f;
#else
    float2 y = gemv_pair(W, r0, has1 ? r0 + 1 : r0, active, a, xs, K, NO_NORM);
    const float sq = active && lead && lane == 0 ? residual_pair(x, xh, ss != nullptr, r0, has1, y) : 0.0f;
#endif
    if (ss) {
        __shared__ float bsq[GEMV_PAIRS];
        if (lead && lane == 0) bsq[pair] = sq;
        __syncthreads();
        if (threadIdx.x == 0) {
            float t = 0.0f;
#pragma unroll
            for (int p = 0; p < GEMV_PAIRS; ++p) t += bsq[p];
            ss[blockIdx.x] = t;
        }
    }
}

extern "C" __global__ void GEMV_BOUNDS
gemv_residual(float* __restrict__ x, const T* __restrict__ a, const T* __restrict__ W, int N, int K) {
    residual_body(x, nullptr, nullptr, a, W, N, K);
}

extern "C" __global__ void GEMV_BOUNDS
gemv_residual_ss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss, const T* __restrict__ a,
                 const T* __restrict__ W, int N, int K) {
    residual_body(x, xh, ss, a, W, N, K);
}

// h T [F] = silu(g) * u with g = w13[j] . a (gate rows 0..F-1) and u = w13[F + j] . a (up rows F..2F-1);
// w13 T [2F, K]. Warp gw = j.
__device__ __forceinline__ void silu_body(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ W,
                                          int F, int K, const NormIn& nm) {
    GEMV_PROLOGUE
    const size_t j = gw;
    const bool active = j < (size_t)F;
    float2 y = gemv_pair(W, j, j + F, active, a, xs, K, nm);
    if (!active || !lead || lane != 0) return;
    float g = y.x;
    h[j] = from_f(g / (1.0f + expf(-g)) * y.y);
}

extern "C" __global__ void GEMV_BOUNDS
gemv_silu(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ W, int F, int K) {
    silu_body(h, a, W, F, K, NO_NORM);
}

// Fused ffn norm: a = T(x), ss from the producer of x, w13 with ffn_norm folded in.
extern "C" __global__ void GEMV_BOUNDS
gemv_silu_norm(T* __restrict__ h, const T* __restrict__ a, const T* __restrict__ W, int F, int K,
               const float* __restrict__ ss, int n_ss, float eps) {
    silu_body(h, a, W, F, K, NormIn{ss, n_ss, eps});
}

// qkv = wqkv T [D + 2*KVD, K] . a T [K]; warp gw: rows j = 2gw, 2gw + 1 (one RoPE pair); RoPE, q and the K/V row
// at pos[0] written as common.cuh qkv_pair_store describes.
__device__ __forceinline__ void qkv_body(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache,
                                         const T* __restrict__ a, const T* __restrict__ W,
                                         const float* __restrict__ rope_cs, const int* __restrict__ pos,
                                         const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, int K,
                                         const NormIn& nm) {
    GEMV_PROLOGUE
    const int j = 2 * gw;
    const bool active = j < D + 2 * KVD;
#if GEMV_EARLY & 2
    const bool store = active && lead && lane == 0;  // the one lane of a row pair that stores
    QkvEpi e;
    auto early = [&] { if (store) e = qkv_pair_load(rope_cs, pos, n_tokens, D, KVD, hd, S, j); };
    float2 y = gemv_pair(W, (size_t)j, (size_t)j + 1, active, a, xs, K, nm, early);
    if (store) qkv_pair_rope_store(q, k_cache, v_cache, e, D, KVD, S, j, y);
#else
    float2 y = gemv_pair(W, (size_t)j, (size_t)j + 1, active, a, xs, K, nm);
    if (!active || !lead || lane != 0) return;
    qkv_pair_store(q, k_cache, v_cache, rope_cs, pos, n_tokens, D, KVD, hd, S, j, y);
#endif
}

extern "C" __global__ void GEMV_BOUNDS
gemv_qkv_rope(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache, const T* __restrict__ a,
              const T* __restrict__ W, const float* __restrict__ rope_cs, const int* __restrict__ pos,
              const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, int K) {
    qkv_body(q, k_cache, v_cache, a, W, rope_cs, pos, n_tokens, D, KVD, hd, S, K, NO_NORM);
}

// Fused attention norm: a = T(x), ss from the producer of x, wqkv with attention_norm folded in.
extern "C" __global__ void GEMV_BOUNDS
gemv_qkv_rope_norm(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache, const T* __restrict__ a,
                   const T* __restrict__ W, const float* __restrict__ rope_cs, const int* __restrict__ pos,
                   const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, int K,
                   const float* __restrict__ ss, int n_ss, float eps) {
    qkv_body(q, k_cache, v_cache, a, W, rope_cs, pos, n_tokens, D, KVD, hd, S, K, NormIn{ss, n_ss, eps});
}
