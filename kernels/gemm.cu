// Prefill GEMM (M = 2..64 tokens) on tensor cores, "swap AB" form, with the fused epilogues of DESIGN.md,
// plus the stand-alone epilogues that follow a cuBLAS GEMM for larger M.
//
// Swap AB: the weight rows are the MMA's M dimension (16 rows per warp tile) and the tokens its N dimension
// (NT tiles of 8), so each warp streams W[16 rows, K] straight from global memory into mma.sync m16n8k16
// fragments. The K order inside a 64-column chunk is permuted (same permutation for W and X, so the dot
// product is unchanged) so that each thread's A/B fragments come from two 16-byte loads per row:
// thread (g = lane/4, t = lane%4) loads columns [t*8, t*8+8) and [32+t*8, 32+t*8+8) of row g and g+8;
// its 8 32-bit words w0..w7 feed k-step s as (w[2s], w[2s+1]).
// Block: WM row tiles x WK warps along K (chunks interleaved); partial sums are reduced through shared
// memory, then the whole block applies the epilogue in fp32 and rounds once.
//
// Compile-time: NT (token tiles of 8, M <= 8*NT), WM, WK, STAGES. Storage dtype T from common.cuh (CG_BF16).
#include "common.cuh"

#ifndef NT
#define NT 2
#endif
#ifndef WM
#define WM 2
#endif
#ifndef WK
#define WK 4
#endif
#ifndef STAGES
#define STAGES 2  // chunks of operands in registers: 1 being multiplied, STAGES-1 loads in flight
#endif
#define NTOK (NT * 8)
#define NTHREADS (WM * WK * 32)
#include "gemm_common.cuh"


// Weights are read once: stream them past L1 so that L1 keeps the activations every warp re-reads.
__device__ __forceinline__ uint4 ld_stream(const T* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// One chunk of operands held by a thread: rows g and g+8 of the warp's W tile, token g of each token tile.
struct Chunk {
    uint4 w[2][2];
    uint4 x[NT][2];
};

__device__ __forceinline__ void load_chunk(Chunk& c, const T* w0, const T* w1, bool r0, bool r1,
                                           const T* x, int K, int M, int g, int col, int kt) {
    const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        int cc = col + 32 * h;
        bool ok = cc + kt < K;  // K % 8 == 0, so a 16-byte piece is all in or all out
        c.w[0][h] = (r0 && ok) ? ld_stream(w0 + cc) : z;
        c.w[1][h] = (r1 && ok) ? ld_stream(w1 + cc) : z;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            int n = j * 8 + g;
            c.x[j][h] = (ok && n < M) ? __ldg(reinterpret_cast<const uint4*>(x + (size_t)n * K + cc)) : z;
        }
    }
}

__device__ __forceinline__ void mma_chunk(float (&acc)[NT][4], const Chunk& c) {
#pragma unroll
    for (int s = 0; s < 4; ++s) {
        unsigned a[4] = {word(c.w[0][0], c.w[0][1], 2 * s), word(c.w[1][0], c.w[1][1], 2 * s),
                         word(c.w[0][0], c.w[0][1], 2 * s + 1), word(c.w[1][0], c.w[1][1], 2 * s + 1)};
#pragma unroll
        for (int j = 0; j < NT; ++j)
            mma16816(acc[j], a, word(c.x[j][0], c.x[j][1], 2 * s), word(c.x[j][0], c.x[j][1], 2 * s + 1));
    }
}

