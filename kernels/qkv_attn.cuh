// The short prefill's causal attention, run by the qkv GEMM that produces its q / k / v (gemm.cu QATTN;
// gpu/qkv_attn.py). Removes the attention launch and its two kernel boundaries from each layer of a <= 16-row
// prefill; the engine takes it only where the keys are few (the caller bounds pos + n_tokens).
//
// Completion by counting, no grid barrier: the qkv output rows [D q | kvd k | kvd v] fall into KV groups (group g:
// the q rows of heads g*R .. g*R+R-1, the k and v rows of KV head g; R = n_rep). After its epilogue stores, a block
// adds 1 to cnt[g] for every (region, group) pair its rows touch (thread 0, after __syncthreads and a fence: the
// release of the whole block's stores, as in cooperative groups' grid sync). The block whose add completes group g
// (qattn_total: the number of blocks that touch the group's three row ranges) acquires with a fence, resets cnt[g]
// for the next launch and computes the group's attention from L2 (ld.global.cg):
//   att[n, h*hd + d] = sum_{j <= pos+n} softmax_j(q[n, h] . k[j, g] / sqrt(hd)) v[j, g, d]  for n < n_tokens,
//   att[n, h*hd + d] = 0 for n_tokens <= n < M (as attention_prefill.cu writes padded rows).
// Each warp takes QA_RPW query rows a round, on its own (no block barrier): keys in chunks of 32 read straight from
// L2 (a first version staged K / V chunks in 21 KB of static shared memory: the 16-row 7B prefill was 0.07-0.09
// ms slower with it than without the fusion, twentythird_2026-12-02/s31b), a lane per key for the scores (fp32 dot
// over hd with both rows' q from shared memory), an online softmax in exp2 units per chunk, then P V with a lane per
// 4 output dims. fp32 throughout (attention_prefill.cu rounds P to T for its tensor-core P V), one rounding of the
// output to T.
// Layout: q, att T [M, D]; k, v caches T [S, kvd] (kvd = KVH * hd). Needs hd % 8 == 0, hd <= QA_HDMAX, 16-byte
// aligned q, att and caches; NTHREADS (the GEMM's block) a multiple of 32. cnt: u32 [>= KVH], zero between launches.
#pragma once

#define QA_NEG_INF __int_as_float(0xff800000)  // NVRTC has no INFINITY
#ifndef QA_KO
#define QA_KO 0  // bench-only knockouts (gpu/qkv_attn.py KO): 1 no attention after the count, 2 no count either
#endif
#define QA_HDMAX 128
#define QA_RPW 2        // query rows a warp takes a round (qattn_chunk is written for 2)
#define QA_NW (NTHREADS / 32)
#define QA_MAXLAST 8    // groups one block can complete (its 16 * TILES rows touch at most 3 a region)

struct QAShared {
    __align__(16) T q[QA_NW][QA_RPW][QA_HDMAX];  // each warp's query rows of the round
    int last[QA_MAXLAST];
    int nlast;
};

// Blocks of B rows that touch the three row ranges of group g: each adds one per range it touches.
__device__ __forceinline__ unsigned qattn_total(int g, int B, int D, int kvd, int hd, int R) {
    const int rq = R * hd;
    const int a[3] = {g * rq, D + g * hd, D + kvd + g * hd}, n[3] = {rq, hd, hd};
    unsigned t = 0u;
#pragma unroll
    for (int r = 0; r < 3; ++r) t += (unsigned)((a[r] + n[r] - 1) / B - a[r] / B + 1);
    return t;
}

