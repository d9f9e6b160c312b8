"""Probe (bench only, no library code): 16-token GEMMs with the weights streamed into shared memory (1-D bulk copies of
row segments, tensor-map boxes, or persistent blocks on tensor-map boxes; scripts/m16_probe_src.py says why and how)
beside the engine's own 16-row kernel (gemm.matmul_residual, impl "own", its OWN_CONFIG) and a bare read of the same
bytes, on the 7B shapes, x f32 [16, N] += a [16, K] @ w [N, K].T.

Each config is first checked against NumPy float64 (max |error| / sd of the product; the x / c knockouts compute
wrong sums on purpose); timing is bench_kernels.graph_us (a graph of calls cycling over weight copies > 4x L2), in
--rounds rounds. Findings: benchmarks/HISTORY.md, thirty-sixth session.

Usage: python3 -m scripts.m16_probe [--shapes wo,w2,wqkv,w13] [--configs tma:4:4,pst2:4:4:2] [--out FILE]
"""
from __future__ import annotations

import sys

import numpy as np

from scripts import bench_kernels as bk, probe_cli
from scripts.m16_probe_sk_src import SK_SRC
from scripts.m16_probe_src import SRC

SHAPES = {"wo": (4096, 4096), "w2": (4096, 11008), "wqkv": (12288, 4096), "w13": (22016, 4096)}  # (N, K)
# KC:S:CW[:ROT] (bulk-copy rows), tmaRT[w][x][c]:S:CW[:ROT] (tensor-map boxes), pstRT[w][x][c]:S:CW[:B] (persistent),
# skRT[w][x][c]:S:CW[:B] (stream-K)
CONFIGS = ("tma:4:4,tmaxc:4:4,tma2:4:4,pst:4:4:3,pstxc:4:4:3,pst:8:4:1,pstxc:8:4:1,pst2:4:4:2,pst2xc:4:4:2,pst2:8:8:1,"
           "sk:4:4:3,skxc:4:4:3,sk:8:4:1,sk2:4:4:2,sk2:8:8:1")
M = 16
CONFIG_HELP = ("KC:S:CW[:ROT],.. (columns a stage, stages, consumer warps, K-walk offset a block, default 1), "
               "tmaRT:S:CW[:ROT] (tensor-map variant, RT row tiles a block), pst.. / sk.. (persistent / stream-K)")


def parse_config(text: str) -> tuple[int, int, int, int]:
    """KC:S:CW[:ROT], or tmaRT[w][x][c]:S:CW[:ROT] (the tensor-map variant with RT row tiles a block, 1 or 2, stages of
    256 or, with w, 512 columns, with x the activation copies knocked out after the first S stages and with c the
    consumers' products too (bench-only knockouts: wrong sums); returned as KC = -(RT + 4 WIDE + 8 XKO + 16 CKO)).
    pst...:S:CW[:B] / sk...:S:CW[:B]: the same for m16_persist / m16_sk with B blocks an SM (default 2, fewer where
    they do not fit), returned as KC - 32 / KC - 64."""
    head, *rest = text.split(":")
    for prefix, bit in (("pst", 32), ("sk", 64)):  # persistent / stream-K: as tma, the fourth field blocks an SM
        if head.startswith(prefix):
            code, s, cw, b = parse_config("tma" + head[len(prefix):] + ":" + ":".join(rest + ["2"] * (3 - len(rest))))
            return code - bit, s, cw, b
    if head.startswith("tma"):
        cko = head.endswith("c")  # and with c the consumers' products too (the bare stream)
        head = head.rstrip("c")
        xko = head.endswith("x")
        head = head.rstrip("x")
        wide = head.endswith("w")
        rt = int(head[3:].rstrip("w") or 1)
        s, cw, rot = ([int(v) for v in rest] + [1])[:3]
        if rt not in (1, 2) or s < 2 or cw < 1:
            raise ValueError(f"bad config {text!r}: tma RT 1 or 2, S >= 2, CW >= 1")
        return -(rt + 4 * wide + 8 * xko + 16 * cko), s, cw, rot
    kc, s, cw, rot = ([int(v) for v in text.split(":")] + [1])[:4]
    if kc % 16 or kc < 16 or s < 2 or cw < 1:
        raise ValueError(f"bad config {text!r}: KC a multiple of 16, S >= 2, CW >= 1")
    return kc, s, cw, rot


def smem_bytes(kc: int, s: int) -> int:
    return s * 32 * (2 * kc + 16)


