"""Kernel source of scripts/wgmma_probe.py: a Hopper wgmma GEMM for the prefill residual shapes, x f32 [M, N] +=
a T [M, K] @ w T [N, K].T, built for sm_90a (wgmma is not in sm_90's instruction set, so this stays outside
kernels/, whose sources CI compiles for sm_90).

CTA: WG warpgroups, each the wgmma M = 64 weight rows; wgmma N = BT tokens; K in tiles of 64 (128 bytes, the
128-byte swizzle: 16-byte chunk c of row r at chunk c ^ (r & 7), tile base 1024-byte aligned) through a STAGES-deep
cp.async ring that all threads fill; one wgmma batch (4 x k16) a k-tile, PIPE 1: the previous batch still running
while the next is issued. Split-K over gridDim.z: partial sums go
into x with atomics (order not fixed), or (CLUSTER 1) the split CTAs form a thread block cluster and add them in
rank order through distributed shared memory (deterministic; needs BW * BT * 4 bytes of ring).
Accumulator of m64nBTk16 f32, thread (warp w, lane l) of a warpgroup: d[4j + 0 / 1] = row 16w + l/4, columns
8j + 2(l%4) + 0 / 1; d[4j + 2 / 3] = row 16w + 8 + l/4, same columns (rows: weight rows, columns: tokens).
"""

from cugraphllm.gpu.cuda_kernels import read_source

# the helpers both kernels use (after their defines: wgmma_tile takes BT); the TMA / descriptor ones are the
# engine's (kernels/tma_wgmma.cuh)
COMMON = read_source("tma_wgmma.cuh") + r"""
__device__ __forceinline__ void wgmma_tile(float* d, unsigned long long da, unsigned long long db) {
#if BT == 128
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
        "%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,"
        "%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n"
        "}\n"
        : ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56)
        : "l"(da), "l"(db), "r"(1));
#elif BT == 64
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
        "%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n"
        "}\n"
        : ACC8(0), ACC8(8), ACC8(16), ACC8(24)
        : "l"(da), "l"(db), "r"(1));
#elif BT == 16
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, 0, 0;\n"
        "}\n"
        : ACC8(0)
        : "l"(da), "l"(db), "r"(1));
#else
#error "BT 16, 64 or 128"
#endif
}

"""

