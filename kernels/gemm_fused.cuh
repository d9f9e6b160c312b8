// The entry kernels of kernels/gemm.cu with their fused epilogues: the fused prefill RMSNorm (norm_inv),
// gemm_residual(_ss), gemm_silu(_ss) and gemm_qkv_rope(_ss). Part of gemm.cu's module (included after warp_gemm);
// compiled only through gemm.cu.

// ---- the fused RMSNorm of the <= NTOK-row prefill (gpu/ops.py, "prefill norms") ----------------------------
// The producer of x (embedding_pss, gemm_residual_ss) wrote xn = T(x) and ss[n * P + j] = the sum of squares of
// x[n, 16j .. 16j + 16) (P = K / 16); the norm gain is folded into the weights (state.py). After its main loop the
// consumer takes inv[n] = rsqrt(sum_j ss[n * P + j] / K + eps), one warp a token in a fixed order, from L2 into
// inv (dynamic shared memory, so that the static bytes stay those of the plain kernels); the epilogue scales its
// sums by inv[n]. Measured on the H200 (twenty-second session, s30c / s30d / s30f): reading ss before the main loop
// stalled the weight stream, and a cp.async copy of ss into shared memory took the L1 that x's re-reads need.
__device__ __forceinline__ void norm_inv(float* inv, const float* __restrict__ ss, int M, int P, int K, float eps) {
    const int lane = threadIdx.x & 31;
    for (int n = threadIdx.x >> 5; n < M; n += NTHREADS / 32) {
        float s = 0.0f;
        for (int j = lane; j < P; j += 32) s += ss[(size_t)n * P + j];
        s = warp_sum(s);
        if (lane == 0) inv[n] = rsqrtf(s / (float)K + eps);
    }
    __syncthreads();
}

// Tiles of a plain row range: the warp's tile i is block tile (warp % WM) * RT + i, rows row0 + 16 * that.
__device__ __forceinline__ TileRows plain_tiles(const T* w, int row0, int nrows) {
    TileRows tr;
    const int first = ((threadIdx.x >> 5) % WM) * RT;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        tr.w[i] = w;
        tr.row0[i] = row0 + 16 * (first + i);
        tr.nrows[i] = nrows;
    }
    return tr;
}

// x f32 [M, N] += a [M, K] @ w[N, K].T
extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_residual(float* __restrict__ x, const T* __restrict__ a, const T* __restrict__ w, int M, int N, int K) {
    __shared__ Red red;
    const int row0 = blockIdx.x * 16 * TILES;
    warp_gemm(red, a, plain_tiles(w, row0, N), M, K);
    for (int e = threadIdx.x; e < TILES * 16 * NTOK; e += NTHREADS) {
        int n = e / (TILES * 16), rr = e % (TILES * 16), o = row0 + rr;
        if (n < M && o < N) x[(size_t)n * N + o] += block_val(red, rr >> 4, n, rr & 15);
    }
}

// gemm_residual that also feeds the next fused prefill norm (norm_inv): xh T [M, N] = T(new x) and ss f32
// [M, N / 16], ss[n * (N / 16) + j] = sum of new x[n, 16j .. 16j + 16)^2 (N % 16 == 0, launcher-checked). The 16
// columns of one token are 16 consecutive threads (TILES * 16 is a multiple of 16), summed by a butterfly.
extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_residual_ss(float* __restrict__ x, T* __restrict__ xh, float* __restrict__ ss, const T* __restrict__ a,
                 const T* __restrict__ w, int M, int N, int K) {
    __shared__ Red red;
    const int row0 = blockIdx.x * 16 * TILES;
    warp_gemm(red, a, plain_tiles(w, row0, N), M, K);
    for (int e = threadIdx.x; e < TILES * 16 * NTOK; e += NTHREADS) {  // 128 * TILES * NT elements: whole warps
        const int n = e / (TILES * 16), rr = e % (TILES * 16), o = row0 + rr;
        const bool in = n < M && o < N;
        float v = 0.0f;
        if (in) {
            v = x[(size_t)n * N + o] + block_val(red, rr >> 4, n, rr & 15);
            x[(size_t)n * N + o] = v;
            xh[(size_t)n * N + o] = from_f(v);
        }
        float q = v * v;
#pragma unroll
        for (int d = 8; d > 0; d >>= 1) q += __shfl_xor_sync(0xffffffffu, q, d);
        if (in && (threadIdx.x & 15) == 0) ss[(size_t)n * (N >> 4) + (o >> 4)] = q;
    }
}

