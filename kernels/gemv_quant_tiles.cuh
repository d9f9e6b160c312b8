// The tile driver of the tensor-core GEMVs (qgemv_pairs_mma; included by gemv_quant_mma.cuh after the staging
// and tile_mma): register loads of whole iterations (MFrag, tile_sync); the per-iteration fix-up; the epilogue
// rounds.
//
// QG_CURSOR = 1 (CUGRAPHLLM_QG_CURSOR=1; gemv_quant_cursor.cuh): the int4 loop through per-lane load cursors where
// a group is one iteration (gs 128). Per 2-iteration round of the innermost loop, fp16, sm_90, nvcc 13.0 (SASS:
// cuobjdump 13.4 of the same cubins; the division path of other group sizes not counted), default -> cursor:
//   7B wqkv+norm  (8 warps, 4 a tile; qgemv_qkv_rope_norm): PTX 276 -> 193, SASS 279 -> 183, 80 -> 80 registers
//   7B w13+norm   (8 warps, 2 a tile; qgemv_silu_norm):     PTX 270 -> 193, SASS 264 -> 183, 80 -> 79
//   LM head+norm  (16 warps, 2 a tile; qgemv_logits_norm):  PTX 284 -> 193, SASS 303 -> 181, 64 -> 64, spill
//                 stores / loads 16 / 12 -> 20 / 16 bytes (values a tile keeps across its loop, outside it); 13B /
//                 70B w13 (16, 2): PTX 284 -> 193, SASS 304 -> 181, spills 16 / 16 -> 16 / 16
// 16 mma.sync, 64 LOP3 and 12 loads a round either way; the rest were the loads' 64-bit address arithmetic, group
// indices and guards. bf16 alike (SASS 261-304 -> 177-183). The 256-thread cursor tiles compile with
// __launch_bounds__(256, 3) (gemv_quant.cuh): today's 80 registers, 3 blocks an SM (unbounded, ptxas took 95-102
// in this loop's first versions, and picks 80 with 24 bytes of spills in qgemv_residual_ss in this one).
#pragma once

// QG_KO (bench only; gemv_quant.cuh): 1 the prologue after pdl_enter, 2 the products, 4 the epilogues knocked out.

struct MFrag {  // one lane's loads in flight: QG_UNROLL iterations of rows r0 / r1 (+ int4 scale and zero)
    uint4 w0[QG_UNROLL], w1[QG_UNROLL];
#if QFMT == 3
    __half2 sz0[QG_UNROLL], sz1[QG_UNROLL];
#endif
};

// the vectors of iteration 0, t 0 of the pair's rows r0 / r1 (row-major, or QG_TILED the tile-contiguous layout)
__device__ __forceinline__ void tile_rows(const uint4*& q0, const uint4*& q1, const QArgs& w, const PairRows& p) {
    const uint4* q = reinterpret_cast<const uint4*>(w.q);
    if (QG_TILED) {
        q0 = q + p.tv;
        q1 = q0 + 32;
    } else {
        q0 = q + p.r0 * (size_t)(w.K / QG_EPV);
        q1 = q + p.r1 * (size_t)(w.K / QG_EPV);
    }
}

__device__ __forceinline__ void mload(MFrag& f, const QArgs& w, const PairRows& p, int it0, int n_it) {
    const int t = threadIdx.x & 3;
    const uint4 *q0, *q1;
    tile_rows(q0, q1, w, p);
#if QFMT == 3
    const int G = w.K / w.gs;
    const __half* s = reinterpret_cast<const __half*>(w.scales);
#endif
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int it = it0 + u;
        const bool in = p.active && it < n_it;
        f.w0[u] = in ? ld_stream16(q0 + QG_ITV * it + t) : make_uint4(0u, 0u, 0u, 0u);
        f.w1[u] = in ? ld_stream16(q1 + QG_ITV * it + t) : make_uint4(0u, 0u, 0u, 0u);
#if QFMT == 3
        const int g = !in ? 0 : (w.gsh >= 0 ? (4 * it) >> w.gsh : it * QM_COLS / w.gs);
        f.sz0[u] = in ? __halves2half2(__ldg(s + p.r0 * G + g), __ldg(w.zeros + p.r0 * G + g)) : __half2();
        f.sz1[u] = in ? __halves2half2(__ldg(s + p.r1 * G + g), __ldg(w.zeros + p.r1 * G + g)) : __half2();
#endif
    }
}

