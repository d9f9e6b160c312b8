// Shared-memory rings of kernels/gemm.cu (XS: x per K group, WS: W per warp), filled by cp.async. Included by
// gemm.cu after its configuration defines, Chunk / TileRows / RowPtrs and load_chunk; not a stand-alone header.
#pragma once

// ---- shared-memory rings (XS: x per K group, WS: W per warp), filled by cp.async --------------------------
// A ring slot holds rows of 64 columns as 8 16-byte units; unit u of row r sits at r*8 + (u ^ (r & 7)), so
// the fragment reads (row g or g+8, units t and 4+t, 32 lanes) and the copies (8 lanes per row) are
// conflict-free.
#if XS || WS == 1
__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// 16 bytes global -> shared, bypassing L1; zero-filled without a global read when !valid.
__device__ __forceinline__ void cp_async16(uint4* dst, const T* src, bool valid) {
    asm volatile("cp.async.cg.shared.global" PF_OP " [%0], [%1], 16, %2;\n" :: "r"(smem_u32(dst)), "l"(src),
                 "r"(valid ? 16 : 0) : "memory");
}

// A warp's rings and what it needs to fill them.
struct Rings {
#if XS
    uint4 (*xs)[NTOK * 8];  // the K group's ring; its WM warps (threads gi = tile * 32 + lane) fill it together
    const T* x;
    int M, gi;
#endif
#if WS == 1
    uint4 (*ws)[RT][128];  // the warp's ring; lane L copies unit L & 7 of rows q*4 + L/8 (q < 4) of each tile,
    const T* p[RT][4];     // so each copy instruction reads 4 whole 128-byte row segments; p: that row at
    bool ok[RT][4];        // column (L & 7) * 8, ok: the row exists; base: source of zero-filled copies
    const T* base[RT];
#endif
};

__device__ __forceinline__ Rings make_rings(uint4 (*xs)[NTOK * 8], uint4 (*ws)[RT][128], const T* x,
                                            const TileRows& tr, int M, int K, int gi, int lane) {
    Rings r;
#if XS
    r.xs = xs; r.x = x; r.M = M; r.gi = gi;
#endif
#if WS == 1
    r.ws = ws;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        r.base[i] = tr.w[i];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int row = tr.row0[i] + q * 4 + (lane >> 3);
            r.p[i][q] = tr.w[i] + (size_t)row * K + (lane & 7) * 8;
            r.ok[i][q] = row < tr.nrows[i];
        }
    }
#endif
    return r;
}

// Copies chunk [col, col + 64) into slot (nothing past K; pieces past M or K zero-filled) and commits one
// cp.async group (empty or not, so that every thread counts the same groups).
__device__ __forceinline__ void ring_fill(const Rings& r, int slot, int col, int K, int lane) {
    if (col < K) {
#if XS
#pragma unroll
        for (int p = r.gi; p < NTOK * 8; p += WM * 32) {
            const int n = p >> 3, u = p & 7, cc = col + u * 8;
            const bool v = n < r.M && cc < K;
            cp_async16(&r.xs[slot][n * 8 + (u ^ (n & 7))], v ? r.x + (size_t)n * K + cc : r.x, v);
        }
#endif
#if WS == 1
        const int u = lane & 7;
#pragma unroll
        for (int i = 0; i < RT; ++i)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int row = q * 4 + (lane >> 3);
                const bool v = col + u * 8 < K && r.ok[i][q];
                cp_async16(&r.ws[slot][i][row * 8 + (u ^ (row & 7))], v ? r.p[i][q] + col : r.base[i], v);
            }
#endif
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits for this thread's copies of the oldest chunk in flight, then for everyone's: the WM warps of a K group
// share an x slot (named barrier 1 + kk), a W slot only the lanes of a warp. Also orders the reads of the
// previous slot before the refill that follows.
__device__ __forceinline__ void ring_wait(int kk) {
    asm volatile("cp.async.wait_group %0;\n" :: "n"(STAGES - 2) : "memory");
#if XS && WM > 1
    asm volatile("bar.sync %0, %1;\n" :: "r"(1 + kk), "n"(WM * 32) : "memory");
#else
    __syncwarp();
#endif
}

// The operands of thread (g, t) from slot (rows g and g+8, tokens j*8+g: all have row & 7 == g, units t and
// 4+t), the others from the register stage c.
__device__ __forceinline__ void ring_read(WFrag& w, XFrag& x, const Rings& r, int slot, const Chunk& c, int g, int t) {
#if WS == 1
#pragma unroll
    for (int i = 0; i < RT; ++i)
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
            w.w[i][rr][0] = r.ws[slot][i][(g + 8 * rr) * 8 + (t ^ g)];
            w.w[i][rr][1] = r.ws[slot][i][(g + 8 * rr) * 8 + ((4 + t) ^ g)];
        }
#else
    w = c.w;
#endif
#if XS
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        x.x[j][0] = r.xs[slot][(j * 8 + g) * 8 + (t ^ g)];
        x.x[j][1] = r.xs[slot][(j * 8 + g) * 8 + ((4 + t) ^ g)];
    }
#else
    x = c.x;
#endif
}
#endif
