"""Profile driver (bench only, issue #10's int4 TTFT; run under Nsight Compute): 7B's w2 / w13 / wqkv at 512 rows
through gemm_w4.run under given tile configs, and cuBLAS on fp16 matrices of the same shapes, each launched
`--reps` times after one warm-up launch, outside graphs, so `ncu -k regex:w4_wgmma|gemm|xmma` sees one kernel a call.

    ncu ... python3 -m scripts.w4_ncu [--rows 512] [--cases w2:wg2:bt128,w13:wg3:bt128] [--reps 1]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

SHAPES = {"wqkv": (12288, 4096), "wo": (4096, 4096), "w13": (22016, 4096), "w2": (4096, 11008)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=512, help="M (tokens)")
    ap.add_argument("--cases", default="w2:fp16,w2:wg2:bt128,w13:fp16,w13:wg3:bt128",
                    help="comma list of MAT:fp16 or MAT:wgN:btN[:sN] (splits)")
    ap.add_argument("--reps", type=int, default=1, help="profiled launches a case (after one warm-up)")
    a = ap.parse_args(argv)
    import cupy as cp
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import gemm, gemm_quant, gemm_w4
    from scripts.bench_quant_prefill import _packed
    cfg = ModelConfig.from_preset("llama-2-7b")
    gemm.prepare(a.rows, max(cfg.qkv_dim, 2 * cfg.hidden_dim), "float16")
    gemm_quant.allocate(cfg, "int4", a.rows, "float16")
    for case in a.cases.split(","):
        mat, *rest = case.split(":")
        N, K = SHAPES[mat]
        x = cp.zeros((a.rows, N), cp.float32)
        act = cp.asarray(np.random.default_rng(2).standard_normal((a.rows, K)).astype(np.float16))
        if rest == ["fp16"]:
            w = cp.asarray(np.random.default_rng(1).standard_normal((N, K), np.float32) * K ** -0.5, cp.float16)
            fn = lambda: gemm.matmul_residual(x, act, w, impl="cublas")  # noqa: E731
        else:
            f = {t.rstrip("0123456789"): int(t.lstrip("wgbts")) for t in rest}
            ql = _packed("int4", N, K, 1)
            fn = lambda: gemm_w4.run(x, act, ql, "acc", (f["wg"], f["bt"], f.get("s", 1)))  # noqa: E731
        fn()
        cp.cuda.Device().synchronize()
        for _ in range(a.reps):
            fn()
        cp.cuda.Device().synchronize()
        print(f"{case}: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
