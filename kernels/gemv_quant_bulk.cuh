// The bulk-copy row-pair driver of the quantized decode GEMVs (QG_BULK = 1, sm_90; included by
// gemv_quant_pairs.cuh): the weights reach shared memory through the Hopper bulk-copy engine (cp.async.bulk, one
// instruction a row chunk, completion counted in bytes on an mbarrier) instead of register loads. The register
// drivers keep 2-4 KB of loads in flight per warp, bounded by registers (~48 KB an SM: 29-34% of DRAM bandwidth
// under Nsight Compute, README "Third session"); here each warp keeps QG_BSTAGES - 1 chunks of its row pair in
// flight whatever its registers, and a lane's loads become LDS.128 at immediate offsets.
//
// Per warp (one row pair, as qgemv_pairs; QG_KSPLIT warps share a pair over interleaved chunks): a ring of
// QG_BSTAGES slots, each [2 rows][QG_BVECS 16-byte vectors], and one mbarrier a slot (count 1). The warp walks a
// sequence q = 0, 1, ... of (pair, chunk): its pair of virtual block blockIdx.x + j * gridDim.x, its chunks
// c = ks, ks + QG_KSPLIT, ... of ceil(nvec / QG_BVECS). Lane 0 issues q + QG_BSTAGES into slot q % QG_BSTAGES as
// soon as all lanes are done with q (so the ring also runs across pairs: the next pair's first chunks land
// during this pair's reductions and epilogue). Use n of a slot completes phase n: parity (q / QG_BSTAGES) & 1.
// int4 scales / zeros (1/64 of the bytes) stay register loads, one chunk ahead, and are prefetched into L2 when
// their chunk's copy is issued.
#pragma once

#ifndef QG_BSTAGES
#define QG_BSTAGES 4      // ring slots per warp
#endif
#ifndef QG_BVECS
#define QG_BVECS 32       // 16-byte vectors per row per chunk (a multiple of 32: QB_VPL per lane)
#endif
#define QB_VPL (QG_BVECS / 32)
#define QB_SLOT (2 * QG_BVECS * 16)  // bytes of one slot

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(unsigned bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    unsigned done = 0;
    while (!done) {
        asm volatile("{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                     "selp.u32 %0, 1, 0, p;\n\t}" : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    }
}
__device__ __forceinline__ void bulk_g2s(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
// L2 prefetch of the 16-byte-aligned lines around [p, p + bytes)
__device__ __forceinline__ void bulk_pf_l2(const void* p, unsigned bytes) {
    const size_t a = reinterpret_cast<size_t>(p), lo = a & ~(size_t)15, hi = (a + bytes + 15) & ~(size_t)15;
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(lo), "r"((unsigned)(hi - lo)) : "memory");
}

// One warp's place in its (pair, chunk) sequence.
struct BSeq {
    int ncw;   // chunks of each pair this warp takes
    int nvb;   // virtual blocks
    int nvec;  // 16-byte vectors a row
};

// The pair rows and first vector of sequence position q (active false: past the warp's last pair, or no rows).
template <class Rows>
__device__ __forceinline__ PairRows bseq_at(const BSeq& sq, Rows rows, int q, int& v0, int& n) {
    const int j = q / sq.ncw, i = q - j * sq.ncw;
    const int vb = (int)blockIdx.x + j * (int)gridDim.x, ks = (threadIdx.x >> 5) % QG_KSPLIT;
    v0 = (ks + i * QG_KSPLIT) * QG_BVECS;
    n = min(QG_BVECS, sq.nvec - v0);
    if (vb >= sq.nvb) return PairRows{0, 0, false};
    return rows(vb * QG_PAIRS + (int)(threadIdx.x >> 5) / QG_KSPLIT);
}

// Lane 0: the copy of sequence position q into its slot (an empty arrival where q has no rows, so that every
// position completes its slot's phase).
template <class Rows>
__device__ __forceinline__ void bulk_issue(const QArgs& w, const BSeq& sq, Rows rows, unsigned ring, unsigned bars,
                                           int q) {
    int v0, n;
    const PairRows p = bseq_at(sq, rows, q, v0, n);
    const int s = q % QG_BSTAGES;
    const unsigned bar = bars + 8 * s, slot = ring + QB_SLOT * s;
    if (!p.active) {
        mbar_arrive(bar);
        return;
    }
    const uint4* q4 = reinterpret_cast<const uint4*>(w.q);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the lanes' reads of the slot come first
    mbar_expect_tx(bar, 2u * 16u * (unsigned)n);
    bulk_g2s(slot, q4 + p.r0 * (size_t)sq.nvec + v0, 16u * n, bar);
    bulk_g2s(slot + 16 * QG_BVECS, q4 + p.r1 * (size_t)sq.nvec + v0, 16u * n, bar);
#if QFMT == 3
    const int G = groups_per_row(w), g0 = v0 * QG_EPV / w.gs, g1 = ((v0 + n) * QG_EPV - 1) / w.gs;
    const unsigned gb = 2u * (unsigned)(g1 - g0 + 1);
    bulk_pf_l2(reinterpret_cast<const __half*>(w.scales) + p.r0 * G + g0, gb);
    bulk_pf_l2(w.zeros + p.r0 * G + g0, gb);
    bulk_pf_l2(reinterpret_cast<const __half*>(w.scales) + p.r1 * G + g0, gb);
    bulk_pf_l2(w.zeros + p.r1 * G + g0, gb);
#endif
}

struct BScales {  // int4: (scale, zero) of rows r0 / r1 for this lane's vectors of one chunk
#if QFMT == 3
    __half2 s0[QB_VPL], s1[QB_VPL];
#endif
};

template <class Rows>
__device__ __forceinline__ BScales bulk_scales(const QArgs& w, const BSeq& sq, Rows rows, int q) {
    BScales b;
#if QFMT == 3
    int v0, n;
    const PairRows p = bseq_at(sq, rows, q, v0, n);
    const int G = groups_per_row(w), lane = threadIdx.x & 31;
    const __half* sc = reinterpret_cast<const __half*>(w.scales);
#pragma unroll
    for (int u = 0; u < QB_VPL; ++u) {
        const int v = u * 32 + lane;
        const bool in = p.active && v < n;
        const int g = in ? (w.gsh >= 0 ? (v0 + v) >> w.gsh : (v0 + v) * QG_EPV / w.gs) : 0;
        b.s0[u] = in ? __halves2half2(__ldg(sc + p.r0 * G + g), __ldg(w.zeros + p.r0 * G + g)) : __half2();
        b.s1[u] = in ? __halves2half2(__ldg(sc + p.r1 * G + g), __ldg(w.zeros + p.r1 * G + g)) : __half2();
    }
#else
    (void)w; (void)sq; (void)rows; (void)q;
#endif
    return b;
}

// acc0 / acc1 += this lane's products of sequence position q (slot q % QG_BSTAGES, landed)
__device__ __forceinline__ void bulk_dot(const BScales& b, unsigned slot, const float* xs, const float* csum, int v0,
                                         int n, float& acc0, float& acc1) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < QB_VPL; ++u) {
        const int v = u * 32 + lane;
        if (v < n) {
            uint4 w0, w1;
            asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                         : "=r"(w0.x), "=r"(w0.y), "=r"(w0.z), "=r"(w0.w) : "r"(slot + 16 * v) : "memory");
            asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                         : "=r"(w1.x), "=r"(w1.y), "=r"(w1.z), "=r"(w1.w) : "r"(slot + 16 * (QG_BVECS + v)) : "memory");
