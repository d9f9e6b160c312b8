"""Probe (issue #10, bench only): the 7B fp8 decode GEMVs in the 16-bit GEMV's design against the engine's.

The fp8 GEMVs take ~60.7 us a layer against ~52.6 for a bare read of their bytes, while the 16-bit GEMVs of
kernels/gemv.cu run at their bare read (twenty-sixth session, l2_probe). The quantized kernels stage the
activation (times the unfolded norm gain) in shared memory behind a block barrier; gemv.cu reads it through L1 in
the loop and has no barrier. gemv.cu built with GEMV_W8=1 takes e4m3 codes (16 a vector), their f32 row scales
and the optional f32 column gain (applied to the activation in the loop). Per matrix, in one process:
  engine  ops.norm_qkv_rope / matmul_residual / norm_matmul_silu on an fp8 QuantLinear (its plan, as decode runs);
  w8 ...  the same fused op from gemv.cu GEMV_W8=1 under each (warps, unroll, ksplit, min blocks) of CONFIGS.
Both read the same weight copies (> 4x L2, so cold), with the same gain on the norm consumers. Before timing, each
W8 config's output is checked against the engine op's (same math in another order) and, for the LM-head kernel on
an awkward shape and the real ones, against NumPy float64.

A record: it needs gemv.cu's GEMV_W8 switch, removed after these runs (s35b / s35c, twenty-seventh session): run
it at commit 9265006. There, no faster where it matters (s35b, s35c): with the gain in the loop wqkv / w13 took
24.0 / 38.0 us at best against the engine's 15.96 / 25.26; without any gain 16.47 / 25.17 against 15.89 / 25.13;
wo / w2 5.83 / 12.98 against 6.09 / 13.57. The fp8 GEMVs' gap to the bare read is not their staging.

Usage: python3 -m scripts.w8_probe [--matrices wqkv+norm,wo+ss,w13+norm,w2+ss] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts import bench_quant as bq

# (warps, unroll, ksplit, GEMV_MIN_BLOCKS): 16-warp configs need a register cap above gemv.cu's 32 (min 4 blocks)
CONFIGS = [(16, 1, 8, 2), (16, 1, 8, 3), (16, 1, 4, 2), (16, 2, 4, 2), (16, 1, 2, 2), (8, 1, 4, 0), (8, 2, 2, 0),
           (8, 2, 1, 0), (8, 1, 2, 0), (4, 2, 1, 0)]
KERNEL = {"wqkv+norm": "gemv_qkv_rope_norm", "wo+ss": "gemv_residual_ss", "w13+norm": "gemv_silu_norm",
          "w2+ss": "gemv_residual_ss"}
NULL = np.uint64(0)


def w8_fn(kernel: str, cfg):
    from cugraphllm.gpu import gemv_plan, ops
    warps, unroll, ks, mb = cfg
    return ops._fn("gemv.cu", kernel, "float16", GEMV_WARPS=warps, GEMV_UNROLL=unroll, GEMV_KSPLIT=ks, GEMV_XSMEM=0,
                   GEMV_EARLY=gemv_plan.gemv_early(), GEMV_W8=1, GEMV_MIN_BLOCKS=mb)


def w8_launch(fn, cfg, n_pairs: int, args):
    from cugraphllm.gpu import pdl
    warps, _, ks, _ = cfg
    pdl.launch(fn, (-(-n_pairs // (warps // ks)),), (32 * warps,), args, 0, pdl=True)


def operands(name: str, N: int, K: int, T):
    """(output, reset(), the engine op fn(w), the W8 fn(w, cfg)) of one matrix; reset poisons the output (and zeroes
    the residual stream x that the +ss ops add into)."""
    import cupy as cp

    from cugraphllm.gpu.state import Residual
    from cugraphllm.gpu import ops
    from cugraphllm.reference import rope_table
    a = bk._rand((1, K), T, 99)
    xs, eps = bk._rand((1, K), cp.float32, 98), 1e-5
    ss = cp.asarray(np.random.default_rng(5).uniform(0.5, 2.0, max(N, K)).astype(np.float32))
    n_ss = np.int32(ops.norm_partials(K))
    kern = KERNEL[name]
    if name == "wqkv+norm":
        D, hd, S = K, 128, 4096
        kvd = (N - D) // 2
        q, kc, vc = cp.full((1, D), np.nan, T), cp.zeros((S, kvd // hd, hd), T), cp.zeros((S, kvd // hd, hd), T)
        rope = cp.asarray(rope_table(S, hd, 10000.0).astype(np.float32))
        pos, n = cp.asarray([1000], dtype=cp.int32), cp.ones(1, cp.int32)
        eng = lambda w: ops.norm_qkv_rope(q, Residual(xs, a, ss), eps, w, rope, kc, vc, pos, n)  # noqa: E731
        base = (q, kc, vc, a)
        tail = (rope, pos, n, np.int32(D), np.int32(kvd), np.int32(hd), np.int32(S), np.int32(K), ss, n_ss,
                np.float32(eps))
        return q, lambda: q.fill(np.nan), eng, _w8(kern, base, tail, N // 2)
    if name.endswith("+ss"):
        x, xh = cp.zeros((1, N), cp.float32), cp.full((1, N), np.nan, T)
        eng = lambda w: ops.matmul_residual(Residual(x, xh, ss), a, w)  # noqa: E731
        reset = lambda: (x.fill(0), xh.fill(np.nan))  # noqa: E731
        return xh, reset, eng, _w8(kern, (x, xh, ss, a), (np.int32(N), np.int32(K)), N // 2)
    h = cp.full((1, N // 2), np.nan, T)
    eng = lambda w: ops.norm_matmul_silu(h, Residual(xs, a, ss), eps, w)  # noqa: E731
    tail = (np.int32(N // 2), np.int32(K), ss, n_ss, np.float32(eps))
    return h, lambda: h.fill(np.nan), eng, _w8(kern, (h, a), tail, N // 2)


def _w8(kernel, base, tail, n_pairs):
    def run(w, cfg, fns={}):
        fn = fns.get(cfg) or fns.setdefault(cfg, w8_fn(kernel, cfg))
        gain = NULL if w.gain is None else w.gain
        w8_launch(fn, cfg, n_pairs, base + (w.qweight,) + tail + (w.scales, gain))
    return run


def check_logits(T, shapes=((37, 4112), (37, 4100), (12288, 4096), (4096, 11008))) -> list[dict]:
    """gemv_logits_norm under GEMV_W8 against NumPy float64 (scale * e4m3 codes . (a * gain) * inv_rms)."""
    import cupy as cp

    from cugraphllm.gpu import ops
    from cugraphllm.gpu.quant_upload import quantize_matrix
    from cugraphllm.quant.formats import fp8_e4m3_decode
    rows = []
    for N, K in shapes:
        g = cp.random.default_rng(N + K)
        w = quantize_matrix(lambda i, j: g.standard_normal((j - i, K), dtype=cp.float32), N, K, "fp8")
        w = dataclasses.replace(w, gain=cp.asarray(np.random.default_rng(K).uniform(0.5, 1.5, K).astype(np.float32)))
        a, ss = bk._rand((1, K), T, 7), cp.asarray(np.random.default_rng(3).uniform(0.5, 2, 64).astype(np.float32))
        n_ss, eps = min(64, ops.norm_partials(K)), 1e-5
        inv = 1.0 / np.sqrt(cp.asnumpy(ss[:n_ss]).astype(np.float64).sum() / K + eps)
        xg = cp.asnumpy(a).astype(np.float64)[0] * cp.asnumpy(w.gain).astype(np.float64)
        ref = (fp8_e4m3_decode(cp.asnumpy(w.qweight)) @ xg) * cp.asnumpy(w.scales).astype(np.float64) * inv
        for cfg in CONFIGS:
            out = cp.full((1, N), np.nan, cp.float32)
            w8_launch(w8_fn("gemv_logits_norm", cfg), cfg, (N + 1) // 2,
                      (out, a, w.qweight, np.int32(N), np.int32(K), ss, np.int32(n_ss), np.float32(eps), w.scales,
                       w.gain))
            got = cp.asnumpy(out)[0].astype(np.float64)
            err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
            rows.append({"check": "logits_vs_float64", "N": N, "K": K, "config": list(cfg), "max_err_rel": err,
                         "ok": bool(np.isfinite(got).all() and err < 2e-4)})
    return rows


def probe(name: str, T, gain_on: bool = True) -> list[dict]:
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    _, N, K = bq.MATS[name]
    ws, wbytes = bq.weight_copies("fp8", N, K, T, 128, name)
    if name.endswith("+norm") and gain_on:
        gain = cp.asarray(np.random.default_rng(11).uniform(0.5, 1.5, K).astype(np.float32))
        ws = [dataclasses.replace(w, gain=gain) for w in ws]
    out, reset, eng, w8 = operands(name, N, K, T)
    reset()
    eng(ws[0])
    ref = cp.asnumpy(out).astype(np.float64)
    rows = [{"matrix": name, "gain": gain_on, "N": N, "K": K, "mb": wbytes / 1e6, "variant": "engine",
             "us": bk.graph_us(stream, lambda i: eng(ws[i]), len(ws)),
             "read_us": bk.read_floor_us(stream, [w.qweight for w in ws])}]
    for cfg in CONFIGS:
        reset()
        w8(ws[0], cfg)
        got = cp.asnumpy(out).astype(np.float64)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        ok = bool(np.isfinite(got).all() and err < 1e-2)
        us = bk.graph_us(stream, lambda i: w8(ws[i], cfg), len(ws)) if ok else None
        rows.append({"matrix": name, "gain": gain_on, "variant": "w8", "config": list(cfg), "us": us,
                     "max_err_vs_engine": err, "ok": ok, "rows_a_block": 2 * cfg[0] // cfg[2]})
    del ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--matrices", default="wqkv+norm,wo+ss,w13+norm,w2+ss")
    p.add_argument("--gain", default="on", choices=("on", "off", "both"),
                   help="the norm consumers' column gain (off: as if the producer had applied it to the activation)")
    p.add_argument("--configs", help="semicolon list of warps,unroll,ksplit,min_blocks (default: CONFIGS)")
    p.add_argument("--no-check", action="store_true", help="skip the float64 checks of the LM-head kernel")
    p.add_argument("--out", help="JSON file for the rows")
    a = p.parse_args(argv)
    unknown = sorted(set(a.matrices.split(",")) - set(KERNEL))
    if unknown:
        p.error(f"--matrices: unknown {', '.join(unknown)} (known: {', '.join(KERNEL)})")
    if bk.gpu_missing("w8_probe"):
        return 2
    from cugraphllm.bench_env import versions
    T = bk._dtype("float16")
    doc = {"versions": versions("cuda"), "rows": []}
    if a.configs:
        CONFIGS[:] = [tuple(int(v) for v in c.split(",")) for c in a.configs.split(";")]
    for r in [] if a.no_check else check_logits(T):
        bk.emit_row(doc, r)
    for gain_on in {"on": (True,), "off": (False,), "both": (True, False)}[a.gain]:
        for name in a.matrices.split(","):
            for r in probe(name, T, gain_on):
                bk.emit_row(doc, r)
    bk.write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
