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
// Both write token[0], hist[P] (if P < hist_len), then pos[0] = P.
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

// ---- sample ------------------------------------------------------------------------------------------------

#ifndef SAMPLE_HCOPIES
#define SAMPLE_HCOPIES 4      // radix_select histogram copies (contention spreading), a power of two <= 32
#endif

struct SelectState {                    // shared between the threads of the block
    u64 binm[SAMPLE_HCOPIES][256];      // weight per digit, per copy
    unsigned binc[SAMPLE_HCOPIES][256]; // element count per digit, per copy
    u64 prefix, pmask, rem, above, result, cum;
    int done;
};

__device__ __forceinline__ unsigned orderable(float f) {  // larger float -> larger unsigned
    unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ u64 comp_key(float l, int i) {
    return ((u64)orderable(l) << 32) | (u64)(0xFFFFFFFFu - (unsigned)i);
}
__device__ __forceinline__ u64 mass_of(float l, float m) {  // <= 2^31
    return __float2ull_rn(expf(l - m) * 2147483648.0f);
}

// Warp 0 picks the digit of this level: scan bins 255 -> 0 for the first where cumulative weight > rem.
// No such digit (rem >= total): take the lowest non-empty digit (the last element in the order).
__device__ void pick_digit(SelectState& st, bool mass, int shift) {
    const int lane = threadIdx.x & 31;
    u64 w[8], sum = 0;
    unsigned cnt[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) {  // fold the copies into copy 0
        int d = 255 - 8 * lane - k;
        u64 bm = 0;
        unsigned bc = 0;
        for (int c = 0; c < SAMPLE_HCOPIES; ++c) { bm += st.binm[c][d]; bc += st.binc[c][d]; }
        st.binm[0][d] = bm;
        st.binc[0][d] = bc;
        cnt[k] = bc;
        w[k] = mass ? bm : (u64)bc;
        sum += w[k];
    }
    __syncwarp();
    u64 incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        u64 t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    const u64 rem = st.rem;
    unsigned hit = __ballot_sync(0xffffffffu, incl > rem);
    int d = -1;
    u64 acc = incl - sum;
    if (hit) {
        if (lane == __ffs(hit) - 1) {
            for (int k = 0; k < 8; ++k) {
                if (acc + w[k] > rem) { d = 255 - 8 * lane - k; break; }
                acc += w[k];
            }
            st.rem = rem - acc;
            st.above += acc;
        }
    } else {
        unsigned nz = 0;
#pragma unroll
        for (int k = 0; k < 8; ++k) nz |= (cnt[k] != 0u) << k;
        unsigned lanes = __ballot_sync(0xffffffffu, nz != 0u);
        if (lanes && lane == 31 - __clz(lanes)) d = 255 - 8 * lane - (31 - __clz(nz));
    }
    if (d >= 0) {
        st.prefix |= (u64)d << shift;
        st.pmask |= (u64)0xFF << shift;
        st.done = st.binc[0][d] == 1u;
        st.cum = st.above + st.binm[0][d];
    }
}

// Histogram of this level over elements with comp >= cut matching the prefix so far. Lanes with equal digits
// are aggregated first (match_any), then one atomic per group goes into histogram copy warp % SAMPLE_HCOPIES:
// the first levels put nearly every element into one or two bins, and spreading the warps over several copies
// divides the contention on those addresses (pick_digit adds the copies).
__device__ void fill_bins(SelectState& st, const float* s, int V, float m, bool mass, u64 cut, int shift) {
    const int lane = threadIdx.x & 31;
    const int copy = (threadIdx.x >> 5) % SAMPLE_HCOPIES;
    const u64 prefix = st.prefix, pmask = st.pmask;
    for (int base = threadIdx.x - lane; base < V; base += blockDim.x) {
        const int i = base + lane;
        bool ok = false;
        u64 c = 0, wgt = 0;
        if (i < V) {
            c = comp_key(s[i], i);
            ok = c >= cut && (c & pmask) == prefix;
            if (ok) wgt = mass ? mass_of(s[i], m) : 1ull;
        }
        if (!__any_sync(0xffffffffu, ok)) continue;  // after the first levels most chunks have no candidate
        const unsigned digit = ok ? (unsigned)(c >> shift) & 255u : 256u;
        const unsigned peers = __match_any_sync(0xffffffffu, digit);
        if (ok) {
            u64 sum = (u64)__popc(peers);
            if (mass) {
                unsigned lo = __reduce_add_sync(peers, (unsigned)(wgt & 0xFFFFu));
                unsigned hi = __reduce_add_sync(peers, (unsigned)(wgt >> 16));
                sum = ((u64)hi << 16) + lo;
            }
            if (lane == __ffs(peers) - 1) {
                atomicAdd(&st.binm[copy][digit], sum);
                atomicAdd(&st.binc[copy][digit], (unsigned)__popc(peers));
            }
        }
    }
}

// First element (descending comp, among comp >= cut) whose inclusive cumulative weight exceeds target
// (weight = fixed-point mass, or 1 to select by rank). Returns its comp; *cum = inclusive weight.
__device__ u64 radix_select(SelectState& st, const float* s, int V, float m, bool mass, u64 cut, u64 target,
                            u64* cum) {
    if (threadIdx.x == 0) { st.prefix = 0; st.pmask = 0; st.rem = target; st.above = 0; st.done = 0; }
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256 * SAMPLE_HCOPIES; b += blockDim.x) {
            (&st.binm[0][0])[b] = 0;
            (&st.binc[0][0])[b] = 0;
        }
        __syncthreads();
        fill_bins(st, s, V, m, mass, cut, shift);
        __syncthreads();
        if (threadIdx.x < 32) pick_digit(st, mass, shift);
        __syncthreads();
        if (st.done) break;
    }
    // st.done: one element matches the prefix; find it (the prefix may not cover all 64 bits yet)
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        u64 c = comp_key(s[i], i);
        if (c >= cut && (c & st.pmask) == st.prefix) st.result = c;
    }
    __syncthreads();
    u64 r = st.result, cu = st.cum;
    __syncthreads();
    *cum = cu;
    return r;
}