// L2 prefetch of what mload(it0) would load (gemv_quant_pairs.cuh pf_l2)
__device__ __forceinline__ void mprefetch(const QArgs& w, const PairRows& p, int it0, int n_it) {
    const int t = threadIdx.x & 3;
    const uint4 *q0, *q1;
    tile_rows(q0, q1, w, p);
#pragma unroll
    for (int u = 0; u < QG_UNROLL; ++u) {
        const int it = it0 + u;
        if (p.active && it < n_it) {
            pf_l2(q0 + QG_ITV * it + t);
            pf_l2(q1 + QG_ITV * it + t);
        }
    }
}

// After tile_mma of iteration it: int4 adds the group-scaled sums of rows r0 / r1 and clears C; int8 counts the
// 1152 offsets (the same for both rows; C keeps every iteration); fp8 nothing.
__device__ __forceinline__ void iter_fix(float* c, __half2 sz0, __half2 sz1, const float2* blk, int it, float& acc0,
                                         float& acc1, float& toff) {
#if QFMT == 3
    const float2 b = blk[it], s0 = __half22float2(sz0), s1 = __half22float2(sz1);
    acc0 = fmaf(s0.x, c[0] - fmaf(s0.y, b.y, b.x), acc0);
    acc1 = fmaf(s1.x, c[2] - fmaf(s1.y, b.y, b.x), acc1);
    c[0] = c[1] = c[2] = c[3] = 0.0f;
#elif QFMT == 2
    toff += blk[it].x;
#endif
    (void)sz0; (void)sz1; (void)toff;
}

__device__ __forceinline__ void tile_end(const float* c, float toff, float& acc0, float& acc1) {
#if QFMT != 3
    acc0 = c[0] - toff;
    acc1 = c[2] - toff;
#endif
    (void)c; (void)toff;
}

// c += the products of iteration it held as f's u-th (tile_mma), or (QG_KO & 2) its weight words folded in instead
__device__ __forceinline__ void tile_prod(float* c, const MFrag& f, int u, const __half* xh, int it) {
    if (QG_KO & 2) {
        c[0] += ko_fold_words(f, u);
    } else {
        tile_mma(c, f.w0[u], f.w1[u], xh, it);
    }
}

#if QG_CURSOR
#include "gemv_quant_cursor.cuh"
#endif

// This lane's (acc0, acc1) = sums of rows r0 / r1 over the warp's iterations (register loads, QG_UNROLL ahead)
__device__ __forceinline__ void tile_sync(MFrag& f, const QArgs& w, const PairRows& p, const __half* xh,
                                          const float2* blk, int n_it, int first, int step, float& acc0,
                                          float& acc1) {
#if QG_CURSOR
    if (QFMT != 3 || w.gs == QM_COLS) {  // 8-bit, or int4 with one group an iteration (its default 128): cursors
        tile_cursor(f, w, p, xh, blk, n_it, first, acc0, acc1);
        return;
    }
#endif
    float toff = 0.0f, c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    acc0 = acc1 = 0.0f;
    for (int base = first; base < n_it; base += step) {
        if (base != first) mload(f, w, p, base, n_it);
        if (QG_PFS > 0) mprefetch(w, p, base + (QG_PFS + 1) * step, n_it);
#pragma unroll
        for (int u = 0; u < QG_UNROLL; ++u) {
            const int it = base + u;
            if (it < n_it) {  // warp-uniform: every lane runs the mma
                tile_prod(c, f, u, xh, it);
#if QFMT == 3
                iter_fix(c, f.sz0[u], f.sz1[u], blk, it, acc0, acc1, toff);
#else
                iter_fix(c, __half2(), __half2(), blk, it, acc0, acc1, toff);
#endif
            }
        }
    }
    tile_end(c, toff, acc0, acc1);
}

