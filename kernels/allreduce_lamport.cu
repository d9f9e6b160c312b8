// One-shot all-reduce (sum) and all-gather of small f32 messages over NVLink peer access in which every pushed value
// is its own readiness signal (Lamport style; gpu/allreduce.py, CUGRAPHLLM_ALLREDUCE=lamport): no fence and no flag
// on the data path, where allreduce.cu pays a fence.acq_rel.sys before and after a flag round trip. Same grid, same
// element ownership, same rank-order sum (allreduce_common.cuh), so the same bits as allreduce.cu.
//
// Buffers of rank r (device r, every peer maps them through peer access):
//   data f32 [AR_GENS = 3 generations][AR_WORLD sources][cap]  peers PUSH into [gen][their rank]; an element no
//        value has reached holds AR_EMPTY (the buffer starts so; slot [gen][r] is never used)
//   seq  u32 [AR_MAX_BLOCKS]  block b's calls so far modulo AR_SEQ_WRAP = 3 * 2^30 (local). The graph replays the
//        same parameters every step, so the call number must live in device memory; the wrap is a multiple of 3 so
//        that s % 3 steps 0, 1, 2, 0, ... across it (a wrap at 2^32 would use one generation twice in a row).
//
// Call s = seq[b] + 1 (mod AR_SEQ_WRAP), generation g = s % 3, block b of rank r:
//   1. push: v = in[chunk], AR_EMPTY replaced by another NaN (lp_value), st.relaxed.sys into data_p[g][r][chunk]
//      of every peer p (remote over NVLink); v stays in registers as this rank's own addend;
//   2. reset: data_r[(s + 2) % 3][src][chunk] = AR_EMPTY for every src != r (the whole chunk: elements a call did
//      not cover were never written and are empty already);
//   3. poll: strong loads (ld.relaxed.sys: never a stale L1 line) of data_r[g][p][this thread's elements] until no
//      element is AR_EMPTY; the values of the successful load are the addends. Spinning longer than timeout_ns
//      prints which peer is missing and traps (an error on every GPU instead of a hang when a launch never comes);
//   4. combine: sum (or concatenate) in rank order 0, 1, ... as allreduce.cu; write out[chunk]; 5. seq[b] = s.
//
// Kernel order. Every kernel of a step is a programmatic dependent launch (gpu/pdl.py) that calls pdl_enter()
// (common.cuh) before touching memory an earlier kernel wrote: griddepcontrol.wait returns once the preceding grid
// on the stream has completed and its memory operations are performed and visible; that grid waited for its own
// predecessor in the same way (a kernel launched without PDL is fully serialized), so "call s of this rank
// completed, its stores performed" holds at the pdl_enter() of any later kernel, whatever runs in between (as long as
// every PDL kernel's blocks pass pdl_enter() before they exit, as the GEMVs, the attention and these kernels do; the
// flag protocol's two parities rest on the same order). Here pdl_enter() comes first: no push, reset or load of the
// buffers precedes it.
// Why a rank is at most one call ahead of a peer: it cannot finish call s before it has loaded every element of
// every peer's call s, which each peer pushes only inside its own call s.
// Why the reset never erases a value: peers write data_r[(s + 2) % 3] = data_r[(s - 1) % 3] in calls s - 1 and
// s + 2 only. (a) Call s - 1's pushes: r loaded every one of them (non-empty) in its call s - 1, so each was
// performed at r's memory before r's call s starts (kernel order). (b) Call s + 2's pushes: a peer q issues them
// after its pdl_enter() in call s + 2, so after q's call s + 1 completed, which needed r's call s + 1 values; r
// pushed those after its pdl_enter() in call s + 1, so after r's call s, the reset included, was performed. So the
// reset reaches r's memory between the last use of a generation and its next. With 2 generations the generation
// r resets in call s would be the one a peer already in call s + 1 writes into (tests/lamport_model.py models this
// protocol for tests/test_allreduce_cpu.py and catches that variant, a reset of the wrong generation, a missing or
// partial reset, a missing kernel boundary, a 2^32 wrap and an unmapped sentinel).
// Why a non-empty value is fresh: data_r[g] was last reset in call s - 2, after its previous use (call s - 3) and,
// by (b) for s - 2, before any peer's call s push; so it holds AR_EMPTY or call s's values.
// Sentinel: AR_EMPTY = 0xFFFFFFFF, a NaN with a full payload (GPU arithmetic makes the canonical NaN 0x7FFFFFFF);
// a sender replaces an input of exactly 0xFFFFFFFF by 0x7FFFFFFF (still a NaN: every sum with it is NaN), so every
// other value, -0.0 included, travels unchanged and every sum that is not a NaN equals allreduce.cu's bit for bit
// (a -0.0 sentinel would turn a sum of -0.0s into +0.0); its bytes are all 0xFF (the launcher fills the buffers).
// Every access to the buffers is strong (relaxed.sys), so the racing pushes and polls are no data race; a 4-byte
// element is single-copy atomic, a 16-byte push may land piecewise: every element is checked.
//
// Kernels: ar_lamport (all-reduce in or out of place, all-gather) and ar_lamport_residual (the all-reduce fused with
// the decode residual update, as allreduce.cu ar_residual). Grid: ceil(n / AR_CHUNK) blocks of AR_THREADS threads,
// all resident on all ranks together.
#include "allreduce_common.cuh"

