// The row-pair driver of the quantized decode GEMVs (qgemv_pairs: one warp a row pair over all of K, register
// loads QG_UNROLL vectors ahead) with its fp32 staging, and what both drivers share (PairRows, the L2 prefetch); the
// tensor-core tile driver (gemv_quant_mma.cuh) is included here when QG_MMA. Included by gemv_quant.cuh.
#pragma once

// L2 prefetch of one 16-byte weight vector: keeps bytes in flight beyond the registers of the loads (a GEMV of a
// 4-bit 7B matrix holds too few loads in registers to cover the DRAM latency at the copy rate)
__device__ __forceinline__ void pf_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// prefetch of the vectors load_frag(base) would load
__device__ __forceinline__ void pf_frag(const QArgs& w, size_t r0, size_t r1, int base, int nvec) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int idx = base + u * 32 + lane;
        if (idx < nvec) {
            pf_l2(reinterpret_cast<const uint4*>(w.q) + r0 * (size_t)nvec + idx);
            pf_l2(reinterpret_cast<const uint4*>(w.q) + r1 * (size_t)nvec + idx);
        }
    }
}

struct Frag {  // one lane's loads in flight: QG_UNROLL vectors of two rows (+ int4 scale and zero of each)
    uint4 w0[QG_UNROLL], w1[QG_UNROLL];
#if QFMT == 3
    __half2 sz0[QG_UNROLL], sz1[QG_UNROLL];
#endif
};

#if QFMT == 3
// int4 scale / zero groups per row: a shift where gs / 32 is a power of two (w.gsh >= 0)
__device__ __forceinline__ int groups_per_row(const QArgs& w) {
    return w.gsh >= 0 ? w.K >> (w.gsh + 5) : w.K / w.gs;
}
#endif

__device__ __forceinline__ void load_frag(Frag& f, const QArgs& w, size_t r0, size_t r1, int base, int nvec) {
    const int lane = threadIdx.x & 31;
    const uint4* q0 = reinterpret_cast<const uint4*>(w.q) + r0 * (size_t)nvec;
    const uint4* q1 = reinterpret_cast<const uint4*>(w.q) + r1 * (size_t)nvec;
#if QFMT == 3
    const int G = groups_per_row(w);   // a shift, not a division per load
#endif
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int idx = base + u * 32 + lane;
        const bool in = idx < nvec;
        f.w0[u] = in ? ld_stream16(q0 + idx) : make_uint4(0u, 0u, 0u, 0u);
        f.w1[u] = in ? ld_stream16(q1 + idx) : make_uint4(0u, 0u, 0u, 0u);
#if QFMT == 3
        const int g = in ? (w.gsh >= 0 ? idx >> w.gsh : idx * QG_EPV / w.gs) : 0;
        const __half* s = reinterpret_cast<const __half*>(w.scales);
        f.sz0[u] = __halves2half2(__ldg(s + r0 * G + g), __ldg(w.zeros + r0 * G + g));
        f.sz1[u] = __halves2half2(__ldg(s + r1 * G + g), __ldg(w.zeros + r1 * G + g));
#endif
    }
}

struct PairRows {  // the two weight rows of one pair (r1 == r0 where the pair has one row); inactive: no rows
    size_t r0, r1;
    bool active;
    size_t tv;        // QG_TILED tiles: the vector of row r0, iteration 0, t 0 (set by qgemv_pairs_mma)
};

// QG_KO & 2 (bench only): the weight words of a fragment's u-th vector / iteration (rows r0 and r1), and `more`,
// XOR-folded into one float in [0, 2) instead of the products, so that the loads stay live (Frag here, MFrag in the
// tiles)
template <class F>
__device__ __forceinline__ float ko_fold_words(const F& f, int u, unsigned more = 0u) {
    const uint4 a = f.w0[u], b = f.w1[u];
    return __uint_as_float((a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ more) & 0x3fffffffu);
}

#if QG_MMA
#include "gemv_quant_mma.cuh"
#endif

// the row-pair drivers' fold: int4's scales and zeros too
__device__ __forceinline__ float ko_fold(const Frag& f, int u) {
#if QFMT == 3
    return ko_fold_words(f, u, *reinterpret_cast<const unsigned*>(&f.sz0[u]) ^
                                   *reinterpret_cast<const unsigned*>(&f.sz1[u]));
#else
    return ko_fold_words(f, u);
#endif
}

