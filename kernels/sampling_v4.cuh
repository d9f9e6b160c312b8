// The one-block sampler, part of sampling.cu's module (included after sampling_v3.cuh; uses its helpers).
// Compiled only through sampling.cu.
//
// ---- sample, one block (ops_select "one"; V <= S4_PER * SAMPLE_THREADS = 32768) -------------------------------------
// Same rule, same integers, same token as v1-v3. The multi-block samplers pay two launches, a grid-wide ticket
// (a release fence and an atomic a block: about one kernel boundary, twentythird_2026-12-02/s31d) and the
// finishing block's L2 round trips for the global bins and the gathered keys. At LLaMA-2's 32000 logits one block
// of 1024 threads holds every processed logit in registers (32 a thread, ids t + 1024 k) until its bin is known, so:
//   1. the logits come in with every load in flight (as argmax, which takes 3.4 us graph-timed), the penalty
//      bitset is marked (mark_history), each logit processed (process_logit), the block's max / argmax / min
//      finite reduced (ties: lowest id);
//   2. the histogram of bins (counts; masses as two u32 sums of their 16-bit halves: exact, < 2^31 at V 32768) in
//      shared memory, no global bins, no ticket;
//   3. bracket_regions (v2's scan, brackets and regions) on the thread's two bins, the gather of the regions'
//      elements by the bins kept in registers (two a word; each thread reads back from s only the processed logits
//      it wrote there and that fall in a region), rank_and_step;
//   4. only if that finds no token (a region too large: thousands of near-equal logits): the bins go to the
//      workspace (bcnt, bmass) and v1's exact finish_draw runs on them and s.
// Workspace use: s (every processed logit), bcnt, bmass (fallback only); ctr[1] = the path taken (1 fast, 2 fallback), for the tests.

#define S4_PER 32  // logits a thread
#define S4_MAX (S4_PER * SAMPLE_THREADS)

struct Sample4Shared {
    union {
        struct { unsigned c[SAMPLE_NB], wl[SAMPLE_NB], wh[SAMPLE_NB]; } h;  // the block's histogram (24 KB)
        struct { DrawShared v1; Draw2Shared v2; } f;                        // steps 3-4
    };
    unsigned bits[S4_MAX / 32];  // penalized ids
    float sv[32];
    int si[32];
    float m;
};

// Step 2: this thread's logits into the shared histogram (the last bin, where peaked logits put most of a warp,
// takes one count atomic a warp), into the workspace s, and their bins, two a word, into bins.
__device__ __forceinline__ void s4_histogram(Sample4Shared& sh, const float (&l)[S4_PER], int V, float m,
                                             float scale, float* __restrict__ s, unsigned (&bins)[S4_PER / 2]) {
    const int t = threadIdx.x, lane = t & 31;
#pragma unroll
    for (int k = 0; k < S4_PER; ++k) {
        const int i = t + k * SAMPLE_THREADS;
        const bool in = i < V;
        const int b = bin_of(l[k], m, scale);
        bins[k >> 1] = (k & 1) ? bins[k >> 1] | ((unsigned)b << 16) : (unsigned)b;
        if (in) s[i] = l[k];
        const unsigned tail = __ballot_sync(0xffffffffu, in && b == SAMPLE_NB - 1);
        if (tail && lane == __ffs(tail) - 1) atomicAdd(&sh.h.c[SAMPLE_NB - 1], (unsigned)__popc(tail));
        if (in && b != SAMPLE_NB - 1) atomicAdd(&sh.h.c[b], 1u);
        const u64 w = in ? mass_of(l[k], m) : 0ull;
        if (w) {
            atomicAdd(&sh.h.wl[b], (unsigned)(w & 0xFFFFull));
            atomicAdd(&sh.h.wh[b], (unsigned)(w >> 16));
        }
    }
}

// Step 3: the regions' elements into their slots (each thread reads back the processed logits it wrote to s, only
// for its elements in a region); returns the token or -1 (fallback).
__device__ int s4_finish(Draw2Shared& sh, const unsigned (&bins)[S4_PER / 2], const float* s, int V, float m,
                         const unsigned (&c)[2], const u64 (&w)[2], int top_k, float top_p, u64 u24) {
    const int t = threadIdx.x;
    const Bracket br = bracket_regions(sh, V, c, w, top_k, top_p, u24);
    if (!sh.fast) return -1;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const int b = 2 * t + k;
        int r = 0xFF;
        for (int j = 0; j < sh.nr; ++j)
            if (b >= sh.r[j].lo && b <= sh.r[j].hi) r = j;
        sh.reg_of[b] = (unsigned char)r;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < S4_PER; ++k) {
        const int i = t + k * SAMPLE_THREADS;
        if (i >= V) break;
        const unsigned r = sh.reg_of[(bins[k >> 1] >> (16 * (k & 1))) & 0xFFFFu];
        if (r == 0xFFu) continue;
        const float l = s[i];
        const int at = atomicAdd(&sh.cur[r], 1);
        if (at < sh.r[r].off + sh.r[r].n) { sh.lc[at] = comp_key(l, i); sh.lw[at] = mass_of(l, m); }
    }
    __syncthreads();
    for (int k = 0; k < sh.nr; ++k)  // every slot filled (the counts are exact; a mismatch takes the exact path)
        if (sh.cur[k] != sh.r[k].off + sh.r[k].n) return -1;
    return rank_and_step(sh, br, top_k, top_p, u24);
}

