// Causal prefill attention on tensor cores (flash-attention-2 style): one launch per layer.
//
//   att[m, h, :] = sum_{j <= pos+m} softmax_j(q[m, h, :] . k[j, h / N_REP, :] / sqrt(HD)) * v[j, h / N_REP, :]
// for m < n_tokens (query m sits at absolute position pos+m; the keys of this prompt are already in the cache).
// Rows n_tokens <= m < M are written as zeros. pos and n_tokens are read on the device, so one captured graph
// serves every step; M (the query bucket) and S (max_seq_len) are launch constants.
//
// Layout: q, att T[M, H*HD]; k, v T[S, KVH, HD] (layer views of the KV cache, KVH = H / N_REP).
// Grid: (H, ceil(M / BM)); blockIdx.x = query head h, blockIdx.y = query tile counted from the LAST one, so the
// tiles with the most keys start first; up to FOLD_TILES tiles (512 rows, one wave on 7B: 256 blocks on 132 SMs x 2)
// only the first half of the rows counts down and the second half counts up from tile 0, so that the two blocks an
// SM holds pair a heavy tile with a light one (7B, 512 rows from position 0 / 1852: 0.475 / 2.336 vs 0.523 / 2.395
// ms for 32 layers, thirty-fourth session s42e). Block: 4 warps; warp w owns query rows m0 + 16w .. m0 + 16w + 15.
// Per KV tile of BN keys: S = Q K^T with mma.sync m16n8k16 (Q fragments stay in registers, K through ldmatrix),
// online softmax in registers (scores in log2 units, exp2), then O += P V (P re-packed from the S accumulators
// as the A operand, V through ldmatrix.trans). K/V tiles are double-buffered in shared memory with cp.async;
// keys past the last one the block attends are zero-filled, never read (the cache may hold garbage there).
// Shared tiles are [rows][HD] with the 16-byte chunk index XOR-swizzled by (row & 7): ldmatrix is conflict-free.
//
// Key split (entry attention_prefill_split, gridDim.z = n_split <= SPLIT_MAX; the launcher takes it for one or two
// query tiles, whose H or 2H blocks alone leave most SMs idle over a long cached prefix, e.g. a chat turn's prompt):
// the key tiles a (head, query tile) attends are cut into ns contiguous ranges of at least SPLIT_MIN_TILES tiles,
// one a block (z >= ns: nothing to do). ns == 1 (short prefixes, pos 0) runs as without a split. Otherwise each
// block leaves its rows' unnormalized (o, m, l) in part and takes a ticket on cnt[tile, head]; the last of the ns
// blocks resets the ticket, merges the ranges in split order (fixed order: bit-identical run to run) and stores.
//
// Compile-time: HD (64 or 128), N_REP (query heads per KV head). Storage dtype T from common.cuh (CG_BF16).
// Dynamic shared memory: (BM + 4*BN) * HD * 2 bytes (80 KiB at HD 128: the launcher raises the 48 KiB limit).
#include "common.cuh"

#ifndef HD
#define HD 128
#endif
#ifndef N_REP
#define N_REP 1
#endif
// BM, BN, NTHREADS (and the split header's SPLIT_MAX, PSTRIDE_EXTRA) are read by the launcher (kernel_int)
#define BM 64          // query rows per block (16 per warp)
#define BN 64          // keys per K/V tile
#define NTHREADS 128
#define FOLD_TILES 8   // grids of at most this many query tiles take the folded tile order (Grid, above)
#define CH (HD / 8)    // 16-byte chunks per row
#define NEG_INF __int_as_float(0xff800000)

#if HD % 16 != 0 || HD > 256 || (BN * HD / 8) % NTHREADS != 0
#error "HD must be a multiple of 16, at most 256"
#endif

// element offset of chunk c of row r in a swizzled [rows][HD] tile
__device__ __forceinline__ int swz(int r, int c) { return r * HD + ((c ^ (r & 7)) << 3); }

