"""Launch shapes of the 16-bit decode GEMVs at the per-GPU shapes of tensor parallelism (7B / 13B over 2 GPUs), on
one GPU: the four GEMVs of a layer as a TP decode step launches them (wqkv with its fused norm and RoPE, w13 with
norm and SiLU, wo and w2 as f32 partial sums through the LM-head kernel), timed as scripts/bench_kernels.py times
them (graphs of back-to-back launches over weight copies larger than L2), beside a bare read of the same bytes.

Rows: "plan" (gpu/gemv_plan.py's rules and per-shape overrides as they are), then every non-residual kernel forced
to one (warps, unroll, ksplit) of CONFIGS (GEMV_WIDE with GEMV_WIDE_MIN_PAIRS = 1, no per-shape overrides).

    python3 -m scripts.sweep_tp_gemv [--models 7b,13b] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from scripts import bench_kernels as bk

# model: (dim, heads per GPU, head dim, hidden per GPU)
MODELS = {"7b": (4096, 16, 128, 5504), "13b": (5120, 20, 128, 6912)}
CONFIGS = [(8, 2, 2), (16, 1, 8), (16, 1, 4), (8, 1, 4), (8, 1, 2), (16, 2, 4), (16, 2, 8), (8, 2, 4), (4, 2, 2),
           (16, 1, 16)]


def cases(model: str):
    """name -> (fn(i), n_copies, weight copies) of one TP2 GPU's decode GEMVs."""
    cp = bk._cp()
    from cugraphllm.gpu import ops
    from cugraphllm.gpu.state import Residual
    from cugraphllm.reference import rope_table
    D, H, hd, F = MODELS[model]
    T, S = bk._dtype("float16"), 4096

    a, xs, ss = bk._rand((1, D), T, 99), bk._rand((1, D), cp.float32, 98), cp.ones(D, cp.float32)
    q, kc, vc = cp.empty((1, H * hd), T), cp.zeros((S, H, hd), T), cp.zeros((S, H, hd), T)
    rope = cp.asarray(rope_table(S, hd, 10000.0).astype("float32"))
    pos, one = cp.asarray([1000], cp.int32), cp.ones(1, cp.int32)
    h, out = cp.empty((1, F), T), cp.empty((1, D), cp.float32)
    att, hin = bk._rand((1, H * hd), T, 97), bk._rand((1, F), T, 96)
    copies = bk.weight_copies
    w = {"wqkv": copies(3 * H * hd, D, T), "w13": copies(2 * F, D, T), "wo": copies(D, H * hd, T),
         "w2": copies(D, F, T)}
    r = Residual(xs, a, ss)
    fns = {"wqkv": lambda i: ops.norm_qkv_rope(q, r, 1e-5, w["wqkv"][i], rope, kc, vc, pos, one),
           "w13": lambda i: ops.norm_matmul_silu(h, r, 1e-5, w["w13"][i]),
           "wo": lambda i: ops.matmul_logits(out, att, w["wo"][i]),
           "w2": lambda i: ops.matmul_logits(out, hin, w["w2"][i])}
    return {k: (fns[k], len(w[k]), w[k]) for k in fns}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="7b,13b")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cp = bk._cp()
    from cugraphllm.gpu import gemv_plan
    stream = cp.cuda.Stream(non_blocking=True)
    keep = (gemv_plan.GEMV_WIDE, gemv_plan.GEMV_WIDE_MIN_PAIRS, gemv_plan.GEMV_SHAPES)
    doc = {"env": bk.environment(), "rows": []}
    for model in args.models.split(","):
        cs = cases(model)
        base = {k: bk.read_floor_us(stream, ws) for k, (_, _, ws) in cs.items()}
        print(model, "read_us", json.dumps({k: round(v, 2) for k, v in base.items()}), flush=True)
        doc["rows"].append({"model": model, "config": "read", "us": base})
        for cfg in [None] + CONFIGS:
            try:
                if cfg is not None:
                    gemv_plan.GEMV_WIDE, gemv_plan.GEMV_WIDE_MIN_PAIRS, gemv_plan.GEMV_SHAPES = cfg, 1, {}
                us = {k: bk.graph_us(stream, fn, n) for k, (fn, n, _) in cs.items()}
            finally:
                gemv_plan.GEMV_WIDE, gemv_plan.GEMV_WIDE_MIN_PAIRS, gemv_plan.GEMV_SHAPES = keep
            name = "plan" if cfg is None else "x".join(map(str, cfg))
            doc["rows"].append({"model": model, "config": name, "us": us, "layer_us": sum(us.values())})
            print(f"{model} {name:8s} layer {sum(us.values()):7.2f} us  " +
                  "  ".join(f"{k} {v:6.2f}" for k, v in us.items()), flush=True)
        del cs
        cp.get_default_memory_pool().free_all_blocks()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
