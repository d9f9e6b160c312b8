"""Quantized decode-GEMV benchmark (issue #10): every decode GEMV of LLaMA-2-7B as the decode step runs it (fused
norm on the consumers, xh + ss on the residual producers), in 16-bit and in fp8 / int8 / int4 (group 128), per
matrix: microseconds and the effective rate of the bytes the kernel must read (packed weights, scales and zeros,
the activation, the outputs), beside the device copy rate and a bare streaming read of the same weight bytes.

Timing as scripts/bench_kernels.py: each op captured CALLS times in one CUDA graph, cycling over enough weight
copies (> 4x L2 between two uses of a copy) that the weights never sit in L2; CUDA events; median over REPS.
The per-token estimate adds n_layers x (wqkv + wo + w13 + w2) + the LM head (16-bit unless --quant-head).

Usage: python scripts/bench_quant.py [--dtype float16|bfloat16] [--formats fp16,fp8,int8,int4] [--group-size 128]
       [--quant-head] [--sweep shapes|mma|pfs|tight|mma2|mma8|fp8h|small] [--preset NAME] [--no-table] [--out FILE.json]
--sweep also times every quantized GEMV under the format's default plan and each QuantPlan of that SWEEPS set.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

from cugraphllm.gpu.state import Residual
from scripts import bench_kernels as bk  # graph timing, copy rate, bare-read floor (python3 -m scripts.bench_quant)


def mats(preset: str = "llama-2-7b") -> tuple[dict, int]:
    """name -> (op, N rows, K) of a preset's decode GEMVs, as gpu/model.py calls them; and its layer count."""
    from cugraphllm.config import ModelConfig
    c = ModelConfig.from_preset(preset)
    return ({"wqkv+norm": ("norm_qkv_rope", c.dim + 2 * c.kv_dim, c.dim), "wo+ss": ("matmul_residual_ss", c.dim, c.dim),
             "w13+norm": ("norm_matmul_silu", 2 * c.hidden_dim, c.dim),
             "w2+ss": ("matmul_residual_ss", c.dim, c.hidden_dim),
             "logits+norm": ("norm_matmul_logits", c.vocab_size, c.dim)}, c.n_layers)


MATS, N_LAYERS = mats()   # LLaMA-2-7B's unless --preset


def field_of(matrix: str) -> str:
    """The Weights field of a MATS name ("w13+norm" -> "w13", the LM head's -> "output")."""
    return "output" if matrix.startswith("logits") else matrix.split("+")[0]


def weight_copies(fmt, N, K, T, group, matrix=None):
    """Enough copies of one [N, K] weight (16-bit array or device QuantLinear) to exceed 4x L2 together; int4 in the
    layout the one-GPU engine gives the field of `matrix` (a MATS name: tile-contiguous where gpu/quant_tiles.py
    picks it), row-major without a matrix."""
    cp = bk._cp()
    from cugraphllm.gpu.quant_upload import matrix_bytes, quantize_matrix
    nbytes = matrix_bytes(N, K, None if fmt == "fp16" else fmt, group)
    n = max(2, math.ceil(4 * bk.L2_BYTES / nbytes))
    if fmt == "fp16":
        return [bk._rand((N, K), T, i, K ** -0.5) for i in range(n)], nbytes
    g = cp.random.default_rng(1)
    base = quantize_matrix(lambda i, j: g.standard_normal((j - i, K), dtype=cp.float32) * np.float32(K ** -0.5),
                           N, K, fmt, group)
    if matrix is not None:
        from cugraphllm.gpu.quant_tiles import engine_layout
        base = engine_layout(base, field_of(matrix))
    return [base] + [base.map(cp.copy) for _ in range(n - 1)], nbytes


