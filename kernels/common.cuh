// Shared device helpers for every kernel family in kernels/*.cu.
// Storage dtype `T` is __half or __nv_bfloat16 (selected per module with -DCG_BF16), math in fp32.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#ifdef CG_BF16
typedef __nv_bfloat16 T;
typedef __nv_bfloat162 T2;
// bf16 -> f32 is a 16-bit shift. Plain integer ops, not the cuda_bf16.h intrinsics (inline asm): ptxas schedules
// them with the loads, and the decode GEMVs fit 32 registers (full occupancy) as in fp16, instead of 39-48.
__device__ __forceinline__ float to_f(T x) { return __uint_as_float((unsigned)__bfloat16_as_ushort(x) << 16); }
__device__ __forceinline__ T from_f(float x) { return __float2bfloat16(x); }
__device__ __forceinline__ float2 to_f2(T2 x) {
    const unsigned u = *reinterpret_cast<const unsigned*>(&x);
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xFFFF0000u));
}
#else
typedef __half T;
typedef __half2 T2;
__device__ __forceinline__ float to_f(T x) { return __half2float(x); }
__device__ __forceinline__ T from_f(float x) { return __float2half(x); }
__device__ __forceinline__ float2 to_f2(T2 x) { return __half22float2(x); }
#endif

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ---- additions for the norm / GEMV / sampling families -------------------------------------------------------

// Programmatic dependent launch (gpu/pdl.py): a kernel launched with the PDL attribute may start while the kernel
// before it still runs. It lets the next PDL launch start, then waits until every earlier kernel has completed and
// its writes are visible; call it after issuing loads of never-written data (weights) and before reading anything
// an earlier kernel wrote. Without the attribute, and before sm_90, it costs nothing.
// PDL_LATE (CUGRAPHLLM_PDL_ORDER=late, gpu/cuda_kernels.py; an A/B switch): wait first, then let the next launch
// start, so at most two grids of a PDL chain overlap (early: the next-but-one kernel may be resident while this
// one's predecessor still runs).
__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#ifdef PDL_LATE
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#else
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#endif
}

// 16-byte weight load that bypasses L1 (each weight byte is read once per step; keep L1 for activations).
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// fp32 dot product of two 8-element T vectors packed in uint4 (16 bytes each), accumulated into acc.
__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const unsigned* wp = reinterpret_cast<const unsigned*>(&w);
    const unsigned* xp = reinterpret_cast<const unsigned*>(&x);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        unsigned wb = wp[i], xb = xp[i];
        float2 wf = to_f2(*reinterpret_cast<const T2*>(&wb));
        float2 xf = to_f2(*reinterpret_cast<const T2*>(&xb));
        acc = fmaf(wf.x, xf.x, acc);
        acc = fmaf(wf.y, xf.y, acc);
    }
    return acc;
}

// Decode residual update of rows r0 (and r0 + 1 when has1) by y, in one lane: x += y; with stats, also
// xh = T(new x) and the returned sum of the new x^2 (else 0). x f32, xh T, r0 even (x2 8-byte aligned).
// Two parts (kernels/gemv.cu GEMV_EARLY issues the load long before the store): residual_pair_load reads the old
// x (.y only when has1), residual_pair_add adds y and stores; residual_pair is their composition.
__device__ __forceinline__ float2 residual_pair_load(const float* __restrict__ x, size_t r0, bool has1) {
    return has1 ? *reinterpret_cast<const float2*>(x + r0) : make_float2(x[r0], 0.0f);
}

__device__ __forceinline__ float residual_pair_add(float* __restrict__ x, T* __restrict__ xh, bool stats, size_t r0,
                                                   bool has1, float2 v, float2 y) {
    float sq = 0.0f;
    if (has1) {
        v.x += y.x;
        v.y += y.y;
        *reinterpret_cast<float2*>(x + r0) = v;
        if (stats) {
            T2 t;
            t.x = from_f(v.x);
            t.y = from_f(v.y);
            *reinterpret_cast<T2*>(xh + r0) = t;
            sq = v.x * v.x + v.y * v.y;
        }
    } else {
        const float s = v.x + y.x;
        x[r0] = s;
        if (stats) {
            xh[r0] = from_f(s);
            sq = s * s;
        }
    }
    return sq;
}