// lane g's pair of tile `tile` of virtual block vb, with (QG_TILED) its tile-contiguous vector
template <class Rows>
__device__ __forceinline__ PairRows tile_pair(Rows rows, int vb, int tile, int g, int n_it) {
    PairRows p = rows(vb * QM_PAIRS + tile * 8 + g);
    p.tv = QG_TILED && p.active ? ((size_t)(vb * QM_TILES + tile) * n_it) * 64 + 4 * g : 0;  // inactive: tile 0
    return p;
}

// Whole block; same contract as qgemv_pairs (gemv_quant_pairs.cuh) with QG_KSPLIT = 1: epi sees virtual blocks of
// QG_WARPS pairs, pair vb * QG_WARPS + warp in warp `warp`, QM_ROUNDS of them per block and loop.
template <class Rows, class Epi>
__device__ __forceinline__ void qgemv_pairs_mma(const QArgs& w, const T* a, const NormIn& nm, int n_pairs, __half* xh,
                                                float2* blk, Rows rows, Epi epi) {
    __shared__ float2 pres[QM_PAIRS];
    __shared__ float2 mred[QG_MSPLIT > 1 ? QG_WARPS * 8 : 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
    const int tile = warp / QG_MSPLIT, ms = warp % QG_MSPLIT;
    const int n_it = w.K / QM_COLS, nvb = (n_pairs + QM_PAIRS - 1) / QM_PAIRS;
    const int first = ms * QG_UNROLL, step = QG_UNROLL * QG_MSPLIT;
    PairRows p = tile_pair(rows, (int)blockIdx.x, tile, g, n_it);
    MFrag f;
    mload(f, w, p, first, n_it);  // before any staging
    for (int j = 1; j <= QG_PFS; ++j) mprefetch(w, p, first + j * step, n_it);
    XPro xp;
    xpro_gain(xp, w);
    pdl_enter();  // a and ss come from the previous kernel
    float2 kn = make_float2(1.0f, 1.0f);
    if (!(QG_KO & 1)) {
        xpro_load(xp, a, w, nm, true, park_in(xh), MmaSlot());
        kn = stage_mma(xh, blk, xp, a, w, nm);
    }
    const float inv = kn.x, xinv = kn.y;
    for (int vb = blockIdx.x; vb < nvb; vb += gridDim.x) {
        float acc0, acc1;
        tile_sync(f, w, p, xh, blk, n_it, first, step, acc0, acc1);
        const PairRows cur = p;
        if (vb + (int)gridDim.x < nvb) {  // the next tile's first loads fly during this one's epilogues
            p = tile_pair(rows, vb + (int)gridDim.x, tile, g, n_it);
            mload(f, w, p, first, n_it);
        }
        if (QG_MSPLIT > 1) {
            if ((lane & 3) == 0) mred[warp * 8 + g] = make_float2(acc0, acc1);
            __syncthreads();
            if (ms == 0 && (lane & 3) == 0) {
                for (int j = 1; j < QG_MSPLIT; ++j) {
                    acc0 += mred[(warp + j) * 8 + g].x;
                    acc1 += mred[(warp + j) * 8 + g].y;
                }
            }
        }
        if (ms == 0 && (lane & 3) == 0) {
            const float k = xinv * inv;
            pres[tile * 8 + g] = cur.active ? make_float2(acc0 * row_factor(w, cur.r0) * k,
                                                          acc1 * row_factor(w, cur.r1) * k) : make_float2(0.f, 0.f);
        }
        __syncthreads();
        if (QG_KO & 4) {  // keep the sums alive without the epilogue
            if (ms == 0 && (lane & 3) == 0 && acc0 == 1.2345e-37f) reinterpret_cast<float*>(xh)[0] = acc1;
            continue;
        }
        for (int r = 0; r < QM_ROUNDS; ++r) {
            const int idx = r * QG_WARPS + warp, gw = vb * QM_PAIRS + idx;
            epi(vb * QM_ROUNDS + r, gw, rows(gw), pres[idx]);
            __syncthreads();  // the epilogue's shared scratch, and pres for the next tile
        }
    }
}

// the tensor-core path takes K a multiple of QM_COLS and (int4) groups of whole iterations
__device__ __forceinline__ bool qm_ok(const QArgs& w) {
    return w.K % QM_COLS == 0 && (QFMT != 3 || w.gs % QM_COLS == 0);
}
