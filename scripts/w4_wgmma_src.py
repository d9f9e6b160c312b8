"""Kernel source of scripts/w4_wgmma_probe.py: an int4 (group-quantized) prefill GEMM on Hopper wgmma that
dequantizes in registers, x f32 [M, N] += a T [M, K] @ W [N, K].T, built for sm_90a.

W is our packed int4 layout (quant/formats.py: qweight uint32 [N, K / 8], element k of row n the nibble at bits
4 (k % 8) of word k / 8; scales / zeros fp16 [N, K / GS]). The weight rows are wgmma's M (64 a consumer
warpgroup) and take the register operand A; the tokens are wgmma's N (BT a tile) and come from shared memory.

CTA: WG consumer warpgroups and one producer warp. The producer's lane 0 issues two tensor-map copies a k-tile of
64 columns into a STAGES ring guarded by full / empty mbarriers: the activations (box 64 x BT fp16, 128-byte swizzle,
the B operand) and the packed weights (box 8 words x BW rows, 32 bytes a row, unswizzled). A consumer thread
(warp w of its warpgroup, lane l, g = l / 4, t = l % 4) owns weight rows 16 w + g and 16 w + g + 8 of its
warpgroup's 64; for k16 step s of a k-tile its A fragment is (as mma.m16n8k16's): a0 = row g, k 16 s + 2 t + {0, 1};
a1 = row g + 8, same k; a2 = row g, k 16 s + 8 + 2 t + {0, 1}; a3 = row g + 8, same k. Those two nibbles are the
two halves of byte t of word 2 s (a0, a1) or 2 s + 1 (a2, a3): two 16-byte shared loads a row give all eight words
of the k-tile, and each byte becomes a half2 of biased nibbles by one byte_perm and one lop3, then (h - bias) * s,
exact but the last rounding (as the dequantized fp16 weight the slab path makes).
Accumulator (m64nBTk16 f32): d[4 j + 0 / 1] = row 16 w + g, tokens 8 j + 2 t + 0 / 1; d[4 j + 2 / 3] = row + 8.
Split-K over gridDim.z; the tile is staged in shared memory and added to x with red.global.add.v4.f32 (EPI 1).
"""


def _wgmma_rs(bt: int) -> str:
    """wgmma_rs(d, a0..a3, descB): d [BT / 2] f32 += A (registers) @ B (shared, K-major, 128-byte swizzle)."""
    n = bt // 2
    dregs = ",".join(f"%{i}" for i in range(n))
    outs = ", ".join(f'"+f"(d[{i}])' for i in range(n))
    return (
        "__device__ __forceinline__ void wgmma_rs(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3,\n"
        "                                         unsigned long long db) {\n"
        f'    asm volatile("{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{n + 5}, 0;\\n"\n'
        f'                 "wgmma.mma_async.sync.aligned.m64n{bt}k16.f32.f16.f16 "\n'
        f'                 "{{{dregs}}}, {{%{n},%{n + 1},%{n + 2},%{n + 3}}}, %{n + 4}, p, 1, 1, 0;\\n}}\\n"\n'
        f"                 : {outs}\n"
        '                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1));\n'
        "}\n")


