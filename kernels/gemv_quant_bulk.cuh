// QG_BULK = 1 (QuantPlan.bulk, gpu/ops_quant.py): the tile driver with its weights streamed into shared memory by
// the bulk-copy engine (cp.async.bulk, sm_90) instead of register loads. The register loop keeps 2 x 16 bytes of
// each row in flight a lane, so a block holds a few KB in flight and every round waits out the DRAM latency; the
// products and the prologue then stall the stream (int4 7B: wo / w2 at 2x their loads-only time, wqkv / w13 at
// 1.4-1.7x; benchmarks/results/eleventh_2026-11-30/s19b/qko). Here one lane a row issues copies of whole stages
// (QG_BCI tile iterations of 64 bytes of each row of a virtual block, int4 scales and zeros with them), a ring of
// up to QB_MAXST stages fills before pdl_enter (weights: no earlier kernel writes them), and the warps compute
// from shared memory while the next stages land. Products, staging and epilogues are the tile driver's
// (gemv_quant_mma.cuh, gemv_quant_tiles.cuh); only the order of the iterations within a tile differs.
//
// Stage layout (bytes; QB_ROWS = 16 rows a tile, A rows g (r0) and 8 + g (r1) of pair g): weights [QB_ROWS][QB_RS],
// QB_RS = 64 QG_BCI + 64 so that rows g and g + 1 (one 8-lane phase of a 16-byte read) fall on other banks; int4
// then scales and zeros f16 [QB_ROWS][QG_BCI] each. The ring holds as many stages as the dynamic shared memory
// past the staging allows (the launcher sizes it), at most QB_MAXST. Needs (qb_ok) int4 groups of one iteration
// (128) and an even iteration count (4-byte copies of the scales), K a multiple of QM_COLS.
#pragma once

#ifndef QG_BCI
#define QG_BCI 8          // tile iterations a stage (even)
#endif
#define QB_MAXST 16       // stages a ring may hold (its mbarriers)
#define QB_ROWS (16 * QM_TILES)
#define QB_RS (64 * QG_BCI + 64)
#define QB_WBYTES (QB_ROWS * QB_RS)
#define QB_STAGE (QB_WBYTES + (QFMT == 3 ? 4 * QB_ROWS * QG_BCI : 0))
#define QB_RPL ((QB_ROWS + 31) / 32)   // rows a lane of the issuing warp copies
static_assert(QG_BCI % 2 == 0 && QB_STAGE % 16 == 0, "bulk stages: even iterations, 16-byte aligned");

__device__ __forceinline__ unsigned smem_addr(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}

// one arrival that also expects `bytes` of bulk copies
__device__ __forceinline__ void mbar_expect(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}

__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    unsigned done;
    do {
        asm volatile("{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                     "selp.u32 %0, 1, 0, p;\n\t}" : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    } while (!done);
}

__device__ __forceinline__ void bulk_copy(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

// 4 bytes through cp.async; cp_arrive: one arrival on bar once this thread's cp.async copies so far have landed
__device__ __forceinline__ void copy4(unsigned dst, const void* src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_arrive(unsigned bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(bar) : "memory");
}

// K a multiple of QM_COLS, an even number of iterations, int4 groups of one iteration
__device__ __forceinline__ bool qb_ok(const QArgs& w) {
    return qm_ok(w) && (w.K / QM_COLS) % 2 == 0 && (QFMT != 3 || w.gs == QM_COLS);
}

// Warp 0: stage q of this block (its virtual block j = q / nch, chunk c = q % nch) into ring slot st (bar): lane l
// copies rows l, l + 32 (their 64 ni bytes at iteration c QG_BCI), lane 0 first arrives expecting their sum. int4:
// each lane then copies its rows' scales / zeros 4 bytes at a time and arrives when they land (33 arrivals).
template <class Rows>
__device__ __forceinline__ void bulk_stage(const QArgs& w, Rows rows, char* st, unsigned bar, int q, int nch,
                                           int n_it) {
    const int lane = threadIdx.x & 31, c = q % nch, it0 = c * QG_BCI, ni = min(QG_BCI, n_it - it0);
    const int vb = (int)blockIdx.x + (q / nch) * (int)gridDim.x;
    size_t row[QB_RPL];
    bool act[QB_RPL];
    int nact = 0;
#pragma unroll
    for (int k = 0; k < QB_RPL; ++k) {
        const int ar = lane + 32 * k;   // tile ar / 16, A row ar % 16
        const PairRows p = rows(vb * QM_PAIRS + (ar >> 4) * 8 + (ar & 7));
        act[k] = ar < QB_ROWS && p.active;
        row[k] = (ar & 8) ? p.r1 : p.r0;
        nact += act[k];
    }
    nact = __reduce_add_sync(0xffffffffu, nact);
    if (lane == 0) mbar_expect(bar, (unsigned)(nact * 64 * ni));
    __syncwarp();
    const unsigned sbase = smem_addr(st);
#pragma unroll
    for (int k = 0; k < QB_RPL; ++k) {
        const int ar = lane + 32 * k;
        if (act[k])
            bulk_copy(sbase + ar * QB_RS, w.q + row[k] * (size_t)(64 * n_it) + 64 * it0, 64 * ni, bar);
    }
#if QFMT == 3
    const __half* s = reinterpret_cast<const __half*>(w.scales);
#pragma unroll
    for (int k = 0; k < QB_RPL; ++k) {
        const int ar = lane + 32 * k;
        if (!act[k]) continue;
        const size_t g0 = row[k] * (size_t)n_it + it0;   // one group an iteration
        const unsigned ds = sbase + QB_WBYTES + 2 * ar * QG_BCI, dz = ds + 2 * QB_ROWS * QG_BCI;
        for (int e = 0; e < ni; e += 2) {
            copy4(ds + 2 * e, s + g0 + e);
            copy4(dz + 2 * e, w.zeros + g0 + e);
        }
    }
    cp_arrive(bar);
#endif
}

// This lane's products of stage st (chunk c of its virtual block): the iterations c QG_BCI + il, il = ms, ms +
// QG_MSPLIT, .. of pair g's rows of tile `tile`, into c4 / acc0 / acc1 / toff as tile_sync.
__device__ __forceinline__ void bulk_products(const char* st, const __half* xh, const float2* blk, int tile, int ms,
                                              int it0, int ni, float* c4, float& acc0, float& acc1, float& toff) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    const char* r0 = st + (tile * 16 + g) * QB_RS + 16 * t;
#if QFMT == 3
    const __half* s0 = reinterpret_cast<const __half*>(st + QB_WBYTES) + (tile * 16 + g) * QG_BCI;
    const __half* z0 = s0 + QB_ROWS * QG_BCI;
#endif
    for (int il = ms; il < ni; il += QG_MSPLIT) {
        const uint4 w0 = *reinterpret_cast<const uint4*>(r0 + 64 * il);
        const uint4 w1 = *reinterpret_cast<const uint4*>(r0 + 8 * QB_RS + 64 * il);
        tile_mma(c4, w0, w1, xh, it0 + il);
#if QFMT == 3
        iter_fix(c4, __halves2half2(s0[il], z0[il]), __halves2half2(s0[8 * QG_BCI + il], z0[8 * QG_BCI + il]),
                 blk, it0 + il, acc0, acc1, toff);
#else
        iter_fix(c4, __half2(), __half2(), blk, it0 + il, acc0, acc1, toff);
#endif
    }
}

