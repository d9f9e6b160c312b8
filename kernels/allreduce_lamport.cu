// One-shot all-reduce (sum) and all-gather of small f32 messages over NVLink peer access in which every pushed value
// is its own readiness signal (Lamport style; gpu/allreduce.py, CUGRAPHLLM_ALLREDUCE=lamport): no fence and no flag
// on the data path, where allreduce.cu pays a fence.acq_rel.sys before and after a flag round trip. Same grid, same
// element ownership, same rank-order sum (allreduce_common.cuh), so the same bits as allreduce.cu.
//
// Buffers of rank r (device r, every peer maps them through peer access):
//   data f32 [AR_GENS = 3 generations][AR_WORLD sources][cap]  peers PUSH into [gen][their rank]; an element no
//        value has reached holds AR_EMPTY (the buffer starts so; slot [gen][r] is never used)
//   seq  u32 [1024]  block b's calls so far modulo AR_SEQ_WRAP = 3 * 2^30 (local). The graph replays the
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
// Messages above AR_CHUNK * AR_MAX_BLOCKS (prefill: [M, D] f32, up to the cap the launcher sized the slots for) go to
// ar_lamport_wide: a grid of G = min(wide, chunks) blocks, wide >= AR_MAX_BLOCKS fixed per set of buffers
// (gpu/allreduce.py lamport_chunks), block b handling chunks b, b + G, b + 2G, ... (G = wide whenever a block has more
// than one): chunk c always belongs to block c % wide, in decode calls too (there c < AR_MAX_BLOCKS <= wide), so seq[b]
// numbers every call that touches chunk c's slots, and one call has one s and one generation for all the chunks of a
// block. Its inputs (cuBLAS's partial sums) pass through lp_value as decode ones do: the sentinel argument holds. Chunk
// b, a block's first, is a decode chunk as above (step 2's reset ahead, of the whole chunk). A later chunk (c >= wide)
// is reset after it is read instead: once the poll saw a value, the same thread stores AR_EMPTY over it (only elements
// a call covers are ever pushed, so whatever a call leaves uncovered stays empty, however the calls' sizes change: a
// reset ahead would have to cover every chunk up to the cap in every call, decode ones included). Why that reset never
// erases a value: the next push into data_r[g][q][c] is peer q's call s + 3, issued after q's pdl_enter() there, so
// after q's call s + 2 completed, which read r's call s + 2 values, which r pushed after its pdl_enter() in call s + 2,
// after r's call s and its reset were performed. Why a value seen is fresh: every earlier push into that slot was read,
// then reset, in its own call. Order inside a block: push every chunk, reset ahead chunk b, then poll, sum and reset
// after, AR_WIDE_U chunks at a time (their loads in flight together); this rank's addend is loaded from `in` again for
// the sum (in may be out: each thread rewrites only the elements it read).
//
// Kernels: ar_lamport (all-reduce in or out of place, all-gather), ar_lamport_residual (the all-reduce fused with
// the decode residual update, as allreduce.cu ar_residual) and ar_lamport_wide (all-reduce of a message above the
// decode cap). Grid: ceil(n / AR_CHUNK) blocks of AR_THREADS threads (wide: min(wide, chunks)); a block waits only
// for the same block of its peers, which pushed before they poll, so no block waits for one that cannot start.
// Files: the buffers' element accesses (lp_value, the strong stores, lp_missing, lp_poll) are in
// allreduce_lamport_io.cuh; ar_lamport_wide's defines AR_PACKED and AR_WIDE_U and its per-chunk helpers (lw_elem ..
// lw_push, lw_add_packed) in allreduce_lamport_wide.cuh; lw_pull, lw_all and the kernels here.
#include "allreduce_common.cuh"

#define AR_GENS 3
#define AR_SEQ_WRAP 3221225472u  // 3 * 2^30
#define AR_EMPTY 0xFFFFFFFFu
#define AR_QNAN 0x7FFFFFFFu
static_assert(AR_SEQ_WRAP % AR_GENS == 0, "the generation must step by one across the wrap");

#include "allreduce_lamport_io.cuh"  // lp_value, lp_empty, lp_store4, lp_store, lp_missing, lp_poll

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

// ---- ar_lamport_wide: messages above AR_CHUNK * AR_MAX_BLOCKS (see "Messages above" at the top) ----------------
#include "allreduce_lamport_wide.cuh"  // AR_PACKED, AR_WIDE_U; lw_elem .. lw_store, LwCall, lw_push, lw_add_packed

// Steps 3-4 for NB chunks of the block from its j-th on: every load (this rank's addends from in, the peers' from
// the slots) issued before any is waited for; the sum in lp_sum's rank order; then the reset after read (but of the
// block's first chunk, reset ahead in step 2).
template <int VEC, int NB>
__device__ __forceinline__ void lw_pull(const LwCall& k, int j) {
    float mine[NB][AR_PER], got[AR_WORLD][NB][AR_PER];  // got[rank] unused
#pragma unroll
    for (int u = 0; u < NB; ++u) lw_mine<VEC>(k.in, k.n, k.b + (j + u) * k.G, mine[u]);
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src)
#pragma unroll
        for (int u = 0; u < NB; ++u)
            if (src != k.rank) lw_load<VEC>(k.mine + src * k.cap, k.b + (j + u) * k.G, got[src][u]);
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src)
#pragma unroll
        for (int u = 0; u < NB; ++u) {
            if (src == k.rank) continue;
            const int c = k.b + (j + u) * k.G;
            u64 t0 = 0;
            while (lw_empty<VEC>(got[src][u], k.n, c)) {  // as lp_poll
                if (t0 == 0) t0 = ar_clock();
                else if ((long long)(ar_clock() - t0) > k.timeout_ns)
                    lp_missing<1>(k.said, k.rank, src, k.s, lw_elem<VEC>(c, 0), k.timeout_ns);
                lw_load<VEC>(k.mine + src * k.cap, c, got[src][u]);
            }
        }
    const float e = __uint_as_float(AR_EMPTY);
    const float ee[AR_PER] = {e, e, e, e};
