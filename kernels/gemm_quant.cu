// Prefill (M > 1) kernels for quantized weights, layouts of cugraphllm/quant/formats.py (QFMT: 0 fp8 e4m3 with
// f32 row scales, 1 int8 with f32 row scales, 2 int4 with fp16 group scales and zeros):
// - qgemm_residual / qgemm_silu / qgemm_qkv_rope: gemm.cu's swap-AB mma.sync kernels (M <= 8 * NT tokens) with
//   the weight tile dequantized on load: each thread streams the packed bytes of its 8-column pieces (8 bytes
//   fp8/int8, one 32-bit word int4) and widens them to T fragment words just before the mma. fp8/int8 widen
//   exactly (an e4m3 byte is placed into fp16 bits, value * 2^-8; int8 is an exact T), their row scale (and the
//   2^8) is applied to the fp32 sums in the epilogue; int4 rounds scales * (q - zeros) to T once.
// - dequant_rows: rows [r0, r0 + R) of W into a T scratch, for cuBLAS at larger M.
// - prep_act: a'[m, j] = T(gain[j] * a[m, perm[j]]) (the packed column order; perm / gain optional).
// - quant_act_fp8: per token: amax -> scale = amax / 448, e4m3 codes of a' * (448 / amax) (cvt.rn.satfinite).
// - w8a8_*_rows: epilogues of the cuBLASLt fp8 GEMM, d f32 [M, N] * sa[m] * sw[n], then residual / SiLU*up / RoPE.
#include "common.cuh"
#include "quant_widen.cuh"
#include "fp8_codes.cuh"  // e4m3x2, fp8_inv / fp8_scale
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
#define STAGES 2
#endif
#define NTOK (NT * 8)
#define NTHREADS (WM * WK * 32)
#include "gemm_common.cuh"

// One weight row of this thread: packed bytes, row scale (fp8/int8) or group scales / zeros (int4).
struct WRow {
    const unsigned char* q;
    const unsigned short* s;
    const unsigned short* z;
};

__device__ __forceinline__ WRow wrow(const unsigned char* q, const unsigned short* s, const unsigned short* z,
                                     int row, int K, int G) {
#if QFMT == 2
    return WRow{q + (size_t)row * (K / 2), s + (size_t)row * G, z + (size_t)row * G};
#else
    return WRow{q + (size_t)row * K, s, z};
#endif
}

__device__ __forceinline__ RawW load_w(const WRow& r, bool ok, int cc, int gs) {
#if QFMT == 2
    RawW v{0u, 0, 0};
    if (ok) {
        v.q = ld_nc_u32(r.q + cc / 2);
        v.s = __ldg(r.s + cc / gs);
        v.z = __ldg(r.z + cc / gs);
    }
    return v;
#else
    return ok ? ld_nc_u64(r.q + cc) : make_uint2(0u, 0u);
#endif
}

struct QChunk {
    RawW w[2][2];
    uint4 x[NT][2];
};

__device__ __forceinline__ void qload_chunk(QChunk& c, const WRow& w0, const WRow& w1, bool r0, bool r1,
                                            const T* x, int K, int M, int gs, int g, int col) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int cc = col + 32 * h;
        const bool ok = cc < K;  // K % 8 == 0: a piece is all in or all out
        c.w[0][h] = load_w(w0, r0 && ok, cc, gs);
        c.w[1][h] = load_w(w1, r1 && ok, cc, gs);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            const int n = j * 8 + g;
            c.x[j][h] = (ok && n < M) ? __ldg(reinterpret_cast<const uint4*>(x + (size_t)n * K + cc)) : zero;
        }
    }
}

__device__ __forceinline__ unsigned comp(const uint4& v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// k-steps 2h, 2h + 1 read piece h only: widen one piece pair at a time (fewer live registers).
__device__ __forceinline__ void qmma_chunk(float (&acc)[NT][4], const QChunk& c) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const uint4 w0 = widen(c.w[0][h]), w1 = widen(c.w[1][h]);
#pragma unroll
        for (int s2 = 0; s2 < 2; ++s2) {
            unsigned a[4] = {comp(w0, 2 * s2), comp(w1, 2 * s2), comp(w0, 2 * s2 + 1), comp(w1, 2 * s2 + 1)};
#pragma unroll
            for (int j = 0; j < NT; ++j) mma16816(acc[j], a, comp(c.x[j][h], 2 * s2), comp(c.x[j][h], 2 * s2 + 1));
        }
    }
}

