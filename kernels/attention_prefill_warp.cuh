// The prefill attention's per-warp tile math (kernels/attention_prefill.cu's header): the running state of 16 query
// rows, S = Q K^T, the online softmax, O += P V and the normalized store. Included by attention_prefill.cu after its
// tile constants, ldmatrix helpers and pack2; compiled only through it.

// One warp's running state for 16 query rows: thread (g = lane/4, t = lane%4) holds rows g and g+8.
struct RowState {
    float o[HD / 8][4];       // output accumulator, one C-fragment per 8 dims
    float m[2], l[2];         // running max (log2 units) and this thread's part of the row sum
};

// S = Q K^T for one tile (BN keys): s[BN/8][4] C-fragments; qf: this warp's Q A-fragments, one per 16-dim k-step
__device__ __forceinline__ void scores(float (*s)[4], const unsigned (*qf)[4], const T* kt, int lane) {
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    const unsigned ka = row_addr(kt, (lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
        for (int n2 = 0; n2 < BN / 16; ++n2) {
            unsigned b[4];  // keys n2*16 + (0..7 | 8..15) x dims kk*16 + (0..7 | 8..15)
            ldsm4(b, (ka ^ (kk << 5)) + n2 * ROWS16);
            mma16816(s[2 * n2], qf[kk], b[0], b[1]);
            mma16816(s[2 * n2 + 1], qf[kk], b[2], b[3]);
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
    const unsigned va = row_addr(vt, (lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);
#pragma unroll
    for (int k2 = 0; k2 < BN / 16; ++k2) {
        const unsigned a[4] = {pack2(s[2 * k2][0], s[2 * k2][1]), pack2(s[2 * k2][2], s[2 * k2][3]),
                               pack2(s[2 * k2 + 1][0], s[2 * k2 + 1][1]), pack2(s[2 * k2 + 1][2], s[2 * k2 + 1][3])};
#pragma unroll
        for (int d2 = 0; d2 < HD / 16; ++d2) {
            unsigned b[4];  // keys k2*16 + (0..7 | 8..15) x dims d2*16 + (0..7 | 8..15), transposed
            ldsm4t(b, (va ^ (d2 << 5)) + k2 * ROWS16);
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
