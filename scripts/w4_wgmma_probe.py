"""Probe (bench only, issue #10's int4 / int8 TTFT): the int4 (--fmt int8: int8) prefill GEMM of gpu/gemm_w4.py
(kernels/gemm_w4_wgmma.cu, Hopper wgmma, the weight dequantized in registers) under several tile configs, x f32
[M, N] += a [M, K] @ W.T, against the engine's slab path (`int4_engine` / `int8_engine`: dequantized slabs +
cuBLAS) and cuBLAS on an fp16 matrix of the same shape (`fp16_cublas`: what fp16 prefill pays).

Each config is first checked against NumPy float64 (formats.dequantize) on awkward shapes at group sizes 128 / 32 /
a whole row (int8: its row scale), K split 1 or 3 ways, every launch repeated 4 times and bit-identical (a race, or
an order-dependent split sum, shows as a different result), then timed at 7B's four shapes: graphs over rotating
weight copies (> L2, as successive layers are), median of REPS replays, us a call.
Configs `wgN:btN[:pwN:stN:prN]` (consumer warpgroups, tokens a tile, a register-giving producer warpgroup, ring
stages, a bench-only kernel variant: gemm_w4.EXTRA, gemm_w4_wgmma.cu's PROBE; pr configs are timed, not checked;
`auto`: gemm_w4.config's choice); splits by --splits. (The session-17 calls s25a-s25e ran this probe's earlier
form with its own kernel variants, at commit 85b1094; the eighteenth session's s26b / s26f also timed two kernel
fields since dropped, 2 or 4 k-tiles a batch and the next tile's q - z made after the wait: neither was faster.)

    python3 -m scripts.w4_wgmma_probe [--fmt int8] [--rows 128,512] [--configs auto,wg3:bt128] [--splits 1,2]
                                      [--out FILE.json]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

try:
    from scripts.bench_kernels import emit_row, environment, gpu_missing, graph_us, write_json
except ImportError:
    from bench_kernels import emit_row, environment, gpu_missing, graph_us, write_json

CALLS, REPS = 8, 15
SHAPES = {"wqkv": (12288, 4096), "wo": (4096, 4096), "w13": (22016, 4096), "w2": (4096, 11008)}


def parse_config(text: str):
    """'wg3:bt128' -> (3, 128); 'auto' -> None (gemm_w4.config)."""
    if text == "auto":
        return None
    f = dict(wg=2, bt=128, pw=0, st=4, pr=0)
    for tok in text.split(":"):
        name = tok.rstrip("0123456789")
        if name not in f or name == tok:
            raise SystemExit(f"w4_wgmma_probe: bad config field {tok!r} (wgN, btN, pwN, stN, prN, or auto)")
        f[name] = int(tok[len(name):])
    return f["wg"], f["bt"], f["pw"], f["st"], f["pr"]


def launch(cfg, x, a, ql, splits: int) -> None:
    from cugraphllm.gpu import gemm_quant, gemm_w4
    gemm_w4.run(x, a, ql, "acc", () if cfg is None else (cfg[0], cfg[1], splits, *cfg[2:]), ws=gemm_quant._tcws())


def check(cfg, rng, fmt: str = "int4") -> float:
    """Worst |err| / max |ref| over awkward shapes and group sizes against NumPy float64; repeated launches must
    agree bit for bit (the split sum's order is fixed, unless CUGRAPHLLM_W4_SPLIT_SUM=atomic)."""
    import cupy as cp
    from cugraphllm.quant import formats
    from cugraphllm.gpu import gemm_w4
    fixed = gemm_w4.split_sum() != "atomic"  # atomics' split sums may differ in the last bits between launches
    worst = 0.0
    for gs in ((128, 32, -1) if fmt == "int4" else (-1,)):
        for M, N, K in ((1, 64, 512), (37, 200, 384), (128, 256, 4096), (200, 130, 1024), (5, 72, 2048)):
            K += 16 if fmt == "int8" else 32 if gs in (32, -1) else 0  # a k-tile part past K: the zero-filled tail
            w = rng.standard_normal((N, K)) / np.sqrt(K)
            ql = formats.quantize(w, fmt, gs)
            a = rng.standard_normal((M, K)).astype(np.float16)
            x0 = rng.standard_normal((M, N)).astype(np.float32)
            dev = ql.map(lambda v: cp.asarray(np.ascontiguousarray(v)))
            ref = x0.astype(np.float64) + a.astype(np.float64) @ formats.dequantize(ql).T
            for splits in (1, 3):
                first = None
                for _ in range(4):
                    x = cp.asarray(x0)
                    launch(cfg, x, cp.asarray(a), dev, splits)
                    got = cp.asnumpy(x)
                    err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) + 1e-30))
                    worst = max(worst, err)
                    tag = f"w4_wgmma_probe: {cfg} group {gs} M={M} N={N} K={K} splits={splits}"
                    if not err < 2e-3:
                        raise SystemExit(f"{tag}: relative error {err:.3g}")
                    if fixed and first is not None and not np.array_equal(got.view(np.uint32), first.view(np.uint32)):
                        raise SystemExit(f"{tag}: repeated launches differ (not deterministic)")
                    first = got if first is None else first
    return worst


