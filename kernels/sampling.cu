// Token selection on the device (decode: one logits row).
//
// argmax: token = the id of the largest logit (ties: lowest id; NaN never wins). One block.
// sample: SamplingParams on the device, in DESIGN.md order: repetition penalty (HF rule, once per distinct id
//   in hist[0 : P]) -> temperature -> top-k -> top-p -> draw, where P = pos[0] + n_tokens[0] is the absolute
//   position of the token being chosen. temperature <= 0 is greedy (argmax of the penalized logits).
//   The kept ids are ordered by descending logit, ties by ascending id, through the unique 64-bit composite
//   key comp(i) = (orderable(l_i) << 32) | (0xFFFFFFFF - i): descending comp = that order. Probability masses
//   are fixed point, w_i = round(exp(l_i - max) * 2^31) (uint64 sums, so every sum is exact and
//   order-free: the result is bit-identical run to run). Top-k, top-p and the draw are one primitive,
//   `select_kept`: the first element in that order whose inclusive cumulative weight (mass, or 1 per element for
//   top-k) exceeds a target.
//   Draw: u = uniform(seed, P) (splitmix64, sampling.uniform), pick the first kept id whose cumulative mass
//   exceeds u * total (the integer floor(u24 * total / 2^24), exact through a 128-bit product).
//   v1: two kernels of G = ceil(V / SAMPLE_CHUNK) blocks:
//   - sample_prep: penalized, tempered logits s f32 [V] into the workspace, per-block (max, argmax, min finite);
//     zeroes the bin histogram.
//   - sample_draw: every block reads the G partials (global max m), puts each of its logits into one of
//     SAMPLE_NB value bins below m (bin 0 = the largest; bin index is monotone in the logit, so the bins
//     partition the order) and adds (count, mass) to the bin with global atomics. The last block to finish
//     (threadfence + counter, no grid barrier) scans the bins for the one holding the target, gathers that
//     bin's elements (<= SAMPLE_CAP) into shared memory and ranks them exactly; a larger bin (degenerate
//     input: thousands of near-equal logits) falls back to an 8-bit radix descent over all of s
//     (`radix_select`). Same integers, same order, so every path gives the same token.
// Both write token[0], hist[P] (if P < hist_len), then pos[0] = P. sample_draw and its finishing code are in
//   sampling_v1.cuh, radix_select and the shared key / mass / random-bits helpers in sampling_select.cuh.
//   sample_prep_v2 + sample_draw_v2 (sampling_v2.cuh, included at the end) compute the same integers and choose the
//   same token with blocks of S2_CHUNK = 1024 logits, shared-memory histograms and one gather; sample_prep_v2 +
//   sample_draw_v3 (sampling_v3.cuh; the default) likewise, with each block's chunk counting-sorted by bin so that
//   the finishing block reads only the elements of the bins it needs.
// Layout: logits f32 [V]; hist int32 [hist_len]; params f32 [4] = (temperature, top_p, repetition_penalty,
// top_k); seed uint64 [1]. Workspace (ops.sample_workspace): s f32 [V]; pmax f32 [G]; parg int32 [G];
// pmin f32 [G]; bcnt uint32 [SAMPLE_NB]; bmass uint64 [SAMPLE_NB]; sbin uint16 [V] (v2 only); skey uint64 [G * 1024]
// and bend uint16 [G * SAMPLE_NB] (v3 only); ctr uint32 [2] (ctr[0] zero between launches; ctr[1]: v3's path)
// (zero between launches). G = the grid of the kernels in use (v2: ceil(V / 1024), v1: ceil(V / 4096)).
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define NEG_INF __int_as_float(0xff800000)  // NVRTC has no <math.h> INFINITY
typedef unsigned long long u64;

__device__ __forceinline__ void commit_token(int t, int* token, int* hist, int* pos, const int* n_tokens,
                                             int hist_len) {
    const int P = pos[0] + n_tokens[0];
    token[0] = t;
    if (P >= 0 && P < hist_len) hist[P] = t;
    pos[0] = P;
}

