// Decode GEMV (M = 1) over quantized weights (cugraphllm/quant/formats.py), with the fused epilogues of gemv.cu:
// qkv + RoPE + KV write, SiLU * up, residual (+ xh and the ss partial sums for the next fused norm), logits, and
// the fused-norm variants (inv_rms from ss). fp32 accumulation across 16-byte weight vectors.
//
// One module per format (QFMT: 1 fp8 e4m3 + fp32 row scale, 2 int8 + fp32 row scale, 3 int4 grouped with fp16
// scales and zeros) and per activation dtype T (-DCG_BF16). Weights: packed rows of N rows; activation a T [K].
// Optional perm int32 [K] and gain f32 [K] (nullptr: identity / ones) act on the activation: packed column j
// multiplies gain[j] * a[perm[j]]. Every block first issues its first weight loads, then stages that permuted,
// gained activation in shared memory as fp32 (xs [K], swizzled so that the 16-byte reads of the 32 lanes, which
// lie one weight vector apart, hit distinct banks), plus (int4) the sum of each 32-element chunk of xs.
//
// Grid mapping as in gemv.cu: one warp computes a row pair (r0, r1) over all of K (QG_KSPLIT warps share a
// pair over interleaved K chunks, fixed-order sum through shared memory), so each epilogue has both values of
// a RoPE pair / of gate row j and up row F + j in one lane. Each lane keeps 2 * QG_UNROLL 16-byte weight loads
// in flight (L1 bypassed): 16 e4m3 / int8 values or 32 int4 values per load.
// Per 16-byte vector:
//   fp8:  e4m3 pairs -> half2 (Hopper/Ada: cvt.rn.f16x2.e4m3x2; sm_80: bit placement into a half that is 2^-8
//         times the value, the 2^8 folded into the row scale) -> fp32 FMA; y = scale[r] * sum.
//   int8: byte -> fp32 exactly through the 2^23 magic number (one PRMT + one FADD) -> fp32 FMA; y = scale[r] * sum.
//   int4: nibble pairs (k, k+4) -> half2 (1024 + q) with the 0x6400 magic number (one shift + one LOP3), -> fp32
//         FMA. The 32 values of a vector lie in one group (group_size % 32 == 0), so
//         y += s_g * (sum (1024 + q) x - (z_g + 1024) * sum x), with sum x over the chunk precomputed at staging.
// Shapes that break the vector rules (K % (values per vector) != 0, or int4 groups not a multiple of 32) take a
// scalar path: correct, slow, only for awkward test sizes.
#include "gemv_quant.cuh"

// Shared memory: xs f32 [round_up(K, 32)] then csum f32 [K / 32] (the launcher sizes it); half2 path: xh.
#define QG_PROLOGUE                                                              \
    extern __shared__ float4 qg_smem[];                                          \
    float* xs = reinterpret_cast<float*>(qg_smem);                               \
    float* csum = xs + ((w.K + 31) & ~31);                                       \
    const int lane = threadIdx.x & 31;                                           \
    const int pair = (threadIdx.x >> 5) / QG_KSPLIT;                             \
    const bool lead = (threadIdx.x >> 5) % QG_KSPLIT == 0;                       \
    (void)lane; (void)pair;

#define QW_PARAMS const unsigned char* __restrict__ qw, const void* __restrict__ qs, \
    const __half* __restrict__ qz, const int* __restrict__ perm, const float* __restrict__ gain, int K, int gs, int gsh
#define QW_ARGS QArgs{qw, qs, qz, perm, gain, K, gs, gsh}

// rows 2gw, 2gw + 1 of an N-row matrix (an odd N's last pair has one row)
__device__ __forceinline__ PairRows row_pair(int gw, int N) {
    const size_t r0 = 2 * (size_t)gw;
    const bool active = r0 < (size_t)N, has1 = r0 + 1 < (size_t)N;
    return PairRows{active ? r0 : 0, has1 ? r0 + 1 : (active ? r0 : 0), active};
}

// ---- epilogues (same outputs as gemv.cu) ---------------------------------------------------------------------
// logits f32 [N] = W . a. Pair gw: rows 2gw, 2gw+1.
__device__ __forceinline__ void logits_body(float* __restrict__ out, const T* __restrict__ a, const QArgs& w,
                                            int N, const NormIn& nm) {
    QG_PROLOGUE
    auto rows = [N](int gw) { return row_pair(gw, N); };
    auto epi = [&](int, int gw, const PairRows& p, float2 y) {
        if (!p.active || !lead) return;
        const size_t r0 = 2 * (size_t)gw;
        if (lane == 0) out[r0] = y.x;
        if (lane == 1 && r0 + 1 < (size_t)N) out[r0 + 1] = y.y;
    };
    qgemv_pairs(w, a, nm, (N + 1) / 2, xs, csum, rows, epi);
}

extern "C" __global__ void QG_BOUNDS
qgemv_logits(float* __restrict__ out, const T* __restrict__ a, int N, QW_PARAMS) {
    logits_body(out, a, QW_ARGS, N, NO_NORM);
}

extern "C" __global__ void QG_BOUNDS
qgemv_logits_norm(float* __restrict__ out, const T* __restrict__ a, int N, QW_PARAMS,
                  const float* __restrict__ ss, int n_ss, float eps) {
    logits_body(out, a, QW_ARGS, N, NormIn{ss, n_ss, eps});
}

