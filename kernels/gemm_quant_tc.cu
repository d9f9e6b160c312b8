// Tiled tensor-core GEMM over a packed quantized weight (layouts of cugraphllm/quant/formats.py, QFMT as in
// quant_widen.cuh): C[m, n] = sum_k A[m, k] * W[n, k], A T [M, K] activations (row-major), W [N, K] packed.
// Block tile BM (tokens) x BN (weight rows) x BK = 64 columns, WARPS_M x WARPS_N warps, each a (BM / WARPS_M) x
// (BN / WARPS_N) warp tile of mma.sync m16n8k16 with fp32 accumulators. Per k-tile:
//   cp.async (STAGES-deep ring): A tile and the PACKED W tile (int4 BN x 32 bytes, 8-bit BN x 64 bytes) -> smem;
//   dequantize: every thread widens 8-column pieces of the packed tile (int4 with its group's scale / zero point,
//   loaded into registers one tile ahead) into a 16-bit W tile in smem (never a 16-bit copy of the whole weight);
//   ldmatrix A and W fragments, mma.
// Smem rows of 64 T (128 bytes, 8 chunks of 16 bytes) are stored with chunk c at c ^ (row & 7), so the 8 rows
// of an ldmatrix 8x8 matrix hit 8 different bank groups.
// PIPE 2 double-buffers the 16-bit W tile: tile it + 1 is widened while tile it is multiplied, one barrier per
// k-tile (its packed tile must land one k-tile earlier: STAGES >= 3).
// Split-K: blockIdx.z takes k-tiles [z * kper, (z + 1) * kper). Output modes (C scaled by row_scale(n)):
//   0: f32 partial out[z][m][n] = C (reduced by qtc_reduce); 1: T out[m][n] = C; 2: f32 out[m][n] += C.
//   pairs (out 8-byte aligned): columns n, n + 1 stored as one T2 / float2 where N is even.
//   (store_one / store_two / epilogue: gemm_quant_tc_epilogue.cuh)
// Needs (launcher checks): K % 32 == 0 (int4) or K % 16 == 0 (8-bit), K % 8 == 0 for A, 16-byte aligned A / W.
#include "common.cuh"
#include "quant_widen.cuh"
#define WM 1    // gemm_common.cuh's reduction buffer (unused here); its epilogue math is what we need
#define NTOK 8
#include "gemm_common.cuh"

#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef WARPS_M
#define WARPS_M 2
#endif
#ifndef WARPS_N
#define WARPS_N 4
#endif
#ifndef STAGES
#define STAGES 3
#endif
#ifndef PIPE
#define PIPE 1  // 1: one 16-bit W tile, two barriers a k-tile; 2: two W tiles, one barrier (see qgemm_tc)
#endif
#define BK 64
#define NTH (32 * WARPS_M * WARPS_N)
#define WTM (BM / WARPS_M)  // warp tile rows (tokens)
#define WTN (BN / WARPS_N)  // warp tile columns (weight rows)
#define MT (WTM / 16)
#define NT8 (WTN / 8)
#if QFMT == 2
#define BQ_ROW 32  // packed bytes of one weight row per k-tile
#else
#define BQ_ROW 64
#endif
#define A_STAGE (BM * BK)          // T elements
#define BQ_STAGE (BN * BQ_ROW)     // bytes
#define PIECES (BN * BK / 8 / NTH) // 8-column pieces each thread widens per k-tile

static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile: 16-row m tiles, pairs of 8-row n tiles");
static_assert((BN * BK / 8) % NTH == 0 && (BN * BQ_ROW / 16) % NTH == 0, "even W loads");
static_assert(STAGES >= 2 + (PIPE == 2), "a ring of at least two stages (three with PIPE 2)");

__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; src_bytes 0 writes zeros (rows / columns outside the matrix).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool ok) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}

