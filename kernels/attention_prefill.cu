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
// Shared tiles are [rows][HD] with the 16-byte chunk index XOR-swizzled by (row & 7): ldmatrix is conflict-free,
// and a lane's addresses for successive chunk pairs differ by one XOR (row_addr): 3-10% faster than a register a
// chunk nearly everywhere (7B, thirty-fifth session s43c: 2048 rows from 0 / 1852 4.18-4.22 / 11.66-11.68 vs
// 4.51-4.55 / 12.45-12.51 ms for 32 layers; 16 rows after 300 keys 0.282 vs 0.312; 64 rows at 0 0.143 vs 0.137).
//
// Key split (entry attention_prefill_split, gridDim.z = n_split <= SPLIT_MAX; the launcher takes it for one or two
// query tiles, whose H or 2H blocks alone leave most SMs idle over a long cached prefix, e.g. a chat turn's prompt):
// the key tiles a (head, query tile) attends are cut into ns contiguous ranges of at least SPLIT_MIN_TILES tiles
// (SPLIT_MIN_TILES_16 in buckets of at most 16 rows),
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

// ldmatrix x4 (.trans: ldsm4t) from a shared-memory address
__device__ __forceinline__ void ldsm4(unsigned* r, unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsm4t(unsigned* r, unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

// A lane's ldmatrix row in a swizzled [rows][HD] tile: chunk 2 j + c0 of row r (c0 = the lane's chunk bit) lies at
// row_addr(tile, r, c0) ^ (j << 5), since (2 j + c0) ^ (r & 7) == (c0 ^ (r & 7)) ^ 2 j and a row starts on a multiple
// of HD * 2 bytes (the tiles start 1024-aligned); rows r + 16 i add 16 i rows. One logic op an ldmatrix instead of a
// register for each chunk kept across the key loop.
__device__ __forceinline__ unsigned row_addr(const T* tile, int r, int c0) {
    return smem_addr(tile + r * HD) + ((c0 ^ (r & 7)) << 4);
}
#define ROWS16 (16 * HD * 2)  // bytes of 16 tile rows


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

#include "attention_prefill_warp.cuh"   // RowState, scores, softmax_step, accumulate_pv, store_rows
#include "attention_prefill_split.cuh"  // store_partial, merge_partials, split_tail

// Key tiles [t0, t1) of one block: K / V double-buffered through cp.async (the Q tile and tile t0 already issued
// as one group), this warp's rows updated in st. A tile whose first key lies past the warp's last row position is
// skipped: it would leave (o, m, l) exactly as they are (all its scores masked).
__device__ __forceinline__ void walk_keys(RowState& st, const T* sq, T* sk, T* sv, const T* k, const T* v, int t0,
                                          int t1, int kend, int kvstride, bool active, int r0, int qpos0, int lane) {
    unsigned qf[HD / 16][4];  // this warp's Q A-fragments, loaded at the first tile
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
                const unsigned qa = row_addr(sq, r0 + (lane & 15), lane >> 4);
#pragma unroll
                for (int kk = 0; kk < HD / 16; ++kk) ldsm4(qf[kk], qa ^ (kk << 5));
            }
            if (t * BN <= qpos0 + 15) {
                float s[BN / 8][4];
                scores(s, qf, sk + buf, lane);
                softmax_step(s, st, t * BN, qpos0, t * BN + BN - 1 > qpos0, lane);
                accumulate_pv(st, s, sv + buf, lane);
            }
        }
        __syncthreads();
    }
}

// One (head, query tile) block; SPLIT: blockIdx.z's range of the key tiles (header), else all of them.
template <bool SPLIT>
__device__ __forceinline__ void prefill_block(T* __restrict__ att, const T* __restrict__ q, const T* __restrict__ k,
                                              const T* __restrict__ v, const int* __restrict__ pos_p,
                                              const int* __restrict__ ntok_p, int M, int S, float* part,
                                              unsigned* cnt) {
    // 1024-byte aligned (row_addr needs rows on multiples of HD * 2 bytes); static shared memory ahead of it (a
    // ticket word) once left it 16 bytes off, and the tiles' cp.async / ldmatrix traffic then cost up to 24% more
    // (thirty-fourth session, s42c / s42d)
    extern __shared__ __align__(1024) unsigned char smem[];
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
        const int per = max(M <= 16 ? SPLIT_MIN_TILES_16 : SPLIT_MIN_TILES, (ntiles + gridDim.z - 1) / gridDim.z);
        ns = max(1, (ntiles + per - 1) / per);
        if (z >= ns) return;  // block-uniform: no keys for this split
        t0 = z * per;
        t1 = min(ntiles, t0 + per);
    }
    att += h * HD;
    RowState st;
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
        walk_keys(st, sq, sk, sv, k, v, t0, t1, kend, kvstride, r0 < nvalid, r0, pos + m0 + r0, lane);
    }
    if (SPLIT && ns > 1) {
        split_tail(att, part, cnt, st, sk, r0 < nvalid, r0, tile, h, H, z, ns, nvalid, nrows, m0, qstride, lane);
        return;
    }
    store_rows(att, sq, st, r0 < nvalid, r0, m0, nvalid, nrows, qstride, lane);
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
