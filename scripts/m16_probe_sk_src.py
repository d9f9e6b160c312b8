"""CUDA source of scripts/m16_probe.py's stream-K variant (bench only; prepared in the thirty-sixth session, not yet
GPU-run): m16_probe_src.SRC plus the kernel m16_sk.

Why: m16_persist gives a block whole 16 RT-row tiles, so on wo / w2 (256 tiles) a grid of 132 SMs is unevenly loaded.
Here the (tile, stage) pairs, tile-major, are cut into gridDim.x equal contiguous ranges, one a block (stream-K), and
the producer's ring runs through its range without a break. A tile cut between blocks b (its first stages, at the end
of b's range) and b + 1 (its last stages, at the start of b + 1's range) is finished by b: b + 1 leaves its partial
tile in part[t] and raises flag[t]; b waits for the flag, adds its own sum then that partial (fixed order, so replays
are bit-identical), stores x and lowers the flag for the next launch. Every block of the grid must be resident at once
(b waits on b + 1), so the host sizes the grid by the occupancy; each range must hold at least one whole tile's
stages (a tile is then cut at most once).
"""

from scripts.m16_probe_src import SRC

SK_SRC = SRC + r"""
__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// consumer threads (first = threadIdx.x - 32, CW warps): this block's red_sum, 256 RT floats o = token * 16 RT + row,
// into dst (part[t]), then the flag raised
__device__ __forceinline__ void red_to_part(float* dst, unsigned* flag, const float (&red)[CW][16 * RT][17],
                                            int first) {
    for (int o = first; o < 256 * RT; o += CW * 32) dst[o] = red_sum<RT>(red, o);
    asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
    if (first == 0) {
        __threadfence();
        atomicExch(flag, 1u);
    }
}

// x f32 [16, N] += a @ w.T over the stage range of this block; part f32 [N / (16 RT), 256 RT], flag u32 [N / (16 RT)]
// zero before the first launch (the finishing blocks lower the flags again)
extern "C" __global__ void __launch_bounds__(NTHREADS)
m16_sk(const __grid_constant__ TMap mw, const __grid_constant__ TMap ma, float* __restrict__ x, int N, int K,
       float* __restrict__ part, unsigned* __restrict__ flag) {
    extern __shared__ __align__(1024) unsigned char ring[];
    __shared__ __align__(8) unsigned long long full[S], empty[S];
    __shared__ float red[CW][16 * RT][17];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nst = (K + TKC - 1) / TKC, ntiles = N / (16 * RT);
    const long long total = (long long)ntiles * nst;
    const int lo = (int)(total * blockIdx.x / gridDim.x), hi = (int)(total * (blockIdx.x + 1) / gridDim.x);
    const unsigned rbase = (sa(ring) + 1023) & ~1023u;
    ring_init(full, empty);
    if (warp == 0) {
        if (lane == 0)
            for (int ga = lo; ga < hi; ++ga) {
                const int g = ga - lo, s = g % S;
                if (g >= S) mbar_wait(sa(&empty[s]), ((g / S) - 1) & 1);
                tma_stage(rbase, s, g, &mw, &ma, (ga / nst) * 16 * RT, (ga % nst) * (TKC / 64), full);
            }
        return;  // the consumers' named barriers count their own warps only
    }
    const int c = warp - 1, first = threadIdx.x - 32;
    float acc[RT][2][4];
    zero(acc);
    for (int ga = lo; ga < hi; ++ga) {
        const int g = ga - lo, s = g % S, t = ga / nst, i = ga % nst;
        mbar_wait(sa(&full[s]), (g / S) & 1);
        tma_consume(rbase + s * TSTAGE, c, lane, acc);
        __syncwarp();
        if (lane == 0) mbar_arrive(sa(&empty[s]));
        if (i != nst - 1 && ga != hi - 1) continue;  // the tile goes on in this block
        acc_to_red<RT>(red[c], acc, lane);
        zero(acc);
        asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
        const bool head = t * nst >= lo, tail = t * nst + nst <= hi;  // this block holds the tile's first / last stage
        if (!head) {                       // its last stages: the partial for the block before
            red_to_part(part + (size_t)t * 256 * RT, flag + t, red, first);
        } else if (tail) {                 // the whole tile
            red_to_x<RT>(x, red, N, t * 16 * RT, first, CW * 32);
        } else {                           // its first stages: wait for the rest, add it after this block's sum
            if (first == 0) {  // bounded: a lost flag gives a wrong sum (the float64 check says so), not a hang
                for (long long spin = 0; ld_acquire(flag + t) == 0u && spin < (1ll << 24); ++spin) {
                }
            }
            asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
            const float* src = part + (size_t)t * 256 * RT;
            for (int o = first; o < 256 * RT; o += CW * 32)
                x[(size_t)(o / (16 * RT)) * N + t * 16 * RT + o % (16 * RT)] += red_sum<RT>(red, o) + __ldcg(src + o);
            if (first == 0) flag[t] = 0u;  // for the next launch (stream-ordered after this one)
        }
        asm volatile("bar.sync 1, %0;" :: "r"(CW * 32) : "memory");
    }
}
"""