// Offset (in T elements) of column chunk ch (8 T each) of row r in a swizzled 64-column tile.
__device__ __forceinline__ int swz(int r, int ch) { return r * BK + ((ch ^ (r & 7)) << 3); }

// Issue the cp.async of k-tile kt: A rows m0.., W rows n0.. (packed).
__device__ __forceinline__ void load_stage(T* As, unsigned char* Bq, const T* __restrict__ A,
                                           const unsigned char* __restrict__ Q, int m0, int n0, int kt,
                                           int M, int N, int K) {
    const int k0 = kt * BK;
#pragma unroll
    for (int i = 0; i < (BM * 8 + NTH - 1) / NTH; ++i) {
        const int c = threadIdx.x + i * NTH, r = c >> 3, ch = c & 7, m = m0 + r, k = k0 + ch * 8;
        if ((BM * 8) % NTH != 0 && c >= BM * 8) break;  // small BM: fewer A chunks than threads
        const bool ok = m < M && k < K;
        cp_async16(As + swz(r, ch), ok ? A + (size_t)m * K + k : A, ok);
    }
    constexpr int CPR = BQ_ROW / 16;  // 16-byte chunks per packed row
#pragma unroll
    for (int i = 0; i < BN * CPR / NTH; ++i) {
        const int c = threadIdx.x + i * NTH, r = c / CPR, ch = c % CPR, n = n0 + r;
#if QFMT == 2
        const int k = k0 + ch * 32;  // a chunk holds 4 words = 32 columns
        const size_t off = (size_t)n * (K / 2) + k / 2;
#else
        const int k = k0 + ch * 16;
        const size_t off = (size_t)n * K + k;
#endif
        const bool ok = n < N && k < K;
        cp_async16(Bq + r * BQ_ROW + ch * 16, ok ? Q + off : Q, ok);
    }
}

#if QFMT == 2
// fp16 bits of (scale, zero point) of the pieces this thread widens in k-tile kt (0 outside the matrix).
__device__ __forceinline__ void load_sz(unsigned (&sz)[PIECES], const unsigned short* __restrict__ s,
                                        const unsigned short* __restrict__ z, int n0, int kt, int N, int K,
                                        int gs) {
    const int G = K / gs;
#pragma unroll
    for (int i = 0; i < PIECES; ++i) {
        const int p = threadIdx.x + i * NTH, n = n0 + (p >> 3), k = kt * BK + (p & 7) * 8;
        sz[i] = 0u;
        if (n < N && k < K) {
            const size_t o = (size_t)n * G + k / gs;
            sz[i] = (unsigned)__ldg(s + o) | ((unsigned)__ldg(z + o) << 16);
        }
    }
}
#endif

// Widen the packed tile Bq into the 16-bit swizzled tile Bs (pieces outside the matrix -> 0).
__device__ __forceinline__ void dequant_stage(T* Bs, const unsigned char* Bq, const unsigned (&sz)[PIECES],
                                              int n0, int kt, int N, int K) {
#pragma unroll
    for (int i = 0; i < PIECES; ++i) {
        const int p = threadIdx.x + i * NTH, r = p >> 3, kp = p & 7;
        const bool ok = n0 + r < N && kt * BK + kp * 8 < K;
        RawW v;
#if QFMT == 2
        v.q = *reinterpret_cast<const unsigned*>(Bq + r * BQ_ROW + kp * 4);
        v.s = (unsigned short)(sz[i] & 0xffffu);
        v.z = (unsigned short)(sz[i] >> 16);
#else
        v = *reinterpret_cast<const uint2*>(Bq + r * BQ_ROW + kp * 8);
#endif
        *reinterpret_cast<uint4*>(Bs + swz(r, kp)) = ok ? widen(v) : make_uint4(0u, 0u, 0u, 0u);
    }
}

// The 4 k-steps of one tile for this warp: acc[i][j] (m tile i, n tile j) += A tile x W tile.
__device__ __forceinline__ void mma_stage(float (&acc)[MT][NT8][4], const T* As, const T* Bs, int wm, int wn) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
        unsigned a[MT][4], b[NT8][2];
