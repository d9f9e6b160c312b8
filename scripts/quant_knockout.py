"""Knockout profile of the quantized decode GEMVs (bench only): each 7B matrix of each weight format graph-timed as
the decode step runs it (scripts/bench_quant.py `weight_copies` / `case`), with phases knocked out of whichever
driver gpu/ops_quant.py picks for it (row pairs: kernels/gemv_quant_pairs.cuh, pipelined or half2; int4 tiles:
kernels/gemv_quant_tiles.cuh) by the bench-only define QG_KO, bits: 1 the prologue after pdl_enter (no activation
or ss loads, no staging), 2 the products (the loaded weights folded into the sums instead), 4 the epilogues.
Results are wrong under a knockout; the timings say what each phase costs beside the bare read of the same packed
bytes (scripts/bench_kernels.read_floor_us). Weights take the layout the one-GPU engine gives them (int4
tile-contiguous where gpu/quant_tiles.py picks it; CUGRAPHLLM_QG_TILED=0: row-major); bit 64 times the tiles'
tile-contiguous access pattern on row-major bytes. QG_KO reaches the kernels by a patched ops_quant.get_function (no
library change); every module is compiled first, in parallel processes (--jobs), so the timed loop loads them from
CuPy's disk cache.

--plan KEY=N,.. replaces fields of the formats' QuantPlans for the run (e.g. mma_min_pairs=0,warps=8,ksplit=8:
int4 tiles of 8 warps, 8 a tile, on every matrix), in the timed process and the compiling ones alike.

Usage: python3 -m scripts.quant_knockout [--formats fp8,int8,int4] [--matrices wqkv+norm,wo+ss,w13+norm,w2+ss]
       [--kos 0,1,2,4,7] [--dtype float16|bfloat16] [--group-size 128] [--jobs 8] [--plan KEY=N,..]
       [--preset llama-2-70b] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from unittest import mock

from scripts import bench_quant as bq

FORMATS = ("fp8", "int8", "int4")
MATRICES = ("wqkv+norm", "wo+ss", "w13+norm", "w2+ss")
KOS = (0, 1, 2, 4, 7)
KO_BITS = {1: "prologue", 2: "products", 4: "epilogue", 8: "staging pass", 16: "max pass", 32: "staging sums",
           64: "tiled addressing", 128: "scale / zero loads"}
# bench_quant op -> the decode kernel gpu/ops.py launches for it
KERNELS = {"norm_qkv_rope": "qgemv_qkv_rope_norm", "matmul_residual_ss": "qgemv_residual_ss",
           "norm_matmul_silu": "qgemv_silu_norm", "norm_matmul_logits": "qgemv_logits_norm"}


def knocked(ko: int) -> list[str]:
    return [name for bit, name in KO_BITS.items() if ko & bit]


def with_ko(ko: int) -> None:
    """Make ops_quant compile its GEMVs with QG_KO = ko (a fresh cache; the modules stay cached by their defines)."""
    from cugraphllm.gpu import cuda_kernels as ck
    from cugraphllm.gpu import ops_quant as oq
    oq._cache.clear()
    oq.get_function = lambda file, kernel, defines=None, options=(), dtype=None: ck.get_function(
        file, kernel, {**(defines or {}), "QG_KO": ko}, options, dtype)


def with_plan(formats, plan: dict) -> None:
    """QUANT_PLANS[fmt] with the fields of `plan` replaced, for each of formats (this process); naming warps or
    ksplit also empties mma_shapes, whose per-shape configs would otherwise win."""
    import dataclasses
    from cugraphllm.gpu import gemv_plan
    extra = {"mma_shapes": ()} if {"warps", "ksplit"} & set(plan) else {}
    for fmt in formats:
        gemv_plan.QUANT_PLANS[fmt] = dataclasses.replace(gemv_plan.QUANT_PLANS[fmt], **plan, **extra)


# ---- which kernel, launch and driver a matrix takes (no GPU) -------------------------------------------------
def launch(fmt: str, matrix: str, group: int = 128) -> tuple:
    """(kernel, K, row pairs, ss chunk, int4 group) of one 7B matrix as gpu/ops_quant.py launches it."""
    from cugraphllm.gpu import gemv_plan
    op, N, K = bq.MATS[matrix]
    kernel = KERNELS[op]
    pairs = N // 2 if op in ("norm_qkv_rope", "norm_matmul_silu") else (N + 1) // 2  # as ops_quant counts
    chunk = gemv_plan.norm_chunk(N) if op == "matmul_residual_ss" else 0
    return kernel, K, pairs, chunk, (group if fmt == "int4" else K)


class _Captured(Exception):
    pass


def compile_defines(fmt: str, matrix: str, dtype: str = "float16", group: int = 128) -> dict:
    """The #defines ops_quant compiles this matrix's kernel with (its compile intercepted: no GPU needed)."""
    from cugraphllm.gpu import cuda_kernels as ck
    from cugraphllm.gpu import ops_quant as oq

    def grab(file, kernel, defines=None, options=(), dtype=None):
        raise _Captured({**(defines or {}), **ck.dtype_defines(dtype)})
    kernel, K, pairs, chunk, g = launch(fmt, matrix, group)
    with mock.patch.object(oq, "get_function", grab), mock.patch.object(oq, "device_id", lambda: "captured"):
        try:
            oq._function(kernel, fmt, dtype, K, pairs, chunk, g, engine_tiled(fmt, matrix, group))
        except _Captured as c:
            return c.args[0]
    raise RuntimeError(f"ops_quant compiled nothing for {fmt} {matrix}")