__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; ok == false fills the 16 bytes with zeros and reads nothing
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool ok) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm4(unsigned* r, const T* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm4t(unsigned* r, const T* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}


// two floats -> one 32-bit word of two T (x in the low half)
__device__ __forceinline__ unsigned pack2(float x, float y) {
#ifdef CG_BF16
    T2 h = __floats2bfloat162_rn(x, y);
#else
    T2 h = __floats2half2_rn(x, y);
#endif
    return *reinterpret_cast<unsigned*>(&h);
}

// keys [j0, j0+BN) of one KV head into a swizzled [BN][HD] tile; keys >= kend are zero-filled.
// src: T[S, KVH, HD] advanced to the KV head; stride = KVH*HD.
__device__ __forceinline__ void load_kv_tile(T* dst, const T* src, int j0, int kend, int stride) {
#pragma unroll
    for (int it = 0; it < BN * CH / NTHREADS; ++it) {
        const int i = threadIdx.x + it * NTHREADS, r = i / CH, c = i % CH, j = j0 + r;
        const bool ok = j < kend;
        cp_async16(dst + swz(r, c), src + (size_t)(ok ? j : 0) * stride + c * 8, ok);
    }
}

// One warp's running state for 16 query rows: thread (g = lane/4, t = lane%4) holds rows g and g+8.
struct RowState {
    unsigned qf[HD / 16][4];  // Q A-fragments, one per 16-dim k-step
    float o[HD / 8][4];       // output accumulator, one C-fragment per 8 dims
    float m[2], l[2];         // running max (log2 units) and this thread's part of the row sum
};

// S = Q K^T for one tile (BN keys): s[BN/8][4] C-fragments
__device__ __forceinline__ void scores(float (*s)[4], const RowState& st, const T* kt, int lane) {
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
        for (int n2 = 0; n2 < BN / 16; ++n2) {
            unsigned b[4];  // keys n2*16 + (0..7 | 8..15) x dims kk*16 + (0..7 | 8..15)
            ldsm4(b, kt + swz(n2 * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)));
            mma16816(s[2 * n2], st.qf[kk], b[0], b[1]);
            mma16816(s[2 * n2 + 1], st.qf[kk], b[2], b[3]);
        }
    }
}

// Online softmax over one tile: scale, causal mask (key j visible to row r iff j <= pos + r), rescale o.
// On return s holds the unnormalized probabilities exp2(score - m).
__device__ __forceinline__ void softmax_step(float (*s)[4], RowState& st, int j0, int qpos0, bool mask, int lane) {
    const float scale = 1.4426950408889634f * rsqrtf((float)HD);  // log2(e) / sqrt(HD)
    float mx[2] = {NEG_INF, NEG_INF};
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            float x = s[n][e] * scale;
            const int j = j0 + n * 8 + 2 * (lane & 3) + (e & 1), p = qpos0 + (lane >> 2) + 8 * (e >> 1);
            if (mask && j > p) x = NEG_INF;
            s[n][e] = x;
            mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        const float mnew = fmaxf(st.m[i], mx[i]);
        const float base = mnew == NEG_INF ? 0.0f : mnew;  // a row with nothing visible yet stays at zero
        const float corr = exp2f(st.m[i] - base);
        st.m[i] = mnew;
        st.l[i] *= corr;
#pragma unroll
        for (int d = 0; d < HD / 8; ++d) {
            st.o[d][2 * i] *= corr;
            st.o[d][2 * i + 1] *= corr;
        }
        mx[i] = base;
    }
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float p = exp2f(s[n][e] - mx[e >> 1]);
            s[n][e] = p;
            st.l[e >> 1] += p;
        }
    }
}

// O += P V for one tile; P from the score accumulators (C layout of 2 n-blocks == A layout of one k-step)
__device__ __forceinline__ void accumulate_pv(RowState& st, float (*s)[4], const T* vt, int lane) {
#pragma unroll
    for (int k2 = 0; k2 < BN / 16; ++k2) {
        const unsigned a[4] = {pack2(s[2 * k2][0], s[2 * k2][1]), pack2(s[2 * k2][2], s[2 * k2][3]),
                               pack2(s[2 * k2 + 1][0], s[2 * k2 + 1][1]), pack2(s[2 * k2 + 1][2], s[2 * k2 + 1][3])};
#pragma unroll
        for (int d2 = 0; d2 < HD / 16; ++d2) {
            unsigned b[4];  // keys k2*16 + (0..7 | 8..15) x dims d2*16 + (0..7 | 8..15), transposed
            ldsm4t(b, vt + swz(k2 * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), d2 * 2 + (lane >> 4)));
            mma16816(st.o[2 * d2], a, b[0], b[1]);
            mma16816(st.o[2 * d2 + 1], a, b[2], b[3]);
        }
    }
}

