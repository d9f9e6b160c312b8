// Hopper TMA + wgmma helpers (sm_90a), shared by kernels/gemm_w4_wgmma.cu and scripts/wgmma_probe_src.py.
#pragma once

struct __align__(64) TMap { unsigned long long v[16]; };  // a CUtensorMap, passed by value (gpu/tma.py)

__device__ __forceinline__ unsigned sa(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// 128-byte-swizzle, K-major smem descriptor: start >> 4, LBO 1 (unused), SBO 1024 (8-row groups) >> 4, mode 1
__device__ __forceinline__ unsigned long long desc(unsigned addr) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32)
           | (1ull << 62);
}

__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred p;\nW: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra W;\n}\n"
                 :: "r"(bar), "r"(parity) : "memory");
}

// The k-tiles (64 columns each) of K that split blockIdx.z of gridDim.z takes: [kt0, kt1), empty past the end
__device__ __forceinline__ void split_ktiles(int K, int& kt0, int& kt1) {
    const int ktiles = (K + 63) / 64, per = (ktiles + gridDim.z - 1) / gridDim.z;
    kt0 = blockIdx.z * per;
    kt1 = min(ktiles, kt0 + per);
}

// Thread 0's set-up of an S-stage ring: full[s] completes on one arrival (the producer's, with its copies' bytes),
// empty[s] on `consumers` (one a consumer warpgroup); the CTA syncs after
template <int S>
__device__ __forceinline__ void ring_init(unsigned long long (&full)[S], unsigned long long (&empty)[S],
                                          int consumers) {
    for (int s = 0; s < S; ++s) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sa(&full[s])) : "memory");
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(sa(&empty[s])), "r"(consumers) : "memory");
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// box (c0, c1) of tensor map m into shared memory at dst, completing on mbarrier bar
__device__ __forceinline__ void tma2d(unsigned dst, const TMap* m, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(m)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}

// box (c0, .., c4) of a 5-D tensor map m into shared memory at dst, completing on mbarrier bar
__device__ __forceinline__ void tma5d(unsigned dst, const TMap* m, int c0, int c1, int c2, int c3, int c4,
                                      unsigned bar) {
    asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5, %6}], [%7];"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(m)), "r"(c0), "r"(c1), "r"(c2), "r"(c3),
                    "r"(c4), "r"(bar) : "memory");
}

// eight f32 accumulators d[i..i+7] as read-write operands of a wgmma asm statement
#define ACC8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
                "+f"(d[i + 6]), "+f"(d[i + 7])

// the 128 accumulator operands of an m64n256 wgmma asm statement
#define WG_REGS128 \
    "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
    "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31," \
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
    "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63," \
    "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79," \
    "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95," \
    "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111," \
    "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"

// d [N / 2] f32 += A (registers a0..a3: the m64 x k16 fp16 operand, as mma.m16n8k16's A a warp) @ B (shared, N x
// k16 fp16, K-major, 128-byte swizzle, descriptor db): wgmma m64nNk16, N 64, 128 or 256
template <int N>
__device__ __forceinline__ void wgmma_rs(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned long long db) {
    static_assert(N == 64 || N == 128 || N == 256, "wgmma_rs: N 64, 128 or 256");
    if constexpr (N == 64) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                     "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                     "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
                     "{%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n"
                     : ACC8(0), ACC8(8), ACC8(16), ACC8(24)
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1));
    } else if constexpr (N == 128) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
                     "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,"
                     "%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
                     "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "
                     "{%64,%65,%66,%67}, %68, p, 1, 1, 0;\n}\n"
                     : ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56)
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1));
    } else {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {" WG_REGS128 "}, "
                     "{%128,%129,%130,%131}, %132, p, 1, 1, 0;\n}\n"
                     : ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56), ACC8(64), ACC8(72),
                       ACC8(80), ACC8(88), ACC8(96), ACC8(104), ACC8(112), ACC8(120)
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1));
    }
}