// The draw kernels' greedy exit (v1, v2, v3), after merge_partials: temperature 0, top-k 1 or no finite logit
// commit the argmax (block 0, thread 0); true when the kernel is done.
__device__ __forceinline__ bool greedy_exit(float temp, int top_k, int best, float m, int V, int* token, int* hist,
                                            int* pos, const int* n_tokens, int hist_len) {
    if (!(temp <= 0.0f || top_k == 1 || best >= V || !(m > NEG_INF))) return false;
    if (blockIdx.x == 0 && threadIdx.x == 0) commit_token(best < V ? best : 0, token, hist, pos, n_tokens, hist_len);
    return true;
}

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi);
}

// Block-wide argmax of (v, i) pairs; returns the winning index in every thread. scratch: 64 words.
__device__ __forceinline__ int block_argmax(float v, int i, float* sv, int* si) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (better(ov, oi, v, i)) { v = ov; i = oi; }
    }
    __syncthreads();
    if (lane == 0) { sv[warp] = v; si[warp] = i; }
    __syncthreads();
    v = lane < (blockDim.x >> 5) ? sv[lane] : NEG_INF;
    i = lane < (blockDim.x >> 5) ? si[lane] : 0x7fffffff;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (better(ov, oi, v, i)) { v = ov; i = oi; }
    }
    return i;
}

// token = argmax(logits f32 [V]); grid (1,), block SAMPLE_THREADS.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
argmax(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos, const int* __restrict__ n_tokens,
       const float* __restrict__ logits, int V, int hist_len) {
    __shared__ float sv[32];
    __shared__ int si[32];
    float bv = NEG_INF;
    int bi = 0x7fffffff;
    if ((V & 3) == 0) {  // float4 loads, 8 in flight per thread; ascending ids per thread: first max kept
        const float4* l4 = reinterpret_cast<const float4*>(logits);  // [V/4]
#pragma unroll 8
        for (int i = threadIdx.x; i < (V >> 2); i += blockDim.x) {
            float4 v = l4[i];
            if (v.x > bv) { bv = v.x; bi = 4 * i; }
            if (v.y > bv) { bv = v.y; bi = 4 * i + 1; }
            if (v.z > bv) { bv = v.z; bi = 4 * i + 2; }
            if (v.w > bv) { bv = v.w; bi = 4 * i + 3; }
        }
    } else {
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float v = logits[i];
            if (v > bv) { bv = v; bi = i; }
        }
    }
    int best = block_argmax(bv, bi, sv, si);
    if (threadIdx.x == 0) commit_token(best < V ? best : 0, token, hist, pos, n_tokens, hist_len);
}

#include "sampling_select.cuh"  // ---- sample: SelectState, radix_select, comp_key, mass_of, uniform_bits

// ---- sample: two multi-block kernels ------------------------------------------------------------------------

#ifndef SAMPLE_NB
#define SAMPLE_NB 2048        // value bins below the max; 2 per thread of the finishing block
#endif
#define SAMPLE_CAP 256        // largest bin ranked in shared memory (O(n^2) compares); larger: radix_select
#define SAMPLE_PER_THREAD 4   // logits per thread in the two multi-block passes
#define SAMPLE_CHUNK (SAMPLE_PER_THREAD * SAMPLE_THREADS)  // logits per block: 4096
#define SAMPLE_DMAX 24.0f     // exp(-24) * 2^31 < 0.5: logits further below the max have zero mass
#define POS_INF __int_as_float(0x7f800000)
static_assert(SAMPLE_NB == 2 * SAMPLE_THREADS, "the finishing block holds two bins per thread");

// Bin of a processed logit: floor((m - l) * scale), clamped to the last bin (which also takes -inf). Monotone
// non-increasing in l (IEEE subtract and multiply are monotone), so bin(a) < bin(b) implies a > b.
__device__ __forceinline__ int bin_of(float l, float m, float scale) {
    float d = m - l;
    if (d != d) d = 0.0f;  // l == m == +inf
    const float x = d * scale;
    return x < (float)(SAMPLE_NB - 1) ? (int)x : SAMPLE_NB - 1;  // NaN (inf * 0) -> last bin
}

