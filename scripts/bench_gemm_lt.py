"""cuBLASLt algorithm choice for the prefill GEMMs, against cuBLAS GemmEx (gemm.py's path today) and the floors.

Per set of shapes (7B on one GPU, 13B and 70B per GPU under TP2) and M: GemmEx, and each algorithm among the first
--algos that cuBLASLt's heuristic offers, timed in interleaved rounds of graphs over rotating weight copies
(scripts/bench_gemm.py's method). Outputs are as prefill writes them: wqkv and w13 into a 16-bit scratch, wo and
w2 accumulated into the f32 residual (beta = 1). Floors: the weight bytes over the measured copy, and the FLOPs over
--peak TFLOP/s; "eff" is max(floors) / time.

    python3 -m scripts.bench_gemm_lt [--sets 7b,70b-tp2] [--ms 128,512] [--algos 12] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from scripts import bench_gemm as bg

# set: {name: (K, N, f32 residual output)}
SETS = {
    "7b": {"wqkv": (4096, 12288, False), "wo": (4096, 4096, True), "w13": (4096, 22016, False),
           "w2": (11008, 4096, True)},
    "13b-tp2": {"wqkv": (5120, 7680, False), "wo": (2560, 5120, True), "w13": (5120, 13824, False),
                "w2": (6912, 5120, True)},
    # the residual shapes with a 16-bit output (beta 0), as a product rounded to T and added by the next norm would
    "7b-res16": {"wo16": (4096, 4096, False), "w2_16": (11008, 4096, False)},
    "70b-tp2": {"wqkv": (8192, 5120, False), "wo": (4096, 8192, True), "w13": (8192, 28672, False),
                "w2": (14336, 8192, True)},
}
LAYERS = {"7b": 32, "7b-res16": 32, "13b-tp2": 40, "70b-tp2": 80}


def _operands(M, K, N, f32, dtype):
    import cupy as cp
    rng = cp.random.default_rng(1)
    a, ws, n = bg.operands(rng, M, K, N, dtype)
    c = rng.standard_normal((M, N), dtype=cp.float32) if f32 else cp.empty((M, N), dtype)
    return a, ws, c, n


def bench_one(M, K, N, f32, dtype, stream, n_algos, copy_gbps, peak):
    from cugraphllm.gpu import cublas, cublaslt
    a, ws, c, n = _operands(M, K, N, f32, dtype)
    lt = cublaslt.handle()
    found = len(lt.algos(N, M, K, cublas._dtype_code(a.dtype), cublas._dtype_code(c.dtype), N, n_algos))
    graphs = {"gemmex": bg._graph(stream, lambda i: cublas.handle().gemm_nt(c, a, ws[i], accumulate=f32), n)}
    for j in range(found):
        fn = lambda i, j=j: lt.matmul16(c, a, ws[i], accumulate=f32, algo=j, count=n_algos)  # noqa: E731
        try:
            graphs[f"lt{j}"] = bg._graph(stream, fn, n)
        except Exception as exc:  # an algorithm the heuristic offers may still refuse these operands
            print(f"    lt{j}: {exc}"[:160], flush=True)
    us = bg._interleaved_us(stream, graphs)
    floor = max(N * K * 2 / copy_gbps / 1e3, 2.0 * M * N * K / peak / 1e6)
    best = min((k for k in us if k != "gemmex"), key=us.get, default="gemmex")
    return {"M": M, "K": K, "N": N, "f32_out": f32, "us": {k: round(v, 2) for k, v in us.items()},
            "best_lt": best, "floor_us": round(floor, 2), "eff_gemmex": round(floor / us["gemmex"], 3),
            "eff_best": round(floor / us[best], 3), "tflops_best": round(2.0 * M * N * K / us[best] / 1e6, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="7b,13b-tp2,70b-tp2", help="comma list of " + ", ".join(SETS))
    ap.add_argument("--ms", default="128,512", help="comma list of row counts M")
    ap.add_argument("--algos", type=int, default=12, help="heuristic algorithms to time per shape")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--peak", type=float, default=790.0, help="tensor-core TFLOP/s for the compute floor")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    res = {"env": bg.environment(), "dtype": args.dtype, "copy_gbps": bg.copy_bandwidth(), "peak": args.peak,
           "rows": [], "layers": []}
    print(json.dumps(res["env"]), "copy GB/s", res["copy_gbps"], flush=True)
    copy = res["copy_gbps"]  # bytes moved per second by a device copy (read + write), the decode floor's rate
    for set_name in args.sets.split(","):
        for M in (int(m) for m in args.ms.split(",")):
            tot = {"gemmex": 0.0, "best": 0.0, "floor": 0.0}
            for name, (K, N, f32) in SETS[set_name].items():
                row = bench_one(M, K, N, f32, args.dtype, stream, args.algos, copy, args.peak)
                row.update(set=set_name, shape=name)
                res["rows"].append(row)
                tot["gemmex"] += row["us"]["gemmex"]
                tot["best"] += row["us"][row["best_lt"]]
                tot["floor"] += row["floor_us"]
                print(f"{set_name:8s} M={M:4d} {name:5s} gemmex {row['us']['gemmex']:8.1f} best {row['best_lt']:>6s} "
                      f"{row['us'][row['best_lt']]:8.1f} us  floor {row['floor_us']:8.1f}  eff "
                      f"{row['eff_gemmex']:.2f} -> {row['eff_best']:.2f}  ({row['tflops_best']} TF)", flush=True)
                cp.get_default_memory_pool().free_all_blocks()
            layers = LAYERS[set_name]
            lay = {"set": set_name, "M": M, **{f"model_{k}_ms": round(v * layers / 1e3, 2) for k, v in tot.items()}}
            res["layers"].append(lay)
            print("  model GEMMs", json.dumps(lay), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
        print("wrote", args.out)


if __name__ == "__main__":
    main()
