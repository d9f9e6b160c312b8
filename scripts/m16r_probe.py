"""Probe (bench only, no library code): a 16-token GEMM + residual, x f32 [16, N] += a [16, K] @ w [N, K].T, whose
weight loads each span one row (512 bytes a warp load), beside the engine's own 16-row kernel and a bare read.

Why (#13, TTFT at 10 tokens): loads alone in a 16-row GEMM's order reach the bare read when one warp load spans one
row, and lose ~12 us a 7B layer when it spans 8 rows x 64 bytes, the own kernel's mma fragment pattern
(`scripts/rowgeo_probe.py`, thirty-seventh session); tensor-map streams into shared memory stay at 3.9 TB/s
(`scripts/m16_probe.py`). Here the loads keep the 1-row geometry and the fragments move between lanes through a
per-warp 8 KB shared-memory buffer (16 STS.128 + 16 LDS.128 a lane a superstep, no ldmatrix, no async copies).

Kernel m16r: grid N / 16 (a block a 16-row tile), NW warps; warp w takes supersteps w, w + NW, .. of 16 rows x 256
columns. Load j of a superstep is row j: lane L holds columns [8L, 8L + 8), stored at chunk L ^ 4 (j & 1) of row j in
the warp's buffer (the XOR keeps both the stores and the fragment reads free of bank conflicts). The K order inside
each 32-column group s is permuted (the same for W and a, so the dot product is unchanged): lane (g, c) = (lane / 4,
lane % 4) reads chunk 4s + c of rows g and g + 8 (LDS.128 each) and of tokens g and g + 8 (LDG.128 each, through L1),
and their words 0, 1 / 2, 3 are the A / B fragments of two m16n8k16 k-steps (emulated in NumPy against W @ a.T by
tests/test_m16r_probe_cpu.py). The NW partial tiles are added in warp order through shared memory (fixed order).
KO 1 (bench only): the loads and the buffer round trip only, no activations and no products (wrong sums).

Usage: python3 -m scripts.m16r_probe [--shapes wo,w2,wqkv,w13] [--configs r:8,r:16:1] [--rounds 2] [--out F]
"""
from __future__ import annotations

import sys

import numpy as np

from scripts import bench_kernels as bk, probe_cli

SHAPES = {"wo": (4096, 4096), "w2": (4096, 11008), "wqkv": (12288, 4096), "w13": (22016, 4096)}  # (N, K)
CONFIGS = "r:4,r:8,r:16,r:8:2,rk:8,rk:16"  # r[k]:NW[:U] (k: the KO 1 knockout)

CONFIG_HELP = "r:NW[:U] / rk:NW[:U] (knockout), comma-separated"

SRC = r"""
// grid (N / 16,), block 32 * MNW, dynamic smem MNW * MU * 8 KB; K a multiple of 256
__device__ __forceinline__ void mma(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                    unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

extern "C" __global__ void __launch_bounds__(MNW * 32)
m16r(const uint4* __restrict__ w, const uint4* __restrict__ a, float* __restrict__ x, int N, int K) {
    extern __shared__ __align__(128) uint4 sm[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
    const int K8 = K / 8, nss = K8 / 32;
    const size_t row0 = (size_t)blockIdx.x * 16;
    uint4* ex = sm + warp * (MU * 512);  // this warp's buffers: MU x [16 rows][32 chunks]
    float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    unsigned hash = 0u;  // MKO 1
    for (int s0 = warp; s0 < nss; s0 += MNW * MU) {
        uint4 v[MU][16];
#pragma unroll
        for (int u = 0; u < MU; ++u) {
            const int ss = s0 + u * MNW;
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                v[u][j] = make_uint4(0u, 0u, 0u, 0u);
                if (ss < nss)
                    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                                 : "=r"(v[u][j].x), "=r"(v[u][j].y), "=r"(v[u][j].z), "=r"(v[u][j].w)
                                 : "l"(w + (row0 + j) * K8 + ss * 32 + lane));
            }
        }
#pragma unroll
        for (int u = 0; u < MU; ++u)
#pragma unroll
            for (int j = 0; j < 16; ++j) ex[u * 512 + j * 32 + (lane ^ ((j & 1) << 2))] = v[u][j];
        __syncwarp();
#pragma unroll
        for (int u = 0; u < MU; ++u) {
            const int ss = s0 + u * MNW;
            if (ss >= nss) break;  // warp-uniform
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                const int ch = 4 * s + c, sw = (g & 1) << 2;
                const uint4 wa = ex[u * 512 + g * 32 + (ch ^ sw)], wb = ex[u * 512 + (g + 8) * 32 + (ch ^ sw)];
                if (MKO == 1) {
                    hash += wa.x ^ wa.y ^ wa.z ^ wa.w ^ wb.x ^ wb.y ^ wb.z ^ wb.w;
                    continue;
                }
                const uint4 b0 = __ldg(a + (size_t)g * K8 + ss * 32 + ch);
                const uint4 b1 = __ldg(a + (size_t)(g + 8) * K8 + ss * 32 + ch);
                mma(acc[0], wa.x, wb.x, wa.y, wb.y, b0.x, b0.y);
                mma(acc[1], wa.x, wb.x, wa.y, wb.y, b1.x, b1.y);
                mma(acc[0], wa.z, wb.z, wa.w, wb.w, b0.z, b0.w);
                mma(acc[1], wa.z, wb.z, wa.w, wb.w, b1.z, b1.w);
            }
        }
        __syncwarp();  // the next superstep's stores overwrite this buffer
    }
    if (MKO == 1) acc[0][0] = (float)(hash & 1u);
    __syncthreads();  // every warp is done with its buffer: the partial tiles reuse the shared memory
    float* red = reinterpret_cast<float*>(sm);  // [MNW][16 rows][16 tokens]
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)  // c0, c1: row g; c2, c3: row g + 8; tokens nt * 8 + 2c + (i & 1)
            red[(warp * 16 + g + 8 * (i >> 1)) * 16 + nt * 8 + 2 * c + (i & 1)] = acc[nt][i];
    __syncthreads();
    for (int t = threadIdx.x; t < 256; t += blockDim.x) {
        const int r = t >> 4, tok = t & 15;
        float s = 0.f;
        for (int q = 0; q < MNW; ++q) s += red[(q * 16 + r) * 16 + tok];
        x[(size_t)tok * N + row0 + r] += s;
    }
}
"""


