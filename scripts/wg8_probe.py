"""Probe (issue #10, bench only): the 7B fp8 / int8 / int4 decode GEMVs with their products on Hopper's 8-bit
tensor-core path (wgmma m64n8k32: e4m3 x e4m3, s8 x s8, or the int4 nibbles widened to u8 x s8), fed the weight
bytes as loaded.

Today's fp8 GEMVs convert every weight on the CUDA cores and run ~16% above a bare read of their bytes; in gemv.cu's
form they were no faster (w8_probe, s35b / s35c). scripts/wg8_probe_src.py holds the kernels and their layouts (the
activation as three 8-bit planes in B's columns). Per format and matrix, in one process: each config's y against
NumPy float64 (plain y, no epilogue), then graph-timed us of each config that passed, of the engine's op on its own
weight copies (its layout and fused epilogue) and of a bare read of the packed weights. The gain of the norm
consumers is off by default: quantized at load (the engine's 7B), it is folded into the weights.

Usage: python3 -m scripts.wg8_probe [--formats fp8,int8,int4] [--matrices wqkv+norm,w13+norm,wo+ss,w2+ss]
       [--configs "1,4,2;2,1,2"] [--ko 0,1,2] [--gain] [--out FILE.json]
s35f / s35g ran the first fp8-only version (2a5f126: --wgs, one 64-row block over all of K).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts import bench_quant as bq
from scripts.wg8_probe_src import SRC

NULL = np.uint64(0)
KO = 0  # bench only: wg8_probe_src's KO (--ko)
KERNEL = {"fp8": "wg8_gemv", "int8": "wgi8_gemv", "int4": "wg4_gemv"}
# (warpgroups a block, K split over blocks, chunks in flight a thread). With one warpgroup a block (~70 registers at
# depth 2: 7 blocks an SM, 924 on the H200) the 7B grids fill one wave evenly: wqkv 192 tiles x 4 = 768, w13 344 x 2
# = 688, wo 64 x 8 = 512; w2 64 x 43 = 2752 is three waves (its K / 128 = 86 = 2 x 43). s35f / s35g's 64-row blocks
# of 2-4 warpgroups over all of K left 1.45 waves (wqkv) or 64 blocks (wo).
CONFIGS = [(1, 4, 2), (1, 2, 2), (1, 8, 2), (1, 43, 2), (1, 4, 3), (1, 16, 1), (2, 1, 2), (2, 2, 2), (4, 1, 2)]


def kernel(fmt: str, wg: int, p: int):
    cp = bk._cp()
    opts = ("-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DP={p}", f"-DKO={KO}")
    return cp.RawModule(code=SRC, options=opts).get_function(KERNEL[fmt])


def smem_bytes(K: int, cfg) -> int:
    """B planes of the block's columns, the groups' sums (int4; allotted for both), the other warpgroups' sums."""
    wg, ks, _ = cfg
    return 8 * K // ks + 4 * (K // ks // 128) + 1024 * (wg - 1)


def fits(K: int, cfg) -> bool:
    wg, ks, _ = cfg
    return K % (128 * wg * ks) == 0 and smem_bytes(K, cfg) <= 200 * 1024


