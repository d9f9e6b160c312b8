// The v2 sampler kernels, part of sampling.cu's module (included at its end; uses its helpers and finish_draw).
// Compiled only through sampling.cu.

// ---- sample, v2 (ops_select.SAMPLER "v2"): same rule, same integers, same token --------------------------------
// (sampling_v3.cuh reuses sample_prep_v2 and the finishing helpers bracket_regions and rank_and_step, which live in
// sampling_finish.cuh.)
// sample_prep_v2: as sample_prep, one logit per thread (G = ceil(V / S2_CHUNK) blocks, one partial per chunk).
//   With a repetition penalty, every block reads hist into its own bitset; to read it ceil(G / S2_PEN_SPAN)
//   times and not G times (the engine's hist is pinned host memory), one block in S2_PEN_SPAN then does
//   S2_PEN_SPAN chunks and the others only zero their share of the bins.
// sample_draw_v2, G blocks: each bins its chunk into a SHARED histogram (count, mass), then adds its non-empty
//   bins to the global ones (<= one atomic per element instead of two, from G SMs instead of 8; the last bin,
//   where peaked logits put almost everything, takes one count per warp). The last block (ticket) then:
//   1. scans the bins (count and mass prefix per bin, totals);
//   2. brackets every decision without touching s: top-k's element lies in the bin holding rank k-1, so the
//      kept mass z lies in [mass before that bin, mass through it]; top-p's target is monotone in z, so its
//      element lies in the bins holding the targets of both ends, and the z after it in (target_lo, mass through
//      the upper bin]; the draw's target likewise. Bins partition the order, so an element's cumulative weight
//      = (weight of the bins before its region) + (weight of the elements of its region ranked before it);
//   3. gathers the elements of those (<= 3, merged where they overlap) bin ranges in ONE pass over the logits'
//      bin indices (sbin u16 [V], written with the histogram: half the bytes of s, no float work, and the
//      counts of 1. are exactly what it finds), ranks each element among its own region (up to 32 threads per
//      element), and runs top-k -> top-p -> draw as parallel tests on the gathered elements (each step's
//      element is among them by 2.). Top-k whose bin has no mass (peaked logits, large k) needs no element:
//      its kept mass is the mass before that bin.
//   A region of more than S2_REGION_CAP elements (thousands of near-equal logits) or any step that finds no
//   element falls back to finish_draw above (the v1 finishing code, exact). The global bins are zeroed by
//   the next sample_prep_v2 and the ticket by the last block, so a graph replays without host work.
//   Both kernels start with pdl_enter (ops_select launches them with PDL): each may be launched while the kernel
//   before it finishes, and waits for it before reading or writing anything.
//   tests/sampler_model.py is a NumPy model of steps 1-4 (tests/test_sampler_model.py checks it against the rule).

#define S2_CHUNK 1024          // logits per block in both kernels: one per thread
#define S2_PEN_SPAN 4          // chunks per working block of sample_prep_v2 when a penalty is on
#define S2_REGION_CAP 512      // most elements in one gathered region (ranked in O(n^2 / split) per thread)
#define S2_LIST_CAP 1024       // gathered elements in all regions
static_assert(S2_CHUNK == SAMPLE_THREADS, "one logit per thread");
static_assert(S2_LIST_CAP <= SAMPLE_THREADS, "one gathered element per thread at least");

// grid (G,), block SAMPLE_THREADS: s, per-chunk partials (max, argmax: ties lowest id, min finite), bins = 0.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_prep_v2(const float* __restrict__ logits, const int* __restrict__ hist, const int* __restrict__ pos,
               const int* __restrict__ n_tokens, const float* __restrict__ params, int V, int hist_len,
               float* __restrict__ s, float* __restrict__ pmax, int* __restrict__ parg, float* __restrict__ pmin,
               unsigned* __restrict__ bcnt, u64* __restrict__ bmass) {
    __shared__ unsigned bits[S2_PEN_SPAN * S2_CHUNK / 32];  // penalized ids of this block's chunks
    __shared__ float sv[32];
    __shared__ int si[32];
    pdl_enter();  // everything below reads or writes what earlier kernels use (launched with PDL: gpu/pdl.py)
    const float temp = params[0], rep = params[2];
    const bool pen = rep != 1.0f;
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < SAMPLE_NB; b += gridDim.x * blockDim.x) {
        bcnt[b] = 0u;
        bmass[b] = 0ull;
    }
    const int span = pen ? S2_PEN_SPAN : 1;
    if (blockIdx.x % span) return;  // block-uniform: a working block before it does this chunk
    const int base = blockIdx.x * S2_CHUNK, nch = min(span, (int)gridDim.x - (int)blockIdx.x);
    float lv[S2_PEN_SPAN];
