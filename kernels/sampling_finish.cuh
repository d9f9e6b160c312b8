// The finishing block's steps shared by the v2 and v3 samplers: the scan of the global bins, the brackets of
// top-k / top-p / the draw and their regions (bracket_regions), the ranking and the steps over the gathered elements
// (rank_and_step). Part of sampling.cu's module (included by sampling_v2.cuh); compiled only through sampling.cu.

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