__device__ __forceinline__ u64 block_sum_u64(u64 v, u64* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    u64 t = lane < (blockDim.x >> 5) ? scratch[lane] : 0ull;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    return t;
}

// 24 random bits of the counter-based draw keyed by (seed, position); u = bits / 2^24.
__device__ __forceinline__ u64 uniform_bits(u64 seed, u64 p) {
    u64 z = seed * 0x9E3779B97F4A7C15ull + p + 1ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z >> 40;
}

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

struct Pick { u64 comp, cum, kc, km; int bin; };  // chosen key, inclusive cum weight, kept count/mass in its bin

struct DrawShared {
    SelectState st;            // radix_select fallback
    u64 lc[SAMPLE_CAP], lw[SAMPLE_CAP];  // gathered keys and masses of one bin
    u64 ws[32];
    u64 excl;                  // weight of the kept elements before the target's bin
    u64 head, zk, zp;          // head path: elements in bins 0..bstar; kept mass after top-k, after top-p
    Pick pick;
    int n, bstar, last;
};

// Weight of bin b when only comp >= cut is kept: bins before the cut's bin cb whole, cb partly (kc, km), none after.
__device__ __forceinline__ u64 bin_weight(int b, unsigned c, u64 w, bool mass, int cb, u64 kc, u64 km) {
    if (b > cb) return 0ull;
    if (b == cb) return mass ? km : kc;
    return mass ? w : (u64)c;
}

// First kept element (comp >= cut, descending comp) whose inclusive cumulative weight exceeds target; into sh.pick.
// c[2], w[2]: this thread's two bins (2 * threadIdx.x, + 1). Every thread of the block calls it.
__device__ void select_kept(DrawShared& sh, const float* s, int V, float m, float scale, const unsigned* c,
                            const u64* w, bool mass, u64 cut, int cb, u64 kc, u64 km, u64 target) {
    const int t = threadIdx.x, b0 = 2 * t;
    const u64 w0 = bin_weight(b0, c[0], w[0], mass, cb, kc, km);
    const u64 w1 = bin_weight(b0 + 1, c[1], w[1], mass, cb, kc, km);
    if (t == 0) { sh.bstar = -1; sh.n = 0; }
    const u64 e0 = block_excl_scan(w0 + w1, sh.ws);  // its __syncthreads order the writes above
    if (e0 <= target && target < e0 + w0) { sh.bstar = b0; sh.excl = e0; }
    else if (e0 + w0 <= target && target < e0 + w0 + w1) { sh.bstar = b0 + 1; sh.excl = e0 + w0; }
    __syncthreads();
    const int b = sh.bstar;
    if (b >= 0) {
        for_each_logit(s, V, [&](float l, int i) {
            if (bin_of(l, m, scale) != b) return;
            const u64 cc = comp_key(l, i);
            if (cc < cut) return;
            const int k = atomicAdd(&sh.n, 1);
            if (k < SAMPLE_CAP) { sh.lc[k] = cc; sh.lw[k] = mass_of(l, m); }
        });
        __syncthreads();
    }
    const int n = sh.n;
    if (b >= 0 && n <= SAMPLE_CAP) {
        const u64 rem = target - sh.excl;
        if (t < n) {  // rank this element among the gathered ones (descending comp)
            const u64 cc = sh.lc[t], wt = sh.lw[t];
            u64 nb = 0, mb = 0;
            for (int j = 0; j < n; ++j)
                if (sh.lc[j] > cc) { ++nb; mb += sh.lw[j]; }
            const u64 before = mass ? mb : nb, wgt = mass ? wt : 1ull;
            if (before <= rem && rem < before + wgt) {
                Pick p = {cc, sh.excl + before + wgt, nb + 1, mb + wt, b};
                sh.pick = p;
            }
        }
        __syncthreads();
        return;
    }
    // a bin too large for shared memory: exact radix descent over all of s, then the kept part of its bin
    u64 cum;
    const u64 r = radix_select(sh.st, s, V, m, mass, cut, target, &cum);
    const int br = bin_of(s[(int)(0xFFFFFFFFu - (unsigned)(r & 0xFFFFFFFFull))], m, scale);
    u64 nk = 0, mk = 0;
    for (int i = t; i < V; i += blockDim.x) {
        const float l = s[i];
        if (bin_of(l, m, scale) == br && comp_key(l, i) >= r) { ++nk; mk += mass_of(l, m); }
    }
    nk = block_sum_u64(nk, sh.ws);
    mk = block_sum_u64(mk, sh.ws);
    if (t == 0) { Pick p = {r, cum, nk, mk, br}; sh.pick = p; }
    __syncthreads();
}

