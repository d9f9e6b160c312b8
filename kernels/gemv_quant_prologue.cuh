// The prologue of the quantized decode GEMVs (XPro, xpro_gain, xpro_load, park_in, for_staged, norm_inv_of_sum):
// the fused norm's ss partials and the activation loaded in one round, for every staging. Part of gemv_quant.cu's
// module (included by gemv_quant.cuh after the staged-activation helpers); compiled only through gemv_quant.cu.

// ---- prologue: the ss partial sums and the activation in one round of global loads ---------------------------
// After pdl_enter a block needs inv_rms (the sum of the ss partials, fused norms) and the staged x (half stagings:
// its block-wide |x| max first). Both come from the previous kernel, so all their loads are issued together,
// before any arithmetic that consumes them; the sum and the max then share one block reduction (block_sum_max).
// A thread's chunks i = threadIdx.x + r * blockDim.x, r < QG_XREGS, stay in registers between the staging's passes
// (8 floats each; further chunks, K > 8 x QG_XREGS x threads, are loaded again by the second pass).
#ifndef QG_XREGS
#define QG_XREGS (QG_THREADS >= 512 ? 1 : 2)  // K 4096: 512 chunks (a 512-thread block's prologue stays at 64 regs)
#endif
#define QG_SSREGS 4       // ss partials a thread loads with the activation (7B / 70B: 512 / 1024 partials)

// NormIn / NO_NORM: common.cuh (shared with gemv.cu)
struct XPro {
    float x[QG_XREGS][8];  // x of the thread's kept chunks (their gain before xpro_load; 0 past K)
    float s, m;            // this thread's sum of ss partials, its max |x| over all its chunks (0 unless asked)
};

// Before pdl_enter (gain is a weight: no earlier kernel writes it): x = gain of the kept chunks, or 1.
__device__ __forceinline__ void xpro_gain(XPro& p, const QArgs& w) {
    const int nchunk = (w.K & 7) == 0 ? w.K >> 3 : 0;
#pragma unroll
    for (int r = 0; r < QG_XREGS; ++r) {
        const int i = threadIdx.x + r * blockDim.x;
        float4 g0 = make_float4(1.0f, 1.0f, 1.0f, 1.0f), g1 = g0;
        if (w.gain && i < nchunk) {
            g0 = reinterpret_cast<const float4*>(w.gain)[2 * i];
            g1 = reinterpret_cast<const float4*>(w.gain)[2 * i + 1];
        }
        const float g[8] = {g0.x, g0.y, g0.z, g0.w, g1.x, g1.y, g1.z, g1.w};
#pragma unroll
        for (int c = 0; c < 8; ++c) p.x[r][c] = g[c];
    }
}

// Where the half and tile stagings park a's chunks between their two passes (xpro_load, for_staged): chunk i's own
// 16 bytes of the staging xh, at the slot its staging fills (the Slot functor); nowhere under QG_PARK 0.
__device__ __forceinline__ uint4* park_in(__half* xh) { return QG_PARK ? reinterpret_cast<uint4*>(xh) : nullptr; }
struct SameSlot {
    __device__ __forceinline__ int operator()(int i) const { return i; }
};

