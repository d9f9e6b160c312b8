"""Probe (issue #13, bench only): the short prefill's 7B GEMMs (M <= 16 tokens) on wgmma m64n16k16 with the weight
rows as A straight from their loads (scripts/wgh_probe_src.py), against the engine's M-row GEMM on the same copies.

TTFT at 10 tokens is 3.99-4.01 ms against issue #13's 3.9; the 16-row graph's GEMMs run ~8% above the decode
GEMVs, which move the same bytes at the bare read (twenty-second session). Per matrix and token count, in one
process: each config's y against NumPy float64 (the plain product, fp16 weights), then graph-timed us of each config
that passed, of the engine's op (its own / cuBLAS kernel with its fused epilogue, gpu/gemm.py) and of a bare read.

Usage: python3 -m scripts.wgh_probe [--matrices wqkv,wo,w13,w2] [--tokens 10,16] [--configs "1,4,2;1,8,2"]
       [--out FILE.json]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts.wg8_probe import checked_us, configs_arg
from scripts.wgh_probe_src import SRC

MATS = {"wqkv": (12288, 4096), "wo": (4096, 4096), "w13": (22016, 4096), "w2": (4096, 11008)}  # LLaMA-2-7B
# (warpgroups a block, K split over blocks, chunks in flight a thread): one warpgroup a block (68 registers at depth
# 2), 32 bytes of shared memory a column of the block; grids of one even wave or three: wqkv 192 x 4 = 768, wo 64 x 8
# = 512, w13 344 x 8 = 2752, w2 64 x 43 = 2752
CONFIGS = [(1, 4, 2), (1, 8, 2), (1, 43, 2), (1, 2, 2), (1, 4, 3), (1, 16, 2)]


def kernel(wg: int, p: int):
    cp = bk._cp()
    return cp.RawModule(code=SRC, options=("-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DP={p}")).get_function(
        "wgh_gemm")


def smem_bytes(K: int, cfg) -> int:
    wg, ks, _ = cfg
    return 32 * K // ks + 4096 * (wg - 1)


def fits(K: int, cfg) -> bool:
    wg, ks, _ = cfg
    return K % (64 * wg * ks) == 0 and smem_bytes(K, cfg) <= 200 * 1024


def launch(fn, cfg, out, x, w, part, ctr):
    from cugraphllm.gpu import pdl
    wg, ks, _ = cfg
    N, K = w.shape
    M = x.shape[0]
    pdl.launch(fn, (N // 64, ks), (128 * wg,), (out, x, w, np.int32(M), np.int32(N), np.int32(K), part, ctr),
               smem_bytes(K, cfg), pdl=True)


def engine_op(name: str, M: int, N: int, K: int, T):
    """fn(w) running the engine's M-row GEMM of this matrix with its epilogue (gpu/gemm.py, impl auto)."""
    cp = bk._cp()
    from cugraphllm.gpu import gemm
    from cugraphllm.reference import rope_table
    a = bk._rand((M, K), T, 7)
    if name in ("wo", "w2"):
        x = cp.zeros((M, N), cp.float32)
        return lambda w: gemm.matmul_residual(x, a, w)
    if name == "w13":
        h = cp.empty((M, N // 2), T)
        return lambda w: gemm.matmul_silu(h, a, w)
    D, hd, S = K, 128, 4096
    kvd = (N - D) // 2
    q, kc, vc = cp.empty((M, D), T), cp.zeros((S, kvd // hd, hd), T), cp.zeros((S, kvd // hd, hd), T)
    rope = cp.asarray(rope_table(S, hd, 10000.0).astype(np.float32))
    pos, n = cp.asarray([0], dtype=cp.int32), cp.asarray([M], dtype=cp.int32)
    return lambda w: gemm.qkv_rope(q, a, w, rope, kc, vc, pos, n)


def probe(name: str, M: int, configs) -> list[dict]:
    import cupy as cp

    from cugraphllm.gpu import cuda_kernels as ck
    stream = cp.cuda.Stream(non_blocking=True)
    T = bk._dtype("float16")
    N, K = MATS[name]
    ws = bk.weight_copies(N, K, T)
    x = bk._rand((M, K), T, 11)
    ref = cp.asnumpy(x).astype(np.float64) @ cp.asnumpy(ws[0]).astype(np.float64).T  # [M, N]
    eng = engine_op(name, M, N, K, T)
    rows = [{"matrix": name, "tokens": M, "N": N, "K": K, "variant": "engine",
             "us": bk.graph_us(stream, lambda i: eng(ws[i]), len(ws)), "read_us": bk.read_floor_us(stream, ws)}]
    out, ctr = cp.empty((M, N), cp.float32), cp.zeros(N // 64, cp.uint32)
    for cfg in (c for c in configs if fits(K, c)):
        fn = kernel(cfg[0], cfg[2])
        ck.raise_smem_limit(fn, smem_bytes(K, cfg))
        part = cp.full(cfg[1] * 16 * N, np.nan, cp.float32)
        err, ok, us = checked_us(stream, out, ref, 1e-3, lambda i: launch(fn, cfg, out, x, ws[i], part, ctr), len(ws))
        rows.append({"matrix": name, "tokens": M, "variant": f"wgh {cfg}", "config": list(cfg), "us": us,
                     "max_err_rel": err, "ok": ok})
    del ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def tokens_arg(text: str) -> list[int]:
    try:
        tokens = [int(v) for v in text.split(",")]
    except ValueError:
        tokens = []
    if not tokens or not all(1 <= m <= 16 for m in tokens):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of prompt lengths 1..16")
    return tokens


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--matrices", default="wqkv,wo,w13,w2")
    p.add_argument("--tokens", type=tokens_arg, default=[10, 16], help="comma list of prompt lengths (<= 16)")
    p.add_argument("--configs", type=configs_arg, default=CONFIGS,
                   help="semicolon list of warpgroups,ksplit,depth (default: CONFIGS)")
    p.add_argument("--out", help="JSON file for the rows")
    a = p.parse_args(argv)
    unknown = sorted(set(a.matrices.split(",")) - set(MATS))
    if unknown:
        p.error(f"--matrices: unknown {', '.join(unknown)} (known: {', '.join(MATS)})")
    if bk.gpu_missing("wgh_probe"):
        return 2
    from cugraphllm.bench_env import versions
    doc = {"versions": versions("cuda"), "rows": []}
    for M in a.tokens:
        for name in a.matrices.split(","):
            for r in probe(name, M, a.configs):
                bk.emit_row(doc, r)
    bk.write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
