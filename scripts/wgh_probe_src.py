"""CUDA source of scripts/wgh_probe.py (sm_90a): the short prefill's 16-bit GEMM (M <= 16 tokens, issue #13's TTFT
at 10 tokens) on wgmma m64n16k16 with the weight rows as A straight from their loads, as scripts/wg8_probe_src.py
does for the 8-bit formats, and the tokens as B's 16 columns.

y f32 [M, N] = x fp16 [M, K] @ W fp16 [N, K].T. Block (tile, ks) of the grid (N / 64, KS): 64 rows over columns
[ks K / KS, (ks + 1) K / KS), WG warpgroups each a WG-th of them. Per 64-column chunk, thread (warp w, lane 4 g + t)
loads 32 bytes (16 halves, physical columns [16 t, 16 t + 16)) of rows R = 64 tile + 16 w + g and R + 8; wgmma step s
(0..3, k16 each) takes halves [4 s, 4 s + 2) as a0 / a1 (rows R / R + 8; logical k 2 t, 2 t + 1 of mma.m16n8k16's A)
and [4 s + 2, 4 s + 4) as a2 / a3 (logical k 8 + 2 t ..): the words of wg8's byte layout. B (x, K-major, no swizzle)
is staged in that order: step S = 4 c + s at byte 512 S, token group n / 8 at + 256 (SBO), k core kl / 8 at + 128
(LBO), token n % 8 at + 16 n, 2 bytes a k; tokens M..15 zero. D (m64n16, f32): d0 / d1 row R, tokens 2 t, 2 t + 1;
d2 / d3 row R + 8; d4..d7 the same at tokens 8 + 2 t... Warpgroups are added in order through shared memory; with
KS > 1 the last block of a tile adds the KS partials [KS, 16, N] in order.
"""

from scripts.wg8_probe_src import COMMON

SRC = COMMON + r"""
__device__ __forceinline__ void wgh_mma(float (&d)[8], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                        unsigned long long db, int acc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12,"
                 " p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(acc));
}

// byte offset in B of token n, physical column i of the block's columns
__device__ __forceinline__ int bh_at(int i, int n) {
    const int c = i >> 6, p = i & 63, t = p >> 4, s = (p & 15) >> 2, j = p & 3;
    const int kl = j < 2 ? 2 * t + j : 8 + 2 * t + (j - 2);
    return 512 * (4 * c + s) + 256 * (n >> 3) + 128 * (kl >> 3) + 16 * (n & 7) + 2 * (kl & 7);
}

// grid (N / 64, KS), block NT threads, dynamic shared memory 32 K / KS + 4096 (WG - 1) bytes; with KS > 1 also
// part f32 [KS, 16, N] and ctr u32 [N / 64] (zero; the last block of a tile resets its counter)
extern "C" __global__ void __launch_bounds__(NT) wgh_gemm(
        float* __restrict__ out, const __half* __restrict__ x, const __half* __restrict__ W, int M, int N, int K,
        float* __restrict__ part, unsigned* __restrict__ ctr) {
    extern __shared__ __align__(128) unsigned char sm[];
    const int tid = threadIdx.x, q = tid >> 7, w = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int KS = gridDim.y, Kb = K / KS, k0 = blockIdx.y * Kb;
    const size_t R = 64 * (size_t)blockIdx.x + 16 * w + g;
    const unsigned char* w0 = reinterpret_cast<const unsigned char*>(W + R * K + k0);  // 64 columns = 128 bytes
    const unsigned char* w1 = reinterpret_cast<const unsigned char*>(W + (R + 8) * K + k0);
    const int per = Kb / 64 / WG, c0 = q * per, c1 = c0 + per;
    uint4 buf[P][4];
#pragma unroll
    for (int j = 0; j < P; ++j)
        if (c0 + j < c1) load_chunk(buf[j], w0, w1, c0 + j, t);  // weights: before the wait
    asm volatile("griddepcontrol.wait;" ::: "memory");
    // stage the 16 tokens' columns (pairs of columns: 4 bytes, consecutive in B); tokens >= M zero
    for (int idx = tid; idx < 16 * (Kb / 2); idx += NT) {
        const int n = idx / (Kb / 2), i = 2 * (idx - n * (Kb / 2));
        const unsigned v = n < M ? *reinterpret_cast<const unsigned*>(x + (size_t)n * K + k0 + i) : 0u;
        *reinterpret_cast<unsigned*>(sm + bh_at(i, n)) = v;
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
    const unsigned bbase = sa(sm);
    float d[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    bool first = true;
    for (int c = c0; c < c1; c += P) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
            if (c + j < c1) {
                const uint4 ra[2] = {buf[j][0], buf[j][1]}, rb[2] = {buf[j][2], buf[j][3]};
                asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
                for (int s = 0; s < 4; ++s)
                    wgh_mma(d, word(ra, 2 * s), word(rb, 2 * s), word(ra, 2 * s + 1), word(rb, 2 * s + 1),
                            bdesc(bbase + 512 * (4 * (c + j) + s), 256), first && s == 0 ? 0 : 1);
                first = false;
                wg_wait(buf[j]);
                if (c + j + P < c1) load_chunk(buf[j], w0, w1, c + j + P, t);
            }
        }
    }
    // warpgroups 1.. hand their sums to warpgroup 0 (8 floats a thread), which adds them in order
    float* acc = reinterpret_cast<float*>(sm + 32 * (size_t)Kb);
    if (q > 0) {
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[((q - 1) * 128 + (tid & 127)) * 8 + i] = d[i];
    }
    __syncthreads();
    if (q == 0) {
        for (int p = 0; p < WG - 1; ++p) {
#pragma unroll
            for (int i = 0; i < 8; ++i) d[i] += acc[(p * 128 + tid) * 8 + i];
        }
        float* o = KS > 1 ? part + (size_t)blockIdx.y * 16 * N : out;  // [16, N] or out [M, N]
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int n = 2 * t + (i & 1) + 8 * (i >> 2);
            const size_t r = R + 8 * ((i >> 1) & 1);
            if (n < M) o[(size_t)n * N + r] = d[i];
        }
    }
    if (KS == 1) return;
    const bool last = last_of_tile(ctr);
    if (!last) return;
    for (int e = tid; e < 64 * M; e += NT) {  // (token, row) of the tile
        const int n = e >> 6;
        const size_t r = 64 * (size_t)blockIdx.x + (e & 63);
        float y = 0.0f;
        for (int k = 0; k < KS; ++k) y += __ldcg(part + ((size_t)k * 16 + n) * N + r);
        out[(size_t)n * N + r] = y;
    }
}
"""
