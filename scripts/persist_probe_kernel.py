"""The CUDA sources of scripts/persist_probe.py (bench only): `layers`, the int4 GEMVs of 32 LLaMA-2-7B layers in one
persistent kernel (a producer warp streaming the weights into a shared-memory ring, consumer warps on tensor cores,
grid-wide counters between phases), and `regstream`, plain register reads of the same bytes in the same pattern.
Layout and phases: persist_probe's docstring."""
from __future__ import annotations

D, F, GS, EPS = 4096, 11008, 128, 1e-5
# (rows N, input K): wqkv, wo, w13 (w1 / w3 rows interleaved), w2
SHAPES = ((3 * D, D), (D, D), (2 * F, D), (D, F))
TILEW = 544  # uint32 words a tile: 16 rows x 256 k (4 blocks x 16 rows x 8 words), then (scale, zero) x 2 x 16
RESMAX = 256    # floats: a block's rows of one matrix (w13: 11 row tiles of 16)


def offsets() -> tuple[list[int], int]:
    """Word offsets of the four matrices in a layer, and a layer's words (tiles [row tile][k tile])."""
    offs, o = [], 0
    for N, K in SHAPES:
        offs.append(o)
        o += N // 16 * (K // 256) * TILEW
    return offs, o


# Built with PP_NT (consumer threads; one more warp, the producer, issues the copies), PP_S (ring slots), PP_TPW
# (tiles a consumer warp a chunk) and PP_MINB (blocks an SM) always defined, PP_KO / PP_FENCE where set
# (persist_probe.flags); prefixed on the command line so that the engine headers before this source
# (kernels/common.cuh: warp_sum, mma16816; kernels/tma_wgmma.cuh: sa, mbar_wait, ring_init) keep their own names.
SRC = r"""
#define NT PP_NT
#define S PP_S
#define TPW PP_TPW
#define MINB PP_MINB
#ifdef PP_KO
#define KO PP_KO
#else
#define KO 0
#endif
#ifdef PP_FENCE
#define FENCE PP_FENCE
#else
#define FENCE 1
#endif
#define NW (NT / 32)
#define CT (NW * TPW)         // tiles a chunk
#define TILEW %(TILEW)s             // words a tile: 16 rows x 32 packed words, then 2 groups x 16 rows (scale, zero)
#define SLOTV (CT * TILEW / 4)  // 16-byte vectors a slot
__constant__ int MN[4] = {%(MN)s}, MK[4] = {%(MK)s};
__constant__ long long MOFF[4] = {%(MOFF)s};
#define LAYERW %(LAYERW)sLL

// the consumer warps' barrier (the producer warp runs on its own)
__device__ __forceinline__ void cbar() { asm volatile("bar.sync 1, %%0;" :: "n"(NT) : "memory"); }

// this block's slice of each matrix (row tiles rt0.., tiles nt, chunks nc), set once at the start
struct Plan { int rt0[4], nt[4], nc[4]; };

__device__ __forceinline__ void mbar_arrive(unsigned long long* bar) {
    unsigned long long st;
    asm volatile("mbarrier.arrive.shared::cta.b64 %%0, [%%1];" : "=l"(st) : "r"(sa(bar)) : "memory");
}

// The producer (one lane): every chunk of every layer in the consumers' order, chunk i into slot i %% S once the
// consumers have released the slot's previous chunk (empty), completing on full. Never waits for activations.
__device__ void produce(const uint4* W, int L, const Plan& p, uint4* ring, unsigned long long* full,
                        unsigned long long* empty) {
    int i = 0;
    for (int l = 0; l < L; ++l)
#pragma unroll
        for (int m = 0; m < 4; ++m) {
            const uint4* base = W + (l * LAYERW + MOFF[m] + (long long)p.rt0[m] * (MK[m] / 256) * TILEW) / 4;
            for (int c = 0; c < p.nc[m]; ++c, ++i) {
                const int slot = i %% S, bytes = min(CT, p.nt[m] - c * CT) * TILEW * 4;
                if (i >= S) mbar_wait(sa(empty + slot), ((i / S) - 1) & 1);
                unsigned long long st;
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 %%0, [%%1], %%2;" : "=l"(st)
                             : "r"(sa(full + slot)), "r"(bytes) : "memory");
                asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes"
                             " [%%0], [%%1], %%2, [%%3];"
                             :: "r"(sa(ring + slot * SLOTV)), "l"(base + (long long)c * CT * TILEW / 4), "r"(bytes),
                                "r"(sa(full + slot)) : "memory");
            }
        }
}

// FENCE 1: __threadfence (MEMBAR.GPU) before the arrival and after the wait; 0: the arrival a release atomic and
// the wait's acquire load alone (the barrier before makes the block's writes thread 0's, cumulatively)
__device__ __forceinline__ void arrive(unsigned* cnt) {
    cbar();
#if FENCE
    if (threadIdx.x == 0) { __threadfence(); atomicAdd(cnt, 1u); }
#else
    if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%%0], 1;" :: "l"(cnt) : "memory");
#endif
}
__device__ __forceinline__ void wait_all(const unsigned* cnt, unsigned G) {
#if !(KO & 1)
    if (threadIdx.x == 0) {
        unsigned v;
        do { asm volatile("ld.acquire.gpu.global.u32 %%0, [%%1];" : "=r"(v) : "l"(cnt) : "memory"); } while (v < G);
#if FENCE
        __threadfence();
#endif
    }
#endif
    cbar();
}

// common.cuh's block_sum over the consumer warps only
__device__ __forceinline__ float cblock_sum(float v, float* red) {
    v = warp_sum(v);
    cbar();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    cbar();
    float s = 0.f;
    for (int i = 0; i < NW; ++i) s += red[i];
    return s;
}

// xs[w] = the 8 halves of src[8w..8w+7] times scale as pairs (j, j + 4) (the nibble order of a word);
// gsum[g] = the sum of group g's staged halves; norm: scale = inv_rms(src) over K. Also clears res.
__device__ void stage(uint4* xs, float* gsum, float* res, const float* src, int K, bool norm, float* red) {
    constexpr int WPT = (%(KMAX)s / 8 + NT - 1) / NT;
    float v[WPT][8];
    float ss = 0.f;
    for (int i = threadIdx.x; i < K / 128; i += NT) gsum[i] = 0.f;
    for (int i = threadIdx.x; i < %(RESMAX)s; i += NT) res[i] = 0.f;
#pragma unroll
    for (int i = 0; i < WPT; ++i) {
        const int w = threadIdx.x + i * NT;
        if (w < K / 8) {
            const float4 a = __ldcg(reinterpret_cast<const float4*>(src) + 2 * w);
            const float4 c = __ldcg(reinterpret_cast<const float4*>(src) + 2 * w + 1);
            v[i][0] = a.x; v[i][1] = a.y; v[i][2] = a.z; v[i][3] = a.w;
            v[i][4] = c.x; v[i][5] = c.y; v[i][6] = c.z; v[i][7] = c.w;
#pragma unroll
            for (int j = 0; j < 8; ++j) ss += v[i][j] * v[i][j];
        }
    }
    const float sc = norm ? rsqrtf(cblock_sum(ss, red) / K + %(EPS)sf) : 1.f;
    cbar();  // gsum cleared
#pragma unroll
    for (int i = 0; i < WPT; ++i) {
        const int w = threadIdx.x + i * NT;
        if (w < K / 8) {
            __half2 p[4];
            float gs = 0.f;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                p[j] = __floats2half2_rn(v[i][j] * sc, v[i][j + 4] * sc);
                const float2 f = __half22float2(p[j]);
                gs += f.x + f.y;
            }
            xs[w] = *reinterpret_cast<uint4*>(p);
            atomicAdd(gsum + w / 16, gs);
        }
    }
    cbar();
}

__device__ __forceinline__ unsigned nib(unsigned q, int sh) {  // nibbles sh / 4 and sh / 4 + 4 as 1024 + q halves
    return ((q >> sh) & 0x000F000Fu) | 0x64006400u;
}

// one warp, one tile (16 rows x 256 k of matrix m at row tile rt (local), k tile kt): the rows' sums into res.
// Thread (g, t) owns rows g / g + 8; for each 64-k block it loads words 2t / 2t + 1 of both rows and feeds pair j
// of them to mma step j, so B (column 0 only: lanes g == 0) is pair j of x's words 2t / 2t + 1. Products of
// (1024 + q) x; the (1024 + z) * sum(x) of each group is taken off with the group's scale.
__device__ __forceinline__ void tile(const unsigned* tw, int rt, int kt, const uint4* xs, const float* gsum,
                                     float* res) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float out0 = 0.f, out8 = 0.f;
#if !(KO & 2)
#pragma unroll
    for (int grp = 0; grp < 2; ++grp) {
        float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int bb = 0; bb < 2; ++bb) {
            const int b = 2 * grp + bb, wb = kt * 32 + 8 * b + 2 * t;  // x word of this thread's first word
            const uint2 r0 = *reinterpret_cast<const uint2*>(tw + b * 128 + g * 8 + 2 * t);
            const uint2 r8 = *reinterpret_cast<const uint2*>(tw + b * 128 + (g + 8) * 8 + 2 * t);
            uint4 x0 = xs[wb], x1 = xs[wb + 1];
            if (g) { x0 = make_uint4(0u, 0u, 0u, 0u); x1 = x0; }
            const unsigned* p0 = reinterpret_cast<const unsigned*>(&x0);
            const unsigned* p1 = reinterpret_cast<const unsigned*>(&x1);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const unsigned af[4] = {nib(r0.x, 4 * j), nib(r8.x, 4 * j), nib(r0.y, 4 * j), nib(r8.y, 4 * j)};
                mma16816(d, af, p0[j], p1[j]);
            }
        }
        const __half2 s0 = reinterpret_cast<const __half2*>(tw + 512)[grp * 16 + g];
        const __half2 s8 = reinterpret_cast<const __half2*>(tw + 512)[grp * 16 + g + 8];
        const float gs = gsum[kt * 2 + grp];
        out0 += __low2float(s0) * (d[0] - (1024.f + __high2float(s0)) * gs);
        out8 += __low2float(s8) * (d[2] - (1024.f + __high2float(s8)) * gs);
    }
#endif
    if (t == 0) {
        atomicAdd(res + rt * 16 + g, out0);
        atomicAdd(res + rt * 16 + g + 8, out8);
    }
}

// one matrix: the block's chunks as the producer lands them; each warp releases a slot when done with it
__device__ __forceinline__ void consume(int m, int& seq, uint4* ring, unsigned long long* full,
                                        unsigned long long* empty, const Plan& p, const uint4* xs, const float* gsum,
                                        float* res) {
    const int KT = MK[m] / 256, warp = threadIdx.x >> 5;
    for (int c = 0; c < p.nc[m]; ++c, ++seq) {
        const int slot = seq %% S;
        mbar_wait(sa(full + slot), (seq / S) & 1);
#pragma unroll
        for (int k = 0; k < TPW; ++k) {
            const int i = k * NW + warp, T = c * CT + i;
            if (T < p.nt[m])
                tile(reinterpret_cast<const unsigned*>(ring + slot * SLOTV) + i * TILEW, T / KT, T %% KT, xs, gsum,
                     res);
        }
        __syncwarp();
        if ((threadIdx.x & 31) == 0) mbar_arrive(empty + slot);
    }
    cbar();  // res complete
}

// wo / w2: src staged unscaled, the products of the block's rows added to x (16 rows a row tile of MK / 256 tiles)
__device__ __forceinline__ void residual(int m, const float* src, float* x, int& seq, uint4* ring,
                                         unsigned long long* full, unsigned long long* empty, const Plan& p,
                                         uint4* xs, float* gsum, float* res, float* red) {
    stage(xs, gsum, res, src, MK[m], false, red);
    consume(m, seq, ring, full, empty, p, xs, gsum, res);
    for (int i = threadIdx.x; i < p.nt[m] / (MK[m] / 256) * 16; i += NT) x[p.rt0[m] * 16 + i] += res[i];
}

extern "C" __global__ void __launch_bounds__(NT + 32, MINB)
layers(const uint4* __restrict__ W, int L, float* x, float* qkv, float* a, float* h, unsigned* cnt) {
    extern __shared__ uint4 sm[];
    uint4* ring = sm;                                          // S slots
    uint4* xs = sm + S * SLOTV;                                // staged activation, KMAX / 8 vectors
    float* res = reinterpret_cast<float*>(xs + %(KMAX)s / 8);  // row sums of a phase
    float* gsum = res + %(RESMAX)s;                            // group sums of the staged activation
    float* red = gsum + 128;                                   // block reductions
    __shared__ unsigned long long full[S], empty[S];           // a slot's copy landed / its consumers are done
    const int b = blockIdx.x, G = gridDim.x;
    if (threadIdx.x == 0) ring_init(full, empty, NW);
    __syncthreads();  // the only block-wide barrier: the producer warp leaves after its loop
    Plan p;
#pragma unroll
    for (int m = 0; m < 4; ++m) {
        const int U = MN[m] / 16, lo = U * b / G, hi = U * (b + 1) / G;
        p.rt0[m] = lo;
        p.nt[m] = (hi - lo) * (MK[m] / 256);
        p.nc[m] = (p.nt[m] + CT - 1) / CT;
    }
    if (threadIdx.x >= NT) {
        if (threadIdx.x == NT) produce(W, L, p, ring, full, empty);
        return;
    }
    int seq = 0;
#if KO & 4  // the bare stream: the consumers only take each chunk and release it (no staging, epilogue or counter)
    for (int l = 0; l < L; ++l)
        for (int m = 0; m < 4; ++m) consume(m, seq, ring, full, empty, p, xs, gsum, res);
    return;
#endif
    for (int l = 0; l < L; ++l) {
        unsigned* c = cnt + 5 * l;
        if (l) wait_all(c - 1, G);
        stage(xs, gsum, res, x, MK[0], true, red);                     // qkv
        consume(0, seq, ring, full, empty, p, xs, gsum, res);
        for (int i = threadIdx.x; i < p.nt[0] / 16 * 16; i += NT) qkv[p.rt0[0] * 16 + i] = res[i];
        arrive(c);
        wait_all(c, G);                                                // attention stand-in
        const int alo = %(D)s * b / G, ahi = %(D)s * (b + 1) / G;
        for (int i = alo + threadIdx.x; i < ahi; i += NT)
            a[i] = __ldcg(qkv + i) + 0.01f * __ldcg(qkv + %(D)s + i) * __ldcg(qkv + 2 * %(D)s + i);
        arrive(c + 1);
        wait_all(c + 1, G);                                            // wo
        residual(1, a, x, seq, ring, full, empty, p, xs, gsum, res, red);
        arrive(c + 2);
        wait_all(c + 2, G);                                            // w13
        stage(xs, gsum, res, x, MK[2], true, red);
        consume(2, seq, ring, full, empty, p, xs, gsum, res);
        for (int j = threadIdx.x; j < p.nt[2] / 16 * 8; j += NT) {
            const float g1 = res[2 * j], g3 = res[2 * j + 1];
            h[p.rt0[2] * 8 + j] = g1 / (1.f + __expf(-g1)) * g3;
        }
        arrive(c + 3);
        wait_all(c + 3, G);                                            // w2
        residual(3, h, x, seq, ring, full, empty, p, xs, gsum, res, red);
        arrive(c + 4);
    }
}
"""
# The same bytes in the same pattern (a block's contiguous slice of each matrix, layer after layer, one block an
# SM) read with plain 16-byte register loads, RU in flight a thread: is the ring's rate the copy path's or the
# pattern's?
REG_SRC = r"""
#ifndef RU
#define RU 8
#endif
__constant__ int MN[4] = {%(MN)s}, MK[4] = {%(MK)s};
__constant__ long long MOFF[4] = {%(MOFF)s};
extern "C" __global__ void regstream(const uint4* __restrict__ W, int L, unsigned* sink) {
    const int b = blockIdx.x, G = gridDim.x;
    unsigned acc = 0;
    for (int l = 0; l < L; ++l)
#pragma unroll
        for (int m = 0; m < 4; ++m) {
            const int U = MN[m] / 16, lo = U * b / G, hi = U * (b + 1) / G, KT = MK[m] / 256;
            const uint4* p = W + (l * %(LAYERW)sLL + MOFF[m] + (long long)lo * KT * 544) / 4;
            const int n = (hi - lo) * KT * 136;
            for (int i = threadIdx.x; i < n; i += blockDim.x * RU) {
                uint4 r[RU];
#pragma unroll
                for (int k = 0; k < RU; ++k) {
                    const int j = i + k * blockDim.x;
                    r[k] = j < n ? __ldcs(p + j) : make_uint4(0u, 0u, 0u, 0u);
                }
#pragma unroll
                for (int k = 0; k < RU; ++k) acc ^= r[k].x ^ r[k].y ^ r[k].z ^ r[k].w;
            }
        }
    if (acc == 0x9e3779b9u) sink[b] = acc;  // keeps the loads; practically never taken
}
"""


def _geometry() -> dict:
    """The shapes and offsets the sources take as constants."""
    offs, layer_words = offsets()
    j = lambda v: ", ".join(str(int(i)) for i in v)  # noqa: E731
    return {"MN": j(s[0] for s in SHAPES), "MK": j(s[1] for s in SHAPES), "MOFF": j(offs), "LAYERW": layer_words}


def source() -> str:
    """`layers` after the engine headers it uses (inlined: the probe compiles through NVRTC)."""
    from cugraphllm.gpu.cuda_kernels import read_source
    return (read_source("common.cuh") + read_source("tma_wgmma.cuh")
            + SRC % {**_geometry(), "KMAX": F, "RESMAX": RESMAX, "D": D, "EPS": EPS, "TILEW": TILEW})


def reg_source() -> str:
    return REG_SRC % _geometry()
