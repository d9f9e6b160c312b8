// One-shot all-reduce (sum) and all-gather of small f32 messages over NVLink peer access (gpu/allreduce.py), the
// "custom" backend of tensor parallelism: one kernel per collective per GPU, capturable (everything that changes
// between calls lives in device memory), replayed from every GPU's graph at once.
//
// Buffers of rank r (device r, every peer maps them through peer access):
//   data  f32 [2 parities][AR_WORLD sources][cap]   peers PUSH their chunk into [parity][their rank]
//   flags u32 [AR_MAX_BLOCKS][AR_MAX_WORLD]         flags[b][src] = the last sequence number block b of src released
//   seq   u32 [AR_MAX_BLOCKS]                       block b's calls so far (local: only rank r's kernel touches it)
// Block b always owns elements [b * AR_CHUNK, (b + 1) * AR_CHUNK) of every slot and has its own sequence number, so
// the blocks are independent one-shot collectives and a call with fewer blocks leaves the others' counters alone.
//
// Call with sequence s = seq[b] + 1, parity s & 1, block b of rank r:
//   1. push: in[chunk] -> data_p[s & 1][r][chunk] for every peer p != r (plain stores, remote over NVLink);
//   2. release: fence.acq_rel.sys per thread, __syncthreads, then thread p stores s into flags_p[b][r]
//      (st.release.sys): a peer that sees s also sees the chunk;
//   3. acquire: thread p spins (relaxed.sys loads) until its own flags[b][p] - s >= 0 (wrap-safe), then
//      fence.acq_rel.sys; __syncthreads; spinning longer than timeout_ns prints which peer is missing and traps
//      (an error on both GPUs instead of a hang when a peer's launch never comes);
//   4. combine: sum (or concatenate) the AR_WORLD slots of its own data[s & 1] in rank order 0, 1, ... (its own
//      chunk from registers), so every rank computes bit-identical values; write out[chunk];
//   5. seq[b] = s.
// Why two parities are enough: rank A writes slot parity q of peer B again at sequence s + 2 only after it saw B's
// flag >= s + 1, which B released in a later kernel than the one that read parity q at s (stream order); a rank is
// at most one call ahead of any peer, so flag >= s (never == s) is the wait condition. tests/test_allreduce_cpu.py
// model-checks this protocol.
//
// Grid: ceil(n / AR_CHUNK) blocks (<= AR_MAX_BLOCKS) of AR_THREADS threads; all blocks of all ranks must be resident
// together (they are: a few blocks per GPU, nothing else on the stream). Each thread owns AR_CHUNK / AR_THREADS = 4
// elements of its block's chunk: one float4 when vec (in and out 16-byte aligned, n % 4 == 0), else 4 strided
// scalars. Kernels: ar_oneshot (all-reduce in or out of place, all-gather) and ar_residual (the all-reduce fused with
// the decode residual update x += sum, xh = T(x) and the norm's partial sums of squares).

#ifndef AR_WORLD
#define AR_WORLD 2
#endif
#ifndef AR_THREADS
#define AR_THREADS 256
#endif
#ifndef AR_CHUNK
#define AR_CHUNK 1024
#endif
#ifndef AR_MAX_BLOCKS
#define AR_MAX_BLOCKS 64
#endif
#ifndef AR_MAX_WORLD
#define AR_MAX_WORLD 8
#endif
#include "common.cuh"

#define AR_PER (AR_CHUNK / AR_THREADS)
static_assert(AR_PER == 4, "one float4 per thread");
static_assert(AR_WORLD >= 1 && AR_WORLD <= AR_MAX_WORLD, "world size");

typedef unsigned long long u64;