// gemm.cu's warp_gemm over a packed weight: rows [row0, row0 + 16) (rows >= nrows read as zero), chunks kk,
// kk + WK, ... of 64 columns (thread t: columns t*8 + [0, 8) and 32 + t*8 + [0, 8)); sums into red in fixed order.
__device__ __forceinline__ void qwarp_gemm(Red& red, const T* __restrict__ x, const unsigned char* __restrict__ q,
                                           const unsigned short* s, const unsigned short* z, int row0, int nrows,
                                           int M, int K, int gs) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = warp % WM, kk = warp / WM, g = lane >> 2, t = lane & 3;
    const int G = K / gs;
    const int ra = min(row0 + g, nrows - 1), rb = min(row0 + g + 8, nrows - 1);  // clamped: pointers stay inside
    const bool r0 = row0 + g < nrows, r1 = row0 + g + 8 < nrows;
    WRow w0 = wrow(q, s, z, ra, K, G), w1 = wrow(q, s, z, rb, K, G);
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    QChunk c[STAGES];  // c[0] is multiplied while c[1..] are in flight
    const int tk = t * 8;
    int col = kk * 64;  // warp-uniform loop bound (mma.sync needs the whole warp)
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st)
        qload_chunk(c[st], w0, w1, r0, r1, x, K, M, gs, g, col + st * 64 * WK + tk);
    for (; col < K; col += 64 * WK) {
        qload_chunk(c[STAGES - 1], w0, w1, r0, r1, x, K, M, gs, g, col + (STAGES - 1) * 64 * WK + tk);
        qmma_chunk(acc, c[0]);
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

// x f32 [M, N] += a [M, K] @ W[N, K].T
extern "C" __global__ void __launch_bounds__(NTHREADS)
qgemm_residual(float* __restrict__ x, const T* __restrict__ a, const unsigned char* __restrict__ q,
               const float* __restrict__ rs, const unsigned short* s, const unsigned short* z,
               int M, int N, int K, int gs) {
    __shared__ Red red;
    const int row0 = blockIdx.x * 16 * WM;
    qwarp_gemm(red, a, q, s, z, row0 + 16 * ((threadIdx.x >> 5) % WM), N, M, K, gs);
    for (int e = threadIdx.x; e < WM * 16 * NTOK; e += NTHREADS) {
        int n = e / (WM * 16), rr = e % (WM * 16), o = row0 + rr;
        if (n < M && o < N) x[(size_t)n * N + o] += block_val(red, rr >> 4, n, rr & 15) * row_scale(rs, o);
    }
}

// h [M, F] = silu(xn @ W1.T) * (xn @ W3.T), W13 = [W1; W3] [2F, K]; tiles 0..WM/2-1 hold W1 rows, the rest W3.
extern "C" __global__ void __launch_bounds__(NTHREADS)
qgemm_silu(T* __restrict__ h, const T* __restrict__ xn, const unsigned char* __restrict__ q,
           const float* __restrict__ rs, const unsigned short* s, const unsigned short* z,
           int M, int F, int K, int gs) {
    __shared__ Red red;
    constexpr int HT = WM >= 2 ? WM / 2 : 1;
    const int f0 = blockIdx.x * 16 * HT, tile = (threadIdx.x >> 5) % WM;
    const int fr = f0 + 16 * (tile % HT), up = tile >= HT ? F : 0;
    // W3 tiles address rows F + fr: shift the row index, keep the row count F for the mask (W1 never reads W3)
#if QFMT == 2
    const unsigned char* qb = q + (size_t)up * (K / 2);
    const unsigned short *sb = s + (size_t)up * (K / gs), *zb = z + (size_t)up * (K / gs);
#else
    const unsigned char* qb = q + (size_t)up * K;
    const unsigned short *sb = s, *zb = z;
#endif
    qwarp_gemm(red, xn, qb, sb, zb, fr, F, M, K, gs);
    for (int e = threadIdx.x; e < HT * 16 * NTOK; e += NTHREADS) {
        int n = e / (HT * 16), rr = e % (HT * 16), f = f0 + rr;
        if (n < M && f < F)
            h[(size_t)n * F + f] = from_f(silu_mul(block_val(red, rr >> 4, n, rr & 15) * row_scale(rs, f),
                                                   block_val(red, HT + (rr >> 4), n, rr & 15) * row_scale(rs, F + f)));
    }
}

// qkv = xn [M, D] @ Wqkv[D + 2*kvd, D].T, RoPE at positions pos[0] + m0 + m, q -> q [M, D], k/v -> caches
// [S, kvd]; q and xn point at row m0 of the step's arrays (the launcher splits M > 8 * NT into chunks).
extern "C" __global__ void __launch_bounds__(NTHREADS)
qgemm_qkv_rope(T* __restrict__ qo, const T* __restrict__ xn, const unsigned char* __restrict__ q,
               const float* __restrict__ rs, const unsigned short* s, const unsigned short* z,
               const float* __restrict__ rope_cs, T* __restrict__ kc, T* __restrict__ vc,
               const int* __restrict__ pos, const int* __restrict__ n_tokens,
               int M, int D, int kvd, int hd, int S, int gs, int m0) {
    __shared__ Red red;
    const int NQ = D + 2 * kvd, row0 = blockIdx.x * 16 * WM;
    qwarp_gemm(red, xn, q, s, z, row0 + 16 * ((threadIdx.x >> 5) % WM), NQ, M, D, gs);
    const int p0 = pos[0] + m0, ntok = n_tokens[0] - m0;  // a chunk of rows starting at row m0 of the step
    for (int e = threadIdx.x; e < WM * 8 * NTOK; e += NTHREADS) {
        int n = e / (WM * 8), rr = 2 * (e % (WM * 8)), o = row0 + rr;
        if (n < M && o < NQ)
            qkv_store(qo, kc, vc, rope_cs, block_val(red, rr >> 4, n, rr & 15) * row_scale(rs, o),
                      block_val(red, rr >> 4, n, (rr & 15) + 1) * row_scale(rs, o + 1), o, n, p0, ntok, D, kvd, hd, S);
    }
}

// ---- dequantize rows for cuBLAS ------------------------------------------------------------------------
// The word of int4 (row, column c) in the tile-contiguous layouts (gpu/quant_tiles.py; tiles 1: pair p = row / 2,
// r_h = 2 p + h; 2: p = row % (N / 2), h = row / (N / 2)): vector ((T n_it + it) 2 + h) 32 + 4 g + t, T = p / 8.
__device__ __forceinline__ size_t tiled_word(int row, int c, int K, int N, int tiles) {
    const int p = tiles == 1 ? row >> 1 : row % (N >> 1), h = tiles == 1 ? row & 1 : row / (N >> 1);
    const size_t v = ((size_t)((p >> 3) * (K >> 7) + (c >> 7)) * 2 + h) * 32 + 4 * (p & 7) + ((c >> 5) & 3);
    return 4 * v + ((c >> 3) & 3);
}

// out T [R, K] = W[r0 + r, :]; grid (ceil(K / 8 / blockDim), R), 8 columns per thread. vec (K % 8 == 0):
// one packed piece per thread through widen(); else (fp8 / int8 only) byte by byte. tiles (int4, vec): qweight
// tile-contiguous, W having N rows.
extern "C" __global__ void dequant_rows(T* __restrict__ out, const unsigned char* __restrict__ q,
                                        const float* __restrict__ rs, const unsigned short* s,
                                        const unsigned short* z, int r0, int K, int gs, int vec, int tiles, int N) {
    const int r = blockIdx.y, c0 = 8 * (blockIdx.x * blockDim.x + threadIdx.x), row = r0 + r;
    if (c0 >= K) return;
    const float sc = row_scale(rs, row);
    T* dst = out + (size_t)r * K + c0;
    if (vec) {
        WRow w = wrow(q, s, z, row, K, K / gs);
#if QFMT == 2
        if (tiles) w.q = q + 4 * tiled_word(row, c0, K, N, tiles) - c0 / 2;  // load_w reads c0 / 2 bytes on
#endif
        Pack8 in, o;
        in.u = widen(load_w(w, true, c0, gs));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float2 f = to_f2(in.h[i]);
            o.h[i].x = from_f(f.x * sc);
            o.h[i].y = from_f(f.y * sc);
        }
        *reinterpret_cast<uint4*>(dst) = o.u;
        return;
    }
#if QFMT != 2
    const unsigned char* src = q + (size_t)row * K;
    for (int k = c0; k < c0 + 8 && k < K; ++k) {
#if QFMT == 0
        float v = __half2float(__ushort_as_half((unsigned short)(e4m3x2_h2(src[k]) & 0xffffu)));
#else
        float v = (float)(signed char)src[k];
#endif
        dst[k - c0] = from_f(v * sc);
    }
#endif
}