__device__ __forceinline__ u64 draw_target(u64 u24, u64 z) {  // floor(u24 * z / 2^24), exact
    return (__umul64hi(u24, z) << 40) | ((u24 * z) >> 24);
}

// Head path: every element that top-k, top-p and the draw can reach lies in bins 0..bh, and there are n <= CAP
// of them: gather them all once, rank each among them (= its global rank and cumulative mass, since every
// element before it is in the list), then each step is one parallel test. ztot: mass of all elements.
__device__ int head_draw(DrawShared& sh, const float* s, int V, float m, float scale, int bh, int top_k,
                         float top_p, u64 ztot, u64 u24) {
    const int t = threadIdx.x;
    for_each_logit(s, V, [&](float l, int i) {
        if (bin_of(l, m, scale) > bh) return;
        const int k = atomicAdd(&sh.n, 1);
        if (k < SAMPLE_CAP) { sh.lc[k] = comp_key(l, i); sh.lw[k] = mass_of(l, m); }
    });
    __syncthreads();
    const int n = min(sh.n, SAMPLE_CAP);
    u64 cc = 0, wt = 0, nb = 0, mb = 0;
    if (t < n) {
        cc = sh.lc[t];
        wt = sh.lw[t];
        for (int j = 0; j < n; ++j)
            if (sh.lc[j] > cc) { ++nb; mb += sh.lw[j]; }
    }
    u64 z = ztot;
    if (top_k > 1 && top_k < V) {
        if (t < n && nb == (u64)(top_k - 1)) sh.zk = mb + wt;
        __syncthreads();
        z = sh.zk;
    }
    if (top_p < 1.0f) {
        u64 tp = (u64)ceil((double)top_p * (double)z);
        tp = (tp > 0ull ? tp : 1ull) - 1ull;
        if (t < n && mb <= tp && tp < mb + wt) sh.zp = mb + wt;
        __syncthreads();
        z = sh.zp;
    }
    const u64 target = draw_target(u24, z);
    if (t < n && mb <= target && target < mb + wt) sh.pick.comp = cc;
    __syncthreads();
    return (int)(0xFFFFFFFFu - (unsigned)(sh.pick.comp & 0xFFFFFFFFull));
}

