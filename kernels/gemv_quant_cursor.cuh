// QG_CURSOR = 1 (CUGRAPHLLM_QG_CURSOR=1, gpu/ops_quant.py): the int4 tile loop (tile_sync of gemv_quant_tiles.cuh)
// with per-lane load cursors, where a scale group is one tile iteration (gs == QM_COLS: int4's default 128; other
// group sizes keep tile_sync's loop, which in this build costs a little more: SASS 313 vs 279 a round on the 7B
// wqkv). A lane's loads of one round (QG_UNROLL iterations) then lie at fixed distances from each other and move
// by a constant from round to round: the weight vectors 4 it + t of rows r0 / r1 by 4 x step vectors, the scales /
// zeros of group it by step halves. So two pointers (row r0's vector and scale) and two 32-bit row distances are
// set once a tile, a load is a pointer (plus a distance) plus an immediate, and full rounds carry no per-load
// guard (a guarded tail round follows where K leaves one). An inactive pair's lanes read row 0 (rows() gives it;
// its sums are dropped, and an mma row depends on its own A row only). The products (tile_mma, iter_fix) and
// their order are tile_sync's: the results are bit-identical. QG_PFS is not applied here. Included by
// gemv_quant_tiles.cuh after iter_fix. The 8-bit formats (twelfth session; their plans keep them off the tiles
// today) take it too, with one pointer and one distance (no scale in the loop; the sums less the offsets at the
// end, tile_end): PTX a 2-iteration round fp8 147-161 -> 115-116, int8 142-152 -> 93-95, no spills at 80 / 64
// registers (8 / 16 warps), nvcc 13.0; int4's PTX is unchanged.
#pragma once

struct MCur {  // one lane's cursors at the next round's first iteration it
    const uint4* q0;   // row r0's vector 4 it + t; row r1's lies dq bytes on
#if QFMT == 3
    const __half* s0;  // row r0's scale of group it (gs == QM_COLS: one group an iteration); row r1's lies ds
                       // bytes on, and each one's zero zeros - scales bytes (the two arrays share a layout)
    unsigned dq, ds;   // (r1 - r0) x the bytes of a row (r1 - r0: 0, 1 or the w13 half F; 70B w13: 117 MB)
#else
    unsigned dq;       // 8-bit formats: no scale in the loop (the row scale is the epilogue's)
#endif
};

__device__ __forceinline__ MCur mcur(const QArgs& w, const PairRows& p, int it) {
    size_t r0 = p.r0;
    asm("" : "+l"(r0));  // computed here: not shared with mload's row addresses (they would live through staging)
    const unsigned dr = (unsigned)(p.r1 - p.r0);
#if QFMT == 3
    unsigned dq = QG_TILED ? 512u : dr * (unsigned)(w.K / 2), ds = dr * (unsigned)(2 * (w.K / QM_COLS));
    asm("" : "+r"(dq), "+r"(ds));  // once a tile: nvcc would sink the products into the loop
    const uint4* q = reinterpret_cast<const uint4*>(w.q) + QG_ITV * it + (threadIdx.x & 3);
    const __half* s = reinterpret_cast<const __half*>(w.scales) + it;
    return MCur{q + (QG_TILED ? p.tv : r0 * (size_t)(w.K / QG_EPV)), s + r0 * (size_t)(w.K / QM_COLS), dq, ds};
#else
    unsigned dq = QG_TILED ? 512u : dr * (unsigned)w.K;   // a row: K bytes
    asm("" : "+r"(dq));
    const uint4* q = reinterpret_cast<const uint4*>(w.q) + QG_ITV * it + (threadIdx.x & 3);
    return MCur{q + (QG_TILED ? p.tv : r0 * (size_t)(w.K / QG_EPV)), dq};
#endif
}

template <class P>
__device__ __forceinline__ const P* bytes_on(const P* p, long long bytes) {
    return reinterpret_cast<const P*>(reinterpret_cast<const char*>(p) + bytes);
}

