// Causal attention of a short prefill (gpu/attention_short.py): at most 16 query rows over few keys, the case of a
// short prompt's first step, where attention_prefill.cu's tensor-core tiles (64 query rows, 64-key tiles through
// cp.async) spend their time in serial load rounds. Here a warp takes two query rows of one KV group and every load
// of a 32-key chunk (its q rows, a key row a lane, 4 dims of every key's v a lane) is issued before the first is
// used: one memory round trip a chunk.
//
//   att[n, h, :] = sum_{j <= pos+n} softmax_j(q[n, h, :] . k[j, h / R, :] / sqrt(hd)) v[j, h / R, :]  (n < n_tokens)
//   att[n, h, :] = 0 for n_tokens <= n < M (as attention_prefill.cu writes padded rows)
//
// Layout: q, att T [M, D] (D = H * hd); k, v T [S, KVH * hd] (layer views of the cache; keys < pos + n_tokens
// written). Grid (KVH, ceil(R * M / (2 * NWARPS))); block 32 * NWARPS. Query row r of group g: token r / R, head
// g * R + r % R. Scores in exp2 units, online softmax per chunk, fp32 throughout, one rounding of the output to T.
// Needs hd % 8 == 0, hd <= 128, 16-byte aligned q, k, v and att (launcher-checked). Storage dtype T: common.cuh.
#include "common.cuh"

#ifndef NWARPS
#define NWARPS 4
#endif
#define AS_HDMAX 128
#define AS_NEG_INF __int_as_float(0xff800000)  // NVRTC has no INFINITY

__device__ __forceinline__ T2 as_pack(float a, float b) {  // two floats -> T2, each rounded to nearest
#ifdef CG_BF16
    return __floats2bfloat162_rn(a, b);
#else
    return __floats2half2_rn(a, b);
#endif
}

// Online softmax of one row over a chunk's scores s (lane = key, -inf where masked): updates m, l, rescales acc,
// returns the lane's weight.
__device__ __forceinline__ float as_softmax(float s, float& m, float& l, float (&acc)[4]) {
    const float mn = fmaxf(m, warp_max(s));  // finite: the chunk holds at least one of the row's keys
    const float alpha = exp2f(m - mn), p = s > AS_NEG_INF ? exp2f(s - mn) : 0.0f;
    l = l * alpha + warp_sum(p);
    m = mn;
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[e] *= alpha;
    return p;
}

extern "C" __global__ void __launch_bounds__(32 * NWARPS)
attention_short(T* __restrict__ att, const T* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                const int* __restrict__ pos, const int* __restrict__ n_tokens, int M, int D, int kvd, int hd, int R,
                int S) {
    __shared__ __align__(16) T qs[NWARPS][2][AS_HDMAX];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = blockIdx.x, rows = R * M;
    const int r0 = (blockIdx.y * NWARPS + warp) * 2, p0 = pos[0], ntok = n_tokens[0], L = min(p0 + ntok, S);
    const int pieces = hd >> 3;  // 16-byte pieces a row
    const float sl2 = rsqrtf((float)hd) * 1.4426950408889634f;
    const T* kg = kc + (size_t)g * hd;
    const T* vg = vc + (size_t)g * hd;
    int n[2], h[2], lim[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = r0 + i;
        n[i] = r / R;
        h[i] = g * R + r % R;
        lim[i] = r < rows && n[i] < ntok ? min(p0 + n[i] + 1, L) : 0;  // keys the row attends (0: padded / none)
    }
    const int wl = max(lim[0], lim[1]);
    // the lane's piece of the two q rows (rows without keys load row 0: valid memory, never used)
    const int qi = lane / max(pieces, 1), qc = lane - qi * pieces;
    uint4 qv = make_uint4(0u, 0u, 0u, 0u);
    if (qi < 2 && lim[qi] > 0) qv = __ldcg(reinterpret_cast<const uint4*>(q + (size_t)n[qi] * D + (size_t)h[qi] * hd) + qc);
    float m[2] = {AS_NEG_INF, AS_NEG_INF}, l[2] = {0.0f, 0.0f}, acc[2][4] = {};
    const bool act = 4 * lane < hd;  // the lane's output dims 4 * lane .. + 3
    for (int c0 = 0; c0 < wl; c0 += 32) {  // warp-uniform
        const int j = c0 + lane, nk = min(32, wl - c0);
        uint4 kr[AS_HDMAX / 8];
#pragma unroll
        for (int c = 0; c < AS_HDMAX / 8; ++c)
            kr[c] = c < pieces && j < wl ? __ldcg(reinterpret_cast<const uint4*>(kg + (size_t)j * kvd) + c)
                                         : make_uint4(0u, 0u, 0u, 0u);
        uint2 vv[32];
#pragma unroll
        for (int u = 0; u < 32; ++u)
            vv[u] = act && u < nk ? __ldcg(reinterpret_cast<const uint2*>(vg + (size_t)(c0 + u) * kvd) + lane)
                                  : make_uint2(0u, 0u);
        if (c0 == 0) {  // the q rows into shared memory once their loads land (the K / V loads stay in flight)
            if (qi < 2) *reinterpret_cast<uint4*>(&qs[warp][qi][8 * qc]) = qv;
            __syncwarp();
        }
        float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
        for (int c = 0; c < AS_HDMAX / 8; ++c) {
            if (c < pieces) {
                d0 = dot8(kr[c], *reinterpret_cast<const uint4*>(&qs[warp][0][8 * c]), d0);
                d1 = dot8(kr[c], *reinterpret_cast<const uint4*>(&qs[warp][1][8 * c]), d1);
            }
        }
        float p[2] = {0.0f, 0.0f};
        if (c0 < lim[0]) p[0] = as_softmax(j < lim[0] ? d0 * sl2 : AS_NEG_INF, m[0], l[0], acc[0]);  // warp-uniform
        if (c0 < lim[1]) p[1] = as_softmax(j < lim[1] ? d1 * sl2 : AS_NEG_INF, m[1], l[1], acc[1]);
#pragma unroll
        for (int u = 0; u < 32; ++u) {
            const float pa = __shfl_sync(0xffffffffu, p[0], u), pb = __shfl_sync(0xffffffffu, p[1], u);
            const T2* v2 = reinterpret_cast<const T2*>(&vv[u]);
            const float2 va = to_f2(v2[0]), vb = to_f2(v2[1]);
            const float v[4] = {va.x, va.y, vb.x, vb.y};
#pragma unroll
            for (int e = 0; e < 4; ++e) {  // keys past nk: p = 0 and v = 0
                acc[0][e] = fmaf(pa, v[e], acc[0][e]);
                acc[1][e] = fmaf(pb, v[e], acc[1][e]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (r0 + i >= rows || !act) continue;
        const float inv = lim[i] > 0 ? 1.0f / l[i] : 0.0f;
        const T2 o[2] = {as_pack(acc[i][0] * inv, acc[i][1] * inv), as_pack(acc[i][2] * inv, acc[i][3] * inv)};
        *reinterpret_cast<uint2*>(att + (size_t)n[i] * D + (size_t)h[i] * hd + 4 * lane) =
            *reinterpret_cast<const uint2*>(o);
    }
}
