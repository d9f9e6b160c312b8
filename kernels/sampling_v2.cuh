// The v2 sampler kernels, part of sampling.cu's module (included at its end; uses its helpers and finish_draw).
// Compiled only through sampling.cu.

// ---- sample, v2 (ops_select.SAMPLER "v2"): same rule, same integers, same token --------------------------------
// (sampling_v3.cuh reuses sample_prep_v2 and the finishing helpers bracket_regions and rank_and_step.)
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

struct Located { int b; u64 cx, mx, c, w; };  // a bin: index, count and mass of the bins before it, its own
struct Region { int lo, hi, off, n; u64 c0, m0; };  // bins lo..hi, list slots off.., weights before bin lo

struct Draw2Shared {
    u64 lc[S2_LIST_CAP], lw[S2_LIST_CAP];  // gathered keys and masses, region by region
    u64 ws[64];
    Located q[5];                          // top-k's bin; top-p's bins (lo, hi); the draw's bins (lo, hi)
    Region r[3];
    unsigned char reg_of[SAMPLE_NB];       // bin -> its region, 0xFF: none
    int cur[3], nr, ntot, fast, tok;
    u64 zk, zp;                            // kept mass after top-k, after top-p (0: not found)
};

// Exclusive prefix sums of (a, b) over the threads of the block in thread order, and their totals. ws: 64 words.
__device__ __forceinline__ void block_excl_scan2(u64 a, u64 b, u64* ws, u64& ea, u64& eb, u64& ta, u64& tb) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    u64 ia = a, ib = b;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const u64 xa = __shfl_up_sync(0xffffffffu, ia, o), xb = __shfl_up_sync(0xffffffffu, ib, o);
        if (lane >= o) { ia += xa; ib += xb; }
    }
    __syncthreads();  // ws is free
    if (lane == 31) { ws[warp] = ia; ws[32 + warp] = ib; }
    __syncthreads();
    u64 wa = lane < nw ? ws[lane] : 0ull, wb = lane < nw ? ws[32 + lane] : 0ull;  // inclusive over warps
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const u64 xa = __shfl_up_sync(0xffffffffu, wa, o), xb = __shfl_up_sync(0xffffffffu, wb, o);
        if (lane >= o) { wa += xa; wb += xb; }
    }
    ta = __shfl_sync(0xffffffffu, wa, 31);
    tb = __shfl_sync(0xffffffffu, wb, 31);
    const u64 pa = __shfl_sync(0xffffffffu, wa, warp > 0 ? warp - 1 : 0);
    const u64 pb = __shfl_sync(0xffffffffu, wb, warp > 0 ? warp - 1 : 0);
    ea = (warp > 0 ? pa : 0ull) + ia - a;
    eb = (warp > 0 ? pb : 0ull) + ib - b;
}

// The bin whose weight range [before, before + own) holds tg (count or mass); this thread's bins b0, b0 + 1
// have (cx, mx) before b0. At most one thread of the block writes q (weight ranges partition [0, total)).
__device__ __forceinline__ void locate(Located& q, int b0, const unsigned* c, const u64* w, u64 cx, u64 mx,
                                       bool by_count, u64 tg) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const u64 before = by_count ? cx : mx, own = by_count ? (u64)c[k] : w[k];
        if (before <= tg && tg < before + own) { Located l = {b0 + k, cx, mx, c[k], w[k]}; q = l; }
        cx += c[k];
        mx += w[k];
    }
}

__device__ __forceinline__ u64 topp_target(float top_p, u64 z) {  // first element with cum >= top_p * z: cum > tp
    u64 tp = (u64)ceil((double)top_p * (double)z);
    return (tp > 0ull ? tp : 1ull) - 1ull;
}

// A step's bin range: bins lo..hi (lo = INT_MAX: the step needs no element), count and mass before lo, count
// through hi.
struct Range { int lo, hi; u64 c0, m0, cend; };

