"""The cuBLAS GEMMs of prefill with the algorithm timed fastest on this device (gemm.py calls `gemm_nt`).

cuBLAS GemmEx runs the first algorithm of cuBLAS's heuristic. On the H200 that choice is 5-14% slower than the best
of the heuristic's first ten on some prefill shapes (7B w13 / w2 at 128-256 rows, 70B-per-GPU w13 at 128-512 rows),
and the best on others (benchmarks/results/gemm_lt_2026-11-30.json, scripts/bench_gemm_lt.py). So the first call of
each (device, M, N, K, dtypes, accumulate) made outside graph capture times GemmEx against cuBLASLt's first
TUNE_ALGOS algorithms and keeps the fastest for every later call, captured ones included (a key first seen inside a
capture keeps GemmEx: nothing can be timed there). Engines make these first calls in their eager warm-up step.

Timing: each candidate runs REPS times, each after an L2 flush (the weights of a real prefill come from DRAM), between
CUDA events, all queued before one synchronize (so host time between launches is never timed: a first version that
synchronized each run timed the host's launch work too, up to 6x the GPU time, and picked badly); the median
decides. An accumulating call (beta = 1, x += a @ w.T) is timed on a scratch copy of its output, so tuning never
changes the caller's data. The flush buffer and that copy are transient: given back to the driver afterwards, and
where they do not fit (a GPU filled by its weights) the key keeps GemmEx untimed. Only weights of at least
TUNE_MIN_WEIGHT elements are tuned: small ones (tests, stories260K) keep GemmEx and its exact numerics.

The FP8 (W8A8) products of gemm_quant's "lt" path go through `fp8_matmul` the same way: per (device, M, N, K, e4m3,
D type, accumulate, outer scales) the fastest of cuBLASLt's first TUNE_ALGOS heuristic algorithms (there is no
GemmEx for fp8); untuned keys (tuning off, small weights, first seen in capture) run the heuristic's first algorithm
as before (count 1).
CUGRAPHLLM_GEMM_TUNE=0 turns both off.
"""
from __future__ import annotations

import os

import numpy as np

TUNE = os.environ.get("CUGRAPHLLM_GEMM_TUNE", "1") != "0"
TUNE_ALGOS = 8              # cuBLASLt heuristic algorithms timed besides GemmEx
TUNE_MIN_WEIGHT = 1 << 22   # N * K elements (8 MiB at 16 bits)
REPS = 3
FLUSH_BYTES = 256 << 20     # 5x the H200's 50 MB L2; its fill (~90 us) keeps the GPU behind the host
GEMMEX = -1

_CHOICE: dict = {}          # key -> GEMMEX or a cuBLASLt algorithm index
_TIMES: dict = {}           # key -> {candidate: median ms} (benchmarks report these)


def _key(c, a, w, accumulate: bool) -> tuple:
    from .cuda_kernels import device_id
    return (device_id(), a.shape[0], w.shape[0], a.shape[1], str(a.dtype), str(c.dtype), bool(accumulate))


def _call(choice: int, c, a, w, accumulate: bool) -> None:
    if choice == GEMMEX:
        from . import cublas
        cublas.handle().gemm_nt(c, a, w, accumulate=accumulate)
    else:
        from . import cublaslt
        cublaslt.handle().matmul16(c, a, w, accumulate, algo=choice, count=TUNE_ALGOS)


def gemm_nt(c, a, w, accumulate: bool = False) -> None:
    """c [M, N] (=|+=) a [M, K] @ w [N, K].T on the current CuPy stream (gpu/cublas.py Handle.gemm_nt's contract,
    whole rows of c), through the algorithm chosen for this key."""
    key = _key(c, a, w, accumulate)
    choice = _choose(key, w, c, accumulate, lambda out: _candidates(key, a, out),
                     lambda cand, out: _call(cand, out, a, w, accumulate))
    _call(choice, c, a, w, accumulate)


def _choose(key, w, c, accumulate: bool, candidates, run) -> int:
    """The cached choice of key; else, outside capture, GEMMEX (the untuned call) or the timed winner, cached."""
    import cupy as cp
    choice = _CHOICE.get(key)
    if choice is None:
        capturing = cp.cuda.get_current_stream().is_capturing()
        if capturing or not TUNE or w.shape[0] * w.shape[1] < TUNE_MIN_WEIGHT:
            choice = GEMMEX
        else:
            choice = _tune(key, c, accumulate, candidates, run)
        if not capturing:
            _CHOICE[key] = choice
    return choice


def _candidates(key, a, c) -> list[int]:
    from . import cublas, cublaslt
    _, M, N, K = key[:4]
    try:
        found = cublaslt.handle().algos(N, M, K, cublas._dtype_code(a.dtype), cublas._dtype_code(c.dtype), N,
                                        TUNE_ALGOS)
    except Exception:  # no cuBLASLt algorithm for these operands: GemmEx alone
        return [GEMMEX]
    return [GEMMEX] + list(range(len(found)))