// h [M, F] = silu(xn @ w1.T) * (xn @ w3.T), w13 = [w1; w3] [2F, K]. Block tiles 0..TILES/2-1 hold w1 rows, the
// rest the matching w3 rows. NORM (gemm_silu_ss): xn = T(x) un-normed, sums scaled by norm_inv's inv[n].
template <bool NORM>
__device__ __forceinline__ void silu_body(T* __restrict__ h, const T* __restrict__ xn, const T* __restrict__ w13,
                                          int M, int F, int K, const float* __restrict__ ss, int P, float eps) {
    __shared__ Red red;
    constexpr int HT = TILES >= 2 ? TILES / 2 : 1;  // TILES must be even (launcher check); 1 keeps odd builds valid
    const int f0 = blockIdx.x * 16 * HT, first = ((threadIdx.x >> 5) % WM) * RT;
    TileRows tr;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        const int tt = first + i;
        // a w1 tile past F must not read w3 rows: its row count is F (w3 tiles end at 2F anyway)
        tr.w[i] = w13 + (tt >= HT ? (size_t)F * K : 0);
        tr.row0[i] = f0 + 16 * (tt % HT);
        tr.nrows[i] = F;
    }
    extern __shared__ float inv[];  // NORM: [M], dynamic
    warp_gemm(red, xn, tr, M, K);
    if constexpr (NORM) norm_inv(inv, ss, M, P, K, eps);
    for (int e = threadIdx.x; e < HT * 16 * NTOK; e += NTHREADS) {
        int n = e / (HT * 16), rr = e % (HT * 16), f = f0 + rr;
        if (n < M && f < F) {
            const float s = NORM ? inv[n] : 1.0f;
            h[(size_t)n * F + f] = from_f(silu_mul(block_val(red, rr >> 4, n, rr & 15) * s,
                                                   block_val(red, HT + (rr >> 4), n, rr & 15) * s));
        }
    }
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_silu(T* __restrict__ h, const T* __restrict__ xn, const T* __restrict__ w13, int M, int F, int K) {
    silu_body<false>(h, xn, w13, M, F, K, nullptr, 0, 0.0f);
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_silu_ss(T* __restrict__ h, const T* __restrict__ xn, const T* __restrict__ w13, const float* __restrict__ ss,
             int M, int F, int K, int P, float eps) {
    silu_body<true>(h, xn, w13, M, F, K, ss, P, eps);
}

// qkv = xn [M, D] @ wqkv[D + 2*kvd, D].T, RoPE at positions pos[0] + m, q -> q [M, D], k/v -> caches [S, kvd].
// NORM (gemm_qkv_rope_ss): xn = T(x) un-normed, sums scaled by norm_inv's inv[n].
template <bool NORM>
__device__ __forceinline__ void qkv_body(T* __restrict__ q, const T* __restrict__ xn, const T* __restrict__ wqkv,
                                         const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
                                         const int* __restrict__ pos, const int* __restrict__ n_tokens,
                                         int M, int D, int kvd, int hd, int S, const float* __restrict__ ss, int P,
                                         float eps) {
    __shared__ Red red;
    const int NQ = D + 2 * kvd, row0 = blockIdx.x * 16 * TILES;
    extern __shared__ float inv[];  // NORM: [M], dynamic
    warp_gemm(red, xn, plain_tiles(wqkv, row0, NQ), M, D);
    if constexpr (NORM) norm_inv(inv, ss, M, P, D, eps);
    const int p0 = pos[0], ntok = n_tokens[0];
    for (int e = threadIdx.x; e < TILES * 8 * NTOK; e += NTHREADS) {  // one (even row, odd row) pair each
        int n = e / (TILES * 8), rr = 2 * (e % (TILES * 8)), o = row0 + rr;
        if (n < M && o < NQ) {
            const float sc = NORM ? inv[n] : 1.0f;
            qkv_store(q, kc, vc, rope_cs, block_val(red, rr >> 4, n, rr & 15) * sc,
                      block_val(red, rr >> 4, n, (rr & 15) + 1) * sc, o, n, p0, ntok, D, kvd, hd, S);
        }
    }
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_qkv_rope(T* __restrict__ q, const T* __restrict__ xn, const T* __restrict__ wqkv,
              const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
              const int* __restrict__ pos, const int* __restrict__ n_tokens,
              int M, int D, int kvd, int hd, int S) {
    qkv_body<false>(q, xn, wqkv, rope_cs, kc, vc, pos, n_tokens, M, D, kvd, hd, S, nullptr, 0, 0.0f);
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_qkv_rope_ss(T* __restrict__ q, const T* __restrict__ xn, const T* __restrict__ wqkv,
                 const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
                 const int* __restrict__ pos, const int* __restrict__ n_tokens, const float* __restrict__ ss,
                 int M, int D, int kvd, int hd, int S, int P, float eps) {
    qkv_body<true>(q, xn, wqkv, rope_cs, kc, vc, pos, n_tokens, M, D, kvd, hd, S, ss, P, eps);
}