// acc0 / acc1 += this lane's products of the QG_UNROLL vectors of one loop step (base..) held in f
__device__ __forceinline__ void pstep(const Frag& f, const float* xs, const float* csum, int base, int nvec,
                                      float& acc0, float& acc1) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int idx = base + u * 32 + lane;
        if (idx < nvec) {
#if QG_KO & 2
            acc0 += ko_fold(f, u);
#elif QG_HACC && QFMT == 3
            dot_vec_h2(f.w0[u], f.w1[u], f.sz0[u], f.sz1[u], reinterpret_cast<const __half*>(xs), idx, acc0, acc1);
#elif QG_HACC
            dot_vec_h2(f.w0[u], f.w1[u], reinterpret_cast<const __half*>(xs), idx, acc0, acc1);
#else
            float d0 = 0.0f, d1 = 0.0f;
            dot_vec(f.w0[u], f.w1[u], xs, idx, d0, d1);
#if QFMT == 3
            const float cs = csum[idx];
            const float2 a0 = __half22float2(f.sz0[u]), a1 = __half22float2(f.sz1[u]);
            acc0 = fmaf(a0.x, d0 - (a0.y + 1024.0f) * cs, acc0);
            acc1 = fmaf(a1.x, d1 - (a1.y + 1024.0f) * cs, acc1);
#else
            acc0 += d0;
            acc1 += d1;
#endif
#endif
        }
    }
    (void)csum;
}

#if QG_PIPE
#include "gemv_quant_pipe.cuh"
#endif

// ---- fp32 staging (QG_HACC 0; the half stagings: gemv_quant_h2.cuh, gemv_quant_mma.cuh) ----------------------
// xs f32 [K] (swizzled) = x; csum f32 [K / 32] (int4): chunk sums of xs. Whole block, after xpro_load(.., false);
// returns inv_rms (1 without a norm); xs and csum are visible to the whole block on return.
__device__ __forceinline__ float stage(float* xs, float* csum, const XPro& p, const T* __restrict__ a,
                                       const QArgs& w, const NormIn& nm) {
    __shared__ float2 pscratch[32];
    const int K = w.K;
    float4* x4 = reinterpret_cast<float4*>(xs);
    if ((K & 7) == 0) {
        for_staged<false>(p, a, w, K >> 3, [&](const float* f, int i) {
            x4[swz(2 * i)] = make_float4(f[0], f[1], f[2], f[3]);
            x4[swz(2 * i + 1)] = make_float4(f[4], f[5], f[6], f[7]);
        });
    } else {
        for (int j = threadIdx.x; j < K; j += blockDim.x) xs[xs_idx(j)] = staged_x(a, w, j);
    }
    // the reduction's barrier also publishes xs
    const float ss = block_sum_max(make_float2(p.s, 0.0f), pscratch, nm.ss != nullptr, false).x;
    const float inv = norm_inv_of_sum(nm, ss, K);
#if QFMT == 3
    for (int c = threadIdx.x; c < (K >> 5); c += blockDim.x) {
        float s = 0.0f;
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            float4 v = xs4(xs, 8 * c + u);
            s += (v.x + v.y) + (v.z + v.w);
        }
        csum[c] = s;
    }
    __syncthreads();
#endif
    return inv;
}