// Thread 0: one add a (region, group) pair of the block's rows [a, b) (blocks of B rows); the groups this block
// completes go to sh.last.
__device__ __forceinline__ void qattn_signal(QAShared& sh, unsigned* cnt, int a, int b, int B, int D, int kvd,
                                             int hd, int R) {
    int nl = 0;
    asm volatile("fence.acq_rel.gpu;" ::: "memory");  // release, cumulative over the block's stores (the caller's
    for (int r = 0; r < 3; ++r) {                     // __syncthreads orders them first; sampling_v3 last_ticket)
        const int lo = r == 0 ? 0 : r == 1 ? D : D + kvd, hi = r == 0 ? D : r == 1 ? D + kvd : D + 2 * kvd;
        const int per = r == 0 ? R * hd : hd, x = max(a, lo), y = min(b, hi);
        if (x >= y) continue;
        for (int g = (x - lo) / per; g <= (y - 1 - lo) / per; ++g) {
            unsigned old;
            asm volatile("atom.relaxed.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(cnt + g) : "memory");
            if (old == qattn_total(g, B, D, kvd, hd, R) - 1u && nl < QA_MAXLAST) sh.last[nl++] = g;
        }
    }
    sh.nlast = nl;
}

__device__ __forceinline__ T2 qa_pack(float a, float b) {  // two floats -> T2, each rounded to nearest
#ifdef CG_BF16
    return __floats2bfloat162_rn(a, b);
#else
    return __floats2half2_rn(a, b);
#endif
}

// Online softmax of one row over this chunk's scores s (lane = key; -inf where masked): updates m, l, rescales
// acc and returns the lane's weight p.
__device__ __forceinline__ float qa_softmax(float s, float& m, float& l, float (&acc)[4]) {
    const float mn = fmaxf(m, warp_max(s));  // finite: the chunk holds at least one of the row's keys
    const float alpha = exp2f(m - mn), p = s > QA_NEG_INF ? exp2f(s - mn) : 0.0f;
    l = l * alpha + warp_sum(p);
    m = mn;
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[e] *= alpha;
    return p;
}

// One warp, its QA_RPW (= 2) query rows: keys [c0, c0 + 32) ∩ [0, wl) of KV head g straight from L2 (each lane one
// key's row for the scores, each lane 4 output dims of every key's v for P V), shared by both rows.
__device__ __forceinline__ void qattn_chunk(const T* q0, const T* q1, const T* kg, const T* vg, int c0, int wl,
                                            const int (&lim)[QA_RPW], int kvd, int hd, float sl2,
                                            float (&m)[QA_RPW], float (&l)[QA_RPW], float (&acc)[QA_RPW][4]) {
    const int lane = threadIdx.x & 31, j = c0 + lane;
    float d0 = 0.0f, d1 = 0.0f;
    if (j < wl) {
        const T* kr = kg + (size_t)j * kvd;
        for (int c = 0; c < hd; c += 8) {
            const uint4 kv = __ldcg(reinterpret_cast<const uint4*>(kr + c));
            d0 = dot8(kv, *reinterpret_cast<const uint4*>(q0 + c), d0);
            d1 = dot8(kv, *reinterpret_cast<const uint4*>(q1 + c), d1);
        }
    }
    float p[QA_RPW] = {0.0f, 0.0f};
    if (c0 < lim[0]) p[0] = qa_softmax(j < lim[0] ? d0 * sl2 : QA_NEG_INF, m[0], l[0], acc[0]);  // warp-uniform
    if (c0 < lim[1]) p[1] = qa_softmax(j < lim[1] ? d1 * sl2 : QA_NEG_INF, m[1], l[1], acc[1]);
    const int nk = min(32, wl - c0);
    const bool act = 4 * lane < hd;
    for (int k0 = 0; k0 < nk; k0 += 8) {
        uint2 vv[8];
#pragma unroll
        for (int u = 0; u < 8; ++u)  // every load of the 8 keys in flight before the first is used
            vv[u] = act && k0 + u < nk ? __ldcg(reinterpret_cast<const uint2*>(vg + (size_t)(c0 + k0 + u) * kvd) + lane)
                                       : make_uint2(0u, 0u);
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const float pa = __shfl_sync(0xffffffffu, p[0], (k0 + u) & 31);
            const float pb = __shfl_sync(0xffffffffu, p[1], (k0 + u) & 31);
            const T2* v2 = reinterpret_cast<const T2*>(&vv[u]);
            const float2 va = to_f2(v2[0]), vb = to_f2(v2[1]);
            const float v[4] = {va.x, va.y, vb.x, vb.y};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                acc[0][e] = fmaf(pa, v[e], acc[0][e]);
                acc[1][e] = fmaf(pb, v[e], acc[1][e]);
            }
        }
    }
}