// f = the round at the cursors (iterations it + u, u < nu; nu = QG_UNROLL, a full round: the guards fold away);
// then the cursors move one round (step iterations) on. zeros - scales comes from the kernel arguments (a uniform
// register).
__device__ __forceinline__ void cload(MFrag& f, MCur& c, const QArgs& w, int nu) {
#if QFMT == 3
    const long long dz = (long long)(reinterpret_cast<unsigned long long>(w.zeros) -
                                     reinterpret_cast<unsigned long long>(w.scales));  // two arrays: integers
    const uint4* q1 = bytes_on(c.q0, c.dq);
    const __half *s1 = bytes_on(c.s0, c.ds), *z0 = bytes_on(c.s0, dz), *z1 = bytes_on(s1, dz);
#else
    const uint4* q1 = bytes_on(c.q0, c.dq);
    (void)w;
#endif
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        if (u < nu) {
            f.w0[u] = ld_stream16(c.q0 + QG_ITV * u);
            f.w1[u] = ld_stream16(q1 + QG_ITV * u);
#if QFMT == 3
            if (QG_KO & 128) {  // bench only: no scale / zero loads (a lane-dependent value the products still use)
                f.sz0[u] = f.sz1[u] = __halves2half2(__ushort_as_half((unsigned short)(0x3c00u + (threadIdx.x & 1))),
                                                     __ushort_as_half((unsigned short)(threadIdx.x & 2)));
            } else {
                f.sz0[u] = __halves2half2(__ldg(c.s0 + u), __ldg(z0 + u));
                f.sz1[u] = __halves2half2(__ldg(s1 + u), __ldg(z1 + u));
            }
#endif
        }
    }
    constexpr int step = QG_UNROLL * QG_MSPLIT;
    c.q0 += QG_ITV * step;
#if QFMT == 3
    c.s0 += step;
#endif
}

// the products of iterations base + u held in f, while base + u < n_it (tile_sync's loop body). Each iteration
// stays a block of its own: the warp-uniform guard of u > 0 is kept as a branch even in full rounds (left, the
// iterations left, is opaque to nvcc, and ptxas cannot fold it: it is n_it - base), as in tile_sync; without it
// ptxas interleaves the two iterations' independent mma chains (c is cleared between them) at ~12 registers more.
__device__ __forceinline__ void cprod(float* c, const MFrag& f, const __half* xh, const float2* blk, int base,
                                      int n_it, float& acc0, float& acc1, float& toff) {
    int left = n_it - base;
    asm volatile("" : "+r"(left));  // volatile: not hoisted either (the loop would be unswitched on it)
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        if (u == 0 || u < left) {  // warp-uniform; u = 0: base < n_it
            const int it = base + u;
            tile_prod(c, f, u, xh, it);
#if QFMT == 3
            iter_fix(c, f.sz0[u], f.sz1[u], blk, it, acc0, acc1, toff);
#else
            iter_fix(c, __half2(), __half2(), blk, it, acc0, acc1, toff);
#endif
        }
    }
}

// tile_sync's contract (f holds the round `first`, loaded by mload): full rounds while QG_UNROLL iterations are
// left (products, then the next round's loads), then at most one partial round
__device__ __forceinline__ void tile_cursor(MFrag& f, const QArgs& w, const PairRows& p, const __half* xh,
                                            const float2* blk, int n_it, int first, float& acc0, float& acc1) {
    constexpr int step = QG_UNROLL * QG_MSPLIT;
    float toff = 0.0f, c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    acc0 = acc1 = 0.0f;
    MCur cur = mcur(w, p, first + step);
    int base = first;
    if (base + QG_UNROLL <= n_it) {
        for (;;) {
            cprod(c, f, xh, blk, base, n_it, acc0, acc1, toff);
            base += step;
            if (base + QG_UNROLL > n_it) break;
            cload(f, cur, w, QG_UNROLL);
        }
    }
    if (base < n_it) {  // fewer than QG_UNROLL iterations left
        if (base != first) cload(f, cur, w, n_it - base);
        cprod(c, f, xh, blk, base, n_it, acc0, acc1, toff);
    }
    tile_end(c, toff, acc0, acc1);  // 8-bit: the sums from C less the offsets (int4: nothing)
}
