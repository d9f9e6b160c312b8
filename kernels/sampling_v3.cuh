// The v3 sampler's draw kernel, part of sampling.cu's module (included after sampling_v2.cuh; uses its helpers).
// Compiled only through sampling.cu.
//
// ---- sample, v3 (ops_select "new"): sample_prep_v2 + sample_draw_v3, same rule, same integers, same token ------
// v2's finishing block runs alone for most of sample_draw_v2 (Nsight, issue #13: ~30k elapsed cycles, ~2k SM-active
// on average over 32 blocks, so ~20k in the last block): after the bins it makes one pass over sbin [V] (64 KB at
// V 32000) with a dependent load of s per matching element, in heavily unrolled code run once per launch, and its
// bins load is two L2 round trips (NVVM sinks the __ldcg of the counts below the mass scan). v3:
// sample_draw_v3, G blocks of S2_CHUNK logits. Each block, besides v2's shared histogram (counts u32; masses as two
//   native u32 atomics on their 16-bit halves, not a 64-bit CAS loop), COUNTING-SORTS its chunk by bin: the count
//   atomic's return value is the element's rank in its bin, a block scan of the 2048 counts gives each bin's first
//   slot, the comp keys go to shared memory in bin order and out with one coalesced 8-byte store per thread:
//     skey u64 [G * S2_CHUNK]: block g's keys, bin-major (slot order within a bin is arbitrary);
//     bend u16 [G * SAMPLE_NB]: block g's inclusive element count through each bin.
//   Its bins go into the global ones as in v2; then the ticket: __syncthreads, and thread 0 alone does
//   fence.acq_rel.gpu + a relaxed atomic (cooperative groups' grid-sync pattern), not a fence.sc in every warp.
//   The last block finishes as v2 does (bracket_regions: the same scan, brackets and regions, its bins in two
//   vector loads issued together), except the gather: region k's elements in block g are exactly
//   skey[g][bend[g][lo-1] .. bend[g][hi]), so every (region, block) pair is read directly (one round trip for the
//   bounds, one for the keys; the logit is the key's upper half, the mass recomputed from it bit for bit) and no
//   O(V) pass is left in the single block. rank_and_step (v2's) ranks and runs the steps; the v1 finishing code
//   stays the exact fallback.
// Estimated finishing-block cost at ~1.9 GHz (L2 round trip ~700 cycles): ticket + acquire ~1000, bins ~700, scan
//   + 3 locates + plan ~700 (6 barriers), slice bounds + keys 2 x ~700 + shared atomics ~100, rank ~300 (usually
//   < 100 elements, 8 threads each), steps ~200 (<= 3 barriers): ~4.5k cycles, ~2.3 us. The per-block part gains
//   a u32 block scan, the shared scatter and a coalesced store (~3 barriers, ~400 cycles) and loses the u16 sbin
//   store, the 64-bit shared CAS loops and 31 of its 32 fences.
// Workspace (ops_select.SampleWork): v2's, plus skey and bend (sbin unused); ctr[1] = the finishing block's
// path (1 fast, 2 fallback), for the tests. The ticket and the bins are reset as in v2, so a graph replays
// without host work. tests/sampler_model.py models the layout (block_layout, gather_slices).

// Bench-only knockouts (scripts/bench_sampler.py --ko; ops_select.KO): the draw stops after a phase, so a graph of calls
// times the phases before it. 1 after pdl_enter, 2 after the partials' merge, 3 after bin_block, 4 after the ticket
// (the last block resets it). 0 (default) is the sampler; its PTX does not change.
#ifndef SAMPLE_KO
#define SAMPLE_KO 0
#endif

// Exclusive prefix sum of v over the block's threads in thread order; ws: 32 words used by this call alone.
__device__ __forceinline__ unsigned block_excl_scan_u32(unsigned v, unsigned* ws) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    unsigned incl = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned x = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += x;
    }
    if (lane == 31) ws[warp] = incl;
    __syncthreads();
    unsigned wt = lane < nw ? ws[lane] : 0u;  // inclusive over warps
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned x = __shfl_up_sync(0xffffffffu, wt, o);
        if (lane >= o) wt += x;
    }
    const unsigned before = __shfl_sync(0xffffffffu, wt, warp > 0 ? warp - 1 : 0);
    return (warp > 0 ? before : 0u) + incl - v;
}

