"""The device half of scripts/lt_algo_search.py (its docstring says what is measured and how): one shape's search."""
from __future__ import annotations

import time

from cugraphllm.gpu import cublaslt_search as ls
from scripts.lt_algo_search import CHUNK, HEUR, TOL


def _operands(M: int, N: int, K: int, acc: bool):
    """x [M, K] fp16 ~ N(0, 1), W [N, K] fp16 ~ N(0, 0.02^2) (|out| ~ 1-2), c0 [M, N]: the f32 residual ~ N(0, 1)
    when accumulating, else None (fp16 output, poisoned before each check)."""
    import cupy as cp
    rng = cp.random.default_rng(13)
    a = rng.standard_normal((M, K), dtype=cp.float32).astype(cp.float16)
    w = (rng.standard_normal((N, K), dtype=cp.float32) * 0.02).astype(cp.float16)
    c0 = rng.standard_normal((M, N), dtype=cp.float32) if acc else None
    return a, w, c0


def _timer(stream, flush, runs: dict, reps: int) -> dict:
    """{key: median ms over reps} of runs {key: callable}, timed by gemm_tune._time (an L2 flush before each run,
    events around it, rounds interleaving the keys, everything queued before one synchronize)."""
    from cugraphllm.gpu import gemm_tune
    return gemm_tune._time(stream, flush, list(runs), lambda key: runs[key](), reps)


class _Shape:
    """Operands, the heuristic's plans and a checked runner for one (M, N, K, accumulate)."""

    def __init__(self, M, N, K, acc):
        import cupy as cp
        from cugraphllm.gpu import cublas, cublaslt
        self.lt, self.acc = cublaslt.handle(), acc
        self.ab, self.cb = cublaslt.CUDA_R_16F, (cublaslt.CUDA_R_32F if acc else cublaslt.CUDA_R_16F)
        self.a, self.w, self.c0 = _operands(M, N, K, acc)
        self.plans = self.lt.algos(N, M, K, self.ab, self.cb, N, HEUR)  # exactly matmul16's plans
        self.beta = self.lt._one if acc else self.lt._zero
        dtype = cp.float32 if acc else cp.float16
        self.scratch = self.c0.copy() if acc else cp.zeros((M, N), dtype)  # timing output
        self.check_out = cp.empty((M, N), dtype)
        self.ref = self.c0.copy() if acc else cp.empty((M, N), dtype)
        self.run(self.plans[0][4], self.ref)
        self.ref32 = self.ref.astype(cp.float32)
        self.ref_max = float(cp.max(cp.abs(self.ref32 - (self.c0 if acc else 0))))
        self.gemmex = lambda: cublas.handle().gemm_nt(self.scratch, self.a, self.w, accumulate=acc)

    def run(self, algo, out) -> None:
        """out (=|+=) a @ w.T through algo on the heuristic's descriptor and layouts (LtHandle._run)."""
        self.lt._run((*self.plans[0][:4], algo, self.plans[0][5]), self.w, self.a, out, self.beta)

    def error(self, algo) -> float:
        """max |out - ref| / max |a @ w.T| of one run (NaN-poisoned fp16 output, or the residual c0 under it)."""
        import cupy as cp
        if self.acc:
            cp.copyto(self.check_out, self.c0)
        else:
            self.check_out.view(cp.uint16).fill(0x7E00)  # fp16 NaN: a config that writes nothing fails
        self.run(algo, self.check_out)
        return float(cp.max(cp.abs(self.check_out.astype(cp.float32) - self.ref32))) / max(self.ref_max, 1e-30)


def _screen(sh: _Shape, cands, args, stream, flush, counts) -> list:
    """[(screening ms, Config, algo)] of the candidates set, checked, validated and timed before --seconds ran out."""
    from cugraphllm.gpu.cublas import CublasError
    out, i, t_end = [], 0, time.monotonic() + args.seconds
    while i < len(cands) and time.monotonic() < t_end:
        chunk = []
        while i < len(cands) and len(chunk) < CHUNK and time.monotonic() < t_end:
            cfg, i = cands[i], i + 1
            algo = ls.make_algo(sh.lt, cfg, sh.ab, sh.cb)
            chk = None if algo is None else ls.check(sh.lt, sh.plans[0], algo)
            if chk is None:
                counts["refused"] += 1
                continue
            try:
                err = sh.error(algo)
            except CublasError:
                counts["run_failed"] += 1
                continue
            if not err < TOL:  # NaN included
                counts["mismatch"] += 1
                continue
            cfg.extra.update(workspace=chk[0], waves=round(chk[1], 3), max_rel_err=float(f"{err:.3g}"))
            chunk.append((cfg, algo))
        if chunk:
            runs = {j: (lambda algo=algo: sh.run(algo, sh.scratch)) for j, (_, algo) in enumerate(chunk)}
            times = _timer(stream, flush, runs, args.reps)
            out += [(times[j], cfg, algo) for j, (cfg, algo) in enumerate(chunk)]
            counts["timed"] += len(chunk)
    counts["enumerated_not_reached"] = len(cands) - i
    return sorted(out, key=lambda t: t[0])


def _caps(sh: _Shape, algo_id: int):
    from cugraphllm.gpu.cublas import CublasError
    try:
        return ls.capabilities(sh.lt, algo_id, sh.ab, sh.cb)
    except CublasError:  # AlgoInit refused an id GetIds listed: nothing to configure
        return None


def search_shape(M: int, N: int, K: int, acc: bool, args, sms: int):
    """(final-round ms {"gemmex" | ("heur", i) | ("search", j): ms}, heuristic Configs, finalist Configs, counts)."""
    import cupy as cp
    from cugraphllm.gpu.gemm_tune import FLUSH_BYTES
    from cugraphllm.gpu.state import trim_pool
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        sh = _Shape(M, N, K, acc)
        heur = [ls.read_config(p[4]) for p in sh.plans]
        bad = [i for i, p in enumerate(sh.plans[1:], 1) if not sh.error(p[4]) < TOL]
        ids = ls.algo_ids(sh.lt, sh.ab, sh.cb)
        caps = [c for c in (_caps(sh, i) for i in ids) if c is not None]
        cands = ls.enumerate_configs(caps, N, M, K, sms=sms, splitks=args.splitk, clusters=args.clusters,
                                     all_reductions=args.all_reductions, max_configs=args.max_configs,
                                     boost=frozenset((h.algo_id, h.tile) for h in heur))
        counts = {"algo_ids": len(ids), "algo_ids_initialized": len(caps), "enumerated": len(cands), "refused": 0, "run_failed": 0, "mismatch": 0,
                  "timed": 0, "heuristic_mismatch": bad}
        flush = cp.empty(FLUSH_BYTES, dtype=cp.uint8)
        screened = _screen(sh, cands, args, stream, flush, counts)
        finalists = screened[:args.final]
        runs = {"gemmex": sh.gemmex}
        runs.update({("heur", i): (lambda p=p: sh.run(p[4], sh.scratch)) for i, p in enumerate(sh.plans)})
        runs.update({("search", j): (lambda algo=algo: sh.run(algo, sh.scratch))
                     for j, (_, _, algo) in enumerate(finalists)})
        final = _timer(stream, flush, runs, args.final_reps)
        stream.synchronize()
    chosen = [cfg for _, cfg, _ in finalists]
    for ms, cfg, _ in finalists:
        cfg.extra["screen_ms"] = round(ms, 5)
    sh = flush = runs = screened = finalists = None  # operands, flush buffer and scratch go back to the driver
    trim_pool()
    return final, heur, chosen, counts
