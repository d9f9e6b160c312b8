// QG_BULK = 1 (QuantPlan.bulk, gpu/ops_quant.py): the tile driver with its weights streamed into shared memory by
// the bulk-copy engine (cp.async.bulk, sm_90) instead of register loads. The register loop keeps 2 x 16 bytes of
// each row in flight a lane, so a block holds a few KB in flight and every round waits out the DRAM latency; the
// products and the prologue then stall the stream (int4 7B: wo / w2 at 2x their loads-only time, wqkv / w13 at
// 1.4-1.7x; benchmarks/results/eleventh_2026-11-30/s19b/qko). Here a stage is a whole virtual block (the rows of
// its QM_TILES tiles over all of K): one or two bulk copies of whole rows (a copy of a few hundred bytes costs
// ~60-80 ns of issue on the SM whatever its size: stages of row slices ran at ~1 TB/s, twelfth session s20a) plus
// int4's scales and zeros by 4-byte cp.async over the issuing warp. A ring of up to QB_MAXST stages fills before
// pdl_enter (weights: no earlier kernel writes them) and refills as the block's virtual blocks are done. Products,
// staging and epilogues are the tile driver's (gemv_quant_mma.cuh, gemv_quant_tiles.cuh); only the order of the
// iterations within a tile differs.
//
// Rows: a virtual block's pairs p0 .. p0 + QM_PAIRS - 1 either interleave (rows(p) = 2p, 2p + 1: residual, logits,
// qkv; one run of rows, stage row 2 pv + which) or lie in two runs (w13: rows j and F + j; stage row which x
// QM_PAIRS + pv), pv = tile x 8 + g the pair within the block. Stage layout (bytes): weights [QB_ROWS][64 n_it],
// int4 then scales and zeros f16 [QB_ROWS][n_it] each; rounded up to 128. Needs (qb_ok) int4 groups of one
// iteration (128) and an even iteration count (the 4-byte scale copies), K a multiple of QM_COLS.
#pragma once

#define QB_MAXST 16       // stages a ring may hold (its mbarriers)
#define QB_ROWS (16 * QM_TILES)

// bytes of one stage (gemv_plan.QuantPlan.bulk_stage)
__device__ __forceinline__ int qb_stage_bytes(int n_it) {
    return (QB_ROWS * 64 * n_it + (QFMT == 3 ? 4 * QB_ROWS * n_it : 0) + 127) & ~127;
}

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

struct QBRows {   // how a virtual block's pairs map to stage rows: stage row of (pair pv, which) = pv * ps + which * ws
    int ps, ws;
};

template <class Rows>
__device__ __forceinline__ QBRows qb_rows(Rows rows) {
    const PairRows p = rows(0);
    return p.r1 == p.r0 + 1 ? QBRows{2, 1} : QBRows{1, QM_PAIRS};
}

// rows [r, r + n) of the weights (and int4 scales / zeros) to stage row `at`: one bulk copy of the weights by lane 0
// (its bytes were expected on bar), the scales / zeros by the warp's lanes 4 bytes at a time
__device__ __forceinline__ void qb_run(const QArgs& w, unsigned st, unsigned bar, size_t r, int n, int at, int n_it) {
    const int lane = threadIdx.x & 31;
    if (lane == 0) bulk_copy(st + at * 64 * n_it, w.q + r * (size_t)(64 * n_it), n * 64 * n_it, bar);
#if QFMT == 3
    const unsigned* s = reinterpret_cast<const unsigned*>(reinterpret_cast<const __half*>(w.scales) + r * n_it);
    const unsigned* z = reinterpret_cast<const unsigned*>(w.zeros + r * n_it);
    const unsigned ds = st + QB_ROWS * 64 * n_it + 2 * at * n_it, dz = ds + 2 * QB_ROWS * n_it;
    for (int e = lane; e < n * n_it / 2; e += 32) {
        copy4(ds + 4 * e, s + e);
        copy4(dz + 4 * e, z + e);
    }
#else
    (void)bar;
#endif
}

// Warp 0: virtual block j of this block (vb = blockIdx.x + j gridDim.x) into the stage at st, completing bar: lane
// 0 arrives expecting the weight bytes, then the runs' copies; int4: every lane arrives once its scale copies land
// (33 arrivals).
template <class Rows>
__device__ __forceinline__ void bulk_stage(const QArgs& w, Rows rows, QBRows m, unsigned st, unsigned bar, int j,
                                           int n_pairs, int n_it) {
    const int p0 = ((int)blockIdx.x + j * (int)gridDim.x) * QM_PAIRS, pl = min(n_pairs, p0 + QM_PAIRS) - 1;
    const PairRows a = rows(p0), b = rows(pl);
    const int n0 = m.ps == 2 ? (int)(b.r1 - a.r0) + 1 : (int)(b.r0 - a.r0) + 1;   // rows of the (first) run
    const int n1 = m.ps == 2 ? 0 : (int)(b.r1 - a.r1) + 1;
    if ((threadIdx.x & 31) == 0) mbar_expect(bar, (unsigned)((n0 + n1) * 64 * n_it));
    __syncwarp();
    qb_run(w, st, bar, a.r0, n0, 0, n_it);
    if (n1) qb_run(w, st, bar, a.r1, n1, QM_PAIRS, n_it);
#if QFMT == 3
    cp_arrive(bar);
#endif
}

