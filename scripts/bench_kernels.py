"""Decode-kernel benchmark (issue #3): every decode GEMV of LLaMA-2-7B with its fused epilogue, the norms, the
embedding gather and the token selectors, against the device's measured copy bandwidth and against cuBLAS on
the same shapes, in one run.

Timing: each op is captured CALLS times into one CUDA graph (as in the decode graph: back-to-back launches,
launch gaps included), cycling over enough weight copies that the weights never sit in L2 (> 4x L2 between two
uses of a copy); CUDA events around each replay; median over REPS replays / CALLS. cuBLAS is timed two ways:
GemmEx through ctypes captured the same way (cugraphllm.gpu.cublas, the capturable path), and cupy.matmul
eagerly (it cannot be captured; CALLS calls between two events, so host launch cost may show).
GB/s counts the bytes an op must move (weights + activations + outputs, each once); TFLOP/s = 2*N*K / time.
read_us: a bare streaming read of the same weight bytes (READ_SRC, timed the same way): the floor for a kernel
of that size, ramp-up and tail included, which the whole-device copy rate does not show for 30-MB matrices.

Usage: python3 -m scripts.bench_kernels [--dtype float16|bfloat16|both] [--sweep] [--no-cublas] [--out FILE]
As a function: `run(dtypes=("float16",), do_sweep=False, with_cublas=True) -> dict` (the JSON document).
The "gemm" key of the document is left for the prefill GEMM rows (scripts/bench_gemm.py).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

from cugraphllm.gpu.state import Residual

CALLS, REPS = 24, 30
L2_BYTES = 50 << 20
# LLaMA-2-7B decode GEMVs: name -> (ops launcher, N rows of W, K)
GEMV_7B = {"wqkv": ("qkv_rope", 12288, 4096), "wo": ("matmul_residual", 4096, 4096),
           "w13": ("matmul_silu", 22016, 4096), "w2": ("matmul_residual", 4096, 11008),
           "logits": ("matmul_logits", 32000, 4096)}
# The same GEMVs as the decode step runs them, RMSNorm fused (consumers) or partial sums of squares written
# (residual producers); compare with the rows above plus 2 us per separate rmsnorm kernel.
FUSED_7B = {"wqkv+norm": ("norm_qkv_rope", 12288, 4096), "wo+ss": ("matmul_residual_ss", 4096, 4096),
            "w13+norm": ("norm_matmul_silu", 22016, 4096), "w2+ss": ("matmul_residual_ss", 4096, 11008),
            "logits+norm": ("norm_matmul_logits", 32000, 4096)}
# (GEMV_WARPS, GEMV_UNROLL, GEMV_KSPLIT, GEMV_XSMEM)
SWEEP = [(4, 4, 1, 1), (4, 4, 1, 0), (8, 4, 1, 0), (8, 2, 1, 0), (8, 8, 1, 0), (4, 4, 2, 0), (8, 4, 2, 0),
         (8, 2, 2, 0), (8, 4, 4, 0), (8, 8, 2, 0), (16, 4, 4, 0), (8, 4, 2, 1)]


# Bench-only reference (not a library kernel): XOR-reduce n 16-byte vectors, grid-stride, 4 loads in flight.
READ_SRC = r"""
extern "C" __global__ void read_floor(const uint4* __restrict__ w, unsigned* __restrict__ sink, long long n) {
    unsigned acc = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 a = __ldg(w + i), b = __ldg(w + i + stride), c = __ldg(w + i + 2 * stride), d = __ldg(w + i + 3 * stride);
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n; i += stride) { uint4 a = __ldg(w + i); acc ^= a.x ^ a.y ^ a.z ^ a.w; }
    if (acc == 0x9e3779b9u) sink[0] = acc;  // keeps the loads alive; practically never taken
}
"""


def read_floor_call(ws):
    """fn(i): one bare read of weight copy ws[i] (READ_SRC; 8 blocks of 256 threads an SM at most)."""
    cp = _cp()
    fn = cp.RawKernel(READ_SRC, "read_floor")
    sink = cp.zeros(1, cp.uint32)
    n = ws[0].nbytes // 16
    sms = cp.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"]
    grid = (min(sms * 8, -(-n // 1024)),)
    return lambda i: fn(grid, (256,), (ws[i], sink, np.int64(n)))


def read_floor_us(stream, ws) -> float:
    """Graph-timed bare read of each weight copy (same copies, same CALLS) in us per call."""
    return graph_us(stream, read_floor_call(ws), len(ws))


def gpu_missing(name: str) -> bool:
    """True (after a one-line error naming the script) where CuPy or a CUDA GPU is not usable: its main returns 2."""
    try:
        import cupy as cp
        if cp.cuda.is_available():
            return False
    except Exception:  # noqa: BLE001 - no CuPy, or no driver
        pass
    print(f"{name}: error: needs CuPy and a CUDA GPU", file=sys.stderr)
    return True


def _cp():
    import cupy
    return cupy


def _median_ms(stream, launch, reps: int = REPS) -> float:
    cp = _cp()
    times = []
    for _ in range(reps):
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        e0.record(stream)
        launch()
        e1.record(stream)
        e1.synchronize()
        times.append(cp.cuda.get_elapsed_time(e0, e1))
    return float(np.median(times))


def graph_us(stream, fn, n_copies: int, calls: int = CALLS, reps: int = REPS) -> float:
    """Median (of `reps` replays) microseconds per call of fn(i) over a captured graph of `calls` calls, i cycling
    over copies."""
    _cp().cuda.Device().synchronize()  # operands made on the legacy stream, which `stream` does not wait for
    with stream:
        for i in range(n_copies):
            fn(i)  # compile, load, set attributes before capture
        stream.begin_capture()
        for i in range(calls):
            fn(i % n_copies)
        g = stream.end_capture()
        g.launch(stream)
        stream.synchronize()
        return _median_ms(stream, lambda: g.launch(stream), reps) * 1000 / calls


def emit_row(out: dict, row: dict) -> None:
    """A probe's result row: appended to out["rows"] and printed as one JSON line (floats to 2 decimals)."""
    out["rows"].append(row)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