def time_shape(cfgs: dict, M, N, K, splits_list, fmt: str = "int4") -> dict:
    import cupy as cp
    from cugraphllm.gpu import gemm, gemm_quant
    from scripts.bench_quant_prefill import _packed
    ql = _packed(fmt, N, K, 1)
    n_copies = max(2, -(-120 * 2**20 // ql.nbytes))
    qls = [ql] + [ql.map(lambda v: v.copy()) for _ in range(n_copies - 1)]
    n16 = max(2, -(-120 * 2**20 // (N * K * 2)))
    w16 = [cp.asarray(np.random.default_rng(i).standard_normal((N, K), np.float32) * K ** -0.5, cp.float16)
           for i in range(n16)]
    a = cp.asarray(np.random.default_rng(2).standard_normal((M, K)).astype(np.float16))
    x = cp.zeros((M, N), cp.float32)
    row = {"M": M, "N": N, "K": K, f"floor_{fmt}_us": ql.nbytes / 4.24e6, "tflop": 2 * M * N * K / 1e12}
    st = cp.cuda.Stream(non_blocking=True)
    row["fp16_cublas_us"] = graph_us(st, lambda i: gemm.matmul_residual(x, a, w16[i], impl="cublas"), n16, CALLS,
                                     REPS)
    row[f"{fmt}_engine_us"] = graph_us(st, lambda i: gemm_quant.matmul_residual(x, a, qls[i], impl="dequant"),
                                     n_copies, CALLS, REPS)
    for name, cfg in cfgs.items():
        for sp in (splits_list if cfg is not None else [0]):
            tag = f"{name}_s{sp}_us" if cfg is not None else f"{name}_us"
            row[tag] = graph_us(st, lambda i: launch(cfg, x, a, qls[i], sp), n_copies, CALLS, REPS)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="128,512", help="comma list of M (tokens)")
    ap.add_argument("--mats", default="wqkv,wo,w13,w2", help=f"comma list of {','.join(SHAPES)}")
    ap.add_argument("--configs", default="auto,wg2:bt128,wg3:bt128,wg2:bt64", help="comma list of configs")
    ap.add_argument("--splits", default="1,2", help="split-K counts to time (explicit configs)")
    ap.add_argument("--fmt", default="int4", choices=("int4", "int8"), help="weight format")
    ap.add_argument("--out", help="JSON file")
    a = ap.parse_args(argv)
    cfgs = {c: parse_config(c) for c in a.configs.split(",")}
    if gpu_missing("w4_wgmma_probe"):
        return 2
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import gemm, gemm_quant
    cfg = ModelConfig.from_preset("llama-2-7b")
    rows = [int(v) for v in a.rows.split(",")]
    gemm.prepare(max(rows), max(cfg.qkv_dim, 2 * cfg.hidden_dim), "float16")
    gemm_quant.allocate(cfg, a.fmt, max(rows), "float16")
    rng = np.random.default_rng(0)
    out = {"env": environment(), "rows": [], "checks": {}}
    for name, c in cfgs.items():
        if c is not None and c[-1]:
            continue  # a bench-only kernel variant (gemm_w4_wgmma.cu PROBE): wrong sums by design
        out["checks"][name] = check(c, rng, a.fmt)
        print(f"config {name}: max relative error {out['checks'][name]:.2e}", flush=True)
    for M in rows:
        for mat in a.mats.split(","):
            N, K = SHAPES[mat]
            emit_row(out, {"mat": mat, "fmt": a.fmt,
                           **time_shape(cfgs, M, N, K, [int(s) for s in a.splits.split(",")], a.fmt)})
    write_json(a.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