// After pdl_enter: ss partials and the kept chunks of a loaded together, then p.s, p.x (x = gain * a, as chunk_f)
// and, with need_max, p.m over all of the thread's columns; that pass parks the raw 16 bytes of each chunk i past
// the kept ones at park[slot(i)] (shared memory: the slot the staging will fill with chunk i; nullptr: nowhere), so
// the staging reads a once (for_staged). Every block reads all of a at once: the nineteenth session's knockouts
// put a second pass over it at 1.3-5.9 us on the 13B / 70B shapes (13B w2: 5.9 of the kernel's 20.4).
template <class Slot>
__device__ __forceinline__ void xpro_load(XPro& p, const T* __restrict__ a, const QArgs& w, const NormIn& nm,
                                          bool need_max, uint4* park, Slot slot) {
    const int K = w.K, nchunk = (K & 7) == 0 ? K >> 3 : 0, tid = threadIdx.x, bd = blockDim.x;
    float sv[QG_SSREGS];
#pragma unroll
    for (int r = 0; r < QG_SSREGS; ++r) sv[r] = tid + r * bd < nm.n ? QG_LDP(nm.ss + (tid + r * bd)) : 0.0f;
    uint4 av[QG_XREGS];
#pragma unroll
    for (int r = 0; r < QG_XREGS; ++r)
        av[r] = tid + r * bd < nchunk ? a_chunk(a, w, tid + r * bd) : make_uint4(0u, 0u, 0u, 0u);
    float s = 0.0f;  // the order of norm_inv's loop before: i = tid, tid + bd, ...
#pragma unroll
    for (int r = 0; r < QG_SSREGS; ++r) s += sv[r];
    for (int i = tid + QG_SSREGS * bd; i < nm.n; i += bd) s += QG_LDP(nm.ss + i);
    p.s = s;
    float m = 0.0f;
#pragma unroll
    for (int r = 0; r < QG_XREGS; ++r) {
        const unsigned* vp = reinterpret_cast<const unsigned*>(&av[r]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float2 f = to_f2(*reinterpret_cast<const T2*>(vp + e));
            p.x[r][2 * e] = f.x * p.x[r][2 * e];
            p.x[r][2 * e + 1] = f.y * p.x[r][2 * e + 1];
        }
#pragma unroll
        for (int c = 0; c < 8; ++c) m = fmaxf(m, fabsf(p.x[r][c]));
    }
    if (need_max && !(QG_KO & 16)) {  // KO 16 (bench only): no max pass over the chunks past the kept ones
        for_chunks(a, w, tid + QG_XREGS * bd, nchunk, [&](const float* f, int) {
#pragma unroll
            for (int c = 0; c < 8; ++c) m = fmaxf(m, fabsf(f[c]));
        }, [&](const uint4& v, int i) { if (park) park[slot(i)] = v; });
        if (nchunk == 0)
            for (int j = tid; j < K; j += bd) m = fmaxf(m, fabsf(staged_x(a, w, j)));
    }
    p.m = m;
}

__device__ __forceinline__ void xpro_load(XPro& p, const T* __restrict__ a, const QArgs& w, const NormIn& nm,
                                          bool need_max) {
    xpro_load(p, a, w, nm, need_max, nullptr, SameSlot());
}

// fn(f, i) for this thread's chunks of the staging, f their x: the kept ones (p.x, xpro_load) first, then the rest:
// PARKED, read back from where xpro_load parked them (park[slot(i)], this thread's own: no barrier between the
// passes; fn may overwrite chunk i's slot), else loaded again (for_chunks). K a multiple of 8.
template <bool PARKED, class Fn, class Slot = SameSlot>
__device__ __forceinline__ void for_staged(const XPro& p, const T* __restrict__ a, const QArgs& w, int nchunk, Fn fn,
                                           const uint4* park = nullptr, Slot slot = Slot()) {
#pragma unroll
    for (int r = 0; r < QG_XREGS; ++r) {
        const int i = threadIdx.x + r * blockDim.x;
        if (i < nchunk) fn(p.x[r], i);
    }
    if constexpr (PARKED) {
        for (int i = threadIdx.x + QG_XREGS * blockDim.x; i < nchunk; i += blockDim.x) {
            float f[8];
            chunk_f(f, park[slot(i)], w, i);
            fn(f, i);
        }
    } else {
        for_chunks(a, w, threadIdx.x + QG_XREGS * blockDim.x, nchunk, fn);
    }
}

// inv_rms from the block-wide sum of the ss partials (common.cuh norm_inv also loads and sums them)
__device__ __forceinline__ float norm_inv_of_sum(const NormIn& nm, float ss_sum, int K) {
    return nm.ss ? rsqrtf(ss_sum / (float)K + nm.eps) : 1.0f;
}
