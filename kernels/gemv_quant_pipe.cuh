// The pipelined row-pair loop of the quantized decode GEMVs (QG_PIPE = 1; fp8's plan): per-lane cursors set once
// per pair (row addresses, the int4 group index as a shift or a multiply-high), so a loop step is loads at
// immediate offsets plus the products, and the next step's loads are issued before this step's products. H200,
// 7B decode fp8 2.22 / 2.36 -> 2.08 / 2.21 ms/token at prompt 10 / 500 (scripts/device_pipe.sh, same call); for int4
// and int8 it was slower or no faster (device_last4.sh), so they keep the loop of gemv_quant_pairs.cuh. Included by
// gemv_quant_pairs.cuh after Frag and PairRows.
#pragma once

// One lane's addresses for the current pair, set once per pair: the loop adds only vector offsets (the loop of
// gemv_quant_pairs.cuh recomputes 64-bit row addresses and the group index from the kernel arguments at every load).
struct PCursor {
    const uint4 *q0, *q1;                 // rows r0 / r1, vector `lane`
#if QFMT == 3
    unsigned o0, o1;                      // r0 * G, r1 * G: the rows' first group in scales / zeros (32-bit
#endif                                    // offsets: four 64-bit pointers cost the int4 kernels a block an SM)
};

__device__ __forceinline__ PCursor pcursor(const QArgs& w, size_t r0, size_t r1, int nvec) {
    const uint4* q = reinterpret_cast<const uint4*>(w.q) + (threadIdx.x & 31);
    PCursor c;
    c.q0 = q + r0 * (size_t)nvec;
    c.q1 = q + r1 * (size_t)nvec;
#if QFMT == 3
    const unsigned G = (unsigned)groups_per_row(w);
    c.o0 = (unsigned)r0 * G;
    c.o1 = (unsigned)r1 * G;
#endif
    return c;
}

// Group of 16-byte vector v: v / (gs / QG_EPV) as a shift (w.gsh >= 0) or a multiply-high by the rounded-up
// reciprocal (exact for v * vectors-per-group < 2^32). Set once per kernel.
struct VGroup {
    unsigned magic;
    int shift;
};

__device__ __forceinline__ VGroup vgroup(const QArgs& w) {
    VGroup m;
    m.shift = QFMT == 3 ? w.gsh : 0;
    const unsigned vpg = (unsigned)(QFMT == 3 ? max(w.gs / QG_EPV, 1) : 1);
    m.magic = m.shift >= 0 ? 0u : 0xFFFFFFFFu / vpg + 1u;
    return m;
}

// base: this lane's first vector is base + lane (pcursor added the lane)
__device__ __forceinline__ void load_frag(Frag& f, const QArgs& w, const PCursor& c, const VGroup& vg, int base,
                                          int nvec) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int off = base + u * 32, idx = off + lane;
        const bool in = idx < nvec;
        f.w0[u] = in ? ld_stream16(c.q0 + off) : make_uint4(0u, 0u, 0u, 0u);
        f.w1[u] = in ? ld_stream16(c.q1 + off) : make_uint4(0u, 0u, 0u, 0u);
#if QFMT == 3
        const unsigned g = !in ? 0u : (vg.shift >= 0 ? (unsigned)idx >> vg.shift : __umulhi((unsigned)idx, vg.magic));
        const __half* sc = reinterpret_cast<const __half*>(w.scales);
        f.sz0[u] = __halves2half2(__ldg(sc + (c.o0 + g)), __ldg(w.zeros + (c.o0 + g)));
        f.sz1[u] = __halves2half2(__ldg(sc + (c.o1 + g)), __ldg(w.zeros + (c.o1 + g)));
#endif
    }
    (void)w; (void)vg;
}

// This lane's sums of the pair's rows over vectors first + lane, first + step + lane, ...; f holds the first
// step's loads on entry; the next step's loads fly during this step's products (two frags taking turns).
__device__ __forceinline__ void pair_dot(Frag& f, const QArgs& w, const PCursor& c, const VGroup& vg, const float* xs,
                                         const float* csum, int first, int step, int nvec, float& acc0, float& acc1) {
    Frag nx;
    for (int base = first; base < nvec; base += 2 * step) {
        load_frag(nx, w, c, vg, base + step, nvec);
        pstep(f, xs, csum, base, nvec, acc0, acc1);
        if (base + step >= nvec) break;
        load_frag(f, w, c, vg, base + 2 * step, nvec);
        pstep(nx, xs, csum, base + step, nvec, acc0, acc1);
    }
}