#if QFMT == 3
            vec_step(w0, w1, b.s0[u], b.s1[u], xs, csum, v0 + v, acc0, acc1);
#else
            vec_step(w0, w1, __half2(), __half2(), xs, csum, v0 + v, acc0, acc1);
#endif
        }
    }
    (void)b;
}

// Whole block; the contract of qgemv_pairs (gemv_quant_pairs.cuh), for the vector path (K a multiple of QG_EPV,
// int4 groups of whole vectors). ring: QG_WARPS * QG_BSTAGES slots; bars: as many mbarriers (8 bytes each).
template <class Rows, class Epi>
__device__ __forceinline__ void qgemv_pairs_bulk(const QArgs& w, const T* a, const NormIn& nm, int n_pairs, float* xs,
                                                 float* csum, unsigned char* ring_base, Rows rows, Epi epi) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, pair = warp / QG_KSPLIT, ks = warp % QG_KSPLIT;
    const int nvec = w.K / QG_EPV, nch = (nvec + QG_BVECS - 1) / QG_BVECS;
    const BSeq sq{nch > ks ? (nch - ks + QG_KSPLIT - 1) / QG_KSPLIT : 0, (n_pairs + QG_PAIRS - 1) / QG_PAIRS, nvec};
    const unsigned ring = smem_u32(ring_base) + QB_SLOT * QG_BSTAGES * warp;
    const unsigned bars = smem_u32(ring_base) + QB_SLOT * QG_BSTAGES * QG_WARPS + 8 * QG_BSTAGES * warp;
    if (lane == 0 && sq.ncw > 0) {
        for (int s = 0; s < QG_BSTAGES; ++s) mbar_init(bars + 8 * s);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        for (int s = 0; s < QG_BSTAGES; ++s) bulk_issue(w, sq, rows, ring, bars, s);  // before any staging
    }
    BScales cur = bulk_scales(w, sq, rows, 0);
    __syncwarp();
    pdl_enter();  // a and ss come from the previous kernel
    const float inv = nm.ss ? norm_inv(nm, w.K) : 1.0f;
#if QG_HACC
    const float xinv = stage_h2(reinterpret_cast<__half*>(xs), a, w);
#else
    const float xinv = 1.0f;
    stage(xs, csum, a, w);
#endif
    __syncthreads();
    int q = 0;
    for (int vb = blockIdx.x; vb < sq.nvb; vb += gridDim.x) {
        const int gw = vb * QG_PAIRS + pair;
        const PairRows p = rows(gw);
        float acc0 = 0.0f, acc1 = 0.0f;
        for (int i = 0; i < sq.ncw; ++i, ++q) {
            const BScales nxt = bulk_scales(w, sq, rows, q + 1);
            const int s = q % QG_BSTAGES, v0 = (ks + i * QG_KSPLIT) * QG_BVECS;
            mbar_wait(bars + 8 * s, (unsigned)(q / QG_BSTAGES) & 1u);
            if (p.active) bulk_dot(cur, ring + QB_SLOT * s, xs, csum, v0, min(QG_BVECS, nvec - v0), acc0, acc1);
            __syncwarp();
            if (lane == 0) bulk_issue(w, sq, rows, ring, bars, q + QG_BSTAGES);
            cur = nxt;
        }
        float2 y = ksplit_sum<QG_KSPLIT, QG_WARPS>(make_float2(warp_sum(acc0), warp_sum(acc1)));
        if (p.active) {
            y.x *= row_factor(w, p.r0) * xinv;
            y.y *= row_factor(w, p.r1) * xinv;
        }
        if (nm.ss) {
            y.x *= inv;
            y.y *= inv;
        }
        epi(vb, gw, p, y);
        __syncthreads();  // red and the epilogue's shared scratch are written again for the next pair
    }
}