def engine_tiled(fmt: str, matrix: str, group: int = 128) -> bool:
    """Whether the one-GPU engine holds this matrix tile-contiguous (gpu/quant_tiles.py; bench_quant.weight_copies
    gives the knockouts that layout)."""
    from cugraphllm.gpu import quant_tiles
    from cugraphllm.gpu.cuda_kernels import env_bit
    if fmt != "int4" or not env_bit(quant_tiles.TILED_ENV):
        return False
    _, N, K = bq.MATS[matrix]
    return bool(quant_tiles.shape_pairing(bq.field_of(matrix), N, K, group))


def driver(defines: dict) -> str:
    """tiles (gemv_quant_tiles.cuh), pipe (gemv_quant_pipe.cuh), half2 or fp32 (gemv_quant_pairs.cuh)."""
    if defines.get("QG_MMA"):
        return "tiles"
    return "pipe" if defines.get("QG_PIPE") else ("half2" if defines.get("QG_HACC") else "fp32")


# ---- command line ----------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (no usage block)
        print(f"quant_knockout: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _names(text: str, known) -> tuple[str, ...]:
    vals = tuple(v.strip() for v in text.split(","))
    bad = [v for v in vals if v not in known]
    if bad or len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError(f"{bad or text!r} (known, each once: {', '.join(known)})")
    return vals


def _kos(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of integers") from None
    bad = [v for v in vals if not 0 <= v <= 255]
    if bad or len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError(f"{bad or text!r} (each once, 0-255: bits 1 prologue, 2 products, "
                                         "4 epilogue, 8 staging pass, 16 max pass, 32 staging sums, 64 the "
                                         "tiles' tile-contiguous addressing, 128 the int4 cursor tiles' scale / "
                                         "zero loads)")
    return vals


def _plan(text: str) -> dict:
    """KEY=N,.. over the integer fields of QuantPlan."""
    import dataclasses
    from cugraphllm.gpu.gemv_plan import QuantPlan
    ints = {f.name for f in dataclasses.fields(QuantPlan) if f.type in ("int", "int | None")}
    out = {}
    for item in (t for t in text.split(",") if t):
        key, _, val = item.partition("=")
        if key not in ints or not val.lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"{item!r}: expected KEY=N with KEY one of {', '.join(sorted(ints))}")
        out[key] = int(val)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = _Parser(description=__doc__.split("\n")[0])
    ap.add_argument("--formats", default=",".join(FORMATS), type=lambda t: _names(t, FORMATS))
    ap.add_argument("--matrices", default=",".join(MATRICES),
                    type=lambda t: _names(t, tuple(bq.MATS)))
    ap.add_argument("--kos", default=",".join(map(str, KOS)), type=_kos, help="QG_KO values (0: the real kernel)")
    ap.add_argument("--dtype", default="float16", choices=("float16", "bfloat16"))
    ap.add_argument("--group-size", type=int, default=128, help="int4 group size")
    ap.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1),
                    help="processes compiling the modules before the timed loop (1: compile in the loop)")
    ap.add_argument("--plan", default={}, type=_plan, help="QuantPlan fields to replace, KEY=N,.. (all formats)")
    ap.add_argument("--preset", default="llama-2-7b", help="the model whose decode GEMV shapes are profiled")
    ap.add_argument("--out", default=None, help="JSON file for the rows")
    args = ap.parse_args(argv)
    try:
        use_preset(args.preset)
    except Exception as e:  # an unknown preset: one line
        ap.error(f"--preset {args.preset!r}: {e}")
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    ks = sorted({bq.MATS[m][2] for m in args.matrices})
    if args.group_size < 32 or args.group_size % 32 or any(k % args.group_size for k in ks):
        ap.error(f"--group-size must be a multiple of 32 dividing K ({', '.join(map(str, ks))}), got {args.group_size}")
    return args


# ---- GPU ------------------------------------------------------------------------------------------------
def use_preset(preset: str) -> None:
    """The decode GEMV shapes of `preset` (bench_quant.mats) for this process."""
    bq.MATS, bq.N_LAYERS = bq.mats(preset)