def write_json(path, doc: dict) -> None:
    """doc to path (indented), where a path is given."""
    if path:
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)


def eager_us(stream, fn, n_copies: int) -> float:
    with stream:
        for i in range(n_copies):
            fn(i)
        stream.synchronize()
        return _median_ms(stream, lambda: [fn(i % n_copies) for i in range(CALLS)]) * 1000 / CALLS


def copy_gbps(stream, nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth, bytes read + written."""
    cp = _cp()
    src, dst = cp.ones(nbytes // 4, cp.float32), cp.empty(nbytes // 4, cp.float32)
    with stream:
        def once():
            dst.data.copy_from_device_async(src.data, nbytes, stream)
        once()
        ms = _median_ms(stream, lambda: [once() for _ in range(5)]) / 5
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _dtype(name):
    cp = _cp()
    if name == "float16":
        return cp.float16
    import ml_dtypes
    return ml_dtypes.bfloat16


def _rand(shape, dtype, seed, scale=1.0):
    cp = _cp()
    return (cp.random.default_rng(seed).standard_normal(shape, dtype=cp.float32) * np.float32(scale)).astype(dtype)


def weight_copies(N: int, K: int, T) -> list:
    """Copies of a random [N, K] weight of storage dtype T, together > 4x L2 (no launch finds its weights there)."""
    return [_rand((N, K), T, i, K ** -0.5) for i in range(max(2, math.ceil(4 * L2_BYTES / (N * K * 2))))]


def gemv_case(op: str, N: int, K: int, dtype: str):
    """(fn(i) launching our op on weight copy i, n_copies, bytes moved, cuBLAS operands)."""
    cp = _cp()
    from cugraphllm.gpu import ops
    from cugraphllm.reference import rope_table
    T = _dtype(dtype)
    ws = weight_copies(N, K, T)
    n_copies = len(ws)
    a = _rand((1, K), T, 99)
    wbytes, abytes = N * K * 2, K * 2
    # fused-norm variants (decode path of gpu/model.py): a stands for T(x), xs for x, ss for the partial sums
    xs, ss, eps = _rand((1, K), cp.float32, 98), cp.ones(max(N, K), cp.float32), 1e-5
    if op in ("qkv_rope", "norm_qkv_rope"):
        D, hd, S = K, 128, 4096
        kvd = (N - D) // 2
        q = cp.empty((1, D), T)
        kc, vc = cp.zeros((S, kvd // hd, hd), T), cp.zeros((S, kvd // hd, hd), T)
        rope = cp.asarray(rope_table(S, hd, 10000.0).astype(np.float32))
        pos, n = cp.asarray([1000], dtype=cp.int32), cp.ones(1, cp.int32)
        if op == "qkv_rope":
            fn = lambda i: ops.qkv_rope(q, a, ws[i], rope, kc, vc, pos, n)  # noqa: E731
        else:
            fn = lambda i: ops.norm_qkv_rope(q, Residual(xs, a, ss), eps, ws[i], rope, kc, vc, pos, n)  # noqa: E731
        out_bytes = N * 2 + (D // 2) * 8
    elif op in ("matmul_residual", "matmul_residual_ss"):
        x, xh = cp.zeros((1, N), cp.float32), cp.empty((1, N), T)
        if op == "matmul_residual":
            fn = lambda i: ops.matmul_residual(Residual(x), a, ws[i])  # noqa: E731
            out_bytes = 2 * N * 4
        else:
            fn = lambda i: ops.matmul_residual(Residual(x, xh, ss), a, ws[i])  # noqa: E731
            out_bytes = 2 * N * 4 + N * 2
    elif op in ("matmul_silu", "norm_matmul_silu"):
        h = cp.empty((1, N // 2), T)
        if op == "matmul_silu":
            fn = lambda i: ops.matmul_silu(h, a, ws[i])  # noqa: E731
        else:
            fn = lambda i: ops.norm_matmul_silu(h, Residual(xs, a, ss), eps, ws[i])  # noqa: E731
        out_bytes = N // 2 * 2
    else:
        logits, n = cp.empty((1, N), cp.float32), cp.ones(1, cp.int32)
        if op == "matmul_logits":
            fn = lambda i: ops.matmul_logits(logits, a, ws[i])  # noqa: E731
        else:
            fn = lambda i: ops.norm_matmul_logits(logits, Residual(xs, a, ss), eps, ws[i], n)  # noqa: E731
        out_bytes = N * 4
    return fn, n_copies, wbytes + abytes + out_bytes, (ws, a)


def cublas_times(stream, operands, N, K):
    """(captured ctypes GemmEx us, eager cupy.matmul us); None where that path fails."""
    cp = _cp()
    ws, a = operands
    out = {"cublas_graph_us": None, "cupy_matmul_us": None}
    try:
        from cugraphllm.gpu import cublas
        h = cublas.handle()
        c = cp.empty((1, N), cp.float32)
        out["cublas_graph_us"] = graph_us(stream, lambda i: h.gemm_nt(c, a, ws[i]), len(ws))
    except Exception as e:  # report, keep going
        out["cublas_graph_error"] = f"{type(e).__name__}: {e}"[:200]
    try:
        y = cp.empty((1, N), a.dtype)
        out["cupy_matmul_us"] = eager_us(stream, lambda i: cp.matmul(a, ws[i].T, out=y), len(ws))
    except Exception as e:
        out["cupy_matmul_error"] = f"{type(e).__name__}: {e}"[:200]
    return out


def bench_gemv(stream, dtype: str, copy: float, with_cublas=True) -> list[dict]:
    rows = []
    for name, (op, N, K) in list(GEMV_7B.items()) + list(FUSED_7B.items()):
        fn, n_copies, nbytes, operands = gemv_case(op, N, K, dtype)
        us = graph_us(stream, fn, n_copies)
        row = dict(name=name, op=op, dtype=dtype, N=N, K=K, bytes=nbytes, us=us,
                   GBps=nbytes / us / 1e3, TFLOPs=2 * N * K / us / 1e6, frac_of_copy=nbytes / us / 1e3 / copy)
        if with_cublas and name in GEMV_7B:
            row["read_us"] = read_floor_us(stream, operands[0])
            row["frac_of_read"] = row["read_us"] / us
            for k, v in cublas_times(stream, operands, N, K).items():
                row[k] = v
                if k.endswith("_us") and v:
                    row[k[:-3] + "_GBps"] = N * K * 2 / v / 1e3
        rows.append(row)
        del fn, operands
    return rows


def bench_small(stream, dtype: str) -> list[dict]:
    """Norms, embedding and selectors at 7B sizes (latency-bound: microseconds are what matter)."""
    cp = _cp()
    from cugraphllm.gpu import ops
    T, D, V, S = _dtype(dtype), 4096, 32000, 4096
    x, r = _rand((1, D), cp.float32, 1), _rand((1, D), cp.float32, 2)
    w, out, ss = cp.ones(D, cp.float32), cp.empty((1, D), T), cp.zeros(D, cp.float32)
    table = _rand((V, D), T, 3)
    logits = _rand((1, V), cp.float32, 4) * np.float32(3)
    tok, hist = cp.asarray([7], dtype=cp.int32), cp.zeros(S + 1, cp.int32)
    pos, n0, n1 = cp.asarray([1000], dtype=cp.int32), cp.zeros(1, cp.int32), cp.ones(1, cp.int32)
    seed = cp.asarray([1], dtype=cp.uint64)
    p_topk = cp.asarray(np.array([0.8, 0.9, 1.1, 40], np.float32))
    p_topp = cp.asarray(np.array([1.0, 0.95, 1.0, 0], np.float32))
    cases = {  # n_tokens = 0 keeps pos fixed across calls
        "embedding": lambda i: ops.embedding(Residual(x), table, tok),
        "embedding_ss": lambda i: ops.embedding(Residual(x, out, ss), table, tok),
        "rmsnorm": lambda i: ops.rmsnorm(out, x, w, 1e-5),
        "rmsnorm_unit": lambda i: ops.rmsnorm(out, x, None, 1e-5),
        "add_rmsnorm": lambda i: ops.add_rmsnorm(x, r, out, w, 1e-5),
        "argmax": lambda i: ops.argmax(tok, hist, pos, n0, logits),
        "sample_topk40_topp0.9": lambda i: ops.sample(tok, hist, pos, n0, logits, p_topk, seed),
        "sample_topp0.95": lambda i: ops.sample(tok, hist, pos, n0, logits, p_topp, seed),
    }
    del n1
    p_temp = cp.asarray(np.array([1.0, 1.0, 1.0, 0], np.float32))
    p_pen = cp.asarray(np.array([0.8, 0.9, 1.2, 40], np.float32))
    cases["sample_temp1"] = lambda i: ops.sample(tok, hist, pos, n0, logits, p_temp, seed)
    cases["sample_topk40_topp0.9_pen1.2"] = lambda i: ops.sample(tok, hist, pos, n0, logits, p_pen, seed)
    from cugraphllm.gpu.state import pinned_int32  # the engine's hist: pinned host memory, read over PCIe
    hist_host, hist_pinned, _ = pinned_int32(S + 1)
    hist_host[:] = np.arange(S + 1) * 7 % V  # distinct ids: the penalty bitset is dense
    cases["sample_topk40_topp0.9_pen1.2_pinned_hist"] = lambda i: ops.sample(tok, hist_pinned, pos, n0, logits,
                                                                             p_pen, seed)
    ops.sample_workspace(logits)  # outside capture
    return [dict(name=k, dtype=dtype, us=graph_us(stream, f, 1)) for k, f in cases.items()]


def sweep(stream, dtype: str, copy: float) -> list[dict]:
    from cugraphllm.gpu import gemv_plan  # the launch options ops.py reads at every launch
    names = ("GEMV_WARPS", "GEMV_UNROLL", "GEMV_KSPLIT", "GEMV_XSMEM")
    keep = [getattr(gemv_plan, n) for n in names]
    rows = []
    try:
        for cfg in SWEEP:
            for n, v in zip(names, cfg):
                setattr(gemv_plan, n, v)
            for r in bench_gemv(stream, dtype, copy, with_cublas=False):
                rows.append(dict(zip(("warps", "unroll", "ksplit", "xsmem"), cfg), name=r["name"], us=r["us"],
                                 GBps=r["GBps"]))
    finally:
        for n, v in zip(names, keep):
            setattr(gemv_plan, n, v)
    return rows


def environment() -> dict:
    cp = _cp()
    props = cp.cuda.runtime.getDeviceProperties(0)
    env = dict(device=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
               sm_count=props["multiProcessorCount"], l2_bytes=props["l2CacheSize"],
               cuda_driver=cp.cuda.runtime.driverGetVersion(), cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
               date=datetime.datetime.now().isoformat(timespec="seconds"), python=platform.python_version(),
               cupy=cp.__version__, numpy=np.__version__)
    try:
        import pynvml
        pynvml.nvmlInit()
        env["driver"] = pynvml.nvmlSystemGetDriverVersion()
    except Exception:
        env["driver"] = None
    try:
        import numba
        env["numba"] = numba.__version__
        from numba import cuda as _nc  # noqa: F401
        import numba_cuda
        env["numba_cuda"] = getattr(numba_cuda, "__version__", None)
    except Exception:
        env.setdefault("numba", None)
    return env


def run(dtypes=("float16",), do_sweep=False, with_cublas=True) -> dict:
    cp = _cp()
    stream = cp.cuda.Stream(non_blocking=True)
    doc = environment()
    doc["method"] = f"graph of {CALLS} calls over weight copies > 4x L2, CUDA events, median of {REPS} replays"
    doc["copy_GBps"] = copy_gbps(stream)
    doc["gemv"], doc["small"], doc["sweep"], doc["gemm"] = [], [], [], []
    for dt in dtypes:
        doc["gemv"] += bench_gemv(stream, dt, doc["copy_GBps"], with_cublas)
        doc["small"] += bench_small(stream, dt)
    if do_sweep:  # launch configurations behave alike in both dtypes: sweep the first only
        doc["sweep"] = [dict(r, dtype=dtypes[0]) for r in sweep(stream, dtypes[0], doc["copy_GBps"])]
    return doc


def _fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def print_table(doc: dict) -> None:
    print(f"{doc['device']}  copy {doc['copy_GBps']:.0f} GB/s  driver {doc.get('driver')}  cupy {doc['cupy']}")
    print(f"{'gemv':11} {'dtype':9} {'us':>7} {'GB/s':>6} {'%copy':>6} {'TFLOP/s':>7} {'read us':>7} "
          f"{'cuBLAS(graph)':>13} {'cupy.matmul':>11}")
    for r in doc["gemv"]:
        print(f"{r['name']:11} {r['dtype']:9} {r['us']:7.2f} {r['GBps']:6.0f} {100 * r['frac_of_copy']:5.1f}% "
              f"{r['TFLOPs']:7.3f} {_fmt(r.get('read_us'), '7.2f')} {_fmt(r.get('cublas_graph_GBps'), '13.0f')} "
              f"{_fmt(r.get('cupy_matmul_GBps'), '11.0f')}")
    for r in doc["small"]:
        print(f"{r['name']:32} {r['dtype']:9} {r['us']:7.2f} us")
    for r in doc["sweep"]:
        print(f"sweep {r['dtype']:9} w={r['warps']:2} u={r['unroll']} ks={r['ksplit']} xs={r['xsmem']} "
              f"{r['name']:11} {r['us']:7.2f} us {r['GBps']:6.0f} GB/s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="both", choices=("float16", "bfloat16", "both"))
    ap.add_argument("--sweep", action="store_true", help="also time GEMV launch configurations")
    ap.add_argument("--no-cublas", action="store_true", help="skip the cuBLAS comparison rows")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/kernels_<date>.json)")
    args = ap.parse_args(argv)
    dtypes = ("float16", "bfloat16") if args.dtype == "both" else (args.dtype,)
    doc = run(dtypes, args.sweep, not args.no_cublas)
    out = Path(args.out or Path(__file__).resolve().parents[1] / "benchmarks" / "results"
               / f"kernels_{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print_table(doc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