def case(op, N, K, ws, T):
    """(fn(i) launching op on weight copy i, activation + output bytes)."""
    cp = bk._cp()
    from cugraphllm.gpu import ops
    from cugraphllm.reference import rope_table
    a = bk._rand((1, K), T, 99)
    xs, ss, eps = bk._rand((1, K), cp.float32, 98), cp.ones(max(N, K), cp.float32), 1e-5
    io = K * 2
    if op == "norm_qkv_rope":
        D, hd, S = K, 128, 4096
        kvd = (N - D) // 2
        q, kc, vc = cp.empty((1, D), T), cp.zeros((S, kvd // hd, hd), T), cp.zeros((S, kvd // hd, hd), T)
        rope = cp.asarray(rope_table(S, hd, 10000.0).astype(np.float32))
        pos, n = cp.asarray([1000], dtype=cp.int32), cp.ones(1, cp.int32)
        return ((lambda i: ops.norm_qkv_rope(q, Residual(xs, a, ss), eps, ws[i], rope, kc, vc, pos, n)),
                io + N * 2 + D * 4)
    if op == "matmul_residual_ss":
        x, xh = cp.zeros((1, N), cp.float32), cp.empty((1, N), T)
        return (lambda i: ops.matmul_residual(Residual(x, xh, ss), a, ws[i])), io + 2 * N * 4 + N * 2
    if op == "norm_matmul_silu":
        h = cp.empty((1, N // 2), T)
        return (lambda i: ops.norm_matmul_silu(h, Residual(xs, a, ss), eps, ws[i])), io + N
    logits, n = cp.empty((1, N), cp.float32), cp.ones(1, cp.int32)
    return (lambda i: ops.norm_matmul_logits(logits, Residual(xs, a, ss), eps, ws[i], n)), io + N * 4


def run(dtype="float16", formats=("fp16", "fp8", "int8", "int4"), group=128, quant_head=False) -> dict:
    cp = bk._cp()
    stream = cp.cuda.Stream(non_blocking=True)
    T = bk._dtype(dtype)
    rows = []
    for fmt in formats:
        per_token = 0.0
        for name, (op, N, K) in MATS.items():
            wfmt = "fp16" if name.startswith("logits") and not quant_head else fmt
            ws, wbytes = weight_copies(wfmt, N, K, T, group, name)
            fn, io = case(op, N, K, ws, T)
            us = bk.graph_us(stream, fn, len(ws))
            floor_ws = [w if wfmt == "fp16" else w.qweight for w in ws]
            read_us = bk.read_floor_us(stream, floor_ws)
            per_token += us * (1 if name.startswith("logits") else N_LAYERS)
            rows.append({"format": fmt, "weight_format": wfmt, "matrix": name, "N": N, "K": K, "us": us,
                         "bytes": wbytes + io, "tb_s": (wbytes + io) / (us * 1e-6) / 1e12,
                         "read_floor_us": read_us})
            print(f"{fmt:5s} {name:12s} {us:8.2f} us  {rows[-1]['tb_s']:5.2f} TB/s  (bare read of the packed "
                  f"weights {read_us:.2f} us)", file=sys.stderr)
            del ws
            cp.get_default_memory_pool().free_all_blocks()
        rows.append({"format": fmt, "matrix": "per_token_estimate_ms", "ms": per_token / 1e3})
        print(f"{fmt:5s} GEMVs per token: {per_token / 1e3:.3f} ms", file=sys.stderr)
    return rows


# QuantPlan fields per sweep point: "shapes" (the fp32 / half2 launch shapes), "mma" (the tensor-core tiles)
# fields not named keep the format's default plan's values; mma_shapes=(): the swept config, not the table's
SWEEPS = {
    "shapes": [dict(warps=w, unroll=u, ksplit=k, hacc=h, persist=p)
               for h in (0, 1) for w in (8, 16) for u in (2, 4) for k in (1, 2) for p in (0, 1)],
    "mma": [dict(warps=w, unroll=u, ksplit=k, mma=1, mma_min_pairs=0, mma_shapes=())
            for w in (8, 16) for u in (2, 4) for k in (None, 2, 4, 8)],
    "pfs": [dict(pfs=p) for p in (1, 2, 4, 8)]
    + [dict(mma=1, mma_min_pairs=0, mma_shapes=(), pfs=p) for p in (0, 1, 2, 4, 8)],
    "tight": [dict(tight=0), dict(mma_min_pairs=1 << 30, mma_shapes=()),
              dict(mma_min_pairs=1 << 30, mma_shapes=(), ksplit=4)],
    "mma2": [dict(mma=1, mma_min_pairs=0, mma_shapes=(), warps=w, unroll=u, ksplit=k)
             for w, u, k in ((4, 2, None), (8, 1, None), (8, 1, 2), (16, 1, 2), (8, 3, 2), (8, 2, 1), (4, 2, 1))],
    # fp8 / int8 on the tiles with the cursor loop (twelfth session; their plans keep pipe / half2 today)
    "mma8": [dict(mma=1, mma_min_pairs=0, mma_shapes=(), pipe=0, hacc=0, warps=w, unroll=2, ksplit=k)
             for w, k in ((8, 4), (8, 2), (8, 8), (16, 2), (16, 4))],
    # half2 products, 16 warps and K over 2 warps a pair everywhere (thirteenth session: scripts/ring_probe.py's fp8
    # GEMV ran wqkv / w13 at 14.3 / 23.4 us so, against 16.1 / 24.2 with one warp a pair)
    "fp8h": [dict(hacc=h, pipe=p, warps=16, ksplit=k) for h, p, k in
             ((1, 1, 2), (1, 0, 2), (0, 1, 2), (1, 1, None), (1, 1, 1), (1, 0, 4))],
    # the int4 tiles (cursor loop, eleventh session) on the matrices below mma_min_pairs: K split over 4-8 warps
    # (at most 8 a tile: kernels/gemv_quant_mma.cuh)
    "small": [dict(mma=1, mma_min_pairs=0, mma_shapes=(), warps=w, unroll=u, ksplit=k)
              for w, u, k in ((4, 2, 4), (8, 2, 4), (8, 2, 8), (8, 1, 8), (16, 2, 8))],
}


def sweep(dtype="float16", formats=("fp8", "int8", "int4"), group=128, points="shapes") -> list[dict]:
    """us of every quantized GEMV under every plan of SWEEPS[points] (the plan entry is swapped per run), and
    under the format's default plan first (the A/B reference of the same call). Row-major weights throughout (a
    tile-contiguous one would force the tiles on every plan; its access pattern: quant_knockout bit 64)."""
    from cugraphllm.gpu import gemv_plan
    cp = bk._cp()
    stream = cp.cuda.Stream(non_blocking=True)
    T = bk._dtype(dtype)
    rows = []
    for fmt in (f for f in formats if f != "fp16"):
        keep = gemv_plan.QUANT_PLANS[fmt]
        try:
            for name, (op, N, K) in MATS.items():
                ws, wbytes = weight_copies(fmt, N, K, T, group)
                fn, io = case(op, N, K, ws, T)
                for d in [{"default": 1}] + SWEEPS[points]:
                    plan = keep if "default" in d else dataclasses.replace(keep, **d)  # other fields: default's
                    gemv_plan.QUANT_PLANS[fmt] = plan
                    row = {"format": fmt, "matrix": name, **d}
                    try:
                        us = bk.graph_us(stream, fn, len(ws))
                        rows.append({**row, "us": us, "tb_s": (wbytes + io) / (us * 1e-6) / 1e12})
                        print(f"sweep {fmt:5s} {name:12s} {d} {us:8.2f} us", file=sys.stderr)
                    except Exception as exc:  # noqa: BLE001 - e.g. a block shape the ss chunking refuses
                        rows.append({**row, "error": str(exc).splitlines()[0]})
                del ws
                cp.get_default_memory_pool().free_all_blocks()
        finally:
            gemv_plan.QUANT_PLANS[fmt] = keep
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16"))
    p.add_argument("--formats", default="fp16,fp8,int8,int4")
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--quant-head", action="store_true", help="quantize the LM head too")
    p.add_argument("--sweep", default=None, choices=tuple(SWEEPS),
                   help="also time every quantized GEMV under each QuantPlan of this SWEEPS set")
    p.add_argument("--no-table", action="store_true", help="skip the per-format table (with --sweep)")
    p.add_argument("--preset", default="llama-2-7b", help="the model whose decode GEMV shapes are timed")
    p.add_argument("--matrices", default=None, help="comma list of matrices to time (default: all five)")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/quant_gemv_<date>.json)")
    a = p.parse_args(argv)
    global MATS, N_LAYERS
    MATS, N_LAYERS = mats(a.preset)
    if a.matrices:
        unknown = sorted(set(a.matrices.split(",")) - set(MATS))
        if unknown:
            p.error(f"--matrices: unknown {', '.join(unknown)} (known: {', '.join(MATS)})")
        MATS = {k: v for k, v in MATS.items() if k in a.matrices.split(",")}
    cp = bk._cp()
    from cugraphllm.bench import versions
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    stream = cp.cuda.Stream(non_blocking=True)
    doc = {"device": name, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "versions": versions("cuda"), "python": platform.python_version(), "dtype": a.dtype,
           "preset": a.preset, "group_size": a.group_size, "quant_head": a.quant_head, "copy_gbps": bk.copy_gbps(stream),
           "method": "graph of CALLS calls over weight copies > 4x L2; median of REPS; bytes = packed weights + "
                     "scales/zeros + activation + outputs",
           "rows": [] if a.no_table and a.sweep else run(a.dtype, tuple(f for f in a.formats.split(",") if f),
                                                        a.group_size, a.quant_head)}
    if a.sweep:
        doc["sweep"] = sweep(a.dtype, tuple(f for f in a.formats.split(",") if f), a.group_size, a.sweep)
    out = Path(a.out or f"benchmarks/results/quant_gemv_{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
