"""Probe (issue #10, bench only): the 7B fp8 decode GEMVs with their products on the native fp8 tensor-core path.

Today's fp8 GEMVs convert every weight on the CUDA cores (cvt e4m3x2 -> f16x2, then f32 FMAs) and run ~16% above a
bare read of their bytes; the same design in gemv.cu's form was no faster (w8_probe, s35b / s35c), and the products
alone took about as long as the loads (ring_probe, twenty-first session). scripts/wg8_probe_src.py feeds the weight
bytes to wgmma m64n8k32 e4m3 as loaded and the activation as three e4m3 planes in B's columns (see there). Per
matrix, in one process: the float64 check (the plain y of wg8_gemv against NumPy), then graph-timed us of wg8_gemv
for each (warpgroups, K split, depth) of CONFIGS, of the engine's fp8 op on the same weight copies (its fused epilogue included) and of the bare read.

Usage: python3 -m scripts.wg8_probe [--matrices wqkv+norm,w13+norm,wo+ss,w2+ss] [--configs "2,1,2;4,2,2"] [--ko 0,1,2]
       [--out FILE.json]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts import bench_quant as bq
from scripts.wg8_probe_src import SRC

NULL = np.uint64(0)


KO = 0  # bench only: wg8_probe_src's KO (--ko)


# (warpgroups a block, K split over blocks, chunks in flight a thread). With one warpgroup a block (70 registers at
# depth 2: 7 blocks an SM, 924 on the H200) the 7B grids fill one wave evenly: wqkv 192 tiles x 4 = 768, w13 344 x 2
# = 688, wo 64 x 8 = 512; w2 64 x 43 = 2752 is three waves (its K / 128 = 86 = 2 x 43). s35f / s35g's 64-row blocks
# of 2-4 warpgroups over all of K left 1.45 waves (wqkv) or 64 blocks (wo).
CONFIGS = [(1, 4, 2), (1, 2, 2), (1, 8, 2), (1, 43, 2), (1, 4, 3), (1, 16, 1), (2, 1, 2), (2, 2, 2), (4, 1, 2)]


def kernel(wg: int, p: int):
    cp = bk._cp()
    opts = ("-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DP={p}", f"-DKO={KO}")
    return cp.RawModule(code=SRC, options=opts).get_function("wg8_gemv")


def smem_bytes(K: int, cfg) -> int:
    wg, ks, _ = cfg
    return 8 * K // ks + 16 * 128 * (wg - 1)  # B planes of the block's columns, the other warpgroups' accumulators


def fits(K: int, cfg) -> bool:
    wg, ks, _ = cfg
    return K % (128 * wg * ks) == 0 and smem_bytes(K, cfg) <= 200 * 1024


def launch(fn, cfg, out, a, w, gain, ss, n_ss: int, eps: float, part, ctr):
    from cugraphllm.gpu import pdl
    wg, ks, _ = cfg
    N, K = w.shape
    args = (out, a, w.qweight, w.scales, NULL if gain is None else gain, ss, np.int32(n_ss), np.float32(eps),
            np.int32(N), np.int32(K), part, ctr)
    pdl.launch(fn, (N // 64, ks), (128 * wg,), args, smem_bytes(K, cfg), pdl=True)


def reference(w, a, gain, ss, n_ss: int, eps: float) -> np.ndarray:
    """float64 y = scale * e4m3(W) @ (a * gain) * inv_rms."""
    cp = bk._cp()
    from cugraphllm.quant.formats import fp8_e4m3_decode
    x = cp.asnumpy(a).astype(np.float64).ravel()
    if gain is not None:
        x = x * cp.asnumpy(gain).astype(np.float64)
    K = x.size
    inv = 1.0 / np.sqrt(cp.asnumpy(ss[:n_ss]).astype(np.float64).sum() / K + eps)
    return (fp8_e4m3_decode(cp.asnumpy(w.qweight)) @ x) * cp.asnumpy(w.scales).astype(np.float64) * inv


def probe(name: str, configs, T) -> list[dict]:
    import dataclasses

    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    op, N, K = bq.MATS[name]
    ws, wbytes = bq.weight_copies("fp8", N, K, T, 128, name)
    rng = np.random.default_rng(N + K)
    gain = cp.asarray(rng.uniform(0.5, 1.5, K).astype(np.float32)) if name.endswith("+norm") else None
    if gain is not None:
        ws = [dataclasses.replace(w, gain=gain) for w in ws]
    a = bk._rand((1, K), T, 99)
    ss, n_ss, eps = cp.asarray(rng.uniform(0.5, 2.0, 64).astype(np.float32)), 64, 1e-5
    ref = reference(ws[0], a, gain, ss, n_ss, eps)
    fn_eng, _ = bq.case(op, N, K, ws, T)
    rows = [{"matrix": name, "N": N, "K": K, "mb": wbytes / 1e6, "variant": "engine",
             "us": bk.graph_us(stream, fn_eng, len(ws)), "read_us": bk.read_floor_us(stream, [w.qweight for w in ws])}]
    from cugraphllm.gpu import cuda_kernels as ck
    out, ctr = cp.empty(N, cp.float32), cp.zeros(N // 64, cp.uint32)
    for cfg in (c for c in configs if fits(K, c)):
        fn = kernel(cfg[0], cfg[2])
        ck.raise_smem_limit(fn, smem_bytes(K, cfg))
        part = cp.full(cfg[1] * N, np.nan, cp.float32)
        out.fill(np.nan)
        launch(fn, cfg, out, a, ws[0], gain, ss, n_ss, eps, part, ctr)
        got = cp.asnumpy(out).astype(np.float64)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        ok = bool(np.isfinite(got).all() and (err < 2e-3 or KO))  # a knockout is wrong on purpose
        us = (bk.graph_us(stream, lambda i: launch(fn, cfg, out, a, ws[i], gain, ss, n_ss, eps, part, ctr), len(ws))
              if ok else None)
        rows.append({"matrix": name, "variant": f"wg8 {cfg} KO={KO}", "config": list(cfg), "us": us, "max_err_rel": err, "ok": ok})
    del ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--matrices", default="wqkv+norm,w13+norm,wo+ss,w2+ss")
    p.add_argument("--configs", help="semicolon list of warpgroups,ksplit,depth (default: CONFIGS)")
    p.add_argument("--ko", default="0", help="comma list of knockouts (wg8_probe_src KO: 1 no planes, 2 no wgmma)")
    p.add_argument("--out", help="JSON file for the rows")
    a = p.parse_args(argv)
    unknown = sorted(set(a.matrices.split(",")) - set(bq.MATS))
    if unknown:
        p.error(f"--matrices: unknown {', '.join(unknown)} (known: {', '.join(bq.MATS)})")
    if bk.gpu_missing("wg8_probe"):
        return 2
    from cugraphllm.bench_env import versions
    doc = {"versions": versions("cuda"), "rows": []}
    global KO
    for ko in [int(v) for v in a.ko.split(",")]:
        KO = ko
        for name in a.matrices.split(","):
            cfgs = CONFIGS if not a.configs else [tuple(int(v) for v in c.split(",")) for c in a.configs.split(";")]
            for r in probe(name, cfgs, bk._dtype("float16")):
                bk.emit_row(doc, r)
    bk.write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
