// The stand-alone epilogues of kernels/gemm.cu that follow a cuBLAS GEMM for larger M (silu_mul_rows,
// qkv_rope_rows). Part of gemm.cu's module (included after gemm_fused.cuh); compiled only through gemm.cu.

// ---- stand-alone epilogues after a cuBLAS GEMM (large M) ------------------------------------------------
// Grid (column groups of 8, M rows): one thread per 8 columns of one row, 16-byte loads/stores when `vec`
// (host-checked: widths % 8 == 0), else a scalar loop. No 64-bit division: row from blockIdx.y.

// h [M, F] = silu(g[:, :F]) * g[:, F:], g [M, 2F]
extern "C" __global__ void silu_mul_rows(T* __restrict__ h, const T* __restrict__ g, int F, int vec) {
    const int n = blockIdx.y, f = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (f >= F) return;
    const T* gr = g + (size_t)n * 2 * F;
    T* hr = h + (size_t)n * F;
    if (vec) {
        Pack8 a, b, o;
        a.u = *reinterpret_cast<const uint4*>(gr + f);
        b.u = *reinterpret_cast<const uint4*>(gr + F + f);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float2 x = to_f2(a.h[i]), y = to_f2(b.h[i]);
            o.h[i].x = from_f(silu_mul(x.x, y.x));
            o.h[i].y = from_f(silu_mul(x.y, y.y));
        }
        *reinterpret_cast<uint4*>(hr + f) = o.u;
        return;
    }
    for (int i = f; i < f + 8 && i < F; ++i) hr[i] = from_f(silu_mul(to_f(gr[i]), to_f(gr[F + i])));
}

// qkv [M, D + 2*kvd] -> q (roped), k (roped) and v into the caches; 8 columns (4 rope pairs) per thread.
extern "C" __global__ void qkv_rope_rows(T* __restrict__ q, const T* __restrict__ qkv,
                                         const float* __restrict__ rope_cs, T* __restrict__ kc,
                                         T* __restrict__ vc, const int* __restrict__ pos,
                                         const int* __restrict__ n_tokens, int D, int kvd, int hd, int S, int vec) {
    const int NQ = D + 2 * kvd, n = blockIdx.y, o0 = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (o0 >= NQ) return;
    const T* row = qkv + (size_t)n * NQ;
    Pack8 in, out;
    if (vec) in.u = *reinterpret_cast<const uint4*>(row + o0);  // issued before pos[0]/n_tokens[0] are known
    const int p0 = pos[0], ntok = n_tokens[0];
    if (!vec) {
        for (int o = o0; o < o0 + 8 && o < NQ; o += 2)
            qkv_store(q, kc, vc, rope_cs, to_f(row[o]), to_f(row[o + 1]), o, n, p0, ntok, D, kvd, hd, S);
        return;
    }
    // vec: D, kvd, hd all % 8 == 0, so the 8 columns lie in one head of one of q/k/v
    int p = p0 + n;
    T* dst;
    int o = o0;
    if (o < D) {
        p = p < S ? p : S - 1;
        dst = q + (size_t)n * D + o;
    } else {
        if (n >= ntok || p >= S) return;  // padded rows never touch the cache
        o -= D;
        dst = (o < kvd ? kc : vc) + (size_t)p * kvd + (o < kvd ? o : o - kvd);
    }
    if (o0 >= D + kvd) {  // v: copy as is
        *reinterpret_cast<uint4*>(dst) = in.u;
        return;
    }
    const float4* cs = reinterpret_cast<const float4*>(rope_cs + ((size_t)p * (hd / 2) + (o % hd) / 2) * 2);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float4 c = cs[i];  // (cos, sin) of pairs 2i and 2i+1
        float2 x = to_f2(in.h[2 * i]), y = to_f2(in.h[2 * i + 1]);
        out.h[2 * i].x = from_f(x.x * c.x - x.y * c.y);
        out.h[2 * i].y = from_f(x.x * c.y + x.y * c.x);
        out.h[2 * i + 1].x = from_f(y.x * c.z - y.y * c.w);
        out.h[2 * i + 1].y = from_f(y.x * c.w + y.y * c.z);
    }
    *reinterpret_cast<uint4*>(dst) = out.u;
}