// Bins spread over [m - min(m - lmin, DMAX), m]: as wide as the data, never wider than the mass range.
__device__ __forceinline__ float bin_scale(float m, float lmin) {
    const float dr = fminf(m - lmin, SAMPLE_DMAX);
    return dr > 0.0f ? (float)(SAMPLE_NB - 1) / dr : 0.0f;
}

__device__ __forceinline__ float block_min(float v, float* sv) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) sv[warp] = v;
    __syncthreads();
    v = lane < (blockDim.x >> 5) ? sv[lane] : POS_INF;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Exclusive prefix sum of v over the threads of the block, in thread order. ws: 32 words.
__device__ __forceinline__ u64 block_excl_scan(u64 v, u64* ws) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    u64 incl = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        u64 t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    __syncthreads();
    if (lane == 31) ws[warp] = incl;
    __syncthreads();
    u64 off = 0;
    for (int k = 0; k < warp; ++k) off += ws[k];
    return off + incl - v;
}

// Global (max, argmax: ties lowest id) and smallest finite logit from the G per-block partials, in every thread:
// each warp loads them in one round (lane b: partial b) and reduces with shuffles.
__device__ __forceinline__ void merge_partials(const float* pmax, const int* parg, const float* pmin, int G,
                                               float& m, int& best, float& lo) {
    const int lane = threadIdx.x & 31;
    float v = NEG_INF, mn = POS_INF;
    int i = 0x7fffffff;
    for (int b = lane; b < G; b += 32) {
        const float pv = pmax[b], pm = pmin[b];
        const int pi = parg[b];
        if (better(pv, pi, v, i)) { v = pv; i = pi; }
        mn = fminf(mn, pm);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (better(ov, oi, v, i)) { v = ov; i = oi; }
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
    }
    m = v; best = i; lo = mn;
}

// The v1 / v2 draw kernels' start: the sampling parameters, the G partials merged (global max m, its id best, the
// least finite logit lo) and the greedy exit; true when the token is already committed (the block is done).
__device__ __forceinline__ bool draw_begin(const float* params, const float* pmax, const int* parg, const float* pmin,
                                           int V, int* token, int* hist, int* pos, const int* n_tokens, int hist_len,
                                           float& temp, float& top_p, int& top_k, float& m, int& best, float& lo) {
    temp = params[0];
    top_p = params[1];
    top_k = (int)params[3];
    merge_partials(pmax, parg, pmin, gridDim.x, m, best, lo);
    return greedy_exit(temp, top_k, best, m, V, token, hist, pos, n_tokens, hist_len);
}

// f(l, i) for every i < V (per thread: not in id order), 4 float4 loads in flight per thread. s: 16-byte aligned.
template <class F>
__device__ __forceinline__ void for_each_logit(const float* s, int V, F f) {
    const int nv = V >> 2;
    const float4* s4 = reinterpret_cast<const float4*>(s);
    for (int k0 = threadIdx.x; k0 < nv; k0 += 4 * blockDim.x) {
        float4 v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int k = k0 + u * blockDim.x;
            v[u] = k < nv ? s4[k] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int k = k0 + u * blockDim.x;
            if (k < nv) { f(v[u].x, 4 * k); f(v[u].y, 4 * k + 1); f(v[u].z, 4 * k + 2); f(v[u].w, 4 * k + 3); }
        }
    }
    for (int i = 4 * nv + threadIdx.x; i < V; i += blockDim.x) f(s[i], i);
}