// Whole block; qgemv_pairs_mma's contract. stages: the dynamic shared memory past the staging (16-byte aligned),
// room for nst stages.
template <class Rows, class Epi>
__device__ __forceinline__ void qgemv_pairs_bulk(const QArgs& w, const T* a, const NormIn& nm, int n_pairs,
                                                 __half* xh, float2* blk, char* stages, int nst, Rows rows, Epi epi) {
    __shared__ __align__(8) unsigned long long bars[QB_MAXST];
    __shared__ float2 pres[QM_PAIRS];
    __shared__ float2 mred[QG_MSPLIT > 1 ? QG_WARPS * 8 : 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
    const int tile = warp / QG_MSPLIT, ms = warp % QG_MSPLIT;
    const int n_it = w.K / QM_COLS, nch = (n_it + QG_BCI - 1) / QG_BCI, nvb = (n_pairs + QM_PAIRS - 1) / QM_PAIRS;
    const int mine = (int)blockIdx.x < nvb ? (nvb - 1 - (int)blockIdx.x) / (int)gridDim.x + 1 : 0;
    const int nq = mine * nch;   // stages this block streams
    nst = min(min(nst, QB_MAXST), nq);
    if (warp == 0) {  // before any staging: the ring fills while the previous kernel ends
        if (lane == 0) {
            for (int s = 0; s < nst; ++s) mbar_init(smem_addr(bars + s), QFMT == 3 ? 33u : 1u);
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        __syncwarp();
        for (int q = 0; q < nst; ++q) bulk_stage(w, rows, stages + q * QB_STAGE, smem_addr(bars + q), q, nch, n_it);
    }
    XPro xp;
    xpro_gain(xp, w);
    pdl_enter();  // a and ss come from the previous kernel
    xpro_load(xp, a, w, nm, true);
    const float2 kn = stage_mma(xh, blk, xp, a, w, nm);  // its barrier also publishes the mbarriers' init
    for (int j = 0, q = 0; j < mine; ++j) {
        const int vb = (int)blockIdx.x + j * (int)gridDim.x;
        float toff = 0.0f, acc0 = 0.0f, acc1 = 0.0f, c4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int c = 0; c < nch; ++c, ++q) {
            const int s = q % nst, it0 = c * QG_BCI;
            mbar_wait(smem_addr(bars + s), (unsigned)((q / nst) & 1));
            bulk_products(stages + s * QB_STAGE, xh, blk, tile, ms, it0, min(QG_BCI, n_it - it0), c4, acc0, acc1,
                          toff);
            __syncthreads();  // every warp is done with slot s
            if (warp == 0 && q + nst < nq) {
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // generic reads before async writes
                bulk_stage(w, rows, stages + s * QB_STAGE, smem_addr(bars + s), q + nst, nch, n_it);
            }
        }
        tile_end(c4, toff, acc0, acc1);
        tile_out(acc0, acc1, rows(vb * QM_PAIRS + tile * 8 + g), w, vb, kn.x, kn.y, pres, mred, xh, rows, epi);
    }
}