HEAD = r"""
#include <cuda_fp16.h>
#ifndef WG
#define WG 2
#endif
#ifndef STAGES
#define STAGES 4
#endif
#ifndef GS
#define GS 128      // int4 group size (a power of two >= 32), or 0: one group a row
#endif
#ifndef KO
#define KO 0        // bench only: 1 = no epilogue (the mainloop's rate)
#endif
#ifndef NODEQ
#define NODEQ 0     // bench only: 1 = the packed words go to wgmma as they are (the dequantization's cost)
#endif
#define BW (64 * WG)
#define NCW (4 * WG)
#define NTH (128 * WG + 32)
#define X_BYTES (BT * 128)
#define W_BYTES (BW * 32)
#define STAGE_BYTES (X_BYTES + W_BYTES)
#define NACC (BT / 2)
#if GS != 0 && (GS < 32 || (GS & (GS - 1)))
#error "GS: a power of two >= 32, or 0"
#endif

struct __align__(64) TMap { unsigned long long v[16]; };

__device__ __forceinline__ unsigned sa(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
// 128-byte-swizzle, K-major smem descriptor: start >> 4, LBO 1 (unused), SBO 1024 (8-row groups) >> 4, mode 1
__device__ __forceinline__ unsigned long long desc(unsigned addr) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32)
           | (1ull << 62);
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred p;\nW: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra W;\n}\n"
                 :: "r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void tma2d(unsigned dst, const TMap* m, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(m)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
__device__ __forceinline__ unsigned h2u(__half2 h) { return *reinterpret_cast<unsigned*>(&h); }
__device__ __forceinline__ __half2 u2h(unsigned u) { return *reinterpret_cast<__half2*>(&u); }

// byte t of w (nibbles lo, hi) -> half2 (lo - z, hi - z), exact. sel puts byte t in both halves; the lop3 keeps lo
// in the low half's bits 0-3 under 0x6400 (1024 + lo) and hi in the high half's bits 4-7 under 0x5400 (64 + hi:
// ulp 1/16 there); zb = (1024 + z, 64 + z). Times the scale, it is the fp16 weight the slab path makes (one rounding).
__device__ __forceinline__ unsigned diff(unsigned w, unsigned sel, __half2 zb) {
    const unsigned v = __byte_perm(w, 0u, sel);
    unsigned h;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h) : "r"(v), "r"(0x00F0000Fu), "r"(0x54006400u));  // (v & m) | c
    return h2u(__hsub2(u2h(h), zb));
}

struct GroupVals { __half2 s0, z0, s1, z1; };  // rows g and g + 8: scale (doubled), (1024 + zero, 64 + zero)

__device__ __forceinline__ GroupVals group_vals(const __half* sc, const __half* zr, int r0, int r1, int ng, int gi) {
    gi = min(gi, ng - 1);  // a k-tile past K (zero-filled weights) reads the last group
    const __half s0 = __ldg(sc + (size_t)r0 * ng + gi), s1 = __ldg(sc + (size_t)r1 * ng + gi);
    const __half z0 = __ldg(zr + (size_t)r0 * ng + gi), z1 = __ldg(zr + (size_t)r1 * ng + gi);
    const __half2 base = __floats2half2_rn(1024.0f, 64.0f);
    return {__half2half2(s0), __hadd2(__half2half2(z0), base), __half2half2(s1), __hadd2(__half2half2(z1), base)};
}
"""

