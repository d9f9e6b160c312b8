// Prefill GEMM (M = 2..64 tokens) on tensor cores, "swap AB" form, with the fused epilogues of DESIGN.md,
// plus the stand-alone epilogues that follow a cuBLAS GEMM for larger M.
//
// Swap AB: the weight rows are the MMA's M dimension (16 rows per row tile) and the tokens its N dimension
// (NT tiles of 8), so each warp streams W[16 * RT rows, K] straight from global memory into mma.sync m16n8k16
// fragments. The K order inside a 64-column chunk is permuted (same permutation for W and X, so the dot
// product is unchanged) so that each thread's A/B fragments come from two 16-byte loads per row:
// thread (g = lane/4, t = lane%4) loads columns [t*8, t*8+8) and [32+t*8, 32+t*8+8) of row g and g+8;
// its 8 32-bit words w0..w7 feed k-step s as (w[2s], w[2s+1]).
// Block: WM warps x RT row tiles each (TILES = WM * RT tiles of 16 rows) x WK warps along K (chunks
// interleaved); partial sums are reduced through shared memory, then the whole block applies the epilogue in
// fp32 and rounds once. A warp's RT tiles share its x fragments: at M = 16 (NT = 2) a 64-column chunk costs
// 4 * RT weight loads and 4 x loads per thread, so RT = 2 halves the x loads per weight byte.
// x comes through L1 into registers (XS = 0, one chunk per pipeline stage), or (XS = 1) the WM warps that
// share a K chunk copy it once into a shared-memory ring of STAGES chunks (cp.async, zero-filled past M and K;
// 16-byte units XOR-swizzled by token so the fragment reads are conflict-free) and read it from there after
// one barrier per chunk among themselves (named barrier 1 + kk, hence WK <= 15 when WM > 1).
// W comes straight into registers (WS = 0: each load instruction reads 8 rows x 64 bytes, half lines), or
// (WS = 1) each warp copies its chunks into its own ring with cp.async, 4 whole 128-byte row segments per
// instruction, and reads the fragments back (same swizzle); the rings cost no registers per stage in flight.
// XS and WS share one cp.async pipeline of STAGES chunks; all of it is in static shared memory (<= 48 KiB).
//
// Compile-time: NT (token tiles of 8, M <= 8*NT), WM, WK, STAGES, RT, XS, PF, WS (defaults below, the
// launcher's gemm.OWN_CONFIG). Storage dtype T from common.cuh (CG_BF16).
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
#ifndef RT
#define RT 1      // row tiles of 16 per warp
#endif
#ifndef XS
#define XS 0      // 1: x chunks staged in shared memory (cp.async ring of STAGES chunks per K group)
#endif
#ifndef PF
#define PF 0      // L2 prefetch size hint of the weight loads: 0 none, 1 128 bytes, 2 256 bytes
#endif
#ifndef WS
#define WS 0      // 1: W chunks through a per-warp shared-memory ring (cp.async, whole 128-byte row segments)
#endif
#ifndef PR
#define PR 0      // 1: all WK partial sums stored at once (one barrier), added by the epilogue in the same order
#endif
#define NTOK (NT * 8)
#define NTHREADS (WM * WK * 32)
#define TILES (WM * RT)
#define RED_TILES TILES
#define RED_K (PR ? WK : 1)
#include "gemm_common.cuh"
#if PF == 2
#define PF_OP ".L2::256B"
#elif PF == 1
#define PF_OP ".L2::128B"
#else
#define PF_OP ""
#endif

#if XS || WS
static_assert(STAGES >= 2, "XS / WS need STAGES >= 2 (one chunk in flight)");
#endif
#if XS
static_assert(WM == 1 || WK <= 15, "XS with WM > 1 uses named barriers 1..WK");
#endif
static_assert((XS ? STAGES * WK * NTOK * 128 : 0) + (WS ? WM * WK * STAGES * RT * 2048 : 0)
              + RED_K * TILES * NTOK * 64 <= 48 * 1024, "XS / WS rings + Red over 48 KiB static smem");


// Weights are read once: stream them past L1 so that L1 keeps the activations every warp re-reads. A load
// brings 64 of a row's 128 bytes per chunk (the other half comes with the next load, the rest of the row with
// the other K warps' chunks): PF 1 / 2 ask L2 to fetch the whole 128 / 256-byte span from DRAM at once.
__device__ __forceinline__ uint4 ld_stream(const T* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate" PF_OP ".v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// The RT row tiles of one warp: tile i covers rows [row0[i], row0[i] + 16) of w[i] (rows >= nrows[i] read as 0).
struct TileRows {
    const T* w[RT];
    int row0[RT];
    int nrows[RT];
};

// A thread's operands of one chunk: W rows g and g+8 of each of the warp's tiles, halves h = 0, 1 (columns
// t*8 + 32h); x token g of each token tile.
struct WFrag {
    uint4 w[RT][2][2];
};
struct XFrag {
    uint4 x[NT][2];
};
// What a pipeline stage holds in registers: the operands that do not come through a shared-memory ring.
struct Chunk {
#if !WS
    WFrag w;
#endif
#if !XS
    XFrag x;
#endif
};

// Per-thread row pointers (row g / g+8 of each tile, column t*8) and their in-range flags.
struct RowPtrs {
    const T* p[RT][2];
    bool ok[RT][2];
};

__device__ __forceinline__ void load_chunk(Chunk& c, const RowPtrs& rp, const T* x, int K, int M, int g,
                                           int col, int kt) {
    const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        int cc = col + 32 * h;
        [[maybe_unused]] bool ok = cc + kt < K;  // K % 8 == 0, so a 16-byte piece is all in or all out
#if !WS
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            c.w.w[i][0][h] = (rp.ok[i][0] && ok) ? ld_stream(rp.p[i][0] + cc) : z;
            c.w.w[i][1][h] = (rp.ok[i][1] && ok) ? ld_stream(rp.p[i][1] + cc) : z;
        }
#endif
#if !XS
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            int n = j * 8 + g;
            c.x.x[j][h] = (ok && n < M) ? __ldg(reinterpret_cast<const uint4*>(x + (size_t)n * K + cc)) : z;
        }