// Main loop of one warp: rows [row0, row0+16) of W (rows >= nrows read as zero), all M tokens of x [M, K],
// chunks kk, kk+WK, ... of 64 columns. Adds its partial sums into red (all threads must call this).
__device__ __forceinline__ void warp_gemm(Red& red, const T* __restrict__ x, const T* __restrict__ w,
                                          int row0, int nrows, int M, int K) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = warp % WM, kk = warp / WM, g = lane >> 2, t = lane & 3;
    const bool r0 = row0 + g < nrows, r1 = row0 + g + 8 < nrows;
    const T* w0 = w + (size_t)(row0 + g) * K + t * 8;
    const T* w1 = w0 + (size_t)8 * K;
    const T* xt = x + t * 8;
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    Chunk c[STAGES];  // c[0] is multiplied while c[1..] are in flight
    int col = kk * 64;
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) load_chunk(c[st], w0, w1, r0, r1, xt, K, M, g, col + st * 64 * WK, t * 8);
    for (; col < K; col += 64 * WK) {
        load_chunk(c[STAGES - 1], w0, w1, r0, r1, xt, K, M, g, col + (STAGES - 1) * 64 * WK, t * 8);
        mma_chunk(acc, c[0]);
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) c[st] = c[st + 1];
    }
    for (int turn = 0; turn < WK; ++turn) {
        if (turn == kk) {
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                float* v0 = &red.v[tile][j * 8 + 2 * t][0];
                float* v1 = v0 + 16;
                if (turn == 0) {
                    v0[g] = acc[j][0]; v1[g] = acc[j][1]; v0[g + 8] = acc[j][2]; v1[g + 8] = acc[j][3];
                } else {
                    v0[g] += acc[j][0]; v1[g] += acc[j][1]; v0[g + 8] += acc[j][2]; v1[g + 8] += acc[j][3];
                }
            }
        }
        __syncthreads();
    }
}

// x f32 [M, N] += a [M, K] @ w[N, K].T
extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_residual(float* __restrict__ x, const T* __restrict__ a, const T* __restrict__ w, int M, int N, int K) {
    __shared__ Red red;
    const int row0 = blockIdx.x * 16 * WM;
    warp_gemm(red, a, w, row0 + 16 * ((threadIdx.x >> 5) % WM), N, M, K);
    for (int e = threadIdx.x; e < WM * 16 * NTOK; e += NTHREADS) {
        int n = e / (WM * 16), rr = e % (WM * 16), o = row0 + rr;
        if (n < M && o < N) x[(size_t)n * N + o] += block_val(red, rr >> 4, n, rr & 15);
    }
}

// h [M, F] = silu(xn @ w1.T) * (xn @ w3.T), w13 = [w1; w3] [2F, K]. Tiles 0..WM/2-1 hold w1 rows, the rest the
// matching w3 rows.
extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_silu(T* __restrict__ h, const T* __restrict__ xn, const T* __restrict__ w13, int M, int F, int K) {
    __shared__ Red red;
    constexpr int HT = WM >= 2 ? WM / 2 : 1;  // WM must be even (checked by the launcher); 1 keeps WM = 1 builds valid
    const int f0 = blockIdx.x * 16 * HT, tile = (threadIdx.x >> 5) % WM;
    const int fr = f0 + 16 * (tile % HT);
    // a w1 tile past F must not read w3 rows: clamp its row count to F (w3 tiles end at 2F anyway)
    warp_gemm(red, xn, w13 + (tile >= HT ? (size_t)F * K : 0), fr, F, M, K);
    for (int e = threadIdx.x; e < HT * 16 * NTOK; e += NTHREADS) {
        int n = e / (HT * 16), rr = e % (HT * 16), f = f0 + rr;
        if (n < M && f < F)
            h[(size_t)n * F + f] = from_f(silu_mul(block_val(red, rr >> 4, n, rr & 15),
                                                   block_val(red, HT + (rr >> 4), n, rr & 15)));
    }
}

// qkv = xn [M, D] @ wqkv[D + 2*kvd, D].T, RoPE at positions pos[0] + m, q -> q [M, D], k/v -> caches [S, kvd].
extern "C" __global__ void __launch_bounds__(NTHREADS)
gemm_qkv_rope(T* __restrict__ q, const T* __restrict__ xn, const T* __restrict__ wqkv,
              const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
              const int* __restrict__ pos, const int* __restrict__ n_tokens,
              int M, int D, int kvd, int hd, int S) {
    __shared__ Red red;
    const int NQ = D + 2 * kvd, row0 = blockIdx.x * 16 * WM;
    warp_gemm(red, xn, wqkv, row0 + 16 * ((threadIdx.x >> 5) % WM), NQ, M, D);
    const int p0 = pos[0], ntok = n_tokens[0];
    for (int e = threadIdx.x; e < WM * 8 * NTOK; e += NTHREADS) {  // one (even row, odd row) pair each
        int n = e / (WM * 8), rr = 2 * (e % (WM * 8)), o = row0 + rr;
        if (n < M && o < NQ)
            qkv_store(q, kc, vc, rope_cs, block_val(red, rr >> 4, n, rr & 15),
                      block_val(red, rr >> 4, n, (rr & 15) + 1), o, n, p0, ntok, D, kvd, hd, S);
    }
}