// The finishing block: top-k -> top-p -> draw over the bins, as the header describes. Returns the token id.
__device__ int finish_draw(DrawShared& sh, const float* s, int V, float m, float scale, const unsigned* bcnt,
                           const u64* bmass, int top_k, float top_p, u64 u24) {
    const int b0 = 2 * threadIdx.x;
    const unsigned c[2] = {__ldcg(bcnt + b0), __ldcg(bcnt + b0 + 1)};
    const u64 w[2] = {__ldcg(bmass + b0), __ldcg(bmass + b0 + 1)};
    const bool topk = top_k > 1 && top_k < V;
    // The bin of the first step's answer (top-k rank, else top-p of the whole mass, else the draw) bounds the
    // head that matters; few elements up to it -> head path.
    const u64 ztot = block_sum_u64(w[0] + w[1], sh.ws);
    u64 tg = topk ? (u64)(top_k - 1) : draw_target(u24, ztot);
    if (!topk && top_p < 1.0f) {
        tg = (u64)ceil((double)top_p * (double)ztot);
        tg = (tg > 0ull ? tg : 1ull) - 1ull;
    }
    const u64 ce = block_excl_scan((u64)c[0] + c[1], sh.ws);  // elements in the bins before mine
    const u64 w0 = topk ? c[0] : w[0], w1 = topk ? c[1] : w[1];
    if (threadIdx.x == 0) { sh.bstar = -1; sh.n = 0; }
    const u64 e0 = block_excl_scan(w0 + w1, sh.ws);
    if (e0 <= tg && tg < e0 + w0) { sh.bstar = b0; sh.head = ce + c[0]; }
    else if (e0 + w0 <= tg && tg < e0 + w0 + w1) { sh.bstar = b0 + 1; sh.head = ce + c[0] + c[1]; }
    __syncthreads();
    const int bh = sh.bstar;
    const bool head = bh >= 0 && sh.head <= (u64)SAMPLE_CAP;
    __syncthreads();  // every thread has read them before select_kept rewrites them
    if (head) return head_draw(sh, s, V, m, scale, bh, top_k, top_p, ztot, u24);
    u64 cut = 0ull, kc = 0ull, km = 0ull;
    int cb = SAMPLE_NB;  // no cut: every bin whole
    if (topk) {
        select_kept(sh, s, V, m, scale, c, w, false, cut, cb, kc, km, (u64)(top_k - 1));
        cut = sh.pick.comp; cb = sh.pick.bin; kc = sh.pick.kc; km = sh.pick.km;
    }
    u64 z = block_sum_u64(bin_weight(b0, c[0], w[0], true, cb, kc, km) +
                          bin_weight(b0 + 1, c[1], w[1], true, cb, kc, km), sh.ws);
    if (top_p < 1.0f) {
        u64 tp = (u64)ceil((double)top_p * (double)z);
        tp = tp > 0ull ? tp : 1ull;  // first element with cum >= top_p * z
        select_kept(sh, s, V, m, scale, c, w, true, cut, cb, kc, km, tp - 1ull);
        cut = sh.pick.comp; cb = sh.pick.bin; kc = sh.pick.kc; km = sh.pick.km; z = sh.pick.cum;
    }
    select_kept(sh, s, V, m, scale, c, w, true, cut, cb, kc, km, draw_target(u24, z));
    return (int)(0xFFFFFFFFu - (unsigned)(sh.pick.comp & 0xFFFFFFFFull));
}

// grid (G,), block SAMPLE_THREADS, after sample_prep on the same workspace.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_draw(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos, const int* __restrict__ n_tokens,
            const float* __restrict__ params, const u64* __restrict__ seed, int V, int hist_len,
            const float* __restrict__ s, const float* __restrict__ pmax, const int* __restrict__ parg,
            const float* __restrict__ pmin, unsigned* __restrict__ bcnt, u64* __restrict__ bmass,
            unsigned* __restrict__ ctr) {
    __shared__ DrawShared sh;
    const float temp = params[0], top_p = params[1];
    const int top_k = (int)params[3];
    float m, lo;
    int best;
    merge_partials(pmax, parg, pmin, gridDim.x, m, best, lo);
    if (greedy_exit(temp, top_k, best, m, V, token, hist, pos, n_tokens, hist_len)) return;
    const float scale = bin_scale(m, lo);
    const int base = blockIdx.x * SAMPLE_CHUNK;
    float lv[SAMPLE_PER_THREAD];
#pragma unroll
    for (int u = 0; u < SAMPLE_PER_THREAD; ++u) {
        const int i = base + threadIdx.x + u * SAMPLE_THREADS;
        lv[u] = i < V ? s[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < SAMPLE_PER_THREAD; ++u) {
        if (base + threadIdx.x + u * SAMPLE_THREADS >= V) break;
        const float l = lv[u];
        const int b = bin_of(l, m, scale);
        const u64 wgt = mass_of(l, m);
        atomicAdd(&bcnt[b], 1u);
        if (wgt) atomicAdd(&bmass[b], wgt);
    }
    __threadfence();  // this block's bin updates are visible before its ticket
    __syncthreads();
    if (threadIdx.x == 0) sh.last = atomicAdd(ctr, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!sh.last) return;
    __threadfence();
    if (threadIdx.x == 0) *ctr = 0u;  // for the next launch (stream-ordered after this one)
    const int P = pos[0] + n_tokens[0];
    const int t = finish_draw(sh, s, V, m, scale, bcnt, bmass, top_k, top_p, uniform_bits(seed[0], (u64)P));
    if (threadIdx.x == 0) commit_token(t, token, hist, pos, n_tokens, hist_len);
}

// ---- sample, v2 and v3: sampling_v2.cuh, sampling_v3.cuh, built on the helpers above ----------------------
#include "sampling_v2.cuh"
#include "sampling_v3.cuh"
