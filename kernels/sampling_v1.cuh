// The v1 sampler's draw (sample_draw, ops_select "old") and its finishing code (select_kept, head_draw,
// finish_draw: the exact path that v2 / v3 fall back to). Part of sampling.cu's module (included after
// sample_prep); compiled only through sampling.cu.

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
    float temp, top_p, m, lo;
    int top_k, best;
    if (draw_begin(params, pmax, parg, pmin, V, token, hist, pos, n_tokens, hist_len, temp, top_p, top_k, m, best, lo))
        return;
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