// Normalize this warp's 16 rows, stage them in its own rows of sq (swizzled), then write 16-byte chunks;
// rows >= nvalid (padding) get zeros, rows >= nrows do not exist.
__device__ __forceinline__ void store_rows(T* att, T* sq, RowState& st, bool active, int r0, int m0, int nvalid,
                                           int nrows, int stride, int lane) {
    if (active) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            st.l[i] += __shfl_xor_sync(0xffffffffu, st.l[i], 1);
            st.l[i] += __shfl_xor_sync(0xffffffffu, st.l[i], 2);
            st.l[i] = st.l[i] > 0.0f ? 1.0f / st.l[i] : 0.0f;
        }
        __syncwarp();
#pragma unroll
        for (int d = 0; d < HD / 8; ++d) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int r = r0 + (lane >> 2) + 8 * i;
                *reinterpret_cast<unsigned*>(sq + swz(r, d) + 2 * (lane & 3)) =
                    pack2(st.o[d][2 * i] * st.l[i], st.o[d][2 * i + 1] * st.l[i]);
            }
        }
        __syncwarp();
    }
    for (int i = lane; i < 16 * CH; i += 32) {
        const int r = r0 + i / CH, c = i % CH;
        if (r >= nrows) break;
        uint4 x = make_uint4(0, 0, 0, 0);
        if (r < nvalid) x = *reinterpret_cast<const uint4*>(sq + swz(r, c));
        *reinterpret_cast<uint4*>(att + (size_t)(m0 + r) * stride + c * 8) = x;
    }
}

#include "attention_prefill_split.cuh"  // store_partial, merge_partials, split_tail

