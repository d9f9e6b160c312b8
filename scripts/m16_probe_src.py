"""CUDA source of scripts/m16_probe.py (bench only): a 16-token GEMM + residual, x f32 [16, N] += a [16, K] @
w [N, K].T, with the weights streamed into shared memory by bulk copies of whole 2*KC-byte row segments.

Why: the engine's 16-row GEMM (kernels/gemm.cu) loads W straight into mma fragments, so each warp load touches 8 rows
x 64 bytes; the twentieth session's pitch probe measured that pattern 15-20% slower than loads of 512 contiguous
bytes (benchmarks/HISTORY.md, s28b), about the gap of the 16-row GEMMs to a bare read of their bytes.

Block: one 16-row tile of W (grid N / 16), warp 0 the producer, warps 1..CW consumers. Stage s of an S-stage ring
holds W rows [16, KC] and the 16 tokens' a [16, KC], each row one cp.async.bulk copy of 2*KC bytes (lane r < 16: W
row r, lane 16 + r: token r), rows padded by 16 bytes so that ldmatrix's 8 row addresses fall in distinct banks;
full[s] completes on the producer's expect_tx and the copies' bytes, empty[s] on one arrival a consumer warp.
Consumer warp c takes the k16 steps j = c, c + CW, .. of each stage: ldmatrix.x4 for W (A of mma.m16n8k16, rows =
output features) and for a (B of both n8 token tiles), two mma. The CW partial tiles are added in warp order through
shared memory and x += their sum (fixed order: bit-identical run to run). Block b walks K from chunk b * ROT mod the
chunk count (s44b: with every block in lockstep on the same a slice, each stage took ~1.2 us whatever the ring depth).
m16_tma (one tensor-map box a stage for W and for a) and m16_persist (its blocks stream several tiles through one
ring) follow; the three share the ring set-up, the partial tiles' sum and the store below.
"""