// This lane's products of the stage at st for pair pv = tile x 8 + g: iterations it = ms, ms + QG_MSPLIT, .. into
// c4 / acc0 / acc1 / toff as tile_sync
__device__ __forceinline__ void bulk_products(const char* st, QBRows m, const __half* xh, const float2* blk,
                                              int tile, int ms, int n_it, float* c4, float& acc0, float& acc1,
                                              float& toff) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3, pv = tile * 8 + g;
    const int a0 = pv * m.ps, a1 = a0 + m.ws;   // stage rows of r0 / r1
    const char* w0p = st + (size_t)a0 * 64 * n_it + 16 * t;
    const char* w1p = st + (size_t)a1 * 64 * n_it + 16 * t;
#if QFMT == 3
    const __half* sc = reinterpret_cast<const __half*>(st + QB_ROWS * 64 * n_it);
    const __half *s0 = sc + a0 * n_it, *s1 = sc + a1 * n_it, *z0 = s0 + QB_ROWS * n_it, *z1 = s1 + QB_ROWS * n_it;
#endif
#pragma unroll 2
    for (int it = ms; it < n_it; it += QG_MSPLIT) {
        const uint4 w0 = *reinterpret_cast<const uint4*>(w0p + 64 * it);
        const uint4 w1 = *reinterpret_cast<const uint4*>(w1p + 64 * it);
        if (QG_KO & 2) {  // bench only: the words folded in instead of the products
            c4[0] += __uint_as_float((w0.x ^ w0.y ^ w0.z ^ w0.w ^ w1.x ^ w1.y ^ w1.z ^ w1.w) & 0x3fffffffu);
        } else {
            tile_mma(c4, w0, w1, xh, it);
        }
#if QFMT == 3
        iter_fix(c4, __halves2half2(s0[it], z0[it]), __halves2half2(s1[it], z1[it]), blk, it, acc0, acc1, toff);
#else
        iter_fix(c4, __half2(), __half2(), blk, it, acc0, acc1, toff);
#endif
    }
}

// Whole block; qgemv_pairs_mma's contract. stages: the dynamic shared memory past the staging (128-byte aligned),
// room for nst stages of qb_stage_bytes.
template <class Rows, class Epi>
__device__ __forceinline__ void qgemv_pairs_bulk(const QArgs& w, const T* a, const NormIn& nm, int n_pairs,
                                                 __half* xh, float2* blk, char* stages, int nst, Rows rows, Epi epi) {
    __shared__ __align__(8) unsigned long long bars[QB_MAXST];
    __shared__ float2 pres[QM_PAIRS];
    __shared__ float2 mred[QG_MSPLIT > 1 ? QG_WARPS * 8 : 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
    const int tile = warp / QG_MSPLIT, ms = warp % QG_MSPLIT;
    const int n_it = w.K / QM_COLS, sb = qb_stage_bytes(n_it), nvb = (n_pairs + QM_PAIRS - 1) / QM_PAIRS;
    const int mine = (int)blockIdx.x < nvb ? (nvb - 1 - (int)blockIdx.x) / (int)gridDim.x + 1 : 0;
    const QBRows m = qb_rows(rows);
    const unsigned s0 = smem_addr(stages);
    nst = min(min(nst, QB_MAXST), mine);
    if (warp == 0) {  // before any staging: the ring fills while the previous kernel ends
        if (lane == 0) {
            for (int s = 0; s < nst; ++s) mbar_init(smem_addr(bars + s), QFMT == 3 ? 33u : 1u);
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        __syncwarp();
        for (int j = 0; j < nst; ++j) bulk_stage(w, rows, m, s0 + j * sb, smem_addr(bars + j), j, n_pairs, n_it);
    }
    XPro xp;
    xpro_gain(xp, w);
    pdl_enter();  // a and ss come from the previous kernel
    float2 kn = make_float2(1.0f, 1.0f);
    if (QG_KO & 1) {  // bench only: no prologue
        __syncthreads();
    } else {
        xpro_load(xp, a, w, nm, true);
        kn = stage_mma(xh, blk, xp, a, w, nm);  // its barrier also publishes the mbarriers' init
    }
    for (int j = 0; j < mine; ++j) {
        const int vb = (int)blockIdx.x + j * (int)gridDim.x, s = j % nst;
        float toff = 0.0f, acc0 = 0.0f, acc1 = 0.0f, c4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mbar_wait(smem_addr(bars + s), (unsigned)((j / nst) & 1));
        bulk_products(stages + s * sb, m, xh, blk, tile, ms, n_it, c4, acc0, acc1, toff);
        __syncthreads();  // every warp is done with stage s
        if (warp == 0 && j + nst < mine) {
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // generic reads before async writes
            bulk_stage(w, rows, m, s0 + s * sb, smem_addr(bars + s), j + nst, n_pairs, n_it);
        }
        tile_end(c4, toff, acc0, acc1);
        tile_out(acc0, acc1, rows(vb * QM_PAIRS + tile * 8 + g), w, vb, kn.x, kn.y, pres, mred, xh, rows, epi);
    }
}