#pragma unroll
        for (int i = 0; i < MT; ++i) {  // lanes 0-15: rows 0-15 at k 0-7; lanes 16-31: the same rows at k 8-15
            const int r = wm * WTM + i * 16 + (lane & 15);
            ldmatrix_x4(a[i], As + swz(r, ks * 2 + (lane >> 4)));
        }
#pragma unroll
        for (int j = 0; j < NT8; j += 2) {  // matrices: (n 0-7, k 0-7) (n 0-7, k 8-15) (n 8-15, k 0-7) (n 8-15, k 8-15)
            const int mat = lane >> 3, r = wn * WTN + j * 8 + (mat >> 1) * 8 + (lane & 7);
            unsigned t[4];
            ldmatrix_x4(t, Bs + swz(r, ks * 2 + (mat & 1)));
            b[j][0] = t[0];
            b[j][1] = t[1];
            b[j + 1][0] = t[2];
            b[j + 1][1] = t[3];
        }
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int j = 0; j < NT8; ++j) mma16816(acc[i][j], a[i], b[j][0], b[j][1]);
    }
}

#include "gemm_quant_tc_epilogue.cuh"

// grid (ceil(N / BN), ceil(M / BM), splits), NTH threads, dynamic smem (gemm_quant_tc.smem_bytes):
// STAGES * (BM * BK * sizeof(T) + BN * BQ_ROW) + PIPE * BN * BK * sizeof(T).
extern "C" __global__ void __launch_bounds__(NTH)
qgemm_tc(void* __restrict__ out, const T* __restrict__ A, const unsigned char* __restrict__ Q,
         const float* __restrict__ rs, const unsigned short* __restrict__ s, const unsigned short* __restrict__ z,
         int M, int N, int K, int gs, int kper, int mode, int pairs) {
    extern __shared__ uint4 smem_raw[];
    T* As = reinterpret_cast<T*>(smem_raw);
    unsigned char* Bq = reinterpret_cast<unsigned char*>(As + STAGES * A_STAGE);
    T* Bs = reinterpret_cast<T*>(Bq + STAGES * BQ_STAGE);
    const int n0 = blockIdx.x * BN, m0 = blockIdx.y * BM, warp = threadIdx.x >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int KT = (K + BK - 1) / BK, kt0 = blockIdx.z * kper, nk = max(0, min(KT, kt0 + kper) - kt0);
    float acc[MT][NT8][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT8; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
    unsigned sz[PIECES];
#pragma unroll
    for (int i = 0; i < PIECES; ++i) sz[i] = 0u;
#if QFMT == 2
    if (nk > 0) load_sz(sz, s, z, n0, kt0, N, K, gs);
#endif
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        if (st < nk) load_stage(As + st * A_STAGE, Bq + st * BQ_STAGE, A, Q, m0, n0, kt0 + st, M, N, K);
        cp_async_commit();  // empty groups keep the wait count uniform
    }
#if PIPE == 2
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile 0 landed
    if (nk > 0) {
        dequant_stage(Bs, Bq, sz, n0, kt0, N, K);
#if QFMT == 2
        if (nk > 1) load_sz(sz, s, z, n0, kt0 + 1, N, K, gs);
#endif
    }
    for (int it = 0; it < nk; ++it) {
        cp_async_wait<STAGES - 3>();
        __syncthreads();  // W tile it widened; tile it + 1 landed; everyone is done with mma(it - 1)
        if (it + 1 < nk) {  // widen tile it + 1 into the other W tile (last read by mma(it - 1))
            dequant_stage(Bs + ((it + 1) & 1) * BN * BK, Bq + ((it + 1) % STAGES) * BQ_STAGE, sz, n0, kt0 + it + 1,
                          N, K);
#if QFMT == 2
            if (it + 2 < nk) load_sz(sz, s, z, n0, kt0 + it + 2, N, K, gs);
#endif
        }
        const int nx = it + STAGES - 1;  // into stage (it - 1) % STAGES: A read by mma(it - 1), W by dequant(it - 1)
        if (nx < nk)
            load_stage(As + (nx % STAGES) * A_STAGE, Bq + (nx % STAGES) * BQ_STAGE, A, Q, m0, n0, kt0 + nx, M, N, K);
        cp_async_commit();
        mma_stage(acc, As + (it % STAGES) * A_STAGE, Bs + (it & 1) * BN * BK, wm, wn);
    }
#else
    for (int it = 0; it < nk; ++it) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // tile it landed for every thread; everyone is done with tile it - 1 and with Bs
        const int st = it % STAGES;
        dequant_stage(Bs, Bq + st * BQ_STAGE, sz, n0, kt0 + it, N, K);
#if QFMT == 2
        if (it + 1 < nk) load_sz(sz, s, z, n0, kt0 + it + 1, N, K, gs);  // in flight during the mma below
#endif
        const int nx = it + STAGES - 1;
        if (nx < nk)
            load_stage(As + (nx % STAGES) * A_STAGE, Bq + (nx % STAGES) * BQ_STAGE, A, Q, m0, n0, kt0 + nx, M, N, K);
        cp_async_commit();
        __syncthreads();  // Bs complete
        mma_stage(acc, As + st * A_STAGE, Bs, wm, wn);
    }
