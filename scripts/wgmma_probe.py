"""Probe (bench only, issue #13 item 3 / #11's 128-row TTFT): the residual GEMM x f32 [M, N] += a [M, K] @ w [N, K].T
on Hopper wgmma (scripts/wgmma_probe_src.py, sm_90a) against cuBLAS as the engine runs it (GemmEx, f32 output,
beta 1): first checked against NumPy float64 on awkward sizes, then timed at the 7B / 70B-TP2 residual shapes.

Timing: scripts/bench_kernels.graph_us, a CUDA graph of CALLS launches over rotating weight copies (> L2, as
successive layers are), median of REPS replays, per call; x is zeroed once (accumulation does not change the
work). Split-K partials go into x by atomics (order not fixed; the cluster variant sums them in rank order): a
probe of the mainloop's rate, not the engine's path. `--configs tma:...` takes the tensor-map kernel (SRC_TMA).

    python3 -m scripts.wgmma_probe [--shapes 128:4096:4096,128:4096:11008] [--splits 1,2,4] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import ctypes

try:
    from scripts.bench_kernels import emit_row, environment, gpu_missing, graph_us, write_json
    from scripts.wgmma_probe_src import SRC, SRC_TMA
except ImportError:
    from bench_kernels import emit_row, environment, gpu_missing, graph_us, write_json
    from wgmma_probe_src import SRC, SRC_TMA

CALLS, REPS = 8, 15
SHAPES = "128:4096:4096,128:4096:11008,512:4096:4096,128:8192:4096,128:8192:14336"


def kernel(wg: int, bt: int, stages: int, pipe: int = 1, cluster: int = 0):
    import cupy as cp
    opts = ("-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DBT={bt}", f"-DSTAGES={stages}", f"-DPIPE={pipe}",
            f"-DCLUSTER={cluster}")
    fn = cp.RawModule(code=SRC, options=opts).get_function("wgmma_residual")
    smem = max(stages * (64 * wg + bt) * 128, 64 * wg * bt * 4 if cluster else 0) + 1024
    fn.max_dynamic_shared_size_bytes = smem
    return {"fn": fn, "smem": smem, "bw": 64 * wg, "bt": bt, "threads": 128 * wg, "cluster": cluster}


def kernel_tma(wg: int, stages: int, ko: int = 0, epi: int = 1, bt: int = 128):
    """The tensor-map variant (SRC_TMA): WG consumer warpgroups plus a producer warp, BT tokens a tile."""
    import cupy as cp
    opts = ("-arch=sm_90a", "-std=c++17", f"-DWG={wg}", f"-DSTAGES={stages}", f"-DKO={ko}", f"-DEPI={epi}",
            f"-DBT={bt}")
    fn = cp.RawModule(code=SRC_TMA, options=opts).get_function("wgmma_residual_tma")
    smem = max(stages * (64 * wg + bt) * 128, bt * (64 * wg + 4) * 4 if epi else 0) + 1024
    fn.max_dynamic_shared_size_bytes = smem
    return {"fn": fn, "smem": smem, "bw": 64 * wg, "bt": bt, "threads": 128 * wg + 32, "tma": True,
            "maps": {}, "ko": ko, "cluster": 0}


def tensor_map(arr, box_rows: int):
    """CUtensorMap (cuTensorMapEncodeTiled) of a 16-bit [rows, K] array: boxes of 64 columns x box_rows rows,
    128-byte swizzle, zeros out of bounds; a 64-byte aligned ctypes array that outlives its launches."""
    from cugraphllm.gpu import pdl
    pdl._driver()
    lib = pdl._state["lib"]
    rows, K = arr.shape
    buf = ctypes.create_string_buffer(128 + 64)
    m = (ctypes.c_uint64 * 16).from_address((ctypes.addressof(buf) + 63) & ~63)
    dims, strides = (ctypes.c_uint64 * 2)(K, rows), (ctypes.c_uint64 * 1)(K * 2)
    box, estr = (ctypes.c_uint32 * 2)(64, box_rows), (ctypes.c_uint32 * 2)(1, 1)
    rc = lib.cuTensorMapEncodeTiled(ctypes.byref(m), 6, 2, ctypes.c_void_p(arr.data.ptr), dims, strides, box, estr,
                                    0, 3, 2, 0)   # fp16, rank 2, no interleave, 128B swizzle, L2 128B, zero fill
    if rc:
        raise SystemExit(f"wgmma_probe: cuTensorMapEncodeTiled failed ({rc}) for {arr.shape}")
    m._keep = buf
    return m


def _map(k, arr, rows: int):
    """k's tensor map of arr in boxes of `rows` rows, made at its first launch (before any capture)."""
    key = (arr.data.ptr, arr.shape, rows)
    if key not in k["maps"]:
        k["maps"][key] = tensor_map(arr, rows)
    return k["maps"][key]