#pragma unroll
    for (int u = 0; u < S2_PEN_SPAN; ++u) {  // every load in flight before the first is used
        const int i = base + u * S2_CHUNK + threadIdx.x;
        lv[u] = u < nch && i < V ? logits[i] : 0.0f;
    }
    if (pen) mark_history(bits, nch * S2_CHUNK, hist, pos, n_tokens, hist_len, base, V);
#pragma unroll
    for (int u = 0; u < S2_PEN_SPAN; ++u) {
        if (u >= nch) break;  // block-uniform
        const int j = u * S2_CHUNK + threadIdx.x, i = base + j;
        float bv = NEG_INF, lo = POS_INF;
        int bi = 0x7fffffff;
        if (i < V) {  // the same float operations as sample_prep
            const float l = process_logit(lv[u], j, bits, pen, rep, temp);
            s[i] = l;
            if (l > bv) { bv = l; bi = i; }
            if (l > NEG_INF) lo = l;
        }
        const int best = block_argmax(bv, bi, sv, si);  // its __syncthreads make s[best] visible to the block
        lo = block_min(lo, sv);
        if (threadIdx.x == 0) {
            parg[blockIdx.x + u] = best;
            pmax[blockIdx.x + u] = best < V ? s[best] : NEG_INF;
            pmin[blockIdx.x + u] = lo;
        }
    }
}

#include "sampling_finish.cuh"  // Draw2Shared, bracket_regions, rank_and_step (v2 and v3)

// The finishing block's fast path; returns the token, or -1 (block-uniform) for the exact fallback.
__device__ int finish_v2(Draw2Shared& sh, const float* s, const unsigned short* sbin, int V, float m,
                         const unsigned* bcnt, const u64* bmass, int top_k, float top_p, u64 u24) {
    const int t = threadIdx.x, b0 = 2 * t;
    const unsigned c[2] = {__ldcg(bcnt + b0), __ldcg(bcnt + b0 + 1)};
    const u64 w[2] = {__ldcg(bmass + b0), __ldcg(bmass + b0 + 1)};
    const Bracket br = bracket_regions(sh, V, c, w, top_k, top_p, u24);
    if (!sh.fast) return -1;
    const int nr = sh.nr;
    // 3. one pass over the bin of every element (sbin: 2 bytes each, written by the blocks with the histogram, so
    //    the counts above are exact): the elements of the regions, each into its region's slots
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const int b = b0 + k;
        int r = 0xFF;
        for (int j = 0; j < nr; ++j)
            if (b >= sh.r[j].lo && b <= sh.r[j].hi) r = j;
        sh.reg_of[b] = (unsigned char)r;
    }
    __syncthreads();
    const auto take = [&](unsigned b, int i) {
        const unsigned r = sh.reg_of[b];
        if (r == 0xFFu) return;
        const float l = s[i];
        const int at = atomicAdd(&sh.cur[r], 1);
        if (at < sh.r[r].off + sh.r[r].n) { sh.lc[at] = comp_key(l, i); sh.lw[at] = mass_of(l, m); }
    };
    const int n8 = V >> 3;
    const uint4* sb8 = reinterpret_cast<const uint4*>(sbin);
    for (int k0 = t; k0 < n8; k0 += 2 * SAMPLE_THREADS) {  // two 16-byte loads in flight per thread
        const int k1 = k0 + SAMPLE_THREADS;
        const uint4 a = __ldcg(sb8 + k0), z4 = k1 < n8 ? __ldcg(sb8 + k1) : make_uint4(0u, 0u, 0u, 0u);
        const unsigned wa[4] = {a.x, a.y, a.z, a.w}, wz[4] = {z4.x, z4.y, z4.z, z4.w};
#pragma unroll
        for (int q = 0; q < 4; ++q) { take(wa[q] & 0xFFFFu, 8 * k0 + 2 * q); take(wa[q] >> 16, 8 * k0 + 2 * q + 1); }
        if (k1 < n8) {
#pragma unroll
            for (int q = 0; q < 4; ++q) { take(wz[q] & 0xFFFFu, 8 * k1 + 2 * q); take(wz[q] >> 16, 8 * k1 + 2 * q + 1); }
        }
    }
    for (int i = 8 * n8 + t; i < V; i += SAMPLE_THREADS) take(__ldcg(sbin + i), i);
    __syncthreads();
    return rank_and_step(sh, br, top_k, top_p, u24);
}