__device__ __forceinline__ Range range_of(const Located& a, const Located& b, bool used) {
    Range r = {used ? a.b : 0x7fffffff, b.b, a.cx, a.mx, b.cx + b.c};
    return r;
}
__device__ __forceinline__ void order2(Range& x, Range& y) {  // by first bin
    if (y.lo < x.lo) { const Range t = x; x = y; y = t; }
}

// Thread 0: the bin ranges of the steps (top-k: q[0]; top-p: q[1]..q[2]; draw: q[3]..q[4]), merged where they
// overlap, as regions of the gather list; sh.fast = 0 when a bin was not found or a region is too large (the
// fallback). kexact: top-k needs no element (finish_v2), but q[0] must have been found all the same. Register
// arithmetic: the q are copied once, the three ranges sorted by a fixed network.
__device__ void plan_regions(Draw2Shared& sh, bool topk, bool kexact, bool topp) {
    const Located q0 = sh.q[0], q1 = sh.q[1], q2 = sh.q[2], q3 = sh.q[3], q4 = sh.q[4];
    sh.fast = 0;
    if ((topk && q0.b < 0) || (topp && (q1.b < 0 || q2.b < 0)) || q3.b < 0 || q4.b < 0) return;
    Range r[3] = {range_of(q0, q0, topk && !kexact), range_of(q1, q2, topp), range_of(q3, q4, true)};
    order2(r[0], r[1]);
    order2(r[1], r[2]);
    order2(r[0], r[1]);
    int nr = 0;
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        if (r[k].lo == 0x7fffffff) continue;
        if (nr > 0 && r[k].lo <= sh.r[nr - 1].hi) {  // overlaps the previous region: extend it
            if (r[k].hi > sh.r[nr - 1].hi) {
                sh.r[nr - 1].hi = r[k].hi;
                sh.r[nr - 1].n = (int)(r[k].cend - sh.r[nr - 1].c0);
            }
        } else {
            const Region g = {r[k].lo, r[k].hi, 0, (int)(r[k].cend - r[k].c0), r[k].c0, r[k].m0};
            sh.r[nr++] = g;
        }
    }
    int off = 0;
    bool fits = true;
    for (int k = 0; k < nr; ++k) {
        fits = fits && sh.r[k].n <= S2_REGION_CAP;
        sh.r[k].off = sh.cur[k] = off;
        off += sh.r[k].n;
    }
    sh.nr = nr;
    sh.ntot = off;
    sh.fast = fits && off <= S2_LIST_CAP;
}

// What the steps need from the bracketing (block-uniform): which steps run, top-k's exact kept mass when its bin
// has no mass (kexact), the total mass.
struct Bracket { bool topk, topp, kexact; u64 zk, ztot; };

// Steps 1-2 of the finishing block (v2 and v3): scan, brackets, regions (sh.r, sh.cur, sh.nr, sh.ntot, sh.fast).
// c, w: the global bins 2 * threadIdx.x and + 1 (count, mass).
__device__ Bracket bracket_regions(Draw2Shared& sh, int V, const unsigned* c, const u64* w, int top_k, float top_p,
                                   u64 u24) {
    const int t = threadIdx.x, b0 = 2 * t;
    const bool topk = top_k > 1 && top_k < V, topp = top_p < 1.0f;
    if (t < 5) sh.q[t].b = -1;
    if (t == 0) { sh.zk = 0ull; sh.zp = 0ull; sh.tok = -1; }
    u64 cx, mx, ctot, ztot;
    block_excl_scan2((u64)c[0] + c[1], w[0] + w[1], sh.ws, cx, mx, ctot, ztot);  // syncs order the writes above
    // 2. brackets: z in [zlo, zhi] before each step
    u64 zlo = ztot, zhi = ztot;
    bool kexact = false;  // top-k's bin has no mass (peaked logits, large k): its kept mass is exactly zlo
    u64 zk = 0ull;
    if (topk) {
        locate(sh.q[0], b0, c, w, cx, mx, true, (u64)(top_k - 1));
        __syncthreads();
        zlo = sh.q[0].mx;
        zhi = sh.q[0].mx + sh.q[0].w;
        kexact = zlo == zhi;
        zk = zlo;
    }
    if (topp) {
        const u64 tlo = topp_target(top_p, zlo), thi = topp_target(top_p, zhi);
        locate(sh.q[1], b0, c, w, cx, mx, false, tlo);
        locate(sh.q[2], b0, c, w, cx, mx, false, thi);
        __syncthreads();
        zlo = tlo + 1ull;  // the cut element's cum exceeds its target >= tlo
        zhi = sh.q[2].mx + sh.q[2].w;
    }
    locate(sh.q[3], b0, c, w, cx, mx, false, draw_target(u24, zlo));
    locate(sh.q[4], b0, c, w, cx, mx, false, draw_target(u24, zhi));
    __syncthreads();
    if (t == 0) plan_regions(sh, topk, kexact, topp);
    __syncthreads();
    const Bracket br = {topk, topp, kexact, zk, ztot};
    return br;
}