// One (head, query tile) block; SPLIT: blockIdx.z's range of the key tiles (header), else all of them.
template <bool SPLIT>
__device__ __forceinline__ void prefill_block(T* __restrict__ att, const T* __restrict__ q, const T* __restrict__ k,
                                              const T* __restrict__ v, const int* __restrict__ pos_p,
                                              const int* __restrict__ ntok_p, int M, int S, float* part,
                                              unsigned* cnt) {
    // 128-byte aligned: static shared memory ahead of it (a ticket word) once left it 16 bytes off, and the tiles'
    // cp.async / ldmatrix traffic then cost up to 24% more (thirty-fourth session, s42c / s42d)
    extern __shared__ __align__(128) unsigned char smem[];
    T* sq = reinterpret_cast<T*>(smem);  // [BM][HD] Q tile, later the output staging
    T* sk = sq + BM * HD;                // [2][BN][HD]
    T* sv = sk + 2 * BN * HD;            // [2][BN][HD]
    const int h = blockIdx.x, H = gridDim.x;
    const int qstride = H * HD, kvstride = (H / N_REP) * HD;
    const int Y = gridDim.y, yb = blockIdx.y;
    const int tile = Y <= FOLD_TILES && yb >= Y / 2 ? yb - Y / 2 : Y - 1 - yb, m0 = tile * BM;  // (header: Grid)
    const int pos = *pos_p, nrows = min(BM, M - m0);
    const int nvalid = max(0, min(nrows, min(*ntok_p, M) - m0));  // real rows in this tile
    const int lane = threadIdx.x & 31, r0 = (threadIdx.x >> 5) * 16;
    // keys [0, kend) are visible to some real row; this block walks key tiles [t0, t1) of them
    const int kend = nvalid > 0 ? min(pos + m0 + nvalid, S) : 0;
    const int ntiles = (kend + BN - 1) / BN;
    int z = 0, ns = 1, t0 = 0, t1 = ntiles;
    if constexpr (SPLIT) {
        z = blockIdx.z;
        const int per = max(SPLIT_MIN_TILES, (ntiles + gridDim.z - 1) / gridDim.z);
        ns = max(1, (ntiles + per - 1) / per);
        if (z >= ns) return;  // block-uniform: no keys for this split
        t0 = z * per;
        t1 = min(ntiles, t0 + per);
    }
    att += h * HD;
    RowState st;
    const bool active = r0 < nvalid;
    if (nvalid > 0) {
        q += (size_t)m0 * qstride + h * HD;
        k += (h / N_REP) * HD;
        v += (h / N_REP) * HD;
#pragma unroll
        for (int it = 0; it < BM * CH / NTHREADS; ++it) {
            const int i = threadIdx.x + it * NTHREADS, r = i / CH, c = i % CH;
            cp_async16(sq + swz(r, c), q + (size_t)(r < nvalid ? r : 0) * qstride + c * 8, r < nvalid);
        }
        load_kv_tile(sk, k, t0 * BN, kend, kvstride);
        load_kv_tile(sv, v, t0 * BN, kend, kvstride);
        cp_async_commit();
        st.m[0] = st.m[1] = NEG_INF;
        st.l[0] = st.l[1] = 0.0f;
#pragma unroll
        for (int d = 0; d < HD / 8; ++d) st.o[d][0] = st.o[d][1] = st.o[d][2] = st.o[d][3] = 0.0f;
        for (int t = t0; t < t1; ++t) {
            const int buf = ((t - t0) & 1) * BN * HD;
            if (t + 1 < t1) {  // prefetch the next tile into the other buffer
                load_kv_tile(sk + (BN * HD - buf), k, (t + 1) * BN, kend, kvstride);
                load_kv_tile(sv + (BN * HD - buf), v, (t + 1) * BN, kend, kvstride);
            }
            cp_async_commit();  // possibly empty: keeps "wait for all but the newest group" uniform
            cp_async_wait<1>();
            __syncthreads();
            if (active) {
                if (t == t0) {
#pragma unroll
                    for (int kk = 0; kk < HD / 16; ++kk)
                        ldsm4(st.qf[kk], sq + swz(r0 + (lane & 15), kk * 2 + (lane >> 4)));
                }
                float s[BN / 8][4];
                scores(s, st, sk + buf, lane);
                const int qpos0 = pos + m0 + r0;  // position of this warp's first row
                softmax_step(s, st, t * BN, qpos0, t * BN + BN - 1 > qpos0, lane);
                accumulate_pv(st, s, sv + buf, lane);
            }
            __syncthreads();
        }
    }
    if (SPLIT && ns > 1) {
        split_tail(att, part, cnt, st, sk, active, r0, tile, h, H, z, ns, nvalid, nrows, m0, qstride, lane);
        return;
    }
    store_rows(att, sq, st, active, r0, m0, nvalid, nrows, qstride, lane);
}

// q, att T [M, H*HD]; k, v T [S, KVH, HD]; pos, n_tokens int32 [1]: the absolute position of query row 0 and the
// real rows (<= M). Grid (H, ceil(M / BM)).
extern "C" __global__ void __launch_bounds__(NTHREADS, 2)
attention_prefill(T* __restrict__ att, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                  const int* __restrict__ pos_p, const int* __restrict__ ntok_p, int M, int S) {
    prefill_block<false>(att, q, k, v, pos_p, ntok_p, M, S, nullptr, nullptr);
}

// The key split (header): grid (H, ceil(M / BM) <= 2, n_split <= SPLIT_MAX); part f32 [tiles, H, n_split, BM,
// PSTRIDE], cnt u32 [tiles, H] tickets (zero between launches).
extern "C" __global__ void __launch_bounds__(NTHREADS, 2)
attention_prefill_split(T* __restrict__ att, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ v, const int* __restrict__ pos_p, const int* __restrict__ ntok_p, int M,
                        int S, float* __restrict__ part, unsigned* __restrict__ cnt) {
    prefill_block<true>(att, q, k, v, pos_p, ntok_p, M, S, part, cnt);
}