#define AR_GENS 3
#define AR_SEQ_WRAP 3221225472u  // 3 * 2^30
#define AR_EMPTY 0xFFFFFFFFu
#define AR_QNAN 0x7FFFFFFFu
static_assert(AR_SEQ_WRAP % AR_GENS == 0, "the generation must step by one across the wrap");

__device__ __forceinline__ float lp_value(float v) {
    return __float_as_uint(v) == AR_EMPTY ? __uint_as_float(AR_QNAN) : v;
}
__device__ __forceinline__ bool lp_empty(float v) { return __float_as_uint(v) == AR_EMPTY; }
__device__ __forceinline__ void lp_store4(float* p, float a, float b, float c, float d) {
    asm volatile("st.relaxed.sys.global.v4.f32 [%0], {%1,%2,%3,%4};" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d)
                 : "memory");
}
__device__ __forceinline__ void lp_store(float* p, float v) {
    asm volatile("st.relaxed.sys.global.f32 [%0], %1;" ::"l"(p), "f"(v) : "memory");
}

// Spun longer than timeout_ns on element i from rank src: one line per block (the first thread), then trap.
__device__ __noinline__ void lp_missing(int* said, int rank, int src, unsigned s, long long i, long long timeout_ns) {
    if (atomicExch(said, 1) == 0)
        printf("cugraphllm all-reduce (lamport): rank %d block %d waited %lld ns for element %lld from rank %d (call "
               "%u, generation %u): a peer GPU never reached this collective\n", rank, (int)blockIdx.x, timeout_ns,
               i, src, s, s % AR_GENS);
    __trap();
}