// Steps 3b-4 of the finishing block (v2 and v3), after the gather filled sh.lc / sh.lw region by region and a
// barrier: rank each element in its region, then the steps. Returns the token, or -1 (block-uniform): fallback.
__device__ int rank_and_step(Draw2Shared& sh, const Bracket& br, int top_k, float top_p, u64 u24) {
    const int t = threadIdx.x, nr = sh.nr;
    const bool topk = br.topk, topp = br.topp, kexact = br.kexact;
    const u64 zk = br.zk, ztot = br.ztot;
    const int ntot = sh.ntot;
    int split = 1;  // threads per element: as many as the block allows, at most a warp (block-uniform)
    while (split < 32 && ntot * split * 2 <= SAMPLE_THREADS) split <<= 1;
    const int e = t / split, part = t % split;
    int reg = 0;
#pragma unroll
    for (int k = 1; k < 3; ++k)
        if (k < nr && e >= sh.r[k].off) reg = k;
    u64 cc = 0ull, wt = 0ull, nb = 0ull, mb = 0ull;
    if (e < ntot) {  // rank element e among its region (descending comp): count and mass before it
        cc = sh.lc[e];
        wt = sh.lw[e];
        const int end = sh.r[reg].off + sh.r[reg].n;
        for (int j = sh.r[reg].off + part; j < end; j += split)
            if (sh.lc[j] > cc) { ++nb; mb += sh.lw[j]; }
    }
    for (int o = 1; o < split; o <<= 1) {  // the split threads of one element: aligned lanes of one warp
        nb += __shfl_xor_sync(0xffffffffu, nb, o);
        mb += __shfl_xor_sync(0xffffffffu, mb, o);
    }
    const bool own = e < ntot && part == 0;
    const u64 gnb = own ? sh.r[reg].c0 + nb : 0ull, gmb = own ? sh.r[reg].m0 + mb : 0ull;  // global, before e
    // 4. the steps, each one parallel test (exactly one element passes each, by 2.)
    u64 z = kexact ? zk : ztot;
    if (topk && !kexact) {
        if (own && gnb == (u64)(top_k - 1)) sh.zk = gmb + wt;
        __syncthreads();
        z = sh.zk;
        if (z == 0ull) return -1;  // the max is kept and has mass 2^31: 0 = not found
    }
    if (topp) {
        const u64 tg = topp_target(top_p, z);
        if (own && gmb <= tg && tg < gmb + wt) sh.zp = gmb + wt;
        __syncthreads();
        z = sh.zp;
        if (z == 0ull) return -1;
    }
    const u64 tg = draw_target(u24, z);
    if (own && gmb <= tg && tg < gmb + wt) sh.tok = (int)(0xFFFFFFFFu - (unsigned)(cc & 0xFFFFFFFFull));
    __syncthreads();
    return sh.tok;
}

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
    const float temp = params[0], top_p = params[1];
    const int top_k = (int)params[3];
    float m, lo;
    int best;
    merge_partials(pmax, parg, pmin, gridDim.x, m, best, lo);
    if (greedy_exit(temp, top_k, best, m, V, token, hist, pos, n_tokens, hist_len)) return;
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