#pragma unroll
    for (int u = 0; u < NB; ++u) {
        const int c = k.b + (j + u) * k.G;
#if AR_PACKED
        lw_add_packed<NB>(k, lw_elem<1>(c, 0), mine[u], got, u);
#else
        float acc[AR_PER];
        long long idx[AR_PER];
#pragma unroll
        for (int q = 0; q < AR_PER; ++q) {
            idx[q] = lw_elem<VEC>(c, q);
#pragma unroll
            for (int src = 0; src < AR_WORLD; ++src) {
                const float x = src == k.rank ? mine[u][q] : got[src][u][q];
                acc[q] = src == 0 ? x : acc[q] + x;
            }
        }
        if (k.add) {  // x + (sum in rank order): the same f32 operations as the all-reduce, then tp.cu residual_add
            float x[AR_PER];
            lw_mine<VEC>(k.out, k.n, c, x);  // out's own elements (lp_value's mapping never applies: x is finite)
#pragma unroll
            for (int q = 0; q < AR_PER; ++q) acc[q] = x[q] + acc[q];
        }
        ar_write(k.out, k.n, VEC, idx, acc);
#endif
        if (j + u == 0) continue;
#pragma unroll
        for (int src = 0; src < AR_WORLD; ++src)
            if (src != k.rank) lw_store<VEC>(k.mine + src * k.cap, k.n, c, ee);
    }
}

// Step 1 (PULL = 0) or steps 3-4 (PULL = 1) over the block's m chunks, AR_WIDE_U at a time (the rest one by one).
template <int VEC, int PULL>
__device__ __forceinline__ void lw_all(const LwCall& k) {
    int j = 0;
    for (; j + AR_WIDE_U <= k.m; j += AR_WIDE_U) PULL ? lw_pull<VEC, AR_WIDE_U>(k, j) : lw_push<VEC, AR_WIDE_U>(k, j);
    for (; j < k.m; ++j) PULL ? lw_pull<VEC, 1>(k, j) : lw_push<VEC, 1>(k, j);
}

// out[i] = sum over ranks of in[i] (out may be in), or with add out[i] += that sum (out not in), for
// AR_CHUNK * AR_MAX_BLOCKS < n <= cap; grid min(wide, chunks).
extern "C" __global__ void __launch_bounds__(AR_THREADS)
ar_lamport_wide(const float* in, float* out, unsigned* seq, AR_PTRS(d), int n, int rank, int vec, long long cap,
                long long timeout_ns, int add) {
    pdl_enter();  // as lp_exchange: nothing of in, seq or the buffers is touched before it
    const int b = blockIdx.x, G = gridDim.x;
    __shared__ unsigned s_seq;
    __shared__ int s_said;
    if (threadIdx.x == 0) {
        const unsigned s = seq[b] + 1u;
        s_seq = s == AR_SEQ_WRAP ? 0u : s;
        s_said = 0;
    }
    __syncthreads();
    LwCall k;
    k.s = s_seq;
    const long long g = k.s % AR_GENS, old = (k.s + 2u) % AR_GENS;
#pragma unroll
    for (int p = 0; p < AR_WORLD; ++p)
        k.peer[p] = reinterpret_cast<float*>(AR_PICK(d, p)) + (g * AR_WORLD + rank) * cap;
    k.in = in, k.out = out, k.mine = reinterpret_cast<float*>(AR_PICK(d, rank)) + g * AR_WORLD * cap, k.cap = cap;
    k.timeout_ns = timeout_ns, k.n = n, k.rank = rank, k.b = b, k.G = G, k.said = &s_said, k.add = add;
    k.m = ((n + AR_CHUNK - 1) / AR_CHUNK - b + G - 1) / G;  // >= 1: the grid has at most as many blocks as chunks
    if (vec || AR_PACKED) lw_all<1, 0>(k);  // packed: always vec (launcher checks)
    else lw_all<0, 0>(k);
    const float e = __uint_as_float(AR_EMPTY);
    float* my = reinterpret_cast<float*>(AR_PICK(d, rank)) + (long long)b * AR_CHUNK + AR_PER * threadIdx.x;
#pragma unroll
    for (int src = 0; src < AR_WORLD; ++src)  // 2. reset ahead: generation (s + 2) % 3 of chunk b, the whole chunk
        if (src != rank) lp_store4(my + (old * AR_WORLD + src) * cap, e, e, e, e);
    if (vec || AR_PACKED) lw_all<1, 1>(k);
    else lw_all<0, 1>(k);
    lp_done(seq, k.s);
}