SRC = r"""
#include <cuda_fp16.h>
#ifndef WG
#define WG 2
#endif
#ifndef BT
#define BT 128
#endif
#ifndef STAGES
#define STAGES 4
#endif
#ifndef CLUSTER
#define CLUSTER 0                    // 1: split-K CTAs are a cluster and add their partials through DSMEM
#endif
#ifndef PIPE
#define PIPE 1                       // 1: one wgmma batch in flight across iterations (STAGES >= 3)
#endif
#define BW (64 * WG)                 // weight rows a CTA
#define NTH (128 * WG)
#define W_BYTES (BW * 128)           // one k-tile of W rows in smem
#define X_BYTES (BT * 128)
#define STAGE_BYTES (W_BYTES + X_BYTES)
#define NACC (BT / 2)                // f32 accumulators a thread

""" + COMMON + r"""
__device__ __forceinline__ void cpa16(unsigned d, const void* s, bool ok) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(s), "r"(ok ? 16 : 0) : "memory");
}

// rows [0, nrows) x 64 columns from src (row stride K elements) into a swizzled tile; rows past `valid` are zeros
__device__ __forceinline__ void load_tile(unsigned dst, const __half* src, int nrows, int valid, int K, int k0) {
    for (int c = threadIdx.x; c < nrows * 8; c += NTH) {
        const int r = c >> 3, cc = c & 7;
        const bool ok = r < valid && k0 + cc * 8 < K;
        cpa16(dst + r * 128 + ((cc ^ (r & 7)) << 4), ok ? src + (size_t)r * K + k0 + cc * 8 : src, ok);
    }
}

// x [M, N] f32 += a [M, K] @ w [N, K].T; grid (ceil(N / BW), ceil(M / BT), splits); K % 8 == 0
extern "C" __global__ void __launch_bounds__(NTH, 1)
wgmma_residual(float* __restrict__ x, const __half* __restrict__ a, const __half* __restrict__ w, int M, int N,
               int K) {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    const unsigned base = (sa(smem_raw) + 1023u) & ~1023u;
    const int n0 = blockIdx.x * BW, m0 = blockIdx.y * BT;
    int kt0, kt1;
    split_ktiles(K, kt0, kt1);
    const int wg = threadIdx.x >> 7, t = threadIdx.x & 127;
    float d[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) d[i] = 0.0f;
    const __half* wsrc = w + (size_t)n0 * K;
    const __half* asrc = a + (size_t)m0 * K;
    const int wvalid = min(BW, N - n0), avalid = min(BT, M - m0);
#if PIPE
    // one wgmma batch stays in flight while the next k-tile is issued: tile kt + STAGES - 2 refills the stage of
    // tile kt - 2, whose batch every thread has waited for (wait_group 1 of iteration kt - 1, then the barrier)
    constexpr int AHEAD = STAGES - 2;
#else
    constexpr int AHEAD = STAGES - 1;
#endif
#pragma unroll
    for (int s = 0; s < AHEAD; ++s) {
        if (kt0 + s < kt1) {
            load_tile(base + s * STAGE_BYTES, wsrc, BW, wvalid, K, (kt0 + s) * 64);
            load_tile(base + s * STAGE_BYTES + W_BYTES, asrc, BT, avalid, K, (kt0 + s) * 64);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
    for (int kt = kt0; kt < kt1; ++kt) {
        const int s = (kt - kt0) % STAGES;
        asm volatile("cp.async.wait_group %0;" ::"n"(AHEAD - 1) : "memory");
        __syncthreads();  // every thread's part of tile kt has landed; the stage refilled below is free
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        const int nk = kt + AHEAD;
        if (nk < kt1) {
            const int ns = (nk - kt0) % STAGES;
            load_tile(base + ns * STAGE_BYTES, wsrc, BW, wvalid, K, nk * 64);
            load_tile(base + ns * STAGE_BYTES + W_BYTES, asrc, BT, avalid, K, nk * 64);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        const unsigned wa = base + s * STAGE_BYTES + wg * 64 * 128, xa = base + s * STAGE_BYTES + W_BYTES;
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wgmma_tile(d, desc(wa + 32 * kk), desc(xa + 32 * kk));
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#if PIPE
        asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
#else
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#endif
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    const int warp = t >> 5, lane = t & 31;
#if CLUSTER
    // split-K partials summed through distributed shared memory: the gridDim.z CTAs of one (row tile, token tile)
    // are a cluster; each stages its partial tile P [BT][BW] f32 in its own (now idle) ring, then CTA r adds rows
    // [r * BW / z, (r + 1) * BW / z) of every CTA's P in rank order (a fixed order) into x.
    float* P = reinterpret_cast<float*>(smem_raw + (base - sa(smem_raw)));
    __syncthreads();  // every warpgroup's last batch has been waited for; no cp.async is pending
    const int pr = wg * 64 + warp * 16 + (lane >> 2);
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {  // P token-major [BT][BW]: the reduction below reads consecutive rows
        const int c = 8 * j + 2 * (lane & 3);
        P[c * BW + pr] = d[4 * j];
        P[(c + 1) * BW + pr] = d[4 * j + 1];
        P[c * BW + pr + 8] = d[4 * j + 2];
        P[(c + 1) * BW + pr + 8] = d[4 * j + 3];
    }
    asm volatile("barrier.cluster.arrive.release.aligned; barrier.cluster.wait.acquire.aligned;" ::: "memory");
    unsigned rank, nz;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(nz));
    const int rows = BW / (int)nz;
    for (int e = threadIdx.x; e < rows * BT; e += NTH) {
        const int tok = e / rows, row = (int)rank * rows + e % rows;
        const unsigned off = sa(P + tok * BW + row);
        float v = 0.0f;
        for (unsigned q = 0; q < nz; ++q) {
            unsigned ra;
            float f;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(off), "r"(q));
            asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(f) : "r"(ra) : "memory");
            v += f;
        }
        if (n0 + row < N && m0 + tok < M) x[(size_t)(m0 + tok) * N + n0 + row] += v;
    }
    asm volatile("barrier.cluster.arrive.release.aligned; barrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    const int r0 = n0 + wg * 64 + warp * 16 + (lane >> 2);
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
#pragma unroll
        for (int h = 0; h < 4; ++h) {
            const int row = r0 + (h >> 1) * 8, tok = m0 + 8 * j + 2 * (lane & 3) + (h & 1);
            if (row < N && tok < M) atomicAdd(x + (size_t)tok * N + row, d[4 * j + h]);
        }
    }
#endif
}
"""

