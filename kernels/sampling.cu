// Token selection on the device, one block of SAMPLE_THREADS threads per step (decode: one logits row).
//
// argmax: token = the id of the largest logit (ties: lowest id; NaN never wins).
// sample: SamplingParams on the device, in DESIGN.md order: repetition penalty (HF rule, once per distinct id
//   in hist[0 : P]) -> temperature -> top-k -> top-p -> draw, where P = pos[0] + n_tokens[0] is the absolute
//   position of the token being chosen. temperature <= 0 is greedy (argmax of the penalized logits).
//   The kept ids are ordered by descending logit, ties by ascending id, through the unique 64-bit composite
//   key comp(i) = (orderable(l_i) << 32) | (0xFFFFFFFF - i): descending comp = that order. Probability masses
//   are fixed point, w_i = round(exp(l_i - max) * 2^31) (uint64 sums, so every sum is exact and
//   order-free: the result is bit-identical run to run). Top-k, top-p and the draw are one primitive,
//   `radix_select`: the first element in that order whose inclusive cumulative weight exceeds a target,
//   found by 8-bit radix descent over comp (histograms in shared memory, warp-aggregated atomics), stopping
//   as soon as the chosen bucket holds one element.
//   Draw: u = uniform(seed, P) (splitmix64, sampling.uniform), pick the first kept id whose cumulative mass
//   exceeds u * total (the integer floor(u24 * total / 2^24), exact through a 128-bit product).
// Both write token[0], hist[P] (if P < hist_len), then pos[0] = P.
// Layout: logits f32 [V]; hist int32 [hist_len]; params f32 [4] = (temperature, top_p, repetition_penalty,
// top_k); seed uint64 [1]. sample uses dynamic shared memory: f32 [V] processed logits + V bits.
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
#define SAMPLE_HCOPIES 8      // histogram copies (contention spreading), a power of two <= 32
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

// Penalized, tempered logits into s f32 [V]; returns the argmax index (ties: lowest id).
__device__ int prepare_logits(float* s, unsigned* bits, const float* logits, const int* hist, int n_hist,
                              int V, float temp, float rep, float* sv, int* si) {
    const bool pen = rep != 1.0f;
    for (int w = threadIdx.x; w < (V + 31) / 32; w += blockDim.x) bits[w] = 0u;
    __syncthreads();
    if (pen)
        for (int i = threadIdx.x; i < n_hist; i += blockDim.x) {
            int id = hist[i];
            if (id >= 0 && id < V) atomicOr(&bits[id >> 5], 1u << (id & 31));
        }
    __syncthreads();
    float bv = NEG_INF;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float l = logits[i];
        if (l != l) l = NEG_INF;
        if (pen && ((bits[i >> 5] >> (i & 31)) & 1u)) l = l > 0.0f ? l / rep : l * rep;
        if (temp > 0.0f) l = l / temp;
        s[i] = l;
        if (l > bv) { bv = l; bi = i; }
    }
    return block_argmax(bv, bi, sv, si);
}

// grid (1,), block SAMPLE_THREADS, dynamic shared memory 4 * V + 4 * ceil(V / 32) bytes.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos, const int* __restrict__ n_tokens,
       const float* __restrict__ logits, const float* __restrict__ params, const u64* __restrict__ seed,
       int V, int hist_len) {
    extern __shared__ float smem[];
    float* s = smem;                                         // [V]
    unsigned* bits = reinterpret_cast<unsigned*>(smem + V);  // [ceil(V/32)]
    __shared__ SelectState st;
    __shared__ float sv[32];
    __shared__ int si[32];
    __shared__ u64 su[32];
    const float temp = params[0], top_p = params[1], rep = params[2];
    const int top_k = (int)params[3];
    const int P = pos[0] + n_tokens[0];
    const int best = prepare_logits(s, bits, logits, hist, min(max(P, 0), hist_len), V, temp, rep, sv, si);
    __syncthreads();
    const float m = s[best < V ? best : 0];
    if (temp <= 0.0f || top_k == 1 || best >= V || !(m > NEG_INF)) {
        if (threadIdx.x == 0) commit_token(best < V ? best : 0, token, hist, pos, n_tokens, hist_len);
        return;
    }
    u64 cut = 0, cum = 0;
    if (top_k > 1 && top_k < V) cut = radix_select(st, s, V, m, false, 0ull, (u64)(top_k - 1), &cum);
    u64 z = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (comp_key(s[i], i) >= cut) z += mass_of(s[i], m);
    z = block_sum_u64(z, su);
    if (top_p < 1.0f) {
        u64 t = (u64)ceil((double)top_p * (double)z);
        t = t > 0ull ? t : 1ull;
        cut = radix_select(st, s, V, m, true, cut, t - 1ull, &z);  // first element with cum >= top_p * z
    }
    const u64 u24 = uniform_bits(seed[0], (u64)P);
    const u64 target = (__umul64hi(u24, z) << 40) | ((u24 * z) >> 24);  // floor(u24 * z / 2^24)
    const u64 c = radix_select(st, s, V, m, true, cut, target, &cum);
    if (threadIdx.x == 0)
        commit_token((int)(0xFFFFFFFFu - (unsigned)(c & 0xFFFFFFFFull)), token, hist, pos, n_tokens, hist_len);
}
