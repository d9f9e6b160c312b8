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

// box (c0, c1) of tensor map m into shared memory at dst, completing on mbarrier bar
__device__ __forceinline__ void tma2d(unsigned dst, const TMap* m, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(m)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}

// eight f32 accumulators d[i..i+7] as read-write operands of a wgmma asm statement
#define ACC8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
                "+f"(d[i + 6]), "+f"(d[i + 7])