// ---- activations -----------------------------------------------------------------------------------------
// out T [M, K] = T(gain[j] * a[m, perm[j]]); grid (ceil(K / blockDim), M).
extern "C" __global__ void prep_act(T* __restrict__ out, const T* __restrict__ a, const int* __restrict__ perm,
                                    const float* __restrict__ gain, int K, int has_perm, int has_gain) {
    const int m = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= K) return;
    const float v = to_f(a[(size_t)m * K + (has_perm ? perm[j] : j)]);
    out[(size_t)m * K + j] = from_f(has_gain ? v * gain[j] : v);
}

__device__ __forceinline__ float act_val(const T* row, const int* perm, const float* gain, int j, int has_perm,
                                         int has_gain) {
    const float v = to_f(row[has_perm ? perm[j] : j]);
    return has_gain ? v * gain[j] : v;
}

// One block per token m (K even): sa[m] = amax / 448 (1 for an all-zero row), aq[m, j] = e4m3(v_j * 448 / amax)
// with v_j = gain[j] * a[m, perm[j]] in fp32. Needs sm_89+ (cvt to e4m3); the launcher runs it only there.
extern "C" __global__ void quant_act_fp8(unsigned char* __restrict__ aq, float* __restrict__ sa,
                                         const T* __restrict__ a, const int* __restrict__ perm,
                                         const float* __restrict__ gain, int K, int has_perm, int has_gain) {
    __shared__ float red[32];
    const int m = blockIdx.x;
    const T* row = a + (size_t)m * K;
    float amax = 0.f;
    for (int j = threadIdx.x; j < K; j += blockDim.x)
        amax = fmaxf(amax, fabsf(act_val(row, perm, gain, j, has_perm, has_gain)));
    amax = warp_max(amax);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = amax;
    __syncthreads();
    amax = 0.f;
    for (int w = 0; w < (int)(blockDim.x + 31) / 32; ++w) amax = fmaxf(amax, red[w]);
    const float inv = fp8_inv(amax);
    if (threadIdx.x == 0) sa[m] = fp8_scale(amax);
    unsigned short* dst = reinterpret_cast<unsigned short*>(aq + (size_t)m * K);
    for (int j = 2 * threadIdx.x; j < K; j += 2 * blockDim.x)
        dst[j / 2] = e4m3x2(act_val(row, perm, gain, j, has_perm, has_gain) * inv,
                            act_val(row, perm, gain, j + 1, has_perm, has_gain) * inv);
}