def launch_tma(k, x, a, w, splits: int) -> None:
    import cupy as cp
    from cugraphllm.gpu import pdl
    M, K = a.shape
    N = w.shape[0]
    vals = [_map(k, w, k["bw"]), _map(k, a, k["bt"]), ctypes.c_void_p(x.data.ptr), ctypes.c_int32(M),
            ctypes.c_int32(N), ctypes.c_int32(K)]
    ptrs = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
    g = (-(-N // k["bw"]), -(-M // k["bt"]), splits)
    cfg = pdl._Config((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(k["threads"], 1, 1), k["smem"],
                      cp.cuda.get_current_stream().ptr, None, 0)
    fn = k["fn"]
    rc = pdl._driver()(ctypes.byref(cfg), getattr(fn, "kernel", fn).ptr, ptrs, None)
    if rc:
        raise SystemExit(f"wgmma_probe: TMA kernel launch failed ({rc})")


def launch(k, x, a, w, splits: int) -> None:
    if k.get("tma"):
        return launch_tma(k, x, a, w, splits)
    M, K = a.shape
    N = w.shape[0]
    grid = (-(-N // k["bw"]), -(-M // k["bt"]), splits)
    args = (x, a, w, np.int32(M), np.int32(N), np.int32(K))
    if k["cluster"]:
        from cugraphllm.gpu import pdl
        pdl.launch(k["fn"], grid, (k["threads"],), args, k["smem"], cluster=(1, 1, splits))
    else:
        k["fn"](grid, (k["threads"],), args, shared_mem=k["smem"])


def check(k, rng) -> float:
    """Worst |err| / (|x| scale) over awkward shapes against NumPy float64."""
    import cupy as cp
    worst = 0.0
    for M, N, K in ((1, 64, 64), (37, 200, 136), (128, 256, 4096), (200, 130, 520)):
        for splits in ((2, 4) if k["cluster"] else (1, 3)):
            a = rng.standard_normal((M, K)).astype(np.float16)
            w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float16)
            x0 = rng.standard_normal((M, N)).astype(np.float32)
            x = cp.asarray(x0)
            launch(k, x, cp.asarray(a), cp.asarray(w), splits)
            ref = x0.astype(np.float64) + a.astype(np.float64) @ w.astype(np.float64).T
            err = float(np.max(np.abs(cp.asnumpy(x) - ref)) / (np.max(np.abs(ref)) + 1e-30))
            worst = max(worst, err)
            if not err < 1e-3:
                raise SystemExit(f"wgmma_probe: M={M} N={N} K={K} splits={splits}: relative error {err:.3g}")
    return worst


def time_shape(k, M, N, K, splits_list, rng) -> dict:
    import cupy as cp
    from cugraphllm.gpu import gemm
    n_copies = max(2, -(-120 * 2**20 // (N * K * 2)))
    ws = [cp.asarray((rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float16)) for _ in range(n_copies)]
    a = cp.asarray(rng.standard_normal((M, K)).astype(np.float16))
    x = cp.zeros((M, N), cp.float32)
    row = {"M": M, "N": N, "K": K, "floor_us": N * K * 2 / 4.24e6}
    stream = cp.cuda.Stream(non_blocking=True)
    row["cublas_us"] = graph_us(stream, lambda i: gemm.matmul_residual(x, a, ws[i], impl="cublas"), n_copies,
                                CALLS, REPS)
    if M <= gemm.AUTO_OWN_MAX_M["residual"]:  # the engine's own kernel at these rows (kernels/gemm.cu)
        row["own_us"] = graph_us(stream, lambda i: gemm.matmul_residual(x, a, ws[i], impl="own"), n_copies,
                                 CALLS, REPS)
    for sp in splits_list:
        row[f"wgmma_s{sp}_us"] = graph_us(stream, lambda i: launch(k, x, a, ws[i], sp), n_copies, CALLS, REPS)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=SHAPES, help="comma list of M:N:K")
    ap.add_argument("--splits", default="1,2,4", help="split-K counts to time")
    ap.add_argument("--configs", default="2:128:4:1:0",
                    help="comma list of WG:BT:STAGES:PIPE:CLUSTER (cp.async ring) or tma:WG:STAGES:KO[:EPI[:BT]] "
                         "(tensor maps)")
    ap.add_argument("--out", help="JSON file")
    a = ap.parse_args(argv)
    if gpu_missing("wgmma_probe"):
        return 2
    rng = np.random.default_rng(0)
    out = {"env": environment(), "rows": []}
    for cfg in a.configs.split(","):
        if cfg.startswith("tma:"):   # tma:WG:STAGES:KO[:EPI[:BT]]
            wg, st, ko, *epi = (int(v) for v in cfg.split(":")[1:])
            k = kernel_tma(wg, st, ko, *epi)
        else:
            wg, bt, st, pipe, cl = (int(v) for v in cfg.split(":"))
            k = kernel(wg, bt, st, pipe, cl)
        err = check(k, rng) if not k.get("ko") else float("nan")
        print(f"config {cfg}: max relative error {err:.2e}", flush=True)
        for shp in a.shapes.split(","):
            M, N, K = (int(v) for v in shp.split(":"))
            emit_row(out, {"config": cfg, **time_shape(k, M, N, K, [int(s) for s in a.splits.split(",")], rng)})
    write_json(a.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