// Adds this thread's element (bin b, when in) to the block's counts c and returns its rank within its bin. The
// last bin (peaked logits: most of a warp) takes one atomic per warp and ranks its lanes by popcount.
__device__ __forceinline__ unsigned count_and_rank(unsigned* c, int b, bool in) {
    const int lane = threadIdx.x & 31;
    const unsigned tail = __ballot_sync(0xffffffffu, in && b == SAMPLE_NB - 1);
    unsigned r = 0u;
    if (tail) {  // warp-uniform
        const int lead = __ffs(tail) - 1;
        unsigned base = 0u;
        if (lane == lead) base = atomicAdd(&c[SAMPLE_NB - 1], (unsigned)__popc(tail));
        r = __shfl_sync(0xffffffffu, base, lead) + (unsigned)__popc(tail & ((1u << lane) - 1u));
    }
    if (in && b != SAMPLE_NB - 1) r = atomicAdd(&c[b], 1u);
    return r;
}

__device__ __forceinline__ float key_logit(u64 c) {  // the logit of comp_key(l, i): orderable() inverted
    const unsigned o = (unsigned)(c >> 32);
    return __uint_as_float((o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o);
}

// Step 3 of v3: the elements of every (region, block) pair, read from the block's bin-sorted keys, into the
// region's slots. split threads per pair (a power of two <= 32, aligned in a warp), 4 loads in flight each.
__device__ void gather_slices(Draw2Shared& sh, const u64* skey, const unsigned short* bend, int G, float m) {
    const int t = threadIdx.x, lane = t & 31, np = sh.nr * G;
    int split = 1;
    while (split < 32 && np * split * 2 <= SAMPLE_THREADS) split <<= 1;
    for (int q0 = 0; q0 < np * split; q0 += SAMPLE_THREADS) {  // block-uniform rounds: one while np <= 1024
        const int q = q0 + t, p = q / split, part = q % split;
        int k = 0, g = 0, beg = 0, end = 0;
        if (p < np) {
            k = p / G;
            g = p - k * G;
            const unsigned short* be = bend + (size_t)g * SAMPLE_NB;
            const int lo = sh.r[k].lo, hi = sh.r[k].hi;
            beg = lo > 0 ? (int)__ldcg(be + lo - 1) : 0;
            end = (int)__ldcg(be + hi);
        }
        const int len = end - beg;
        int base = 0;
        if (part == 0 && len > 0) base = atomicAdd(&sh.cur[k], len);
        base = __shfl_sync(0xffffffffu, base, lane & ~(split - 1));
        const int lim = sh.r[k].off + sh.r[k].n;
        const u64* src = skey + (size_t)g * S2_CHUNK + beg;
        for (int j0 = part; j0 < len; j0 += 4 * split) {
            u64 key[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const int j = j0 + u * split;
                key[u] = j < len ? __ldcg(src + j) : 0ull;
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const int j = j0 + u * split, at = base + j;
                if (j < len && at < lim) { sh.lc[at] = key[u]; sh.lw[at] = mass_of(key_logit(key[u]), m); }
            }
        }
    }
}

// The finishing block's fast path; returns the token, or -1 (block-uniform) for the exact fallback.
__device__ int finish_v3(Draw2Shared& sh, const u64* skey, const unsigned short* bend, int G, int V, float m,
                         const unsigned* bcnt, const u64* bmass, int top_k, float top_p, u64 u24) {
    // both bins of this thread in two vector loads issued together (with __ldcg per value, NVVM sank the count
    // loads below the mass scan: two L2 round trips in a row)
    const unsigned* cp = bcnt + 2 * threadIdx.x;
    const u64* wp = bmass + 2 * threadIdx.x;
    unsigned c[2];
    u64 w[2];
    asm volatile("ld.global.cg.v2.u32 {%0, %1}, [%2];" : "=r"(c[0]), "=r"(c[1]) : "l"(cp) : "memory");
    asm volatile("ld.global.cg.v2.u64 {%0, %1}, [%2];" : "=l"(w[0]), "=l"(w[1]) : "l"(wp) : "memory");
    const Bracket br = bracket_regions(sh, V, c, w, top_k, top_p, u24);
    if (!sh.fast) return -1;
    gather_slices(sh, skey, bend, G, m);
    __syncthreads();
    for (int k = 0; k < sh.nr; ++k)  // every slot filled (the bin counts are the blocks' sums: always, in exact
        if (sh.cur[k] != sh.r[k].off + sh.r[k].n) return -1;  // arithmetic; a mismatch takes the exact path)
    return rank_and_step(sh, br, top_k, top_p, u24);
}

struct Sample3Shared {
    union {
        struct { unsigned c[SAMPLE_NB], wl[SAMPLE_NB], wh[SAMPLE_NB]; u64 key[S2_CHUNK]; } h;  // 32 KB
        struct { DrawShared v1; Draw2Shared v2; } f;                                          // the finishing block
    };
    unsigned ws[32];
    int last;
};

// This block's histogram and bin-sorted keys (all threads; shared arrays zeroed and synced by the caller).
__device__ __forceinline__ void bin_block(Sample3Shared& sh, float l, int i, bool in, float m, float scale,
                                          unsigned* bcnt, u64* bmass, u64* skey, unsigned* bend) {
    const int t = threadIdx.x, b0 = 2 * t;
    const int b = bin_of(l, m, scale);
    const u64 wgt = in ? mass_of(l, m) : 0ull;
    const unsigned rank = count_and_rank(sh.h.c, b, in);
    if (wgt) {  // <= 2^31 each: the 16-bit halves summed over 1024 elements fit 32 bits
        atomicAdd(&sh.h.wl[b], (unsigned)(wgt & 0xFFFFull));
        atomicAdd(&sh.h.wh[b], (unsigned)(wgt >> 16));
    }
    __syncthreads();
    const unsigned c0 = sh.h.c[b0], c1 = sh.h.c[b0 + 1];
    const u64 w0 = sh.h.wl[b0] + ((u64)sh.h.wh[b0] << 16), w1 = sh.h.wl[b0 + 1] + ((u64)sh.h.wh[b0 + 1] << 16);
    const unsigned ex = block_excl_scan_u32(c0 + c1, sh.ws);
    sh.h.c[b0] = ex;  // this thread's own bins: now their first slot
    sh.h.c[b0 + 1] = ex + c0;
    bend[blockIdx.x * (SAMPLE_NB / 2) + t] = (ex + c0) | ((ex + c0 + c1) << 16);  // u16 pairs: bins b0, b0 + 1
    if (c0) atomicAdd(&bcnt[b0], c0);
    if (c1) atomicAdd(&bcnt[b0 + 1], c1);
    if (w0) atomicAdd(&bmass[b0], w0);
    if (w1) atomicAdd(&bmass[b0 + 1], w1);
    __syncthreads();
    if (in) sh.h.key[sh.h.c[b] + rank] = comp_key(l, i);
    __syncthreads();
    if (in) skey[i] = sh.h.key[t];  // the block's in-range elements fill slots 0 .. nin - 1
}

// grid (G,), block SAMPLE_THREADS, after sample_prep_v2 on the same workspace (same G).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_draw_v3(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos,
               const int* __restrict__ n_tokens, const float* __restrict__ params, const u64* __restrict__ seed,
               int V, int hist_len, const float* __restrict__ s, const float* __restrict__ pmax,
               const int* __restrict__ parg, const float* __restrict__ pmin, unsigned* __restrict__ bcnt,
               u64* __restrict__ bmass, u64* __restrict__ skey, unsigned* __restrict__ bend,
               unsigned* __restrict__ ctr) {
    __shared__ Sample3Shared sh;
    pdl_enter();  // launched with PDL (gpu/pdl.py): wait for sample_prep_v2
    if (SAMPLE_KO == 1) return;
    const int t = threadIdx.x, i = blockIdx.x * S2_CHUNK + t;
    const bool in = i < V;
    const float l = in ? s[i] : NEG_INF;  // in flight while the partials are merged
    const float temp = params[0], top_p = params[1];
    const int top_k = (int)params[3];
    const int P = pos[0] + n_tokens[0];  // for the finishing block, loaded before the ticket
    const u64 sd = seed[0];
    float m, lo;
    int best;
    merge_partials(pmax, parg, pmin, gridDim.x, m, best, lo);
    if (greedy_exit(temp, top_k, best, m, V, token, hist, pos, n_tokens, hist_len)) return;
    if (SAMPLE_KO == 2) return;
    const float scale = bin_scale(m, lo);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        sh.h.c[t + k * SAMPLE_THREADS] = 0u;
        sh.h.wl[t + k * SAMPLE_THREADS] = 0u;
        sh.h.wh[t + k * SAMPLE_THREADS] = 0u;
    }
    __syncthreads();
    bin_block(sh, l, i, in, m, scale, bcnt, bmass, skey, bend);
    __syncthreads();  // every global write of the block precedes thread 0's release; sh.h is read
    if (SAMPLE_KO == 3) return;
    if (t == 0) sh.last = last_ticket(ctr, gridDim.x);
    __syncthreads();
    if (!sh.last) return;
    if (t == 0) *ctr = 0u;  // for the next launch (stream-ordered after this one)
    if (SAMPLE_KO == 4) return;
    const u64 u24 = uniform_bits(sd, (u64)P);
    const unsigned short* be = reinterpret_cast<const unsigned short*>(bend);
    int tok = finish_v3(sh.f.v2, skey, be, gridDim.x, V, m, bcnt, bmass, top_k, top_p, u24);
    if (t == 0) ctr[1] = tok < 0 ? 2u : 1u;  // the path taken (tests: 1 fast, 2 the v1 fallback)
    if (tok < 0) tok = finish_draw(sh.f.v1, s, V, m, scale, bcnt, bmass, top_k, top_p, u24);
    if (t == 0) commit_token(tok, token, hist, pos, n_tokens, hist_len);
}