__device__ __forceinline__ u64 ar_clock() {
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void ar_fence_sys() { asm volatile("fence.acq_rel.sys;" ::: "memory"); }
__device__ __forceinline__ void ar_release(unsigned* p, unsigned v) {
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned ar_poll(const unsigned* p) {
    unsigned v;
    asm volatile("ld.relaxed.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
// Slot reads after the acquire: strong (sys-scope relaxed) loads, never served from a stale L1 line.
__device__ __forceinline__ float4 ar_load4(const float* p) {
    float4 v;
    asm volatile("ld.relaxed.sys.global.v4.f32 {%0,%1,%2,%3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p) : "memory");
    return v;
}
// 16-byte store (the compiler splits a float4 assignment built from registers into 4 scalar stores here).
__device__ __forceinline__ void ar_store4(float* p, float a, float b, float c, float d) {
    asm volatile("st.global.v4.f32 [%0], {%1,%2,%3,%4};" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}
__device__ __forceinline__ float ar_load(const float* p) {
    float v;
    asm volatile("ld.relaxed.sys.global.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
    return v;
}

// The AR_MAX_WORLD base addresses of every rank's data and flags travel as kernel parameters (no dependent global
// load before the first store); loops over ranks are unrolled so the selects are compile-time.
#define AR_PTRS(x) u64 x##0, u64 x##1, u64 x##2, u64 x##3, u64 x##4, u64 x##5, u64 x##6, u64 x##7
#define AR_PICK(x, p) ar_pick(p, x##0, x##1, x##2, x##3, x##4, x##5, x##6, x##7)
__device__ __forceinline__ u64 ar_pick(int p, u64 x0, u64 x1, u64 x2, u64 x3, u64 x4, u64 x5, u64 x6, u64 x7) {
    return p == 0 ? x0 : p == 1 ? x1 : p == 2 ? x2 : p == 3 ? x3 : p == 4 ? x4 : p == 5 ? x5 : p == 6 ? x6 : x7;
}

#define AR_ARGS(x) x##0, x##1, x##2, x##3, x##4, x##5, x##6, x##7

// This thread's elements of block b's chunk: idx[k] (valid when < n); vec: 4 consecutive ones (one float4).
__device__ __forceinline__ void ar_index(long long* idx, int vec) {
#pragma unroll
    for (int k = 0; k < AR_PER; ++k)
        idx[k] = (long long)blockIdx.x * AR_CHUNK + (vec ? AR_PER * threadIdx.x + k : threadIdx.x + k * AR_THREADS);
}

// Steps 1-3 (header): this thread's elements of `in` into mine[], pushed to every peer, the flags released, the
// peers' flags awaited. Returns the call's sequence number s; *slots = this rank's data[s & 1] (all sources).
__device__ __forceinline__ unsigned ar_exchange(const float* in, const unsigned* seq, AR_PTRS(d), AR_PTRS(f), int n,
                                                int rank, int vec, long long cap, long long timeout_ns,
                                                const long long* idx, float* mine, const float** slots) {
    pdl_enter();  // in and seq come from earlier kernels (gpu/pdl.py); the next GEMV may prefetch its weights now
    const int b = blockIdx.x, tid = threadIdx.x;
    const u64 my_data = AR_PICK(d, rank), my_flags = AR_PICK(f, rank), peer_flags = AR_PICK(f, tid);
    __shared__ unsigned s_seq;
    if (tid == 0) s_seq = seq[b] + 1u;
    if (vec) {  // issued before the barrier: this load and the sequence number's are in flight together
        if (idx[0] < n) {
            const float4 v = *reinterpret_cast<const float4*>(in + idx[0]);
            mine[0] = v.x, mine[1] = v.y, mine[2] = v.z, mine[3] = v.w;
        }
    } else {
#pragma unroll
        for (int k = 0; k < AR_PER; ++k)
            if (idx[k] < n) mine[k] = in[idx[k]];
    }
    __syncthreads();
    const unsigned s = s_seq;
    const long long par = s & 1u;
    // 1. push into slot [par][rank] of every peer
#pragma unroll
    for (int p = 0; p < AR_WORLD; ++p) {
        if (p == rank) continue;
        float* dst = reinterpret_cast<float*>(AR_PICK(d, p)) + (par * AR_WORLD + rank) * cap;
        if (vec) {
            if (idx[0] < n) ar_store4(dst + idx[0], mine[0], mine[1], mine[2], mine[3]);
        } else {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k)
                if (idx[k] < n) dst[idx[k]] = mine[k];
        }
    }
    // 2. release: every thread's pushes are performed at system scope before any flag says s
    ar_fence_sys();
    __syncthreads();
    if (tid < AR_WORLD && tid != rank)
        ar_release(reinterpret_cast<unsigned*>(peer_flags) + b * AR_MAX_WORLD + rank, s);
    // 3. acquire: one thread per peer waits for that peer's flag to reach s
    if (tid < AR_WORLD && tid != rank) {
        const unsigned* fl = reinterpret_cast<const unsigned*>(my_flags) + b * AR_MAX_WORLD + tid;
        const u64 t0 = ar_clock();
        unsigned seen;
        while ((int)((seen = ar_poll(fl)) - s) < 0) {
            if ((long long)(ar_clock() - t0) > timeout_ns) {
                printf("cugraphllm all-reduce: rank %d block %d waited %lld ns for rank %d (sequence %u, its flag "
                       "%u): a peer GPU never reached this collective\n", rank, b, timeout_ns, tid, s, seen);
                __trap();
            }
        }
        ar_fence_sys();
    }
    __syncthreads();
    *slots = reinterpret_cast<const float*>(my_data) + par * AR_WORLD * cap;
    return s;
}

// Step 4 (sum): acc[k] = sum over sources in rank order of element idx[k] (this rank's from mine[]).
__device__ __forceinline__ void ar_sum(const float* slots, long long cap, int n, int rank, int vec,
                                       const long long* idx, const float* mine, float* acc) {
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src) {
        float v[AR_PER];
        if (src == rank) {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k) v[k] = mine[k];
        } else if (vec) {
            if (idx[0] < n) {
                const float4 t = ar_load4(slots + src * cap + idx[0]);
                v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
            }
        } else {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k)
                if (idx[k] < n) v[k] = ar_load(slots + src * cap + idx[k]);
        }
#pragma unroll
        for (int k = 0; k < AR_PER; ++k) acc[k] = src == 0 ? v[k] : acc[k] + v[k];
    }
}

// Step 5: this block's call is done (the next kernel on this stream reads it).
__device__ __forceinline__ void ar_done(unsigned* seq, unsigned s) {
    if (threadIdx.x == 0) seq[blockIdx.x] = s;
}

// gather = 0: out[i] = sum over ranks of in[i] (out may be in); gather = 1: out[src * n + i] = in of rank src.
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_oneshot(const float* in, float* out, unsigned* seq, AR_PTRS(d), AR_PTRS(f), int n, int rank, int gather,
           int vec, long long cap, long long timeout_ns) {
    long long idx[AR_PER];
    float mine[AR_PER];
    const float* slots;
    ar_index(idx, vec);
    const unsigned s = ar_exchange(in, seq, AR_ARGS(d), AR_ARGS(f), n, rank, vec, cap, timeout_ns, idx, mine, &slots);
    if (!gather) {
        float acc[AR_PER];
        ar_sum(slots, cap, n, rank, vec, idx, mine, acc);
        if (vec) {
            if (idx[0] < n) ar_store4(out + idx[0], acc[0], acc[1], acc[2], acc[3]);
        } else {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k)
                if (idx[k] < n) out[idx[k]] = acc[k];
        }
    } else {
#pragma unroll
        for (int src = 0; src < AR_WORLD; ++src) {
            float* o = out + (long long)src * n;
            if (vec) {
                if (idx[0] < n) {
                    const float4 v = src == rank ? make_float4(mine[0], mine[1], mine[2], mine[3])
                                                 : ar_load4(slots + src * cap + idx[0]);
                    ar_store4(o + idx[0], v.x, v.y, v.z, v.w);
                }
            } else {
#pragma unroll
                for (int k = 0; k < AR_PER; ++k)
                    if (idx[k] < n) o[idx[k]] = src == rank ? mine[k] : ar_load(slots + src * cap + idx[k]);
            }
        }
    }
    ar_done(seq, s);
}

// The decode residual update of tensor parallelism in one kernel (ops.matmul_residual, M = 1): the all-reduce of the
// partial product p f32 [n], then x f32 [n] += sum, xh T [n] = T(new x), ss[j] = sum of new x^2 over rows
// [j*C, (j+1)*C) (the chunking every fused norm reads, gemv_plan.norm_chunk). x + sum is the same f32 operation as
// kernels/tp.cu residual_add_ss; ss sums in another (fixed) order: per thread its 4 squares, then a butterfly over
// the C/4 lanes of a chunk. Needs (launcher checks): n % 4 == 0, p and x 16-byte aligned, C / 4 a power of two <= 32.
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_residual(const float* p, float* x, T* xh, float* ss, unsigned* seq, AR_PTRS(d), AR_PTRS(f), int n, int rank,
            int C, long long cap, long long timeout_ns) {
    long long idx[AR_PER];
    float mine[AR_PER], acc[AR_PER];
    const float* slots;
    ar_index(idx, 1);
    const unsigned s = ar_exchange(p, seq, AR_ARGS(d), AR_ARGS(f), n, rank, 1, cap, timeout_ns, idx, mine, &slots);
    ar_sum(slots, cap, n, rank, 1, idx, mine, acc);
    float sq = 0.0f;
    if (idx[0] < n) {
        float4 v = *reinterpret_cast<const float4*>(x + idx[0]);
        v.x += acc[0], v.y += acc[1], v.z += acc[2], v.w += acc[3];
        *reinterpret_cast<float4*>(x + idx[0]) = v;
        T* h = xh + idx[0];
        h[0] = from_f(v.x), h[1] = from_f(v.y), h[2] = from_f(v.z), h[3] = from_f(v.w);
        sq = v.x * v.x;
        sq = fmaf(v.y, v.y, sq);
        sq = fmaf(v.z, v.z, sq);
        sq = fmaf(v.w, v.w, sq);
    }
    const int lanes = C / AR_PER;  // every lane of the warp takes part (no early exit above)
    for (int o = 1; o < lanes; o <<= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    if (threadIdx.x % lanes == 0 && idx[0] < n) ss[idx[0] / C] = sq;
    ar_done(seq, s);
}
