"""Probe (bench only, no library code): does a per-warp cp.async ring close the quantized GEMVs' gap to their loads?

The production half2 row-pair GEMV (kernels/gemv_quant_pairs.cuh) holds its loads in registers: a warp loads one
step (U vectors of its two rows), waits, computes, loads the next, so its bytes in flight drop to zero while it
computes and while the block stages the activation (the prologue). Here the same products (the half2 int4 and fp8
word dots of kernels/gemv_quant_h2.cuh, reimplemented) run two ways on the 7B shapes:
  reg   the register loop (U vectors a row a step, the first step issued before the staging), and
  ring  each lane copies its own vectors with cp.async.cg into an S-stage ring in shared memory, S - 1 steps ahead
        (the first S - 1 before the staging), and reads them back; no barrier (a lane reads only what it copied).
Each also with its products replaced by an XOR fold (loads only), beside a linear read of the same bytes. Weights
cycle over copies > 4x L2 (bench_kernels.graph_us). Every variant's output is checked against a NumPy float64
reference on the first copy; reg and ring of one (KS, U) are checked bit-identical.

fp8i: fp8 with e4m3 -> f16 by integer ops (QCVT 1: 2^-8 times the value, bytes paired (0, 2), (1, 3)) instead of the
hardware convert (F2FP.F16.E4M3.UNPACK_B, one per weight pair).

Usage: python3 -m scripts.ring_probe [--formats int4,fp8,fp8i] [--shapes wo,w2,wqkv,w13,wo_70b,w2_70b,..]
       [--set full|ko|cvt]
       [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts.ring_probe_src import LDW_SRC, SRC  # noqa: F401 (LDW_SRC: the other probes import it here)

SHAPES = {"wqkv": (12288, 4096), "wo": (4096, 4096), "w13": (22016, 4096), "w2": (4096, 11008),
          "wo_70b": (8192, 8192), "w2_70b": (8192, 28672), "wo_13b": (5120, 5120), "w2_13b": (5120, 13824)}
# (name, RING stages (0: registers), KS, U, WARPS, blocks an SM for the grid, PF128, KO)
CONFIGS = [("reg", 0, 2, 2, 8, 2, 0, 0), ("reg", 0, 4, 2, 8, 2, 0, 0), ("reg", 0, 1, 2, 8, 2, 0, 0),
           ("reg", 0, 2, 4, 8, 2, 0, 0), ("ring", 2, 2, 2, 8, 2, 0, 0), ("ring", 3, 2, 2, 8, 2, 0, 0),
           ("ring", 4, 2, 2, 8, 2, 0, 0), ("ring", 4, 1, 2, 8, 2, 0, 0), ("ring", 6, 1, 2, 8, 1, 0, 0),
           ("ring", 8, 1, 1, 8, 2, 0, 0), ("ring", 4, 2, 2, 8, 2, 1, 0), ("ring", 4, 4, 1, 8, 2, 0, 0),
           ("ring", 3, 2, 2, 16, 1, 0, 0)]
KO_CONFIGS = [("reg", 0, 2, 2, 8, 2, 0, 1), ("ring", 4, 2, 2, 8, 2, 0, 1)]
# --set ko: each phase alone (KO 1 loads, KO 2 products on made-up weights) and more warps an SM
KO_SET = [("reg", 0, 2, 2, 8, 2, 0, 0), ("reg", 0, 2, 2, 8, 2, 0, 1), ("reg", 0, 2, 2, 8, 2, 0, 2),
          ("reg", 0, 1, 2, 8, 2, 0, 2), ("reg", 0, 2, 2, 8, 3, 0, 0), ("reg", 0, 2, 2, 16, 2, 0, 0),
          ("reg", 0, 1, 2, 4, 6, 0, 0), ("ring", 3, 2, 2, 8, 2, 0, 0), ("ring", 3, 2, 2, 8, 2, 0, 1)]
# --set cvt: fp8 vs fp8i, products alone and whole, 8 and 16 warps
CVT_SET = [("reg", 0, 2, 2, 16, 2, 0, 0), ("reg", 0, 2, 2, 16, 2, 0, 2), ("reg", 0, 1, 2, 16, 2, 0, 0),
           ("reg", 0, 2, 2, 8, 2, 0, 0), ("reg", 0, 2, 2, 8, 2, 0, 2), ("reg", 0, 1, 2, 8, 2, 0, 2),
           ("reg", 0, 2, 2, 16, 2, 0, 1)]


def e4m3_to_f64(b: np.ndarray) -> np.ndarray:
    b = b.astype(np.int64)
    s, e, m = (b >> 7) & 1, (b >> 3) & 15, b & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0))
    return np.where(s == 1, -v, v)


def make(cp, fmt, N, K, rng, cvt=0):
    """(q uint32 [N, K*bits/32], sz uint32 [N, K/128] or dummy, rs f32 [N], dense f64 [N, K]) on the host."""
    if fmt == "int4":  # fp8 / fp8i below
        nib = rng.integers(0, 16, (N, K), dtype=np.int64)
        z = rng.integers(0, 16, (N, K // 128)).astype(np.float16)
        sc = (rng.random((N, K // 128)) * 0.02 + 0.005).astype(np.float16)
        # column 8c + j holds nibble ORDER[j] of word c (the (c, c + 4) half2 pairs of dot_word)
        order = np.array([0, 4, 1, 5, 2, 6, 3, 7])
        words = np.zeros((N, K // 8), np.uint64)
        cols = nib.reshape(N, K // 8, 8)
        for j in range(8):
            words |= cols[:, :, j].astype(np.uint64) << np.uint64(4 * order[j])
        q = words.astype(np.uint32)
        szp = (sc.view(np.uint16).astype(np.uint32) | (z.view(np.uint16).astype(np.uint32) << 16))
        g = np.repeat(np.arange(K // 128), 128)
        dense = (nib - z.astype(np.float64)[:, g]) * sc.astype(np.float64)[:, g]
        return q, szp, np.ones(N, np.float32), dense
    b = rng.integers(0, 256, (N, K), dtype=np.int64)
    b = np.where((b & 0x7f) == 0x7f, 0x3c, b)  # no NaN codes
    rs = (rng.random(N) * 0.02 + 0.005).astype(np.float32)
    dense = e4m3_to_f64(b) * rs[:, None].astype(np.float64)
    if cvt:  # columns (4j, 4j + 1, 4j + 2, 4j + 3) in bytes (0, 2, 1, 3) of word j; the kernel reads 2^-8 values
        b = b.reshape(N, K // 4, 4)[:, :, [0, 2, 1, 3]].reshape(N, K)
        rs = rs * np.float32(256.0)
    q = b.astype(np.uint8).reshape(N, K // 4, 4).view(np.uint32).reshape(N, K // 4)
    return q, np.zeros(1, np.uint32), rs, dense


def kernel(cp, fmt, cfg):
    name, ring, ks, u, warps, bps, pf, ko = cfg
    opts = tuple(f"-D{k}={v}" for k, v in dict(QFMT=3 if fmt == "int4" else 1, QR=ring, QKS=ks, QU=u, QW=warps,
                                                 QPF=pf, QKO=ko, QCVT=int(fmt == "fp8i")).items()) + ("-std=c++17",)
    return cp.RawKernel(SRC, "probe", options=opts)


def smem_bytes(fmt, cfg, K):
    name, ring, ks, u, warps, bps, pf, ko = cfg
    per_stage = (2 * u * 32 + (u * 16 if fmt == "int4" else 0)) * 16
    return ((K // 8 + 7) // 8 * 8) * 16 + warps * ring * per_stage


def run_shape(cp, stream, fmt, name, N, K, rows, sms, configs):
    rng = np.random.default_rng(hash((fmt, name)) % 2**32)
    q, szp, rs, dense = make(cp, fmt, N, K, rng, cvt=int(fmt == "fp8i"))
    xh = rng.standard_normal(K).astype(np.float16)
    xf = xh.astype(np.float64)
    ref = dense @ xf / np.sqrt(np.mean(xf * xf) + 1e-5)
    nbytes = q.nbytes + (szp.nbytes if fmt == "int4" else 0)
    n = max(2, -(-4 * bk.L2_BYTES // nbytes))
    qs = [cp.asarray(q)] + [cp.asarray(np.roll(q, i, axis=0)) for i in range(1, n)]
    sz, rsd, xd = cp.asarray(szp), cp.asarray(rs), cp.asarray(xh)
    floor = bk.read_floor_us(stream, qs)
    rows.append({"format": fmt, "matrix": name, "variant": "linear read", "us": floor, "bytes": nbytes})
    outs = {}
    for cfg in configs:
        fn = kernel(cp, fmt, cfg)
        sm = smem_bytes(fmt, cfg, K)
        fn.max_dynamic_shared_size_bytes = sm
        nvb = -(-(N // 2) // (cfg[4] // cfg[2]))
        grid = (min(nvb, sms * cfg[5]),)
        y = cp.full(N, np.nan, cp.float32)
        args = lambda i: (qs[i], sz, rsd, xd, y, np.int32(N), np.int32(K))
        try:
            us = bk.graph_us(stream, lambda i: fn(grid, (32 * cfg[4],), args(i), shared_mem=sm), len(qs))
        except Exception as e:  # noqa: BLE001 (a probe: report and go on)
            rows.append({"format": fmt, "matrix": name, "config": list(cfg), "error": str(e)[:200]})
            print(f"{fmt} {name} {cfg} error {e}", file=sys.stderr)
            continue
        fn(grid, (32 * cfg[4],), args(0), shared_mem=sm)
        got = cp.asnumpy(y).astype(np.float64)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))) if not cfg[7] else None
        if err is not None and not err < 2e-3:
            print(f"{fmt} {name} {cfg}: WRONG, rel err {err}", file=sys.stderr)
        outs[cfg] = got
        rows.append({"format": fmt, "matrix": name, "variant": cfg[0] + ("", " loads only", " products only")[cfg[7]],
                     "config": dict(zip(("ring", "ks", "u", "warps", "bps", "pf128", "ko"), cfg[1:])), "us": us,
                     "tb_s": nbytes / us / 1e6, "rel_err": err, "grid": grid[0], "smem": sm})
    for (n1, r1, k1, u1, w1, b1, p1, o1), g1 in outs.items():  # reg vs ring of one (KS, U, WARPS): same bits
        for (n2, r2, k2, u2, w2, b2, p2, o2), g2 in outs.items():
            if n1 == "reg" and n2 == "ring" and (k1, u1, w1, o1) == (k2, u2, w2, o2) and not o1:
                rows.append({"format": fmt, "matrix": name, "same_bits": [k1, u1, w1, r2],
                             "ok": bool(np.array_equal(g1, g2))})
    for r in rows:
        if r.get("matrix") == name and r.get("format") == fmt and "us" in r:
            print(f"{fmt:4s} {name:5s} {r['variant']:16s} {json.dumps(r.get('config', ''))[:90]:90s} "
                  f"{r['us']:7.2f} us  err {r.get('rel_err')}", file=sys.stderr)
    for r in rows:
        if r.get("matrix") == name and r.get("format") == fmt and "same_bits" in r:
            print(f"{fmt:4s} {name:5s} same bits {r['same_bits']}: {r['ok']}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="int4,fp8")
    ap.add_argument("--shapes", default="wo,w2,wqkv,w13")
    ap.add_argument("--set", choices=("full", "ko", "cvt"), default="full", help="the configs (default: full)")
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args(argv)
    configs = {"full": CONFIGS + KO_CONFIGS, "ko": KO_SET, "cvt": CVT_SET}[args.set]
    return run_all("ring_probe", lambda cp, stream, fmt, name, rows, sms: run_shape(cp, stream, fmt, name,
                                                                                    *SHAPES[name], rows, sms,
                                                                                    configs), args)


def run_all(script: str, run_one, args) -> int:
    """run_one(cp, stream, fmt, name, rows, sms) per format and shape of args, the rows to args.out (both probes);
    2 after a one-line error where there is no GPU."""
    if bk.gpu_missing(script):
        return 2
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    rows: list[dict] = []
    for fmt in args.formats.split(","):
        for name in args.shapes.split(","):
            run_one(cp, stream, fmt, name, rows, sms)
            cp.get_default_memory_pool().free_all_blocks()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**bk.environment(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
