// The exact radix select of the samplers' fallback (SelectState, radix_select over comp keys or masses) and the
// key / mass / random-bits helpers every sampler version shares. Part of sampling.cu's module (included after its
// argmax helpers); compiled only through sampling.cu.

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