// Bit j of bits (shared, nbits ids from base) = id base + j is in hist[0 : P] (P = pos[0] + n_tokens[0], at most
// hist_len), for the repetition penalty. hist may be pinned host memory (the engine's): 4 loads in flight a thread.
__device__ __forceinline__ void mark_history(unsigned* bits, int nbits, const int* __restrict__ hist,
                                             const int* __restrict__ pos, const int* __restrict__ n_tokens,
                                             int hist_len, int base, int V) {
    for (int w = threadIdx.x; w < nbits / 32; w += blockDim.x) bits[w] = 0u;
    __syncthreads();
    const int n_hist = min(max(pos[0] + n_tokens[0], 0), hist_len);
    for (int k0 = threadIdx.x; k0 < n_hist; k0 += 4 * SAMPLE_THREADS) {
        int ids[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int k = k0 + u * SAMPLE_THREADS;
            ids[u] = k < n_hist ? hist[k] : -1;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int id = ids[u] - base;
            if (ids[u] >= 0 && id >= 0 && id < nbits && id < V - base) atomicOr(&bits[id >> 5], 1u << (id & 31));
        }
    }
    __syncthreads();
}

// The processed logit of id base + j: NaN -> -inf, the repetition penalty (HF rule) if marked, temperature.
// One definition for every sampler kernel, so all make the same float operations.
__device__ __forceinline__ float process_logit(float l, int j, const unsigned* bits, bool pen, float rep, float temp) {
    if (l != l) l = NEG_INF;
    if (pen && ((bits[j >> 5] >> (j & 31)) & 1u)) l = l > 0.0f ? l / rep : l * rep;
    if (temp > 0.0f) l = l / temp;
    return l;
}

// grid (G,), block SAMPLE_THREADS: s = processed logits (NaN -> -inf, penalty, temperature), partials, bins = 0.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_prep(const float* __restrict__ logits, const int* __restrict__ hist, const int* __restrict__ pos,
            const int* __restrict__ n_tokens, const float* __restrict__ params, int V, int hist_len,
            float* __restrict__ s, float* __restrict__ pmax, int* __restrict__ parg, float* __restrict__ pmin,
            unsigned* __restrict__ bcnt, u64* __restrict__ bmass) {
    __shared__ unsigned bits[SAMPLE_CHUNK / 32];  // penalized ids of this block's chunk
    __shared__ float sv[32];
    __shared__ int si[32];
    const float temp = params[0], rep = params[2];
    const bool pen = rep != 1.0f;
    const int base = blockIdx.x * SAMPLE_CHUNK;
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < SAMPLE_NB; b += gridDim.x * blockDim.x) {
        bcnt[b] = 0u;
        bmass[b] = 0ull;
    }
    if (pen) mark_history(bits, SAMPLE_CHUNK, hist, pos, n_tokens, hist_len, base, V);
    float bv = NEG_INF, lo = POS_INF;
    int bi = 0x7fffffff;
    float lv[SAMPLE_PER_THREAD];
#pragma unroll
    for (int u = 0; u < SAMPLE_PER_THREAD; ++u) {  // every load in flight before the first is used
        const int i = base + threadIdx.x + u * SAMPLE_THREADS;
        lv[u] = i < V ? logits[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < SAMPLE_PER_THREAD; ++u) {  // ascending ids per thread
        const int j = threadIdx.x + u * SAMPLE_THREADS;
        if (base + j >= V) break;
        const float l = process_logit(lv[u], j, bits, pen, rep, temp);
        s[base + j] = l;
        if (l > bv) { bv = l; bi = base + j; }
        if (l > NEG_INF) lo = fminf(lo, l);
    }
    const int best = block_argmax(bv, bi, sv, si);  // its __syncthreads make s[best] visible to the block
    lo = block_min(lo, sv);
    if (threadIdx.x == 0) {
        parg[blockIdx.x] = best;
        pmax[blockIdx.x] = best < V ? s[best] : NEG_INF;
        pmin[blockIdx.x] = lo;
    }
}

#include "sampling_v1.cuh"  // sample_draw (v1) and finish_draw, the exact fallback of v2 / v3

// ---- sample, v2 and v3: sampling_v2.cuh, sampling_v3.cuh, built on the helpers above ----------------------
#include "sampling_v2.cuh"
#include "sampling_v3.cuh"
