// The cp.async variant of the tensor-core GEMV tiles (QG_STAGES > 1, included by gemv_quant_mma.cuh): a warp keeps
// QG_STAGES - 1 iterations of its weights in flight as asynchronous copies into shared memory, which hold no
// registers. The register loads of tile_sync hold 2 x 16 bytes a lane per iteration in flight, and at 80 registers
// a thread (24 warps an SM) that is ~48 KB an SM at most: the int4 GEMVs stayed at 2.0-2.7 TB/s whatever their
// instruction count (README, third session). Here a warp has QG_STAGES KB in flight for ~2 QG_STAGES registers.
//
// Ring: the last QG_WARPS * QG_STAGES * QA_SLOT bytes of the dynamic shared memory (the launcher adds them:
// QuantPlan.ring_bytes); stage s of a warp is QA_SLOT bytes, the 32 lanes' 16-byte vectors of row r0 then of row
// r1 (each lane reads back only what it copied: no barrier). One commit group per stage, empty ones included, so
// that wait_group counts stay uniform. The int4 scale / zero pairs travel in a register ring of the same depth.
#pragma once

#define QA_SLOT 1024

__device__ __forceinline__ void cp16(unsigned dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }
__device__ __forceinline__ uint4 lds16(unsigned a) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
    return v;
}

struct ARing {
    unsigned slot0;  // shared address of this lane's row-r0 vector in stage 0
#if QFMT == 3
    __half2 sz0[QG_STAGES], sz1[QG_STAGES];
#endif
};

__device__ __forceinline__ unsigned ring_slot0() {
    extern __shared__ float4 qg_smem[];
    unsigned dyn;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
    const unsigned base = (unsigned)__cvta_generic_to_shared(qg_smem) + dyn - QG_WARPS * QG_STAGES * QA_SLOT;
    return base + (threadIdx.x >> 5) * QG_STAGES * QA_SLOT + (threadIdx.x & 31) * 16;
}

// stage s <- iteration it of rows r0 / r1 (nothing past the end or for an inactive pair), then commit
__device__ __forceinline__ void aissue(ARing& r, int s, const QArgs& w, const PairRows& p, int it, int n_it) {
    if (p.active && it < n_it) {
        const int t = threadIdx.x & 3, nvec = w.K / QG_EPV;
        const uint4* q = reinterpret_cast<const uint4*>(w.q);
        cp16(r.slot0 + s * QA_SLOT, q + p.r0 * (size_t)nvec + 4 * it + t);
        cp16(r.slot0 + s * QA_SLOT + 512, q + p.r1 * (size_t)nvec + 4 * it + t);
#if QFMT == 3
        const int G = w.K / w.gs, g = w.gsh >= 0 ? (4 * it) >> w.gsh : it * QM_COLS / w.gs;
        const __half* sc = reinterpret_cast<const __half*>(w.scales);
        r.sz0[s] = __halves2half2(__ldg(sc + p.r0 * G + g), __ldg(w.zeros + p.r0 * G + g));
        r.sz1[s] = __halves2half2(__ldg(sc + p.r1 * G + g), __ldg(w.zeros + p.r1 * G + g));
#endif
    }
    cp_commit();
}

// the first QG_STAGES - 1 iterations of this warp (iteration j of warp ms is ms + j * QG_MSPLIT)
__device__ __forceinline__ void aprologue(ARing& r, const QArgs& w, const PairRows& p, int ms, int n_it) {
#pragma unroll
    for (int s = 0; s < QG_STAGES - 1; ++s) aissue(r, s, w, p, ms + s * QG_MSPLIT, n_it);
}

// tile_sync's contract through the ring; aprologue must have been issued for p. Leaves the ring drained.
__device__ __forceinline__ void tile_async(ARing& r, const QArgs& w, const PairRows& p, const __half* xh,
                                           const float2* blk, int n_it, int ms, float& acc0, float& acc1) {
    float toff = 0.0f, c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    acc0 = acc1 = 0.0f;
    for (int j0 = 0; ms + j0 * QG_MSPLIT < n_it; j0 += QG_STAGES) {
#pragma unroll
        for (int s = 0; s < QG_STAGES; ++s) {  // stage s holds iteration j0 + s: constant register indices
            const int it = ms + (j0 + s) * QG_MSPLIT;
            aissue(r, (s + QG_STAGES - 1) % QG_STAGES, w, p, it + (QG_STAGES - 1) * QG_MSPLIT, n_it);
            cp_wait<QG_STAGES - 1>();  // iteration j0 + s has landed (this lane's copies)
            if (it < n_it) {           // warp-uniform
                const uint4 w0 = lds16(r.slot0 + s * QA_SLOT), w1 = lds16(r.slot0 + s * QA_SLOT + 512);
                tile_mma(c, w0, w1, xh, it);
#if QFMT == 3
                iter_fix(c, r.sz0[s], r.sz1[s], blk, it, acc0, acc1, toff);
#else
                iter_fix(c, __half2(), __half2(), blk, it, acc0, acc1, toff);
#endif
            }
        }
    }
    cp_wait<0>();
    tile_end(c, toff, acc0, acc1);
}