// x f32 [N] += W . a. With ss: also xh T [N] = T(new x) and, per chunk of `chunk` rows (even, dividing the
// 2 * QG_PAIRS rows of a virtual block), ss[row / chunk] = sum of new x^2 over the chunk, pairs added in order:
// the chunking of gemv_plan.norm_chunk, so producers of either format feed consumers of either format.
__device__ __forceinline__ void residual_body(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss,
                                              int chunk, const T* __restrict__ a, const QArgs& w, int N) {
    QG_PROLOGUE
    __shared__ float bsq[QG_PAIRS];
    auto rows = [N](int gw) { return row_pair(gw, N); };
    auto epi = [&](int vb, int gw, const PairRows& p, float2 y) {
        const size_t r0 = 2 * (size_t)gw;
        const float sq =
            p.active && lead && lane == 0 ? residual_pair(x, xh, ss != nullptr, r0, r0 + 1 < (size_t)N, y) : 0.0f;
        if (ss) {
            if (lead && lane == 0) bsq[pair] = sq;
            __syncthreads();
            const int per = chunk >> 1, n_chunks = QG_PAIRS / per;  // pairs per chunk, chunks per block
            if ((int)threadIdx.x < n_chunks) {
                const size_t row = (size_t)vb * 2 * QG_PAIRS + (size_t)threadIdx.x * chunk;
                if (row < (size_t)N) {
                    float t = 0.0f;
                    for (int q = 0; q < per; ++q) t += bsq[threadIdx.x * per + q];
                    ss[row / chunk] = t;
                }
            }
        }
    };
    qgemv_pairs(w, a, NO_NORM, (N + 1) / 2, xs, csum, rows, epi);
}

extern "C" __global__ void QG_BOUNDS
qgemv_residual(float* __restrict__ x, const T* __restrict__ a, int N, QW_PARAMS) {
    residual_body(x, nullptr, nullptr, 2, a, QW_ARGS, N);
}

extern "C" __global__ void QG_BOUNDS
qgemv_residual_ss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss, int chunk,
                  const T* __restrict__ a, int N, QW_PARAMS) {
    residual_body(x, xh, ss, chunk, a, QW_ARGS, N);
}

// h T [F] = silu(w13[j] . a) * (w13[F + j] . a); pair gw = j.
__device__ __forceinline__ void silu_body(T* __restrict__ h, const T* __restrict__ a, const QArgs& w, int F,
                                          const NormIn& nm) {
    QG_PROLOGUE
    auto rows = [F](int j) {
        const bool active = j < F;
        return PairRows{active ? (size_t)j : 0, active ? (size_t)j + F : 0, active};
    };
    auto epi = [&](int, int j, const PairRows& p, float2 y) {
        if (!p.active || !lead || lane != 0) return;
        const float g = y.x;
        h[j] = from_f(g / (1.0f + expf(-g)) * y.y);
    };
    qgemv_pairs(w, a, nm, F, xs, csum, rows, epi);
}

extern "C" __global__ void QG_BOUNDS
qgemv_silu(T* __restrict__ h, const T* __restrict__ a, int F, QW_PARAMS) {
    silu_body(h, a, QW_ARGS, F, NO_NORM);
}

extern "C" __global__ void QG_BOUNDS
qgemv_silu_norm(T* __restrict__ h, const T* __restrict__ a, int F, QW_PARAMS,
                const float* __restrict__ ss, int n_ss, float eps) {
    silu_body(h, a, QW_ARGS, F, NormIn{ss, n_ss, eps});
}

// qkv = wqkv [D + 2 KVD, K] . a; pair gw: rows 2gw, 2gw+1 (one RoPE pair); outputs as common.cuh qkv_pair_store.
__device__ __forceinline__ void qkv_body(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache,
                                         const T* __restrict__ a, const float* __restrict__ rope_cs,
                                         const int* __restrict__ pos, const int* __restrict__ n_tokens, int D,
                                         int KVD, int hd, int S, const QArgs& w, const NormIn& nm) {
    QG_PROLOGUE
    const int n_rows = D + 2 * KVD;
    auto rows = [n_rows](int gw) {
        const int j = 2 * gw;
        const bool active = j < n_rows;
        return PairRows{active ? (size_t)j : 0, active ? (size_t)j + 1 : 0, active};
    };
    auto epi = [&](int, int gw, const PairRows& pr, float2 y) {
        if (!pr.active || !lead || lane != 0) return;
        qkv_pair_store(q, k_cache, v_cache, rope_cs, pos, n_tokens, D, KVD, hd, S, 2 * gw, y);
    };
    qgemv_pairs(w, a, nm, n_rows / 2, xs, csum, rows, epi);
}

extern "C" __global__ void QG_BOUNDS
qgemv_qkv_rope(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache, const T* __restrict__ a,
               const float* __restrict__ rope_cs, const int* __restrict__ pos, const int* __restrict__ n_tokens,
               int D, int KVD, int hd, int S, QW_PARAMS) {
    qkv_body(q, k_cache, v_cache, a, rope_cs, pos, n_tokens, D, KVD, hd, S, QW_ARGS, NO_NORM);
}

extern "C" __global__ void QG_BOUNDS
qgemv_qkv_rope_norm(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache, const T* __restrict__ a,
                    const float* __restrict__ rope_cs, const int* __restrict__ pos,
                    const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, QW_PARAMS,
                    const float* __restrict__ ss, int n_ss, float eps) {
    qkv_body(q, k_cache, v_cache, a, rope_cs, pos, n_tokens, D, KVD, hd, S, QW_ARGS, NormIn{ss, n_ss, eps});
}