// Step 3 for one peer: its values of this thread's elements, once none is empty (vec: one float4).
__device__ __forceinline__ void lp_poll(const float* slot, int n, int vec, const long long* idx, float* v, int* said,
                                        int rank, int src, unsigned s, long long timeout_ns) {
    u64 t0 = 0;
    if (vec) {
        if (idx[0] < n) {
            for (;;) {
                const float4 t = ar_load4(slot + idx[0]);
                v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
                if (!(lp_empty(t.x) | lp_empty(t.y) | lp_empty(t.z) | lp_empty(t.w))) break;
                if (t0 == 0) t0 = ar_clock();  // the clock only once a value is late
                else if ((long long)(ar_clock() - t0) > timeout_ns) lp_missing(said, rank, src, s, idx[0], timeout_ns);
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < AR_PER; ++k) {
            if (idx[k] >= n) continue;
            while (lp_empty(v[k] = ar_load(slot + idx[k]))) {
                if (t0 == 0) t0 = ar_clock();
                else if ((long long)(ar_clock() - t0) > timeout_ns) lp_missing(said, rank, src, s, idx[k], timeout_ns);
            }
        }
    }
}

// Steps 1-3: got[src][k] = rank src's value of this thread's element idx[k] (where < n), in rank order. Returns s.
__device__ __forceinline__ unsigned lp_exchange(const float* in, const unsigned* seq, AR_PTRS(d), int n, int rank,
                                                int vec, long long cap, long long timeout_ns, const long long* idx,
                                                float (*got)[AR_PER]) {
    pdl_enter();  // in, seq and the buffers' last call come from earlier kernels: see "Kernel order" above
    const int b = blockIdx.x, tid = threadIdx.x;
    __shared__ unsigned s_seq;
    __shared__ int s_said;
    if (tid == 0) {
        const unsigned s = seq[b] + 1u;
        s_seq = s == AR_SEQ_WRAP ? 0u : s;
        s_said = 0;
    }
    float mine[AR_PER] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (vec) {  // issued before the barrier: this load and the call number's are in flight together
        if (idx[0] < n) {
            const float4 v = *reinterpret_cast<const float4*>(in + idx[0]);
            mine[0] = lp_value(v.x), mine[1] = lp_value(v.y), mine[2] = lp_value(v.z), mine[3] = lp_value(v.w);
        }
    } else {
#pragma unroll
        for (int k = 0; k < AR_PER; ++k)
            if (idx[k] < n) mine[k] = lp_value(in[idx[k]]);
    }
    __syncthreads();
    const unsigned s = s_seq;
    const long long g = s % AR_GENS, old = (s + 2u) % AR_GENS;
#pragma unroll
    for (int p = 0; p < AR_WORLD; ++p) {  // 1. push into slot [g][rank] of every peer
        if (p == rank) continue;
        float* dst = reinterpret_cast<float*>(AR_PICK(d, p)) + (g * AR_WORLD + rank) * cap;
        if (vec) {
            if (idx[0] < n) lp_store4(dst + idx[0], mine[0], mine[1], mine[2], mine[3]);
        } else {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k)
                if (idx[k] < n) lp_store(dst + idx[k], mine[k]);
        }
    }
    float* my = reinterpret_cast<float*>(AR_PICK(d, rank));
    const float e = __uint_as_float(AR_EMPTY);
    const long long mine_off = (long long)b * AR_CHUNK + AR_PER * tid;  // the vec layout covers the whole chunk
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src)  // 2. reset generation (s + 2) % 3, the whole chunk of this block
        if (src != rank) lp_store4(my + (old * AR_WORLD + src) * cap + mine_off, e, e, e, e);
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src) {  // 3. poll each peer's slot of generation g
        if (src == rank) {
#pragma unroll
            for (int k = 0; k < AR_PER; ++k) got[src][k] = mine[k];
        } else {
            lp_poll(my + (g * AR_WORLD + src) * cap, n, vec, idx, got[src], &s_said, rank, src, s, timeout_ns);
        }
    }
    return s;
}

// Step 4 (sum in rank order, as allreduce.cu ar_sum) and step 5.
__device__ __forceinline__ void lp_sum(const float (*got)[AR_PER], float* acc) {
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src)
#pragma unroll
        for (int k = 0; k < AR_PER; ++k) acc[k] = src == 0 ? got[src][k] : acc[k] + got[src][k];
}
__device__ __forceinline__ void lp_done(unsigned* seq, unsigned s) {
    if (threadIdx.x == 0) seq[blockIdx.x] = s;
}

// gather = 0: out[i] = sum over ranks of in[i] (out may be in); gather = 1: out[src * n + i] = in of rank src.
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_lamport(const float* in, float* out, unsigned* seq, AR_PTRS(d), int n, int rank, int gather, int vec,
           long long cap, long long timeout_ns) {
    long long idx[AR_PER];
    float got[AR_WORLD][AR_PER] = {};
    ar_index(idx, vec);
    const unsigned s = lp_exchange(in, seq, AR_ARGS(d), n, rank, vec, cap, timeout_ns, idx, got);
    if (!gather) {
        float acc[AR_PER];
        lp_sum(got, acc);
        ar_write(out, n, vec, idx, acc);
    } else {
#pragma unroll
        for (int src = 0; src < AR_WORLD; ++src) ar_write(out + (long long)src * n, n, vec, idx, got[src]);
    }
    lp_done(seq, s);
}

// allreduce.cu ar_residual over this protocol: x f32 [n] += sum over ranks of p f32 [n], xh T [n] = T(new x),
// ss = the norm's partial sums of squares in chunks of C (allreduce_common.cuh ar_residual_update). Needs (launcher
// checks): n % 4 == 0, p and x 16-byte aligned, C / 4 a power of two <= 32.
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_lamport_residual(const float* p, float* x, T* xh, float* ss, unsigned* seq, AR_PTRS(d), int n, int rank, int C,
                    long long cap, long long timeout_ns) {
    long long idx[AR_PER];
    float got[AR_WORLD][AR_PER] = {}, acc[AR_PER];
    ar_index(idx, 1);
    const unsigned s = lp_exchange(p, seq, AR_ARGS(d), n, rank, 1, cap, timeout_ns, idx, got);
    lp_sum(got, acc);
    ar_residual_update(x, xh, ss, n, C, idx, acc);
    lp_done(seq, s);
}
