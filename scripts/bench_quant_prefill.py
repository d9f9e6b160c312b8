"""Prefill GEMM benchmark for quantized weights: per 7B shape and M, us per op of gemm.py at fp16 (auto) against
gemm_quant.py at fp8 / int8 / int4 (group 128), each of its paths (auto, own, dequant, lt, tc) where it can run;
each row records the tc plan (config, grid, split-K) for int4, and int4 also times the other tc tile configs
(int4:tc:<config>) and the planned one without split-K (int4:tc:nosplit), to tune gemm_quant_tc's tables.

Timing as scripts/bench_gemm.py: each op captured R times into one CUDA graph over rotating weight copies (> L2
together, as successive layers are), all variants of one (shape, M) replayed in interleaved rounds, median / R.
Weights are random packed codes (the timing does not depend on the values).
Usage: python -m scripts.bench_quant_prefill [--out benchmarks/results/quant_prefill_<date>.json] [--dtype float16]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json

import numpy as np

from scripts.bench_gemm import (SHAPES, _graph, _interleaved_us, _op_call, _operands, copy_bandwidth,
                                environment, sweep)

MS = (10, 128, 512)
FMTS = ("fp8", "int8", "int4")
GROUP = 128
TC_CONFIG_FMTS = ("int4",)  # also time every other tc tile config (fmt:tc:<config>), to tune CONFIG_BY_M


def _packed(fmt, N, K, seed):
    """Random packed QuantLinear on the device (weights of sd ~ K^-0.5)."""
    import cupy as cp
    from cugraphllm.quant import formats
    g = cp.random.RandomState(seed)
    rs = g.uniform(0.5, 1.5, N, dtype=cp.float32) * np.float32(K ** -0.5)
    if fmt == "fp8":
        table = cp.asarray(formats.fp8_e4m3_encode(np.random.default_rng(seed).standard_normal(1 << 16) * 64))
        return formats.QuantLinear("fp8", table[g.randint(0, 1 << 16, (N, K))], rs / np.float32(64), (N, K))
    if fmt == "int8":
        return formats.QuantLinear("int8", g.randint(-127, 128, (N, K)).astype(cp.int8), rs / np.float32(60), (N, K))
    lo, hi = (g.randint(0, 1 << 16, (N, K // 8)).astype(cp.uint32) for _ in range(2))
    s = (g.uniform(0.5, 1.5, (N, K // GROUP), dtype=cp.float32) * np.float32(K ** -0.5 / 4)).astype(cp.float16)
    z = g.randint(4, 12, (N, K // GROUP)).astype(cp.float16)
    return formats.QuantLinear("int4", (hi << 16) | lo, s, (N, K), zeros=z, group_size=GROUP)


def _qop_call(op, d, ws, impl):
    from cugraphllm.gpu import gemm_quant as gq
    if op == "residual":
        return lambda i: gq.matmul_residual(d["x"], d["a"], ws[i % len(ws)], impl=impl)
    if op == "silu":
        return lambda i: gq.matmul_silu(d["h"], d["a"], ws[i % len(ws)], impl=impl)
    return lambda i: gq.qkv_rope(d["q"], d["a"], ws[i % len(ws)], d["rope"], d["kc"], d["vc"], d["pos"], d["nt"],
                                 impl=impl)


def _impls(fmt, M, K, N):
    from cugraphllm.gpu import cublaslt
    out = ["auto", "dequant", "own"]  # own above OWN_MAX_M: one launch per 64 rows
    if fmt == "fp8" and K % 16 == 0 and N % 16 == 0 and cublaslt.fp8_supported():
        out.append("lt")
    if K % (32 if fmt == "int4" else 16) == 0:
        out.append("tc")  # tiled tensor-core kernel, gemm_quant_tc.py
    return out


@contextlib.contextmanager
def _tc_config(cfg, max_splits=None):
    """gemm_quant_tc forced to one tile config (and split-K limit) for the calls captured inside."""
    from cugraphllm.gpu import gemm_quant_tc as tc
    saved = tc.CONFIG_BY_M, tc.MAX_SPLITS
    tc.CONFIG_BY_M = ((1 << 30, cfg),)
    tc.MAX_SPLITS = tc.MAX_SPLITS if max_splits is None else max_splits
    try:
        yield
    finally:
        tc.CONFIG_BY_M, tc.MAX_SPLITS = saved


def bench_shape(name, M, dtype, stream):
    import cupy as cp
    from cugraphllm.gpu import gemm_quant_tc
    op, K, N = SHAPES[name]
    d = _operands(op, M, K, N, dtype)
    graphs = {"fp16": _graph(stream, _op_call(op, d, "auto"), d["n"])}
    for fmt in FMTS:
        per = N * K * (0.5 if fmt == "int4" else 1)
        ws = [_packed(fmt, N, K, 10 + i) for i in range(max(2, int(np.ceil(200e6 / per))))]
        for impl in _impls(fmt, M, K, N):
            graphs[f"{fmt}:{impl}"] = _graph(stream, _qop_call(op, d, ws, impl), len(ws))
        if fmt in TC_CONFIG_FMTS and "tc" in _impls(fmt, M, K, N):
            for cfg, bm in ((c, v[0]) for c, v in gemm_quant_tc.CONFIGS.items()):
                if M <= 8 * bm and cfg != gemm_quant_tc.config_name(M):  # the planned config is fmt:tc
                    with _tc_config(cfg):
                        graphs[f"{fmt}:tc:{cfg}"] = _graph(stream, _qop_call(op, d, ws, "tc"), len(ws))
            if gemm_quant_tc.plan(M, N, K, fmt)[2] > 1:  # the planned config without split-K
                with _tc_config(gemm_quant_tc.config_name(M), max_splits=1):
                    graphs[f"{fmt}:tc:nosplit"] = _graph(stream, _qop_call(op, d, ws, "tc"), len(ws))
    row = {"shape": name, "op": op, "M": M, "K": K, "N": N, "tc_plan": str(gemm_quant_tc.plan(M, N, K, "int4"))}
    row.update({k: round(us, 2) for k, us in _interleaved_us(stream, graphs).items()})
    del graphs, d
    cp.get_default_memory_pool().free_all_blocks()
    return row


def _summary(res, M):
    """7B layer (wqkv + wo + w13 + w2) at this M: each format's auto against fp16."""
    rows = [r for r in res["rows"] if r["M"] == M]
    fp16 = sum(r["fp16"] for r in rows)
    s = {"M": M, "layer_fp16_us": round(fp16, 1)}
    for fmt in FMTS:
        t = sum(r[f"{fmt}:auto"] for r in rows)
        s[f"layer_{fmt}_us"] = round(t, 1)
        s[f"{fmt}_speedup_vs_fp16"] = round(fp16 / t, 3)
        if all(f"{fmt}:tc" in r for r in rows):  # the tc path alone, whatever auto picked
            s[f"{fmt}_tc_speedup_vs_fp16"] = round(fp16 / sum(r[f"{fmt}:tc"] for r in rows), 3)
    res.setdefault("summary", []).append(s)
    print("  summary", json.dumps(s), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"benchmarks/results/quant_prefill_{datetime.date.today().isoformat()}.json")
    ap.add_argument("--dtype", default="float16")
    args = ap.parse_args()
    import cupy as cp
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import gemm, gemm_quant, gemm_quant_tc
    stream = cp.cuda.Stream(non_blocking=True)
    cfg = ModelConfig.from_preset("llama-2-7b")
    gemm.prepare(max(MS), max(cfg.qkv_dim, 2 * cfg.hidden_dim), args.dtype)
    for fmt in FMTS:
        gemm_quant.allocate(cfg, fmt, max(MS), args.dtype)
    env = environment()
    env["gemm_quant"] = {"AUTO_OWN_MAX_M": gemm_quant.AUTO_OWN_MAX_M, "SLAB_BYTES": gemm_quant.slabs.SLAB_BYTES, "PIPE": gemm_quant.slabs.PIPE,
                         "int4_group": GROUP, "AUTO_TC_M": gemm_quant.AUTO_TC_M,
                         "TC_CONFIGS": gemm_quant_tc.CONFIGS, "TC_CONFIG_BY_M": gemm_quant_tc.CONFIG_BY_M,
                         "TC_TARGET_BLOCKS_PER_SM": gemm_quant_tc.TARGET_BLOCKS_PER_SM}
    res = {"env": env, "dtype": args.dtype, "copy_gbps": copy_bandwidth(), "rows": []}
    print(json.dumps(res["env"]), "copy GB/s", res["copy_gbps"], flush=True)
    sweep(res, MS, lambda name, M: bench_shape(name, M, args.dtype, stream),
          lambda row: "  ".join(f"{k} {v:.1f}" for k, v in row.items() if isinstance(v, float)), _summary, args.out)


if __name__ == "__main__":
    main()