# ---- fp8 (gemm_quant's "lt" path) ----------------------------------------------------------------------------
def fp8_matmul(d, aq, wq, sa=None, sw=None, accumulate: bool = False) -> None:
    """cublaslt LtHandle.fp8_matmul's contract (d (=|+=) aq @ wq.T, unscaled f32, or outer-scaled by sa / sw)
    through the heuristic algorithm chosen for this key: GEMMEX here means the heuristic's first (count 1)."""
    from .cuda_kernels import device_id
    key = (device_id(), aq.shape[0], wq.shape[0], aq.shape[1], "e4m3", str(d.dtype), bool(accumulate), sa is not None)

    def run(cand, out):
        from . import cublaslt
        algo, count = (0, 1) if cand == GEMMEX else (cand, TUNE_ALGOS)
        cublaslt.handle().fp8_matmul(out, aq, wq, sa, sw, accumulate, algo=algo, count=count)
    run(_choose(key, wq, d, accumulate, lambda out: _fp8_candidates(key), run), d)


def _fp8_candidates(key) -> list[int]:
    from . import cublas, cublaslt
    _, M, N, K, _, out, _, outer = key
    try:
        found = cublaslt.handle().algos(N, M, K, cublaslt.CUDA_R_8F_E4M3, cublas._dtype_code(out), N, TUNE_ALGOS,
                                        outer)
    except Exception:  # no algorithm list: the untuned call alone
        return [GEMMEX]
    return list(range(len(found)))


def _tune(key, c, accumulate: bool, candidates, run) -> int:
    """The fastest candidate for this key (module docstring), timed on the current stream: run(cand, out) computes
    into out (c, or a scratch copy of c when accumulating), candidates(out) lists them."""
    import cupy as cp
    from .state import trim_pool
    stream = cp.cuda.get_current_stream()
    try:
        out = c.copy() if accumulate else c  # beta = 1 would change the caller's c
        flush = cp.empty(FLUSH_BYTES, dtype=cp.uint8)
    except cp.cuda.memory.OutOfMemoryError:
        return GEMMEX  # no room to time it (module docstring)
    cands = []
    for cand in candidates(out):
        try:
            run(cand, out)  # first call: plan creation, kernel load (host work, not timed)
            cands.append(cand)
        except Exception:
            continue
    stream.synchronize()
    times = _time(stream, flush, cands, lambda cand: run(cand, out))
    flush = out = None  # dropped before the trim
    trim_pool()  # the flush buffer and the copy go back to the driver: they are not in the memory estimate
    if times:  # none: every candidate refused (the caller's untuned call decides what happens)
        _TIMES[key] = times
    return min(times, key=times.get) if times else GEMMEX


def _time(stream, flush, cands, run, reps: int = REPS) -> dict:
    """{candidate: median ms of `reps` runs}. Everything is queued before one synchronize, rounds interleaving the
    candidates, each run after an L2 flush (flush: FLUSH_BYTES of scratch): the GPU works through a backlog, so host
    time between the launches (ctypes, cuBLAS's own host work) never shows up between a run's two events."""
    import cupy as cp
    flush.fill(1)
    flush.fill(0)  # the backlog the first round starts behind
    marks = []
    for _ in range(reps):
        for cand in cands:
            flush.fill(0)
            t0, t1 = cp.cuda.Event(), cp.cuda.Event()
            t0.record(stream)
            run(cand)
            t1.record(stream)
            marks.append((cand, t0, t1))
    stream.synchronize()
    ms = {cand: [] for cand in cands}
    for cand, t0, t1 in marks:
        ms[cand].append(cp.cuda.get_elapsed_time(t0, t1))
    return {cand: float(np.median(v)) for cand, v in ms.items() if v}


def report() -> list[dict]:
    """Every tuned key of this process: shape, the choice, and its time against the untuned call's (GemmEx; fp8:
    the heuristic's first algorithm, timed as candidate 0)."""
    rows = []
    for key, times in _TIMES.items():
        dev, M, N, K, at, ct, acc = key[:7]
        ch = _CHOICE.get(key, GEMMEX)
        row = {"device": dev, "M": M, "N": N, "K": K, "dtype": at, "out": ct, "accumulate": acc,
               "choice": f"lt{ch}" if ch != GEMMEX else "first" if at == "e4m3" else "gemmex",
               "ms": round(times.get(ch, 0.0), 4)}
        if at == "e4m3":  # fp8_matmul's key: + outer scales; its baseline is candidate 0
            row.update(scales="outer" if key[7] else "none", first_ms=round(times.get(0, 0.0), 4))
        else:
            row["gemmex_ms"] = round(times.get(GEMMEX, 0.0), 4)
        rows.append(row)
    return rows


def forget_fp8() -> None:
    """Drop the fp8 choices and times (A/B benchmarks: the next eager call of each key decides again)."""
    for d in (_CHOICE, _TIMES):
        for key in [k for k in d if k[4] == "e4m3"]:
            del d[key]