__device__ __forceinline__ float residual_pair(float* __restrict__ x, T* __restrict__ xh, bool stats, size_t r0,
                                               bool has1, float2 y) {
    return has1 ? residual_pair_add(x, xh, stats, r0, true, residual_pair_load(x, r0, true), y)
                : residual_pair_add(x, xh, stats, r0, false, residual_pair_load(x, r0, false), y);
}

// Decode qkv epilogue of rows j, j + 1 (one RoPE pair), y their dot products, in one lane. q rows (j < D): rotated
// by RoPE at position pos[0], written to q T [D]; k rows (D <= j < D + KVD): rotated, written to k_cache T [S, KVD]
// at row pos[0]; v rows: written to v_cache T [S, KVD] at row pos[0]. Cache writes only when n_tokens[0] > 0 and
// 0 <= pos < S (never out of bounds). rope_cs f32 [S, hd/2, 2] = (cos, sin) of pos * theta^(-2i/hd).
// Two parts (kernels/gemv.cu GEMV_EARLY issues the loads long before the store): qkv_pair_load reads what earlier
// kernels wrote into a QkvEpi, qkv_pair_rope_store rotates and stores, taking its inputs from a QkvEpi or, in
// qkv_pair_store (their composition for the other callers), from a QkvEpiMem: read where they are used.
struct QkvEpiMem {
    const float* __restrict__ rope_cs;
    const int* __restrict__ p;
    const int* __restrict__ n;
    int hd, S, j;
    __device__ __forceinline__ int pos() const { return p[0]; }
    __device__ __forceinline__ int n_tokens() const { return n[0]; }
    __device__ __forceinline__ float2 rope(int pos) const {  // (cos, sin) of this pair at pos
        const int pr = min(max(pos, 0), S - 1);  // table row; the clamp matters only for a position past S
        return reinterpret_cast<const float2*>(rope_cs)[(size_t)pr * (hd >> 1) + ((j % hd) >> 1)];
    }
};

struct QkvEpi {
    int p;      // pos[0]
    int n;      // n_tokens[0] (k / v rows only)
    float2 cs;  // this pair's (cos, sin) at pos[0] (q / k rows only)
    __device__ __forceinline__ int pos() const { return p; }
    __device__ __forceinline__ int n_tokens() const { return n; }
    __device__ __forceinline__ float2 rope(int) const { return cs; }
};

__device__ __forceinline__ QkvEpi qkv_pair_load(const float* __restrict__ rope_cs, const int* __restrict__ pos,
                                                const int* __restrict__ n_tokens, int D, int KVD, int hd, int S,
                                                int j) {
    const QkvEpiMem m{rope_cs, pos, n_tokens, hd, S, j};
    QkvEpi e;
    e.p = m.pos();
    if (j < D + KVD) e.cs = m.rope(e.p);
    if (j >= D) e.n = m.n_tokens();
    return e;
}

template <class In>
__device__ __forceinline__ void qkv_pair_rope_store(T* __restrict__ q, T* __restrict__ k_cache,
                                                    T* __restrict__ v_cache, const In& in, int D, int KVD, int S,
                                                    int j, float2 y) {
    const int p = in.pos();
    if (j < D + KVD) {
        const float2 cs = in.rope(p);
        y = make_float2(y.x * cs.x - y.y * cs.y, y.x * cs.y + y.y * cs.x);
    }
    T2 v;
    v.x = from_f(y.x);
    v.y = from_f(y.y);
    if (j < D) {
        reinterpret_cast<T2*>(q)[j >> 1] = v;
    } else if (in.n_tokens() > 0 && p >= 0 && p < S) {
        T* dst = (j < D + KVD ? k_cache : v_cache) + (size_t)p * KVD;  // row pos of [S, KVD]
        reinterpret_cast<T2*>(dst)[(j < D + KVD ? j - D : j - D - KVD) >> 1] = v;
    }
}