#endif
    cp_async_wait<0>();
    epilogue(out, mode, acc, rs, m0, n0, wm, wn, M, N, pairs);
}

// Sum of the split-K partials ws f32 [splits, M, N] in a fixed order, over count outputs: mode 1 T out = sum,
// mode 2 f32 out += sum (count = M * N); mode 3 T out [M, F] = silu(sum[:, f]) * sum[:, F + f] (N = 2F,
// count = M * F).
extern "C" __global__ void qtc_reduce(void* __restrict__ out, const float* __restrict__ ws, int splits, int count,
                                      int mode, int F) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    if (mode == 3) {
        const int m = i / F, f = i - m * F;
        const size_t o = (size_t)m * 2 * F + f, stride = (size_t)2 * count;
        float a = 0.f, b = 0.f;
        for (int z = 0; z < splits; ++z) {
            a += ws[z * stride + o];
            b += ws[z * stride + o + F];
        }
        reinterpret_cast<T*>(out)[i] = from_f(silu_mul(a, b));
        return;
    }
    float v = 0.f;
    for (int z = 0; z < splits; ++z) v += ws[(size_t)z * count + i];
    if (mode == 1) {
        reinterpret_cast<T*>(out)[i] = from_f(v);
    } else {
        reinterpret_cast<float*>(out)[i] += v;
    }
}

// The qkv epilogue from the split-K partials ws f32 [splits, M, NQ], NQ = D + 2 * kvd: one (o, o + 1) pair per
// thread, RoPE and the q / k cache / v cache stores of gemm.cu's qkv_rope_rows (qkv_store). grid ceil(M*NQ/2 / 256).
extern "C" __global__ void qtc_reduce_qkv(T* __restrict__ q, const float* __restrict__ ws,
                                          const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
                                          const int* __restrict__ pos, const int* __restrict__ n_tokens, int splits,
                                          int M, int D, int kvd, int hd, int S) {
    const int NQ = D + 2 * kvd, half = NQ / 2, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M * half) return;
    const int n = i / half, o = 2 * (i - n * half);
    const size_t stride = (size_t)M * NQ, off = (size_t)n * NQ + o;
    float x0 = 0.f, x1 = 0.f;
    for (int z = 0; z < splits; ++z) {
        x0 += ws[z * stride + off];
        x1 += ws[z * stride + off + 1];
    }
    qkv_store(q, kc, vc, rope_cs, x0, x1, o, n, pos[0], n_tokens[0], D, kvd, hd, S);
}