// ---- stand-alone epilogues after a cuBLAS GEMM (large M) ------------------------------------------------
// Grid (column groups of 8, M rows): one thread per 8 columns of one row, 16-byte loads/stores when `vec`
// (host-checked: widths % 8 == 0), else a scalar loop. No 64-bit division: row from blockIdx.y.

// h [M, F] = silu(g[:, :F]) * g[:, F:], g [M, 2F]
extern "C" __global__ void silu_mul_rows(T* __restrict__ h, const T* __restrict__ g, int F, int vec) {
    const int n = blockIdx.y, f = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (f >= F) return;
    const T* gr = g + (size_t)n * 2 * F;
    T* hr = h + (size_t)n * F;
    if (vec) {
        Pack8 a, b, o;
        a.u = *reinterpret_cast<const uint4*>(gr + f);
        b.u = *reinterpret_cast<const uint4*>(gr + F + f);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float2 x = to_f2(a.h[i]), y = to_f2(b.h[i]);
            o.h[i].x = from_f(silu_mul(x.x, y.x));
            o.h[i].y = from_f(silu_mul(x.y, y.y));
        }
        *reinterpret_cast<uint4*>(hr + f) = o.u;
        return;
    }
    for (int i = f; i < f + 8 && i < F; ++i) hr[i] = from_f(silu_mul(to_f(gr[i]), to_f(gr[F + i])));
}

// qkv [M, D + 2*kvd] -> q (roped), k (roped) and v into the caches; 8 columns (4 rope pairs) per thread.
extern "C" __global__ void qkv_rope_rows(T* __restrict__ q, const T* __restrict__ qkv,
                                         const float* __restrict__ rope_cs, T* __restrict__ kc,
                                         T* __restrict__ vc, const int* __restrict__ pos,
                                         const int* __restrict__ n_tokens, int D, int kvd, int hd, int S, int vec) {
    const int NQ = D + 2 * kvd, n = blockIdx.y, o0 = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (o0 >= NQ) return;
    const T* row = qkv + (size_t)n * NQ;
    Pack8 in, out;
    if (vec) in.u = *reinterpret_cast<const uint4*>(row + o0);  // issued before pos[0]/n_tokens[0] are known
    const int p0 = pos[0], ntok = n_tokens[0];
    if (!vec) {
        for (int o = o0; o < o0 + 8 && o < NQ; o += 2)
            qkv_store(q, kc, vc, rope_cs, to_f(row[o]), to_f(row[o + 1]), o, n, p0, ntok, D, kvd, hd, S);
        return;
    }
    // vec: D, kvd, hd all % 8 == 0, so the 8 columns lie in one head of one of q/k/v
    int p = p0 + n;
    T* dst;
    int o = o0;
    if (o < D) {
        p = p < S ? p : S - 1;
        dst = q + (size_t)n * D + o;
    } else {
        if (n >= ntok || p >= S) return;  // padded rows never touch the cache
        o -= D;
        dst = (o < kvd ? kc : vc) + (size_t)p * kvd + (o < kvd ? o : o - kvd);
    }
    if (o0 >= D + kvd) {  // v: copy as is
        *reinterpret_cast<uint4*>(dst) = in.u;
        return;
    }
    const float4* cs = reinterpret_cast<const float4*>(rope_cs + ((size_t)p * (hd / 2) + (o % hd) / 2) * 2);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float4 c = cs[i];  // (cos, sin) of pairs 2i and 2i+1
        float2 x = to_f2(in.h[2 * i]), y = to_f2(in.h[2 * i + 1]);
        out.h[2 * i].x = from_f(x.x * c.x - x.y * c.y);
        out.h[2 * i].y = from_f(x.x * c.y + x.y * c.x);
        out.h[2 * i + 1].x = from_f(y.x * c.z - y.y * c.w);
        out.h[2 * i + 1].y = from_f(y.x * c.w + y.y * c.z);
    }
    *reinterpret_cast<uint4*>(dst) = out.u;
}