def _precompile(task) -> None:
    """One module, in a worker process: ops_quant's own compile under QG_KO (lands in CuPy's disk cache)."""
    ko, fmt, matrix, dtype, group, plan, preset = task
    from cugraphllm.gpu import ops_quant as oq
    use_preset(preset)
    with_plan((fmt,), plan)
    with_ko(ko)
    kernel, K, pairs, chunk, g = launch(fmt, matrix, group)
    oq._function(kernel, fmt, dtype, K, pairs, chunk, g)


def precompile(args) -> None:
    """Every distinct module of the run, compiled by args.jobs spawned processes."""
    import concurrent.futures as cf
    import multiprocessing as mp
    todo = {}
    for fmt in args.formats:
        for m in args.matrices:
            d = compile_defines(fmt, m, args.dtype, args.group_size)
            for ko in args.kos:
                todo.setdefault(json.dumps({**d, "QG_KO": ko}, sort_keys=True), (ko, fmt, m, args.dtype,
                                                                                 args.group_size, args.plan,
                                                                                 args.preset))
    with cf.ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as ex:
        list(ex.map(_precompile, todo.values()))
    print(f"compiled {len(todo)} modules in {args.jobs} processes", file=sys.stderr)


def profile_matrix(stream, fmt: str, matrix: str, args) -> list[dict]:
    """Rows of one (format, matrix): the read floor, then us per QG_KO value."""
    from scripts import bench_kernels as bk
    cp = bk._cp()
    op, N, K = bq.MATS[matrix]
    T = bk._dtype(args.dtype)
    d = compile_defines(fmt, matrix, args.dtype, args.group_size)
    ws, _ = bq.weight_copies(fmt, N, K, T, args.group_size, matrix)  # the engine's layout (CUGRAPHLLM_QG_TILED)
    base = {"format": fmt, "matrix": matrix, "N": N, "K": K, "driver": driver(d),
            "launch": {k: d[k] for k in ("QG_WARPS", "QG_UNROLL", "QG_KSPLIT", "QG_MSPLIT") if k in d},
            "read_floor_us": bk.read_floor_us(stream, [w.qweight for w in ws])}
    rows = []
    for ko in args.kos:
        with_ko(ko)
        fn, _ = bq.case(op, N, K, ws, T)
        rows.append({**base, "ko": ko, "knocked": knocked(ko), "us": bk.graph_us(stream, fn, len(ws))})
    us0 = next((r["us"] for r in rows if r["ko"] == 0), None)
    for r in rows:
        r["saved_us"] = None if us0 is None else us0 - r["us"]
    del ws
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def profile(args) -> list[dict]:
    """Every (format, matrix) of args; ops_quant's compile is handed back unpatched (a fresh cache) at the end."""
    import cupy as cp
    from cugraphllm.gpu import ops_quant as oq
    keep = oq.get_function
    stream = cp.cuda.Stream(non_blocking=True)
    rows = []
    print(table([], args.kos), file=sys.stderr)
    try:
        for fmt in args.formats:
            for m in args.matrices:
                rows += profile_matrix(stream, fmt, m, args)
                print(table(rows[-len(args.kos):], args.kos).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        oq.get_function = keep
        oq._cache.clear()
    return rows


def table(rows: list[dict], kos) -> str:
    """One line per (format, matrix): driver, read floor and us per QG_KO value."""
    lines = [f"{'format':6s} {'matrix':10s} {'driver':6s} {'floor':>7s} " + " ".join(f"{'ko ' + str(k):>7s}"
                                                                                 for k in kos)]
    keys = dict.fromkeys((r["format"], r["matrix"]) for r in rows)
    for fmt, m in keys:
        rs = {r["ko"]: r for r in rows if (r["format"], r["matrix"]) == (fmt, m)}
        r0 = next(iter(rs.values()))
        lines.append(f"{fmt:6s} {m:10s} {r0['driver']:6s} {r0['read_floor_us']:7.2f} "
                     + " ".join(f"{rs[k]['us']:7.2f}" for k in kos))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    with_plan(args.formats, args.plan)
    from scripts.bench_kernels import environment, gpu_missing
    if gpu_missing("quant_knockout"):
        return 2
    if args.jobs > 1:
        precompile(args)
    rows = profile(args)
    print("\n" + table(rows, args.kos), file=sys.stderr)
    if args.out:
        doc = {**environment(), "dtype": args.dtype, "group_size": args.group_size, "kos": list(args.kos),
               "plan": args.plan,
               "method": "graph of bench_kernels.CALLS calls over weight copies > 4x L2, median of REPS; QG_KO bits: "
                         "1 prologue, 2 products, 4 epilogue knocked out (results wrong); saved_us = us(ko 0) - us",
               "rows": rows}
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