def parse_config(text: str) -> tuple[int, int, int]:
    """r:NW[:U] / rk:NW[:U] -> (KO, NW, U): NW warps a block (>= 1, <= 32), U supersteps in flight a warp (1, 2)."""
    head, *rest = text.split(":")
    if head not in ("r", "rk") or not 1 <= len(rest) <= 2 or not all(p.isdigit() for p in rest):
        raise ValueError(f"bad config {text!r}: r:NW[:U] or rk:NW[:U]")
    nw, u = int(rest[0]), int(rest[1]) if len(rest) > 1 else 1
    if not 1 <= nw <= 32 or u not in (1, 2) or nw * u * 8 > 224:
        raise ValueError(f"bad config {text!r}: NW 1-32, U 1 or 2, NW * U * 8 KB of shared memory <= 224 KB")
    return int(head == "rk"), nw, u


def build(cp, ko: int, nw: int, u: int):
    fn = cp.RawKernel(SRC, "m16r", options=("-std=c++17", f"-DMNW={nw}", f"-DMU={u}", f"-DMKO={ko}"))
    smem = nw * u * 8192
    fn.max_dynamic_shared_size_bytes = smem
    return lambda x, a, w: fn((w.shape[0] // 16,), (32 * nw,), (w, a, x, np.int32(w.shape[0]), np.int32(w.shape[1])),
                              shared_mem=smem)


def check(cp, call, a, w) -> float:
    """max |x_after - x_before - a @ w.T| / sd(a @ w.T), float64 on the host; x poisoned with random values first."""
    x = cp.random.default_rng(7).standard_normal((16, w.shape[0]), dtype=cp.float32)
    x0 = cp.asnumpy(x).astype(np.float64)
    call(x, a, w)
    ref = cp.asnumpy(a).astype(np.float64) @ cp.asnumpy(w).astype(np.float64).T
    return float(np.max(np.abs(cp.asnumpy(x).astype(np.float64) - x0 - ref)) / np.std(ref))


def bench(shapes, configs, rounds: int) -> dict:
    import cupy as cp
    from cugraphllm.gpu import gemm
    stream = cp.cuda.Stream(non_blocking=True)
    out = {"env": bk.environment(), "rows": []}
    for name in shapes:
        N, K = SHAPES[name]
        ws = bk.weight_copies(N, K, cp.float16)
        a = bk._rand((16, K), cp.float16, 99)
        x = cp.random.default_rng(5).standard_normal((16, N), dtype=cp.float32)
        row = {"shape": name, "N": N, "K": K, "mb": N * K * 2 / 1e6, "errors": {}, "us": {}}
        calls = {"own": lambda i: gemm.matmul_residual(x, a, ws[i], impl="own"), "read": bk.read_floor_call(ws)}
        for text in configs:
            try:
                f = build(cp, *parse_config(text))
                row["errors"][text] = check(cp, f, a, ws[0])
                calls[text] = (lambda f: lambda i: f(x, a, ws[i]))(f)
            except Exception as exc:  # noqa: BLE001 - a config that does not build or launch is reported, not fatal
                row["errors"][text] = f"error: {exc}"[:160]
        own = lambda xx, aa, ww: gemm.matmul_residual(xx, aa, ww, impl="own")  # noqa: E731
        row["errors"]["own"] = check(cp, own, a, ws[0])
        probe_cli.time_rounds(stream, calls, len(ws), rounds, row)
        del ws
        probe_cli.emit(cp, out, row)
    return out


def main(argv=None) -> int:
    return probe_cli.main("m16r_probe", __doc__.splitlines()[0], SHAPES, CONFIGS, CONFIG_HELP, parse_config,
                          bench, argv)


if __name__ == "__main__":
    sys.exit(main())