// Group g's attention (all threads of the block, warps independent): R * M query rows, QA_RPW a warp a round.
__device__ void qattn_group(QAShared& sh, int g, T* __restrict__ att, const T* q, const T* kc, const T* vc,
                            int M, int ntok, int p0, int D, int kvd, int hd, int R, int S) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, rows = R * M, L = min(p0 + ntok, S);
    const float sl2 = rsqrtf((float)hd) * 1.4426950408889634f;
    const T* kg = kc + (size_t)g * hd;
    const T* vg = vc + (size_t)g * hd;
    for (int r0 = 0; r0 < rows; r0 += QA_NW * QA_RPW) {
        float m[QA_RPW], l[QA_RPW], acc[QA_RPW][4];
        int lim[QA_RPW], n[QA_RPW], h[QA_RPW], wl = 0;
#pragma unroll
        for (int i = 0; i < QA_RPW; ++i) {
            const int r = r0 + warp * QA_RPW + i;
            n[i] = r / R;
            h[i] = g * R + r % R;
            lim[i] = r < rows && n[i] < ntok ? min(p0 + n[i] + 1, L) : 0;  // 0: padded or past the rows
            wl = max(wl, lim[i]);
            m[i] = QA_NEG_INF;
            l[i] = 0.0f;
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
            for (int c = lane; c < hd / 8; c += 32)  // (rows without keys read a valid row, unused)
                *reinterpret_cast<uint4*>(&sh.q[warp][i][8 * c]) = __ldcg(reinterpret_cast<const uint4*>(
                    q + (size_t)(lim[i] > 0 ? n[i] : 0) * D + (size_t)(lim[i] > 0 ? h[i] : 0) * hd + 8 * c));
        }
        __syncwarp();
        for (int c0 = 0; c0 < wl; c0 += 32)
            qattn_chunk(sh.q[warp][0], sh.q[warp][1], kg, vg, c0, wl, lim, kvd, hd, sl2, m, l, acc);
#pragma unroll
        for (int i = 0; i < QA_RPW; ++i) {
            const int r = r0 + warp * QA_RPW + i;
            if (r >= rows || 4 * lane >= hd) continue;
            const float inv = lim[i] > 0 ? 1.0f / l[i] : 0.0f;
            T2 o[2];
            o[0] = qa_pack(acc[i][0] * inv, acc[i][1] * inv);
            o[1] = qa_pack(acc[i][2] * inv, acc[i][3] * inv);
            *reinterpret_cast<uint2*>(att + (size_t)n[i] * D + (size_t)h[i] * hd + 4 * lane) =
                *reinterpret_cast<const uint2*>(o);
        }
        __syncwarp();  // sh.q is rewritten next round
    }
}

// After the qkv epilogue's stores (all threads): signal, and run the attention of every group this block completes.
__device__ __forceinline__ void qattn_tail(QAShared& sh, unsigned* cnt, int a, int b, int B, T* __restrict__ att,
                                           const T* q, const T* kc, const T* vc, int M, int ntok, int p0, int D,
                                           int kvd, int hd, int R, int S) {
    __syncthreads();  // every store of the block precedes thread 0's release
    if (threadIdx.x == 0) qattn_signal(sh, cnt, a, b, B, D, kvd, hd, R);
    __syncthreads();
    for (int i = 0; i < sh.nlast; ++i) {
        const int g = sh.last[i];
        if (threadIdx.x == 0) {
            asm volatile("fence.acq_rel.gpu;" ::: "memory");  // acquire: the other blocks' stores of group g
            cnt[g] = 0u;                                       // for the next launch (stream-ordered after this one)
        }
        __syncthreads();
#if QA_KO != 1
        qattn_group(sh, g, att, q, kc, vc, M, ntok, p0, D, kvd, hd, R, S);
#endif
    }
}
