// The prefill attention's key split (kernels/attention_prefill.cu's header, entry attention_prefill_split): each
// block's partial (o, m, l) of its key range, the ticket, and the last block's merge in split order. Included by
// attention_prefill.cu after its RowState, pack2 and tile constants; compiled only through it.

// This block's partial of split z for its real rows: part[((tile * H + h) * n_split + z) * BM + row] holds
// o[HD] (unnormalized), m (log2 units), l (the row sum): PSTRIDE floats a row.
#define PSTRIDE_EXTRA 4
#define PSTRIDE (HD + PSTRIDE_EXTRA)
#define SPLIT_MIN_TILES 8   // key tiles a split walks at least: shorter prefixes take fewer splits, down to none
// ... and in a bucket of at most 16 rows (one busy warp a block, its latency the bound): 7B, 32 layers, 16 rows after
// 300 / 1024 / 1852 keys 0.258-0.267 / 0.361-0.368 / 0.460-0.465 vs 0.283-0.284 / 0.458-0.460 / 0.486-0.488 ms with 8,
// a 10-token chat turn after 1000 / 1900 tokens 4.32-4.40 / 4.48-4.61 vs 4.66-4.68 / 4.75-4.76 (thirty-sixth
// session, next_split16/); 64 / 128 rows after 300 keys lost 25-45% with 2 (thirty-fifth session, s43i)
#define SPLIT_MIN_TILES_16 2
#define SPLIT_MAX 8         // most splits (the launcher's n_split); the merge keeps one register set a split
__device__ __forceinline__ void store_partial(float* part, const RowState& st, bool active, int r0, int nvalid,
                                              int lane) {
    if (!active) return;
    float l[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        l[i] = st.l[i] + __shfl_xor_sync(0xffffffffu, st.l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = r0 + (lane >> 2) + 8 * i;
        if (r >= nvalid) continue;
        float* row = part + (size_t)r * PSTRIDE;
#pragma unroll
        for (int d = 0; d < HD / 8; ++d)
            *reinterpret_cast<float2*>(row + d * 8 + 2 * (lane & 3)) = make_float2(st.o[d][2 * i], st.o[d][2 * i + 1]);
        if ((lane & 3) == 0) {
            row[HD] = st.m[i];
            row[HD + 1] = l[i];
        }
    }
}

// The last block of a split (head, tile): every output row from the ns partials (split order). First one thread a
// row turns the (m, l) of its ns partials into weights w_z = 2^(m_z - max m) / sum_z 2^(m_z - max m) l_z (into sc
// [SPLIT_MAX][BM], shared memory), then 8 dims a thread: out = sum_z w_z o_z, every split's loads issued together.
__device__ __forceinline__ void merge_partials(T* att, const float* part, float* sc, int ns, int nvalid, int nrows,
                                               int m0, int stride) {
    const int r = threadIdx.x;
    if (r < nvalid) {
        float m[SPLIT_MAX], l[SPLIT_MAX], mx = NEG_INF;
#pragma unroll
        for (int z = 0; z < SPLIT_MAX; ++z) {
            const float* row = part + ((size_t)z * BM + r) * PSTRIDE;
            m[z] = z < ns ? __ldcg(row + HD) : NEG_INF;
            l[z] = z < ns ? __ldcg(row + HD + 1) : 0.0f;
        }
#pragma unroll
        for (int z = 0; z < SPLIT_MAX; ++z) mx = fmaxf(mx, m[z]);
        const float base = mx == NEG_INF ? 0.0f : mx;
        float tot = 0.0f;
#pragma unroll
        for (int z = 0; z < SPLIT_MAX; ++z) {
            m[z] = exp2f(m[z] - base);
            tot += m[z] * l[z];
        }
        const float inv = tot > 0.0f ? 1.0f / tot : 0.0f;
#pragma unroll
        for (int z = 0; z < SPLIT_MAX; ++z) sc[z * BM + r] = m[z] * inv;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < nrows * CH; i += NTHREADS) {
        const int rr = i / CH, c = i % CH;
        uint4 out = make_uint4(0, 0, 0, 0);
        if (rr < nvalid) {
            float4 a[SPLIT_MAX], b[SPLIT_MAX];
#pragma unroll
            for (int z = 0; z < SPLIT_MAX; ++z) {
                const float4* row = reinterpret_cast<const float4*>(part + ((size_t)z * BM + rr) * PSTRIDE + c * 8);
                a[z] = z < ns ? __ldcg(row) : make_float4(0.f, 0.f, 0.f, 0.f);
                b[z] = z < ns ? __ldcg(row + 1) : make_float4(0.f, 0.f, 0.f, 0.f);
            }
            float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int z = 0; z < SPLIT_MAX; ++z) {
                if (z >= ns) break;
                const float w = sc[z * BM + rr];
                acc[0] += w * a[z].x; acc[1] += w * a[z].y; acc[2] += w * a[z].z; acc[3] += w * a[z].w;
                acc[4] += w * b[z].x; acc[5] += w * b[z].y; acc[6] += w * b[z].z; acc[7] += w * b[z].w;
            }
            out = make_uint4(pack2(acc[0], acc[1]), pack2(acc[2], acc[3]), pack2(acc[4], acc[5]),
                             pack2(acc[6], acc[7]));
        }
        *reinterpret_cast<uint4*>(att + (size_t)(m0 + rr) * stride + c * 8) = out;
    }
}

// The split's end (SPLIT kernel): leave this block's partial, take the ticket; the last block merges and stores.
__device__ __forceinline__ void split_tail(T* att, float* part, unsigned* cnt, const RowState& st, T* scratch,
                                           bool active, int r0, int tile, int h, int H, int z, int ns, int nvalid,
                                           int nrows, int m0, int stride, int lane) {
    float* mine = part + ((size_t)(tile * H + h) * gridDim.z) * BM * PSTRIDE;  // split 0's rows of this pair
    store_partial(mine + (size_t)z * BM * PSTRIDE, st, active, r0, nvalid, lane);
    int mine_last = 0;
    __syncthreads();
    if (threadIdx.x == 0) {  // release this block's partial, take a ticket; the last block acquires them all
        unsigned* c = cnt + tile * H + h;
        mine_last = last_ticket(c, ns);
        if (mine_last) *c = 0u;  // zero between launches: the next launch (stream-ordered) starts from it
    }
    // the barrier's OR hands the ticket to every thread: no static shared word, which would sit ahead of the
    // dynamic tiles and leave them off 128 bytes (prefill_block; 0.331 / 0.446 vs 0.297 / 0.388 ms for 32 layers at
    // 16 / 128 rows after 300 keys, thirty-fourth session)
    const int last = __syncthreads_or(mine_last);
    if (last) merge_partials(att, mine, reinterpret_cast<float*>(scratch), ns, nvalid, nrows, m0, stride);
}