BODY = r"""
struct Ctx {  // what one consumer thread's k-tile step needs
    unsigned base, full, empty, sel;
    int lr, r0, r1, ng, t;
    const __half* sc;
    const __half* zr;
};

#if GS == 0
#define GSH 30
#else
#define GSH (31 - __clz(GS))
#endif

// Keeps x in a register, unchanged, up to this point: A fragments must outlive the batch that reads them, and the
// partial products of the next tile must not take their registers meanwhile.
__device__ __forceinline__ void keep(unsigned& x) { asm volatile("" : "+r"(x)::"memory"); }

// k-tile kt (the i-th of this CTA), first half: wait for its stage, load its packed words and make the exact
// biased differences h = q - z of its fragments (not wgmma operands, so this may overlap a batch in flight);
// sc: the scales of (row g, steps 0-1), (row g + 8, 0-1), (g, 2-3), (g + 8, 2-3). nv0 / nv1: this tile's group
// values on entry (loaded one tile ahead), the next tile's on exit.
__device__ __forceinline__ void tile_in(const Ctx& c, int kt, int i, unsigned (&h)[16], __half2 (&sc)[4],
                                        GroupVals& nv0, GroupVals& nv1) {
    const GroupVals v0 = nv0;
#if GS == 32
    const GroupVals v1 = nv1;
    nv1 = group_vals(c.sc, c.zr, c.r0, c.r1, c.ng, ((kt + 1) * 64 + 32) >> GSH);
#else
    const GroupVals v1 = nv0;
#endif
    nv0 = group_vals(c.sc, c.zr, c.r0, c.r1, c.ng, ((kt + 1) * 64) >> GSH);
    const int s = i % STAGES;
    mbar_wait(c.full + 8 * s, (i / STAGES) & 1);
    const unsigned wa = c.base + s * STAGE_BYTES + X_BYTES + c.lr * 32;
    unsigned pw[8], qw[8];  // words 0-7 of rows lr (pw) and lr + 8 (qw)
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(pw[0]), "=r"(pw[1]), "=r"(pw[2]), "=r"(pw[3])
                 : "r"(wa));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(pw[4]), "=r"(pw[5]), "=r"(pw[6]), "=r"(pw[7])
                 : "r"(wa + 16));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(qw[0]), "=r"(qw[1]), "=r"(qw[2]), "=r"(qw[3])
                 : "r"(wa + 256));
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(qw[4]), "=r"(qw[5]), "=r"(qw[6]), "=r"(qw[7])
                 : "r"(wa + 272));
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
        const GroupVals& v = ks < 2 ? v0 : v1;
        h[4 * ks + 0] = diff(pw[2 * ks], c.sel, v.z0);
        h[4 * ks + 1] = diff(qw[2 * ks], c.sel, v.z1);
        h[4 * ks + 2] = diff(pw[2 * ks + 1], c.sel, v.z0);
        h[4 * ks + 3] = diff(qw[2 * ks + 1], c.sel, v.z1);
    }
    sc[0] = v0.s0; sc[1] = v0.s1; sc[2] = v1.s0; sc[3] = v1.s1;
}

// Second half, after the previous batch completed: the fragments (h * s, one rounding), the batch issued; then the
// next tile's first half while it runs, and the batch completed and its stage released.
__device__ __forceinline__ void tile_mma(const Ctx& c, int kt, int i, int kt1, unsigned (&h)[16], __half2 (&sc)[4],
                                         float* d, GroupVals& nv0, GroupVals& nv1) {
    unsigned a[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) {
#if NODEQ
        a[j] = h[j];
#else
        a[j] = h2u(__hmul2(u2h(h[j]), sc[(j & 1) + 2 * (j >= 8)]));
#endif
    }
    const unsigned xa = c.base + (i % STAGES) * STAGE_BYTES;
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_rs(d, a[4 * ks], a[4 * ks + 1], a[4 * ks + 2], a[4 * ks + 3], desc(xa + 32 * ks));
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    if (kt + 1 < kt1) tile_in(c, kt + 1, i + 1, h, sc, nv0, nv1);
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int j = 0; j < 16; ++j) keep(a[j]);
    if (c.t == 0)  // its stage may be refilled
        asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(c.empty + 8 * (i % STAGES)) : "memory");
}

// x [M, N] f32 += a [M, K] @ W [N, K].T; grid (ceil(N / BW), ceil(M / BT), splits); tw: map of qweight (uint32,
// box 8 x BW), ta: map of a (fp16, box 64 x BT, 128-byte swizzle). K % 32 == 0 (the weight map's rows are K / 2
// bytes, a multiple of 16) and GS | K; K % 64 != 0 is fine (zero fill).
extern "C" __global__ void __launch_bounds__(NTH, 1)
w4_wgmma_residual(const __grid_constant__ TMap tw, const __grid_constant__ TMap ta, float* __restrict__ x,
                  const __half* __restrict__ scales, const __half* __restrict__ zeros, int M, int N, int K) {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    __shared__ __align__(8) unsigned long long full[STAGES], empty[STAGES];
    const unsigned base = (sa(smem_raw) + 1023u) & ~1023u;
    const int n0 = blockIdx.x * BW, m0 = blockIdx.y * BT;
    const int ktiles = (K + 63) / 64, per = (ktiles + gridDim.z - 1) / gridDim.z;
    const int kt0 = blockIdx.z * per, kt1 = min(ktiles, kt0 + per);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sa(&full[s])) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(sa(&empty[s])), "r"(WG) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (warp == NCW) {  // producer
        if (lane == 0) {
            for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) {
                const int s = i % STAGES, round = i / STAGES;
                if (round > 0) mbar_wait(sa(&empty[s]), (round - 1) & 1);
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                             :: "r"(sa(&full[s])), "r"(STAGE_BYTES) : "memory");
                tma2d(base + s * STAGE_BYTES, &ta, kt * 64, m0, sa(&full[s]));
                tma2d(base + s * STAGE_BYTES + X_BYTES, &tw, kt * 8, n0, sa(&full[s]));
            }
        }
        return;
    }
    const int wg = warp >> 2, t = threadIdx.x & 127, tb = lane & 3;
    const int lr = wg * 64 + (t >> 5) * 16 + (lane >> 2);       // this thread's first row in the CTA tile
    const Ctx c = {base, sa(full), sa(empty), (unsigned)tb * 0x0101u, lr, min(n0 + lr, N - 1),
                   min(n0 + lr + 8, N - 1), GS == 0 ? 1 : K / (GS == 0 ? 1 : GS), t, scales, zeros};
    float d[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) d[i] = 0.0f;
    GroupVals nv0 = group_vals(scales, zeros, c.r0, c.r1, c.ng, (kt0 * 64) >> GSH), nv1 = nv0;
#if GS == 32
    nv1 = group_vals(scales, zeros, c.r0, c.r1, c.ng, (kt0 * 64 + 32) >> GSH);
#endif
    unsigned h[16];
    __half2 sc[4];
    if (kt0 < kt1) tile_in(c, kt0, 0, h, sc, nv0, nv1);
    for (int kt = kt0, i = 0; kt < kt1; ++kt, ++i) tile_mma(c, kt, i, kt1, h, sc, d, nv0, nv1);
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#if KO & 1
    if (d[0] == 1.2345e-37f) x[0] = d[NACC - 1];
#else
    // the ring is idle once every warpgroup's last batch is done; the tile goes token-major into P [BT][BW + 4],
    // then each thread adds 4 consecutive rows of one token with one vector reduction
    float* P = reinterpret_cast<float*>(smem_raw + (base - sa(smem_raw)));
    constexpr int PS = BW + 4;
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
        const int cc = 8 * j + 2 * tb;
        P[cc * PS + lr] = d[4 * j];
        P[(cc + 1) * PS + lr] = d[4 * j + 1];
        P[cc * PS + lr + 8] = d[4 * j + 2];
        P[(cc + 1) * PS + lr + 8] = d[4 * j + 3];
    }
    asm volatile("bar.sync 1, %0;" :: "n"(NCW * 32) : "memory");
    for (int e = threadIdx.x; e < BT * (BW / 4); e += NCW * 32) {
        const int tok = e / (BW / 4), row = 4 * (e % (BW / 4));
        if (m0 + tok >= M || n0 + row >= N) continue;
        const float4 v = *reinterpret_cast<const float4*>(P + tok * PS + row);
        float* dst = x + (size_t)(m0 + tok) * N + n0 + row;
        if ((N & 3) == 0) {
            asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                         :: "l"(dst), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
        } else {
            const float vv[4] = {v.x, v.y, v.z, v.w};
            for (int q = 0; q < 4 && n0 + row + q < N; ++q) atomicAdd(dst + q, vv[q]);
        }
    }
#endif
}
"""


def source(bt: int) -> str:
    """The module's source for BT tokens a tile (a multiple of 8, <= 256); WG, STAGES, GS, KO by -D."""
    if bt % 8 or not 8 <= bt <= 256:
        raise ValueError(f"BT must be a multiple of 8 in [8, 256], got {bt}")
    return f"#define BT {bt}\n" + HEAD + _wgmma_rs(bt) + BODY