// Whole block. The pairs of the virtual blocks vb = blockIdx.x, blockIdx.x + gridDim.x, ... < ceil(n_pairs /
// QG_PAIRS) (a grid smaller than that loops: the activation is staged once per block, and the next pair's first
// weight loads are in flight during this pair's reductions and epilogue). Pair gw = vb * QG_PAIRS + this warp's
// pair; rows(gw) -> PairRows; epi(vb, gw, rows, y) gets y = (W[r0] . a', W[r1] . a') times the row factors and
// inv_rms (nm.ss), valid in split 0's warp; every thread calls epi (it may hold __syncthreads).
template <class Rows, class Epi>
__device__ __forceinline__ void qgemv_pairs(const QArgs& w, const T* a, const NormIn& nm, int n_pairs, float* xs,
                                            float* csum, Rows rows, Epi epi) {
#if QG_MMA
    if (qm_ok(w)) {
        qgemv_pairs_mma(w, a, nm, n_pairs, reinterpret_cast<__half*>(xs), reinterpret_cast<float2*>(xs) + (w.K >> 2),
                        rows, epi);
        return;
    }
#endif
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int pair = warp / QG_KSPLIT, ks = warp % QG_KSPLIT;
    const int K = w.K;
#if QFMT == 3
    const bool vec = (K % QG_EPV) == 0 && (w.gs % QG_EPV) == 0;
#else
    const bool vec = (K % QG_EPV) == 0;
#endif
    const int nvec = K / QG_EPV;
    const int first = ks * 32 * QG_UNROLL, step = 32 * QG_UNROLL * QG_KSPLIT;
    const int nvb = (n_pairs + QG_PAIRS - 1) / QG_PAIRS;
    Frag f;
    PairRows p = rows((int)blockIdx.x * QG_PAIRS + pair);
#if QG_PIPE
    const VGroup vg = vgroup(w);
    PCursor cur = pcursor(w, p.r0, p.r1, nvec);
    if (vec && p.active) load_frag(f, w, cur, vg, first, nvec);  // before any staging
#else
    if (vec && p.active) load_frag(f, w, p.r0, p.r1, first, nvec);  // before any staging
    if (QG_PFS > 0 && vec && p.active)
        for (int j = 1; j <= QG_PFS; ++j) pf_frag(w, p.r0, p.r1, first + j * step, nvec);
#endif
    XPro xp;
    xpro_gain(xp, w);
    pdl_enter();  // a and ss come from the previous kernel
#if QG_KO & 1  // no prologue: whatever shared memory holds is the staging
#if QG_HACC
    const __half* xh = reinterpret_cast<const __half*>(xs);
#endif
    const float inv = 1.0f, xinv = 1.0f;
#else
#if QG_HACC
    __half* xh = reinterpret_cast<__half*>(xs);
    xpro_load(xp, a, w, nm, true, park_in(xh), H2Slot());
    (void)csum;
    const float2 kn = stage_h2(xh, xp, a, w, nm);
    const float inv = kn.x, xinv = kn.y;
#else
    xpro_load(xp, a, w, nm, false);
    const float inv = stage(xs, csum, xp, a, w, nm), xinv = 1.0f;
#endif
#endif
    for (int vb = blockIdx.x; vb < nvb; vb += gridDim.x) {
        const int gw = vb * QG_PAIRS + pair;
        float acc0 = 0.0f, acc1 = 0.0f;
        if (p.active && vec) {
#if QG_PIPE
            pair_dot(f, w, cur, vg, xs, csum, first, step, nvec, acc0, acc1);
#else
            for (int base = first; base < nvec; base += step) {
                if (base != first) load_frag(f, w, p.r0, p.r1, base, nvec);
                if (QG_PFS > 0) pf_frag(w, p.r0, p.r1, base + (QG_PFS + 1) * step, nvec);
                pstep(f, xs, csum, base, nvec, acc0, acc1);
            }
#endif
        } else if (p.active) {
            for (int k = ks * 32 + lane; k < K; k += 32 * QG_KSPLIT) {
#if QG_HACC
                const float xv = __half2float(xh[xh_idx(k)]);
#else
                const float xv = xs[xs_idx(k)];
#endif
                acc0 = fmaf(deq_at(w, p.r0, k), xv, acc0);
                acc1 = fmaf(deq_at(w, p.r1, k), xv, acc1);
            }
        }
        const PairRows done = p;
        if (vb + (int)gridDim.x < nvb) {  // the next pair's first loads fly during this pair's reductions
            p = rows(gw + (int)gridDim.x * QG_PAIRS);
#if QG_PIPE
            cur = pcursor(w, p.r0, p.r1, nvec);
            if (vec && p.active) load_frag(f, w, cur, vg, first, nvec);
#else
            if (vec && p.active) load_frag(f, w, p.r0, p.r1, first, nvec);
#endif
        }
        float2 y = ksplit_sum<QG_KSPLIT, QG_WARPS>(make_float2(warp_sum(acc0), warp_sum(acc1)));
        if (done.active) {
            y.x *= row_factor(w, done.r0) * xinv;
            y.y *= row_factor(w, done.r1) * xinv;
        }
        if (nm.ss) {
            y.x *= inv;
            y.y *= inv;
        }
#if QG_KO & 4  // no epilogue: the sums kept alive by a store that never happens
        if (ks == 0 && lane == 0 && y.x == 1.2345e-37f) xs[0] = y.y;
#else
        epi(vb, gw, done, y);
#endif
        __syncthreads();  // red and the epilogue's shared scratch are written again for the next pair
    }
}