// ---- epilogues of the cuBLASLt fp8 GEMM: d f32 [M, N] (row m = token), y = d * sa[m] * sw[n] -------------
// grid (ceil(cols / blockDim), M), one output column (qkv: one rope pair) per thread.
extern "C" __global__ void w8a8_residual_rows(float* __restrict__ x, const float* __restrict__ d,
                                              const float* __restrict__ sa, const float* __restrict__ sw, int N) {
    const int m = blockIdx.y, n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n < N) x[(size_t)m * N + n] += d[(size_t)m * N + n] * sa[m] * sw[n];
}

extern "C" __global__ void w8a8_silu_rows(T* __restrict__ h, const float* __restrict__ d,
                                          const float* __restrict__ sa, const float* __restrict__ sw, int F) {
    const int m = blockIdx.y, f = blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= F) return;
    const float* row = d + (size_t)m * 2 * F;
    h[(size_t)m * F + f] = from_f(silu_mul(row[f] * sa[m] * sw[f], row[F + f] * sa[m] * sw[F + f]));
}

extern "C" __global__ void w8a8_qkv_rope_rows(T* __restrict__ q, const float* __restrict__ d,
                                              const float* __restrict__ sa, const float* __restrict__ sw,
                                              const float* __restrict__ rope_cs, T* __restrict__ kc,
                                              T* __restrict__ vc, const int* __restrict__ pos,
                                              const int* __restrict__ n_tokens, int D, int kvd, int hd, int S) {
    const int NQ = D + 2 * kvd, m = blockIdx.y, o = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (o >= NQ) return;
    const float* row = d + (size_t)m * NQ;
    qkv_store(q, kc, vc, rope_cs, row[o] * sa[m] * sw[o], row[o + 1] * sa[m] * sw[o + 1], o, m, pos[0],
              n_tokens[0], D, kvd, hd, S);
}