# The TMA variant (wgmma_residual_tma): one producer warp after the WG consumer warpgroups issues two tensor-map
# copies a k-tile (W box 64 x BW, a box 64 x BT, 128-byte swizzle, zero fill out of bounds) into a STAGES ring
# guarded by full / empty mbarriers; consumers keep one wgmma batch in flight and release a stage when the batch
# that read it has completed. EPI 1: the tile is staged in shared memory and added to x by vector reductions along
# rows (EPI 0: one atomic a value). KO 1 (bench only): no epilogue (the sums are kept alive, x is not written).
SRC_TMA = r"""
#include <cuda_fp16.h>
#ifndef WG
#define WG 4
#endif
#ifndef BT
#define BT 128    // 16, 64 or 128 tokens a tile
#endif
#ifndef STAGES
#define STAGES 4
#endif
#ifndef KO
#define KO 0
#endif
#ifndef EPI
#define EPI 1     // 1: the tile staged in shared memory, vector reductions along rows; 0: one atomic a value
#endif
#define BW (64 * WG)
#define NCW (4 * WG)
#define NTH (128 * WG + 32)
#define W_BYTES (BW * 128)
#define X_BYTES (BT * 128)
#define STAGE_BYTES (W_BYTES + X_BYTES)
#define NACC (BT / 2)

""" + COMMON + r"""
// x [M, N] f32 += a [M, K] @ w [N, K].T; grid (ceil(N / BW), ceil(M / BT), splits); tw / ta: tensor maps of w and a
extern "C" __global__ void __launch_bounds__(NTH, 1)
wgmma_residual_tma(const __grid_constant__ TMap tw, const __grid_constant__ TMap ta, float* __restrict__ x, int M,
                   int N, int K) {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    __shared__ __align__(8) unsigned long long full[STAGES], empty[STAGES];
    const unsigned base = (sa(smem_raw) + 1023u) & ~1023u;
    const int n0 = blockIdx.x * BW, m0 = blockIdx.y * BT;
    int kt0, kt1;
    split_ktiles(K, kt0, kt1);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) ring_init(full, empty, WG);
    __syncthreads();
    if (warp == NCW) {  // producer
        if (lane == 0) {
            for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) {
                const int s = i % STAGES, round = i / STAGES;
                if (round > 0) mbar_wait(sa(&empty[s]), (round - 1) & 1);
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                             :: "r"(sa(&full[s])), "r"(STAGE_BYTES) : "memory");
                tma2d(base + s * STAGE_BYTES, &tw, kt * 64, n0, sa(&full[s]));
                tma2d(base + s * STAGE_BYTES + W_BYTES, &ta, kt * 64, m0, sa(&full[s]));
            }
        }
        return;
    }
    const int wg = warp >> 2, t = threadIdx.x & 127;
    float d[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) d[i] = 0.0f;
    for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) {
        const int s = i % STAGES;
        mbar_wait(sa(&full[s]), (i / STAGES) & 1);
        const unsigned wa = base + s * STAGE_BYTES + wg * 64 * 128, xa = base + s * STAGE_BYTES + W_BYTES;
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wgmma_tile(d, desc(wa + 32 * kk), desc(xa + 32 * kk));
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
        if (i > 0 && t == 0)  // batch i - 1 has completed: its stage may be refilled
            asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(sa(&empty[(i - 1) % STAGES])) : "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#if KO & 1
    if (d[0] == 1.2345e-37f) x[0] = d[NACC - 1];
#elif EPI == 1
    // staged: the ring is idle once every warpgroup's last batch is done (every TMA copy was waited for); the tile
    // goes token-major into P [BT][BW + 4] (the pad puts a warp's 32 stores on 32 banks), then each thread adds 4
    // consecutive rows of one token with one vector reduction (red.global.add.v4.f32; scalar where N % 4 != 0)
    float* P = reinterpret_cast<float*>(smem_raw + (base - sa(smem_raw)));
    constexpr int PS = BW + 4;
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
    const int pr = wg * 64 + (t >> 5) * 16 + (lane >> 2);
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
        const int c = 8 * j + 2 * (lane & 3);
        P[c * PS + pr] = d[4 * j];
        P[(c + 1) * PS + pr] = d[4 * j + 1];
        P[c * PS + pr + 8] = d[4 * j + 2];
        P[(c + 1) * PS + pr + 8] = d[4 * j + 3];
    }
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
    for (int e = threadIdx.x; e < BT * (BW / 4); e += NCW * 32) {
        const int tok = e / (BW / 4), row = 4 * (e % (BW / 4));
        if (m0 + tok >= M || n0 + row >= N) continue;
        const float4 v = *reinterpret_cast<const float4*>(P + tok * PS + row);
        float* dst = x + (size_t)(m0 + tok) * N + n0 + row;
        if ((N & 3) == 0) {
            asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                         :: "l"(dst), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
        } else {
            const float vv[4] = {v.x, v.y, v.z, v.w};
            for (int q = 0; q < 4 && n0 + row + q < N; ++q) atomicAdd(dst + q, vv[q]);
        }
    }
#else
    const int r0 = n0 + wg * 64 + (t >> 5) * 16 + (lane >> 2);
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
#pragma unroll
        for (int h = 0; h < 4; ++h) {
            const int row = r0 + (h >> 1) * 8, tok = m0 + 8 * j + 2 * (lane & 3) + (h & 1);
            if (row < N && tok < M) atomicAdd(x + (size_t)tok * N + row, d[4 * j + h]);
        }
    }
#endif
}
"""