// Step 4 (block-uniform, rare): the exact v1 finish on the workspace (s is written). Not inlined, so that its
// registers do not spill the fast path's.
__device__ __noinline__ int s4_fallback(DrawShared& sh, const float* s, int V, float m, float scale, unsigned c0,
                                        unsigned c1, u64 w0, u64 w1, unsigned* bcnt, u64* bmass, int top_k,
                                        float top_p, u64 u24) {
    const int t = threadIdx.x;
    bcnt[2 * t] = c0;
    bcnt[2 * t + 1] = c1;
    bmass[2 * t] = w0;
    bmass[2 * t + 1] = w1;
    __threadfence();  // finish_draw reads the bins through L2 (__ldcg)
    __syncthreads();
    return finish_draw(sh, s, V, m, scale, bcnt, bmass, top_k, top_p, u24);
}

// grid (1,), block SAMPLE_THREADS; V <= S4_MAX (launcher-checked).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_one(int* __restrict__ token, int* __restrict__ hist, int* __restrict__ pos, const int* __restrict__ n_tokens,
           const float* __restrict__ params, const u64* __restrict__ seed, int V, int hist_len,
           const float* __restrict__ logits, float* __restrict__ s, unsigned* __restrict__ bcnt,
           u64* __restrict__ bmass, unsigned* __restrict__ ctr) {
    __shared__ Sample4Shared sh;
    pdl_enter();  // launched with PDL (gpu/pdl.py): wait for the LM head
    const int t = threadIdx.x;
    float l[S4_PER];
#pragma unroll
    for (int k = 0; k < S4_PER; ++k) {  // every load in flight before the first is used
        const int i = t + k * SAMPLE_THREADS;
        l[k] = i < V ? logits[i] : 0.0f;
    }
    const float temp = params[0], top_p = params[1], rep = params[2];
    const int top_k = (int)params[3];
    const bool pen = rep != 1.0f;
    const int P = pos[0] + n_tokens[0];
    const u64 sd = seed[0];
    if (pen) mark_history(sh.bits, S4_MAX, hist, pos, n_tokens, hist_len, 0, V);
    float bv = NEG_INF, lo = POS_INF;
    int bi = 0x7fffffff;
#pragma unroll
    for (int k = 0; k < S4_PER; ++k) {  // ascending ids a thread: the first of equal maxima is kept
        const int i = t + k * SAMPLE_THREADS;
        if (i < V) {
            l[k] = process_logit(l[k], i, sh.bits, pen, rep, temp);
            if (l[k] > bv) { bv = l[k]; bi = i; }
            if (l[k] > NEG_INF) lo = fminf(lo, l[k]);
        } else {
            l[k] = NEG_INF;
        }
    }
    if (t == 0) sh.m = NEG_INF;
    const int best = block_argmax(bv, bi, sh.sv, sh.si);  // its barriers order sh.m's reset first
    if (bi == best) sh.m = bv;                            // the one thread holding the winner
    lo = block_min(lo, sh.sv);                            // its barriers publish sh.m
    const float m = sh.m;
    if (greedy_exit(temp, top_k, best, m, V, token, hist, pos, n_tokens, hist_len)) return;
    const float scale = bin_scale(m, lo);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        sh.h.c[t + k * SAMPLE_THREADS] = 0u;
        sh.h.wl[t + k * SAMPLE_THREADS] = 0u;
        sh.h.wh[t + k * SAMPLE_THREADS] = 0u;
    }
    __syncthreads();
    unsigned bins[S4_PER / 2];
    s4_histogram(sh, l, V, m, scale, s, bins);  // l is dead after this
    __syncthreads();
    unsigned c[2];
    u64 w[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const int b = 2 * t + k;
        c[k] = sh.h.c[b];
        w[k] = sh.h.wl[b] + ((u64)sh.h.wh[b] << 16);
    }
    __syncthreads();  // sh.h is read: steps 3-4 reuse its bytes
    const u64 u24 = uniform_bits(sd, (u64)P);
    int tok = s4_finish(sh.f.v2, bins, s, V, m, c, w, top_k, top_p, u24);
    if (t == 0) ctr[1] = tok < 0 ? 2u : 1u;
    if (tok < 0) tok = s4_fallback(sh.f.v1, s, V, m, scale, c[0], c[1], w[0], w[1], bcnt, bmass, top_k, top_p, u24);
    if (t == 0) commit_token(tok, token, hist, pos, n_tokens, hist_len);
}
