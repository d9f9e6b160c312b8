// The epilogue of qgemm_tc: store_one / store_two (one column, or an aligned pair, in the output mode) and
// epilogue (the m16n8 accumulator fragments, scaled by row_scale, to out). Part of gemm_quant_tc.cu's module
// (included after mma_stage); compiled only through gemm_quant_tc.cu.

__device__ __forceinline__ void store_one(void* out, int mode, size_t idx, float v) {
    if (mode == 1) {
        reinterpret_cast<T*>(out)[idx] = from_f(v);
    } else if (mode == 2) {
        reinterpret_cast<float*>(out)[idx] += v;
    } else {
        reinterpret_cast<float*>(out)[idx] = v;
    }
}

// Columns idx, idx + 1 at once (idx even, so the T2 / float2 access is aligned).
__device__ __forceinline__ void store_two(void* out, int mode, size_t idx, float v0, float v1) {
    if (mode == 1) {
        T2 t;
        t.x = from_f(v0);
        t.y = from_f(v1);
        *reinterpret_cast<T2*>(reinterpret_cast<T*>(out) + idx) = t;
    } else {
        float2* p = reinterpret_cast<float2*>(reinterpret_cast<float*>(out) + idx);
        if (mode == 2) {
            const float2 o = *p;
            v0 += o.x;
            v1 += o.y;
        }
        *p = make_float2(v0, v1);
    }
}

// Fragment c of m16n8: c0, c1 at (row g, columns 2t, 2t + 1), c2, c3 at row g + 8.
__device__ __forceinline__ void epilogue(void* out, int mode, const float (&acc)[MT][NT8][4],
                                         const float* __restrict__ rs, int m0, int n0, int wm, int wn, int M,
                                         int N, int pairs) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t base = mode == 0 ? (size_t)blockIdx.z * M * N : 0;
    const bool even_n = pairs && (N & 1) == 0;  // then every pair (n, n + 1) starts at an even element
#pragma unroll
    for (int j = 0; j < NT8; ++j) {
        const int n = n0 + wn * WTN + j * 8 + 2 * t;
        const float s0 = n < N ? row_scale(rs, n) : 0.f, s1 = n + 1 < N ? row_scale(rs, n + 1) : 0.f;
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int m = m0 + wm * WTM + i * 16 + g + 8 * h;
                if (m >= M) continue;
                const size_t idx = base + (size_t)m * N + n;  // even when N is (n is)
                const float v0 = acc[i][j][2 * h] * s0, v1 = acc[i][j][2 * h + 1] * s1;
                if (even_n && n + 1 < N) {
                    store_two(out, mode, idx, v0, v1);
                } else {
                    if (n < N) store_one(out, mode, idx, v0);
                    if (n + 1 < N) store_one(out, mode, idx + 1, v1);
                }
            }
    }
}
