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
// Shared helpers and the defaults of the size defines: allreduce_common.cuh.

#include "allreduce_common.cuh"

__device__ __forceinline__ void ar_fence_sys() { asm volatile("fence.acq_rel.sys;" ::: "memory"); }
__device__ __forceinline__ void ar_release(unsigned* p, unsigned v) {
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned ar_poll(const unsigned* p) {
    unsigned v;
    asm volatile("ld.relaxed.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
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
        ar_write(out, n, vec, idx, acc);
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
// [j*C, (j+1)*C) (the chunking every fused norm reads, gemv_plan.norm_chunk; allreduce_common.cuh
// ar_residual_update). Needs (launcher checks): n % 4 == 0, p and x 16-byte aligned, C / 4 a power of two <= 32.
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_residual(const float* p, float* x, T* xh, float* ss, unsigned* seq, AR_PTRS(d), AR_PTRS(f), int n, int rank,
            int C, long long cap, long long timeout_ns) {
    long long idx[AR_PER];
    float mine[AR_PER], acc[AR_PER];
    const float* slots;
    ar_index(idx, 1);
    const unsigned s = ar_exchange(p, seq, AR_ARGS(d), AR_ARGS(f), n, rank, 1, cap, timeout_ns, idx, mine, &slots);
    ar_sum(slots, cap, n, rank, 1, idx, mine, acc);
    ar_residual_update(x, xh, ss, n, C, idx, acc);
    ar_done(seq, s);
}