def build_tma(cp, code: int, s: int, cw: int, rot: int, ws, a):
    """fn(x, i): the m16_tma kernel (code = RT + 4 WIDE + 8 XKO + 16 CKO; + 32: m16_persist, + 64: m16_sk, with `rot`
    blocks an SM) on weight copy i (one tensor map a copy, made here, outside any capture)."""
    from cugraphllm.gpu import pdl, tma
    rt, tkc, xko, cko, kind = code % 4, 512 if code & 4 else 256, (code >> 3) & 1, (code >> 4) & 1, code >> 5
    opts = ("-std=c++17", f"-DS={s}", f"-DCW={cw}", f"-DROT={rot}", f"-DRT={rt}", f"-DTKC={tkc}", f"-DXKO={xko}",
            f"-DCKO={cko}")
    fn = cp.RawKernel(SK_SRC if kind == 2 else SRC, ("m16_tma", "m16_persist", "m16_sk")[kind], options=opts)
    smem = s * (rt + 1) * 32 * tkc + 1024
    fn.max_dynamic_shared_size_bytes = smem
    K = a.shape[1]

    def tmap(arr, rows, blocks):  # (64 halves, rows, K / 64 column blocks), strides (2K, 128), boxes (64, rows, blocks)
        return tma._encode_nd(arr.data.ptr, "float16", (64, arr.shape[0], K // 64), (2 * K, 128), (64, rows, blocks),
                              128)
    ma, mws = tmap(a, 16, tkc // 64), [tmap(w, 16 * rt, tkc // 64) for w in ws]
    tiles = ws[0].shape[0] // (16 * rt)
    grid = min(tiles, resident(cp, fn, smem, 32 * (cw + 1), rot)) if kind else tiles
    extra = ()
    if kind == 2:  # m16_sk's partial tiles and flags (zero; the finishing blocks lower the flags again)
        extra = (cp.zeros(tiles * 256 * rt, cp.float32), cp.zeros(tiles, cp.uint32))
    return lambda x, i: pdl.launch(fn, (grid,), (32 * (cw + 1),),
                                   (mws[i], ma, x, np.int32(ws[i].shape[0]), np.int32(K)) + extra, smem, driver=True)


def resident(cp, fn, smem: int, threads: int, want: int) -> int:
    """Blocks of fn that fit on the GPU at once, at most `want` an SM (m16_sk's blocks wait on each other: all must
    be resident): the driver's occupancy for this block size and smem (the attribute read compiles fn)."""
    props = cp.cuda.runtime.getDeviceProperties(0)
    fn.attributes  # noqa: B018 - compiles and loads the kernel, so that fn.kernel exists
    per_sm = cp.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(fn.kernel.ptr, threads, smem)
    if per_sm < 1:
        raise RuntimeError(f"{fn.name}: no block of {threads} threads and {smem} bytes of shared memory fits an SM")
    return min(want, per_sm) * props["multiProcessorCount"]


def build(cp, kc: int, s: int, cw: int, rot: int):
    opts = ("-std=c++17", f"-DKC={kc}", f"-DS={s}", f"-DCW={cw}", f"-DROT={rot}")
    fn = cp.RawKernel(SRC, "m16_stream", options=opts)
    fn.max_dynamic_shared_size_bytes = smem_bytes(kc, s)
    return lambda x, a, w, N, K: fn((N // 16,), (32 * (cw + 1),), (x, a, w, np.int32(N), np.int32(K)),
                                    shared_mem=smem_bytes(kc, s))


def check(cp, call, a, w, N, K) -> float:
    """max |x_after - x_before - a @ w.T| / sd(a @ w.T), float64 on the host; x poisoned with random values first."""
    x = cp.random.default_rng(7).standard_normal((M, N), dtype=cp.float32)
    x0 = cp.asnumpy(x).astype(np.float64)
    call(x, a, w, N, K)
    ref = cp.asnumpy(a).astype(np.float64) @ cp.asnumpy(w).astype(np.float64).T
    got = cp.asnumpy(x).astype(np.float64) - x0
    return float(np.max(np.abs(got - ref)) / np.std(ref))


def bench(shapes, configs, rounds: int) -> dict:
    import cupy as cp
    from cugraphllm.gpu import gemm
    stream = cp.cuda.Stream(non_blocking=True)
    out = {"env": bk.environment(), "m": M, "rows": []}
    for name in shapes:
        N, K = SHAPES[name]
        ws = bk.weight_copies(N, K, cp.float16)
        a = bk._rand((M, K), cp.float16, 99)
        x = cp.random.default_rng(5).standard_normal((M, N), dtype=cp.float32)
        row = {"shape": name, "N": N, "K": K, "mb": N * K * 2 / 1e6, "errors": {}, "us": {}}
        calls = {"own": lambda i: gemm.matmul_residual(x, a, ws[i], impl="own"), "read": bk.read_floor_call(ws)}
        for text in configs:
            kc, s, cw, rot = parse_config(text)
            if kc > 0 and K % kc:
                continue
            try:
                if kc > 0:
                    f = build(cp, kc, s, cw, rot)
                    calls[text] = (lambda f: lambda i: f(x, a, ws[i], N, K))(f)
                else:
                    t = build_tma(cp, -kc, s, cw, rot, ws, a)
                    f = (lambda t: lambda xx, aa, ww, n, k: t(xx, 0))(t)
                    calls[text] = (lambda t: lambda i: t(x, i))(t)
                row["errors"][text] = check(cp, f, a, ws[0], N, K)
            except Exception as exc:  # noqa: BLE001 - a config that does not build or launch is reported, not fatal
                row["errors"][text] = f"error: {exc}"[:160]
                calls.pop(text, None)
        own = lambda xx, aa, ww, n, k: gemm.matmul_residual(xx, aa, ww, impl="own")  # noqa: E731
        row["errors"]["own"] = check(cp, own, a, ws[0], N, K)
        probe_cli.time_rounds(stream, calls, len(ws), rounds, row)
        del ws
        probe_cli.emit(cp, out, row)
    return out


def main(argv=None) -> int:
    return probe_cli.main("m16_probe", __doc__.splitlines()[0], SHAPES, CONFIGS, CONFIG_HELP, parse_config,
                          bench, argv)


if __name__ == "__main__":
    sys.exit(main())