#endif
    }
}

__device__ __forceinline__ void mma_regs(float (&acc)[RT][NT][4], const WFrag& w, const XFrag& x) {
#pragma unroll
    for (int s = 0; s < 4; ++s) {
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            unsigned a[4] = {word(w.w[i][0][0], w.w[i][0][1], 2 * s), word(w.w[i][1][0], w.w[i][1][1], 2 * s),
                             word(w.w[i][0][0], w.w[i][0][1], 2 * s + 1), word(w.w[i][1][0], w.w[i][1][1], 2 * s + 1)};
#pragma unroll
            for (int j = 0; j < NT; ++j)
                mma16816(acc[i][j], a, word(x.x[j][0], x.x[j][1], 2 * s), word(x.x[j][0], x.x[j][1], 2 * s + 1));
        }
    }
}

#include "gemm_rings.cuh"  // the XS / WS shared-memory rings (cp.async)

// Adds the warp's sums into red[tile * RT + i], K groups in the fixed order kk = 0, 1, ... (all threads call it);
// PR: stores them at red[kk * TILES + tile * RT + i] for block_val to add.
__device__ __forceinline__ void reduce_acc(Red& red, const float (&acc)[RT][NT][4], int tile, int kk, int g, int t) {
#if PR
#pragma unroll
    for (int i = 0; i < RT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            float* v0 = &red.v[kk * TILES + tile * RT + i][j * 8 + 2 * t][0];
            v0[g] = acc[i][j][0]; v0[16 + g] = acc[i][j][1]; v0[g + 8] = acc[i][j][2]; v0[16 + g + 8] = acc[i][j][3];
        }
    __syncthreads();
#else
    for (int turn = 0; turn < WK; ++turn) {
        if (turn == kk) {
#pragma unroll
            for (int i = 0; i < RT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    float* v0 = &red.v[tile * RT + i][j * 8 + 2 * t][0];
                    float* v1 = v0 + 16;
                    const float* a = acc[i][j];
                    if (turn == 0) {
                        v0[g] = a[0]; v1[g] = a[1]; v0[g + 8] = a[2]; v1[g + 8] = a[3];
                    } else {
                        v0[g] += a[0]; v1[g] += a[1]; v0[g + 8] += a[2]; v1[g + 8] += a[3];
                    }
                }
        }
        __syncthreads();
    }
#endif
}

// Main loop of one warp: its RT row tiles (tr), all M tokens of x [M, K], chunks kk, kk+WK, ... of 64 columns,
// STAGES of them in flight (registers, plus the XS / WS rings). Adds its partial sums into red.
__device__ __forceinline__ void warp_gemm(Red& red, const T* __restrict__ x, const TileRows& tr, int M, int K) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = warp % WM, kk = warp / WM, g = lane >> 2, t = lane & 3;
    RowPtrs rp;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        rp.p[i][0] = tr.w[i] + (size_t)(tr.row0[i] + g) * K + t * 8;
        rp.p[i][1] = rp.p[i][0] + (size_t)8 * K;
        rp.ok[i][0] = tr.row0[i] + g < tr.nrows[i];
        rp.ok[i][1] = tr.row0[i] + g + 8 < tr.nrows[i];
    }
    const T* xt = x + t * 8;
    float acc[RT][NT][4] = {};
    Chunk c[STAGES];  // c[0] is multiplied while c[1..] are in flight
    constexpr int STEP = 64 * WK;
    int col = kk * 64;
#if XS || WS
    __shared__ __align__(16) uint4 xs[XS ? WK : 1][XS ? STAGES : 1][NTOK * 8];
    __shared__ __align__(16) uint4 ws[WS ? WM * WK : 1][WS ? STAGES : 1][RT][128];
    const Rings rg = make_rings(xs[XS ? kk : 0], ws[WS ? warp : 0], x, tr, M, K, tile * 32 + lane, lane);
    int rb = 0;  // ring slot of the chunk being multiplied
#endif
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        load_chunk(c[st], rp, xt, K, M, g, col + st * STEP, t * 8);
#if XS || WS
        ring_fill(rg, st, col + st * STEP, K, lane);
#endif
    }
    for (; col < K; col += STEP) {
        load_chunk(c[STAGES - 1], rp, xt, K, M, g, col + (STAGES - 1) * STEP, t * 8);
#if XS || WS
        ring_wait(kk);  // chunk `col` is in slot rb; slot rb - 1 (read last round) may be refilled
        ring_fill(rg, rb == 0 ? STAGES - 1 : rb - 1, col + (STAGES - 1) * STEP, K, lane);
        WFrag wf;
        XFrag xf;
        ring_read(wf, xf, rg, rb, c[0], g, t);
        mma_regs(acc, wf, xf);
        rb = rb == STAGES - 1 ? 0 : rb + 1;
#else
        mma_regs(acc, c[0].w, c[0].x);
#endif
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) c[st] = c[st + 1];
    }
    reduce_acc(red, acc, tile, kk, g, t);
}

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