struct Sample2Shared {
    union {
        struct { unsigned c[SAMPLE_NB]; u64 w[SAMPLE_NB]; } h;  // this block's histogram (24 KB)
        struct { DrawShared v1; Draw2Shared v2; } f;            // the finishing block
    };
    int last;
};

// grid (G,), block SAMPLE_THREADS, after sample_prep_v2 on the same workspace (same G).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_draw_v2(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos,
               const int* __restrict__ n_tokens, const float* __restrict__ params, const u64* __restrict__ seed,
               int V, int hist_len, const float* __restrict__ s, const float* __restrict__ pmax,
               const int* __restrict__ parg, const float* __restrict__ pmin, unsigned* __restrict__ bcnt,
               u64* __restrict__ bmass, unsigned short* sbin, unsigned* __restrict__ ctr) {
    __shared__ Sample2Shared sh;
    pdl_enter();  // launched with PDL (gpu/pdl.py): wait for sample_prep_v2
    const int t = threadIdx.x, i = blockIdx.x * S2_CHUNK + t;
    const bool in = i < V;
    const float l = in ? s[i] : NEG_INF;  // in flight while the partials are merged
    float temp, top_p, m, lo;
    int top_k, best;
    if (draw_begin(params, pmax, parg, pmin, V, token, hist, pos, n_tokens, hist_len, temp, top_p, top_k, m, best, lo))
        return;
    const float scale = bin_scale(m, lo);
    sh.h.c[t] = 0u;
    sh.h.c[t + SAMPLE_THREADS] = 0u;
    sh.h.w[t] = 0ull;
    sh.h.w[t + SAMPLE_THREADS] = 0ull;
    __syncthreads();
    const int b = bin_of(l, m, scale);
    const u64 wgt = in ? mass_of(l, m) : 0ull;
    if (in) sbin[i] = (unsigned short)b;  // for the finishing block's gather (visible to it: threadfence below)
    const unsigned tail = __ballot_sync(0xffffffffu, in && b == SAMPLE_NB - 1);  // peaked logits: most of a warp
    if ((t & 31) == 0 && tail) atomicAdd(&sh.h.c[SAMPLE_NB - 1], (unsigned)__popc(tail));
    if (in && b != SAMPLE_NB - 1) atomicAdd(&sh.h.c[b], 1u);
    if (wgt) atomicAdd(&sh.h.w[b], wgt);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 2; ++k) {  // the non-empty bins into the global ones
        const int bb = t + k * SAMPLE_THREADS;
        const unsigned bc = sh.h.c[bb];
        const u64 bw = sh.h.w[bb];
        if (bc) atomicAdd(&bcnt[bb], bc);
        if (bw) atomicAdd(&bmass[bb], bw);
    }
    __threadfence();  // this block's bin updates are visible before its ticket
    __syncthreads();  // also: every thread has read sh.h before the finishing block reuses it
    if (t == 0) sh.last = atomicAdd(ctr, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!sh.last) return;
    __threadfence();
    if (t == 0) *ctr = 0u;  // for the next launch (stream-ordered after this one)
    const int P = pos[0] + n_tokens[0];
    const u64 u24 = uniform_bits(seed[0], (u64)P);
    int tok = finish_v2(sh.f.v2, s, sbin, V, m, bcnt, bmass, top_k, top_p, u24);
    if (tok < 0) tok = finish_draw(sh.f.v1, s, V, m, scale, bcnt, bmass, top_k, top_p, u24);
    if (t == 0) commit_token(tok, token, hist, pos, n_tokens, hist_len);
}
