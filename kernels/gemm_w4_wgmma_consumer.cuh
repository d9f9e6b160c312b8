// The consumer warpgroups' k-tile steps: Ctx, keep, tile_in (int8 / int4: the exact q or q - z of a tile's
// fragments) and tile_mma (its wgmma batch). Part of gemm_w4_wgmma.cu's module (included after out_row, inside its
// sm_90a guard); compiled only through gemm_w4_wgmma.cu.

struct Ctx {  // what one consumer thread's k-tile steps need
    unsigned base, full, empty, sel;
    int lr, r0, r1, ng, t;
    const __half* sc;
    const __half* zr;
};

// Keeps x in a register, unchanged, up to here: A fragments outlive the batch that reads them, so the next tile's
// q - z (made meanwhile) cannot take their registers.
__device__ __forceinline__ void keep(unsigned& x) { asm volatile("" : "+r"(x)::"memory"); }

#if FMT == 8
// k-tile i of this CTA, int8, first half: wait for its stage, load its rows' 64 bytes, make the exact q of its
// fragments into h (the row scale comes in the epilogue; sc and the group values are unused).
__device__ __forceinline__ void tile_in(const Ctx& c, int kt, int i, unsigned (&h)[16], __half2 (&sc)[4],
                                        GroupVals& nv0, GroupVals& nv1) {
    const int s = i % STAGES;
    mbar_wait(c.full + 8 * s, (i / STAGES) & 1);
    const unsigned wa = c.base + s * STAGE_BYTES + X_BYTES + c.lr * 64;
    unsigned pw[16], qw[16];  // words 0-15 of rows lr (pw) and lr + 8 (qw)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(pw[4 * v]), "=r"(pw[4 * v + 1]),
                     "=r"(pw[4 * v + 2]), "=r"(pw[4 * v + 3]) : "r"(wa + 16 * v));
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(qw[4 * v]), "=r"(qw[4 * v + 1]),
                     "=r"(qw[4 * v + 2]), "=r"(qw[4 * v + 3]) : "r"(wa + 512 + 16 * v));
    }
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {  // k16 step ks: words 4 ks .. 4 ks + 3 of a row
        h[4 * ks + 0] = cvt8(pw[4 * ks], pw[4 * ks + 1], c.sel);
        h[4 * ks + 1] = cvt8(qw[4 * ks], qw[4 * ks + 1], c.sel);
        h[4 * ks + 2] = cvt8(pw[4 * ks + 2], pw[4 * ks + 3], c.sel);
        h[4 * ks + 3] = cvt8(qw[4 * ks + 2], qw[4 * ks + 3], c.sel);
    }
}
#else
// k-tile kt (the i-th of this CTA), first half: wait for its stage, load its packed words, make the exact q - z of
// its fragments into h; sc: the scales of (row g, steps 0-1), (g + 8, 0-1), (g, 2-3), (g + 8, 2-3). nv0 / nv1:
// this tile's group values on entry (loaded a tile ahead; nv1 the second group of a tile when GS is 32), the next
// tile's on exit.
__device__ __forceinline__ void tile_in(const Ctx& c, int kt, int i, unsigned (&h)[16], __half2 (&sc)[4],
                                        GroupVals& nv0, GroupVals& nv1) {
    const GroupVals v0 = nv0;
#if GS == 32
    const GroupVals v1 = nv1;
    nv1 = group_vals(c.sc, c.zr, c.r0, c.r1, c.ng, ((kt + 1) * 64 + 32) >> GSH);
#else
    const GroupVals v1 = nv0;
#endif
#if GS == 0  // one group a row: the values of the first tile hold
#elif GS >= 128  // a new group every GS / 64 tiles
    if (((kt + 1) & (GS / 64 - 1)) == 0) nv0 = group_vals(c.sc, c.zr, c.r0, c.r1, c.ng, ((kt + 1) * 64) >> GSH);
#else
    nv0 = group_vals(c.sc, c.zr, c.r0, c.r1, c.ng, ((kt + 1) * 64) >> GSH);
#endif
    const int s = i % STAGES;
    mbar_wait(c.full + 8 * s, (i / STAGES) & 1);
    const unsigned wa = c.base + s * STAGE_BYTES + X_BYTES + c.lr * 32;
    unsigned pw[8], qw[8];  // words 0-7 of rows lr (pw) and lr + 8 (qw)
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(pw[0]), "=r"(pw[1]), "=r"(pw[2]), "=r"(pw[3])
                 : "r"(wa));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(pw[4]), "=r"(pw[5]), "=r"(pw[6]), "=r"(pw[7])
                 : "r"(wa + 16));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(qw[0]), "=r"(qw[1]), "=r"(qw[2]), "=r"(qw[3])
                 : "r"(wa + 256));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(qw[4]), "=r"(qw[5]), "=r"(qw[6]), "=r"(qw[7])
                 : "r"(wa + 272));
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
        const GroupVals& v = ks < 2 ? v0 : v1;
        h[4 * ks + 0] = diff(pw[2 * ks], c.sel, v.z0);
        h[4 * ks + 1] = diff(qw[2 * ks], c.sel, v.z1);
        h[4 * ks + 2] = diff(pw[2 * ks + 1], c.sel, v.z0);
        h[4 * ks + 3] = diff(qw[2 * ks + 1], c.sel, v.z1);
    }
    sc[0] = v0.s0; sc[1] = v0.s1; sc[2] = v1.s0; sc[3] = v1.s1;
}
#endif

// Second half: the fragments (h * s), the batch issued; the next tile's first half while it runs; the batch
// completed, its stage released.
__device__ __forceinline__ void tile_mma(const Ctx& c, int kt, int i, int kt1, unsigned (&h)[16], __half2 (&sc)[4],
                                         float* d, GroupVals& nv0, GroupVals& nv1) {
    unsigned a[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) a[j] = FMT == 8 ? h[j] : h2u(__hmul2(u2h(h[j]), sc[(j & 1) + 2 * (j >= 8)]));
    const unsigned xa = c.base + (i % STAGES) * STAGE_BYTES;
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
        mma_rs(d, a[4 * ks], a[4 * ks + 1], a[4 * ks + 2], a[4 * ks + 3], desc(xa + 32 * ks));
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    if (kt + 1 < kt1) tile_in(c, kt + 1, i + 1, h, sc, nv0, nv1);
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int j = 0; j < 16; ++j) keep(a[j]);
    if (c.t == 0)
        asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(c.empty + 8 * (i % STAGES)) : "memory");
}