def launch(fn, fmt: str, cfg, out, a, w, gain, ss, n_ss: int, eps: float, part, ctr):
    from cugraphllm.gpu import pdl
    wg, ks, _ = cfg
    N, K = w.shape
    g = NULL if gain is None else gain
    wargs = (w.qweight, w.scales) if fmt != "int4" else (w.qweight, w.scales, w.zeros)
    args = (out, a) + wargs + (g, ss, np.int32(n_ss), np.float32(eps), np.int32(N), np.int32(K), part, ctr)
    pdl.launch(fn, (N // 64, ks), (128 * wg,), args, smem_bytes(K, cfg), pdl=True)


def configs_arg(text: str) -> list[tuple]:
    """--configs (both probes): "warpgroups,ksplit,depth;..." of positive integers."""
    try:
        cfgs = [tuple(int(v) for v in c.split(",")) for c in text.split(";")]
    except ValueError:
        cfgs = []
    if not cfgs or any(len(c) != 3 or min(c) < 1 for c in cfgs):
        raise argparse.ArgumentTypeError(f"{text!r}: expected warpgroups,ksplit,depth;... (positive integers)")
    return cfgs


def checked_us(stream, out, ref, tol: float, run, n_copies: int):
    """(error, ok, us) of one config (both probes): run(0) into the poisoned out against the float64 ref (max |diff|
    / max |ref|); when finite and within tol, graph-timed us of run(i) over the weight copies, else None."""
    cp = bk._cp()
    out.fill(np.nan)
    run(0)
    got = cp.asnumpy(out).astype(np.float64)
    err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    ok = bool(np.isfinite(got).all() and err < tol)
    return err, ok, bk.graph_us(stream, run, n_copies) if ok else None


def reference(w, a, gain, ss, n_ss: int, eps: float) -> np.ndarray:
    """float64 y = dequantize(w) @ (a * gain) * inv_rms; w carries no gain of its own (the probe's copies)."""
    cp = bk._cp()
    from cugraphllm.quant.formats import dequantize
    x = cp.asnumpy(a).astype(np.float64).ravel()
    if gain is not None:
        x = x * cp.asnumpy(gain).astype(np.float64)
    inv = 1.0 / np.sqrt(cp.asnumpy(ss[:n_ss]).astype(np.float64).sum() / x.size + eps)
    return dequantize(w.map(cp.asnumpy)) @ x * inv


def probe(fmt: str, name: str, configs, T, with_gain: bool) -> list[dict]:
    import cupy as cp

    from cugraphllm.gpu import cuda_kernels as ck
    stream = cp.cuda.Stream(non_blocking=True)
    op, N, K = bq.MATS[name]
    eng_ws, wbytes = bq.weight_copies(fmt, N, K, T, 128, name)  # the engine's layout (int4: tiles where it tiles)
    ws = eng_ws if fmt != "int4" else bq.weight_copies(fmt, N, K, T, 128)[0]  # row-major for the probe
    rng = np.random.default_rng(N + K)
    gain = (cp.asarray(rng.uniform(0.5, 1.5, K).astype(np.float32)) if with_gain and name.endswith("+norm")
            else None)
    if gain is not None:
        eng_ws = [dataclasses.replace(w, gain=gain) for w in eng_ws]
    a = bk._rand((1, K), T, 99)
    ss, n_ss, eps = cp.asarray(rng.uniform(0.5, 2.0, 64).astype(np.float32)), 64, 1e-5
    ref = reference(ws[0], a, gain, ss, n_ss, eps)
    fn_eng, _ = bq.case(op, N, K, eng_ws, T)
    rows = [{"format": fmt, "matrix": name, "N": N, "K": K, "mb": wbytes / 1e6, "variant": "engine",
             "us": bk.graph_us(stream, fn_eng, len(eng_ws)),
             "read_us": bk.read_floor_us(stream, [w.qweight for w in ws])}]
    out, ctr = cp.empty(N, cp.float32), cp.zeros(N // 64, cp.uint32)
    for cfg in (c for c in configs if fits(K, c)):
        fn = kernel(fmt, cfg[0], cfg[2])
        ck.raise_smem_limit(fn, smem_bytes(K, cfg))
        part = cp.full(cfg[1] * N, np.nan, cp.float32)
        err, ok, us = checked_us(stream, out, ref, np.inf if KO else 2e-3,  # a knockout is wrong on purpose
                                 lambda i: launch(fn, fmt, cfg, out, a, ws[i], gain, ss, n_ss, eps, part, ctr), len(ws))
        rows.append({"format": fmt, "matrix": name, "variant": f"wg {cfg} KO={KO}", "config": list(cfg), "us": us,
                     "max_err_rel": err, "ok": ok})
    del ws, eng_ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def main(argv=None) -> int:
    global KO
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--formats", default="fp8,int8,int4", help="comma list of fp8 / int8 / int4")
    p.add_argument("--matrices", default="wqkv+norm,w13+norm,wo+ss,w2+ss")
    p.add_argument("--configs", type=configs_arg, default=CONFIGS,
                   help="semicolon list of warpgroups,ksplit,depth (default: CONFIGS)")
    p.add_argument("--ko", default="0", help="comma list of knockouts (wg8_probe_src KO: 1 no planes, 2 no wgmma)")
    p.add_argument("--gain", action="store_true", help="a norm gain on the +norm matrices (as GPTQ / AWQ carry)")
    p.add_argument("--out", help="JSON file for the rows")
    a = p.parse_args(argv)
    unknown = sorted(set(a.matrices.split(",")) - set(bq.MATS)) + sorted(set(a.formats.split(",")) - set(KERNEL))
    if unknown:
        p.error(f"unknown --formats / --matrices: {', '.join(unknown)} (known: {', '.join([*KERNEL, *bq.MATS])})")
    if bk.gpu_missing("wg8_probe"):
        return 2
    from cugraphllm.bench_env import versions
    doc = {"versions": versions("cuda"), "gain": a.gain, "rows": []}
    for ko in [int(v) for v in a.ko.split(",")]:
        KO = ko
        for fmt in a.formats.split(","):
            for name in a.matrices.split(","):
                for r in probe(fmt, name, a.configs, bk._dtype("float16"), a.gain):
                    bk.emit_row(doc, r)
    bk.write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