__device__ __forceinline__ void qkv_pair_store(T* __restrict__ q, T* __restrict__ k_cache, T* __restrict__ v_cache,
                                               const float* __restrict__ rope_cs, const int* __restrict__ pos,
                                               const int* __restrict__ n_tokens, int D, int KVD, int hd, int S, int j,
                                               float2 y) {
    qkv_pair_rope_store(q, k_cache, v_cache, QkvEpiMem{rope_cs, pos, n_tokens, hd, S, j}, D, KVD, S, j, y);
}

// The KSPLIT warps sharing a row pair (warps ks = warp % KSPLIT of one group) add their partial sums in a fixed
// order (split 0, 1, ...: deterministic); the total is valid in split 0's warp. Whole block (one barrier).
template <int KSPLIT, int WARPS>
__device__ __forceinline__ float2 ksplit_sum(float2 y) {
    if (KSPLIT > 1) {
        __shared__ float2 red[WARPS];
        const int warp = threadIdx.x >> 5;
        if ((threadIdx.x & 31) == 0) red[warp] = y;
        __syncthreads();
        if (warp % KSPLIT == 0) {
            y = red[warp];
#pragma unroll
            for (int j = 1; j < KSPLIT; ++j) {
                y.x += red[warp + j].x;
                y.y += red[warp + j].y;
            }
        }
    }
    return y;
}

// Block-wide sum with a fixed reduction order (deterministic for a given blockDim). scratch: >= 32 floats.
// Every thread gets the result. Must be called by all threads of the block.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < nwarps ? scratch[lane] : 0.0f;
    return warp_sum(t);
}

// Block-wide (sum of v.x, max of v.y) in ONE barrier, the sum in block_sum's order (deterministic for a given
// blockDim); a false `sum` / `max` (a constant after inlining) skips that half and returns 0 for it. scratch:
// >= 32 float2 that no earlier call still reads (one call per kernel, or a barrier between). Whole block.
__device__ __forceinline__ float2 block_sum_max(float2 v, float2* scratch, bool sum, bool max) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = make_float2(sum ? warp_sum(v.x) : 0.0f, max ? warp_max(v.y) : 0.0f);
    if (lane == 0 && (sum || max)) scratch[warp] = v;
    __syncthreads();
    if (!sum && !max) return v;
    const float2 t = lane < nwarps ? scratch[lane] : make_float2(0.0f, 0.0f);
    return make_float2(sum ? warp_sum(t.x) : 0.0f, max ? warp_max(t.y) : 0.0f);
}

// Input of a fused norm (gemv.cu, gemv_quant.cu): ss f32 [n] partial sums of squares of x (ss == nullptr: no
// norm), eps.
struct NormIn {
    const float* ss;
    int n;
    float eps;
};
#define NO_NORM NormIn{nullptr, 0, 0.0f}

// inv_rms = rsqrt(sum(ss) / K + eps); fixed summation order for a given blockDim. All threads must call it.
__device__ __forceinline__ float norm_inv(const NormIn& nm, int K) {
    __shared__ float nscratch[32];
    float s = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < nm.n; i += blockDim.x) s += nm.ss[i];
    return rsqrtf(block_sum(s, nscratch) / (float)K + nm.eps);
}

// Tensor cores (sm_80+): c[16x8 f32] += a[16x16] * b[16x8] with T operands, fp32 accumulate (mma.sync m16n8k16).
__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
#if __CUDA_ARCH__ >= 800
#ifdef CG_BF16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
#endif
}

// A grid ticket (the v3 sampler's draw, the prefill attention's key split). Thread 0 of each block, after a
// __syncthreads that follows all of the block's global writes: release them (the fence is cumulative over the
// barrier, as in cooperative groups' grid sync), take a ticket; the last block's fence then acquires every block's
// writes (its other threads see them after a __syncthreads). The caller resets *ctr for the next launch.
__device__ __forceinline__ bool last_ticket(unsigned* ctr, unsigned G) {
    unsigned old;
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
    asm volatile("atom.relaxed.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(ctr) : "memory");
    const bool last = old == G - 1u;
    if (last) asm volatile("fence.acq_rel.gpu;" ::: "memory");
    return last;
}