SRC = r"""
#include <cuda_fp16.h>
#ifndef KC
#define KC 256
#endif
#ifndef S
#define S 4
#endif
#ifndef CW
#define CW 4
#endif
#ifndef ROT
#define ROT 1     // blocks start their K walk ROT chunks apart: in lockstep every block would fetch the same a slice
#endif
#ifndef RT
#define RT 1      // m16_tma / m16_persist: row tiles of 16 a block, sharing each a fragment
#endif
#ifndef TKC
#define TKC 256   // m16_tma / m16_persist: columns a stage (the last stage's boxes may pass K: zero-filled)
#endif
#ifndef XKO
#define XKO 0     // bench-only knockout: 1 copies the activations in the first S stages only (later stages reuse them)
#endif
#ifndef CKO
#define CKO 0     // bench-only knockout: 1 = the consumers only wait for each stage and free it (the bare stream)
#endif
#define PITCH (2 * KC + 16)          // m16_stream: bytes a row in the ring (16 of padding)
#define STAGE_BYTES (32 * PITCH)     // m16_stream: 16 W rows + 16 token rows
#define WBYTES (RT * 32 * TKC)       // m16_tma / m16_persist: a stage's W box, then its a box
#define TSTAGE (WBYTES + 32 * TKC)
#define NTHREADS (32 * (CW + 1))

__device__ __forceinline__ unsigned sa(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred p;\nW: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra W;\n}\n"
                 :: "r"(bar), "r"(parity) : "memory");
}

__device__ __forceinline__ void mbar_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory");
}

__device__ __forceinline__ void expect_tx(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
}

// thread 0: full[s] completes on the producer's arrival (with its copies' bytes), empty[s] on one a consumer warp
__device__ __forceinline__ void ring_init(unsigned long long* full, unsigned long long* empty) {
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; ++s) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sa(&full[s])) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(sa(&empty[s])), "r"(CW) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
}

__device__ __forceinline__ void ldsm4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void mma(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                    unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <int TILES>
__device__ __forceinline__ void zero(float (&acc)[TILES][2][4]) {
#pragma unroll
    for (int u = 0; u < TILES * 8; ++u) acc[u / 8][(u / 4) & 1][u & 3] = 0.f;
}

// consumer warp's partial tiles into its red slice; C fragment: rows g / g + 8 of each tile, tokens nt * 8 + 2t, + 1
template <int TILES>
__device__ __forceinline__ void acc_to_red(float (&red)[16 * TILES][17], const float (&acc)[TILES][2][4], int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int tt = 0; tt < TILES; ++tt)
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
            red[tt * 16 + g][nt * 8 + 2 * t] = acc[tt][nt][0];
            red[tt * 16 + g][nt * 8 + 2 * t + 1] = acc[tt][nt][1];
            red[tt * 16 + g + 8][nt * 8 + 2 * t] = acc[tt][nt][2];
            red[tt * 16 + g + 8][nt * 8 + 2 * t + 1] = acc[tt][nt][3];
        }
}

// output o = token * 16 TILES + row of the CW partial tiles, added in warp order (fixed: bit-identical run to run)
template <int TILES>
__device__ __forceinline__ float red_sum(const float (&red)[CW][16 * TILES][17], int o) {
    const int tok = o / (16 * TILES), rr = o % (16 * TILES);
    float sum = red[0][rr][tok];
#pragma unroll
    for (int k = 1; k < CW; ++k) sum += red[k][rr][tok];
    return sum;
}

// x [16, N] rows row0 .. += red_sum (16 TILES contiguous floats a token); threads first, first + step, ..
template <int TILES>
__device__ __forceinline__ void red_to_x(float* x, const float (&red)[CW][16 * TILES][17], int N, int row0, int first,
                                         int step) {
    for (int o = first; o < 256 * TILES; o += step)
        x[(size_t)(o / (16 * TILES)) * N + row0 + o % (16 * TILES)] += red_sum<TILES>(red, o);
}

// x f32 [16, N] += a f16 [16, K] @ w f16 [N, K].T; grid (N / 16,), block NTHREADS; K % KC == 0, N % 16 == 0
extern "C" __global__ void __launch_bounds__(NTHREADS)
m16_stream(float* __restrict__ x, const __half* __restrict__ a, const __half* __restrict__ w, int N, int K) {
    extern __shared__ __align__(1024) unsigned char ring[];           // S stages of STAGE_BYTES
    __shared__ __align__(8) unsigned long long full[S], empty[S];
    __shared__ float red[CW][16][17];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, row0 = blockIdx.x * 16, nst = K / KC;
    const int rot = ROT ? (blockIdx.x * ROT) % nst : 0;  // stage i reads K chunk (i + rot) % nst
    ring_init(full, empty);
    if (warp == 0) {  // producer: lane r < 16 copies W row r, lane 16 + r token r, a stage at a time
        const char* src = lane < 16 ? (const char*)(w + (size_t)(row0 + lane) * K)
                                    : (const char*)(a + (size_t)(lane - 16) * K);
        for (int i = 0; i < nst; ++i) {
            const int s = i % S;
            if (i >= S) mbar_wait(sa(&empty[s]), ((i / S) - 1) & 1);
            if (lane == 0) expect_tx(sa(&full[s]), 32 * 2 * KC);
            __syncwarp();
            const unsigned dst = sa(ring + (size_t)s * STAGE_BYTES + lane * PITCH);
            asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                         :: "r"(dst), "l"(src + (size_t)((i + rot) % nst) * 2 * KC), "r"(2 * KC), "r"(sa(&full[s]))
                         : "memory");
        }
    } else {
        const int c = warp - 1;
        float acc[1][2][4];
        zero(acc);
        // ldmatrix.x4 row addresses: A matrix q = lane / 8: rows (q & 1) * 8 + lane % 8, k (q >> 1) * 8;
        // B matrix q: tokens (q >> 1) * 8 + lane % 8, k (q & 1) * 8
        const int q = lane >> 3, r = lane & 7;
        const unsigned aoff = ((q & 1) * 8 + r) * PITCH + (q >> 1) * 16;
        const unsigned boff = (16 + (q >> 1) * 8 + r) * PITCH + (q & 1) * 16;
        for (int i = 0; i < nst; ++i) {
            const int s = i % S;
            mbar_wait(sa(&full[s]), (i / S) & 1);
            const unsigned base = sa(ring + (size_t)s * STAGE_BYTES);
#pragma unroll
            for (int j = c; j < KC / 16; j += CW) {
                unsigned a0, a1, a2, a3, b0, b1, b2, b3;
                ldsm4(base + aoff + j * 32, a0, a1, a2, a3);
                ldsm4(base + boff + j * 32, b0, b1, b2, b3);
                mma(acc[0][0], a0, a1, a2, a3, b0, b1);
                mma(acc[0][1], a0, a1, a2, a3, b2, b3);
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(sa(&empty[s]));
        }
        acc_to_red<1>(red[c], acc, lane);
    }
    __syncthreads();
    red_to_x<1>(x, red, N, row0, threadIdx.x, NTHREADS);
}

// ---- TMA variant: one 3-D tensor-map copy a stage for W and one for a, 128-byte swizzle ----
// The maps view W [N, K] as (64 halves, N rows, K / 64 column blocks) with strides (2K, 128) bytes and boxes
// (64, 16 RT, TKC / 64), so a stage lands as [TKC / 64 column blocks][16 RT rows][128 bytes] with each 16-byte chunk c
// of row r at chunk c ^ (r & 7): ldmatrix's 8 row addresses fall in distinct banks. a [16, K] likewise (boxes of 16
// rows). RT row tiles of 16 a block share each a fragment: the activation bytes a block reads are 1 / RT of its W.
struct __align__(64) TMap { unsigned long long v[16]; };

__device__ __forceinline__ void tma3d(unsigned dst, const TMap* m, int c0, int c1, int c2, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(m)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}

// byte offset of (row r, column k < TKC) in a swizzled [TKC / 64][rows][128 B] block
__device__ __forceinline__ unsigned swz(int r, int k, int rows) {
    return (k >> 6) * (rows * 128) + r * 128 + ((((k & 63) >> 3) ^ (r & 7)) << 4);
}

// producer lane: stage s gets W rows row0 .. + 16 RT and a at column block kb (a only while !XKO or g < S)
__device__ __forceinline__ void tma_stage(unsigned rbase, int s, int g, const TMap* mw, const TMap* ma, int row0,
                                          int kb, unsigned long long* full) {
    const bool xcopy = !XKO || g < S;
    expect_tx(sa(&full[s]), xcopy ? TSTAGE : WBYTES);
    tma3d(rbase + s * TSTAGE, mw, 0, row0, kb, sa(&full[s]));
    if (xcopy) tma3d(rbase + s * TSTAGE + WBYTES, ma, 0, 0, kb, sa(&full[s]));
}

// consumer warp c: its k16 steps j = c, c + CW, .. of the stage at base, into acc (none under CKO)
__device__ __forceinline__ void tma_consume(unsigned base, int c, int lane, float (&acc)[RT][2][4]) {
    const int q = lane >> 3, r = lane & 7;
#pragma unroll
    for (int j = c; j < (CKO ? 0 : TKC / 16); j += CW) {
        unsigned b0, b1, b2, b3;
        ldsm4(base + WBYTES + swz((q >> 1) * 8 + r, j * 16 + (q & 1) * 8, 16), b0, b1, b2, b3);
#pragma unroll
        for (int tt = 0; tt < RT; ++tt) {
            unsigned a0, a1, a2, a3;
            ldsm4(base + swz(tt * 16 + (q & 1) * 8 + r, j * 16 + (q >> 1) * 8, 16 * RT), a0, a1, a2, a3);
            mma(acc[tt][0], a0, a1, a2, a3, b0, b1);
            mma(acc[tt][1], a0, a1, a2, a3, b2, b3);
        }
    }
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
m16_tma(const __grid_constant__ TMap mw, const __grid_constant__ TMap ma, float* __restrict__ x, int N, int K) {
    extern __shared__ __align__(1024) unsigned char ring[];            // S stages of TSTAGE: W box, a box
    __shared__ __align__(8) unsigned long long full[S], empty[S];
    __shared__ float red[CW][16 * RT][17];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, row0 = blockIdx.x * 16 * RT;
    const int nst = (K + TKC - 1) / TKC;
    const int rot = ROT ? (blockIdx.x * ROT) % nst : 0;
    const unsigned rbase = (sa(ring) + 1023) & ~1023u;               // swizzled boxes: 1024-byte aligned
    ring_init(full, empty);
    if (warp == 0) {
        if (lane == 0)
            for (int i = 0; i < nst; ++i) {
                const int s = i % S;
                if (i >= S) mbar_wait(sa(&empty[s]), ((i / S) - 1) & 1);
                tma_stage(rbase, s, i, &mw, &ma, row0, ((i + rot) % nst) * (TKC / 64), full);
            }
    } else {
        const int c = warp - 1;
        float acc[RT][2][4];
        zero(acc);
        for (int i = 0; i < nst; ++i) {
            const int s = i % S;
            mbar_wait(sa(&full[s]), (i / S) & 1);
            tma_consume(rbase + s * TSTAGE, c, lane, acc);
            __syncwarp();
            if (lane == 0) mbar_arrive(sa(&empty[s]));
        }
        acc_to_red<RT>(red[c], acc, lane);
    }
    __syncthreads();
    red_to_x<RT>(x, red, N, row0, threadIdx.x, NTHREADS);
}

// ---- persistent variant (prepared in the thirty-sixth session): gridDim.x blocks take the 16 RT-row tiles
// t = blockIdx.x, + gridDim.x, .. in turn, and the producer's ring runs on across tile boundaries (one stage counter g
// over every (tile, stage) pair), so a block's weight stream never drains between its tiles. At a tile's end the
// consumer warps add their partial tiles through `red` between two named barriers of theirs (barrier 1, CW warps) and
// store x while the producer keeps copying. Same layout, defines and knockouts as m16_tma (ROT unused).
extern "C" __global__ void __launch_bounds__(NTHREADS)
m16_persist(const __grid_constant__ TMap mw, const __grid_constant__ TMap ma, float* __restrict__ x, int N, int K) {
    extern __shared__ __align__(1024) unsigned char ring[];
    __shared__ __align__(8) unsigned long long full[S], empty[S];
    __shared__ float red[CW][16 * RT][17];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nst = (K + TKC - 1) / TKC, ntiles = N / (16 * RT);
    const unsigned rbase = (sa(ring) + 1023) & ~1023u;
    ring_init(full, empty);
    if (warp == 0) {
        if (lane == 0) {
            int g = 0;
            for (int t = blockIdx.x; t < ntiles; t += gridDim.x)
                for (int i = 0; i < nst; ++i, ++g) {
                    const int s = g % S;
                    if (g >= S) mbar_wait(sa(&empty[s]), ((g / S) - 1) & 1);
                    tma_stage(rbase, s, g, &mw, &ma, t * 16 * RT, i * (TKC / 64), full);
                }
        }
        return;  // the consumers' named barriers count their own warps only
    }
    const int c = warp - 1;
    int g = 0;
    for (int t = blockIdx.x; t < ntiles; t += gridDim.x) {
        float acc[RT][2][4];
        zero(acc);
        for (int i = 0; i < nst; ++i, ++g) {
            const int s = g % S;
            mbar_wait(sa(&full[s]), (g / S) & 1);
            tma_consume(rbase + s * TSTAGE, c, lane, acc);
            __syncwarp();
            if (lane == 0) mbar_arrive(sa(&empty[s]));
        }
        acc_to_red<RT>(red[c], acc, lane);
        asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
        red_to_x<RT>(x, red, N, t * 16 * RT, threadIdx.x - 32, CW * 32);
        asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
    }
}
"""
