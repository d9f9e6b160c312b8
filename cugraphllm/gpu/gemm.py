"""Prefill GEMM launchers (M > 1 rows), the ops of DESIGN.md's table with the same argument lists.

Two implementations, picked per call by `_use_own(impl, op, M, K, ...)` (impl="auto" by default):
- "own":    kernels/gemm.cu, swap-AB mma.sync streaming the weights, epilogue fused (M <= OWN_MAX_M);
- "cublas": cuBLAS through ctypes into a scratch buffer, then our epilogue kernel; matmul_residual needs no
            scratch: the GEMM accumulates into the f32 residual itself (beta = 1). GemmEx (gpu/cublas.py) or the
            cuBLASLt algorithm timed fastest for the shape at its first eager call (gpu/gemm_tune.py).
Everything runs on the current CuPy stream with no host sync and no allocation once `prepare` has run (or a
first eager call has grown the scratch), so every op can be captured in a cupy.cuda.Graph. Anything that
changes per step (pos, n_tokens) is a device scalar.
Shapes: M rows (the padded bucket), D dim, F hidden_dim, S context, KVH kv heads, hd head_dim.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendError
from .cuda_kernels import get_function

OWN_MAX_M = 64          # the own kernel runs up to 8 token tiles of 8 (impl="own")
# impl="auto" takes the own kernel up to AUTO_OWN_MAX_M[op] rows (and, for residual, K <= AUTO_RESIDUAL_MAX_K),
# cuBLAS + epilogue above. H100, benchmarks/results/gemm_2026-11-23.json: at M = 16 the own kernel is 2-4%
# faster than cuBLAS + epilogue on wqkv/wo/w13, 9% slower on w2 (K = 11008); at M = 32, 64 it is 15-90% slower
# (its activation re-reads from L2 grow with M) while cuBLAS already streams the weights at ~2.4-2.7 TB/s.
AUTO_OWN_MAX_M = {"qkv": 16, "silu": 16, "residual": 16}
AUTO_RESIDUAL_MAX_K = 4096
# (WM, WK, STAGES[, RT, XS, PF, WS, PR]): warps of row tiles per block, warps along K, pipeline depth, then
# gemm.cu's optional knobs (_KNOBS defaults): row tiles of 16 per warp, x staged in shared memory (1) or read
# through L1 (0), L2 prefetch hint of the weight loads (0 none, 1 128 B, 2 256 B), W through a per-warp
# shared-memory ring (1) or straight into registers (0) or by row loads (2 / 3 / 4: 1 / 2 / 4 whole rows a warp
# load, fragments through a per-warp shared-memory buffer, XS 0; kernels/gemm_rowload.cuh), K-group sums stored
# at once (1, one barrier) or added turn by turn (0, WK barriers); (op, NT) keys override.
# silu needs WM * RT even (w1 and w3 tiles pair up); XS / WS need STAGES >= 2, XS WK <= 15 when WM > 1, and
# their smem (own_smem_bytes) must fit in 48 KiB.
OWN_CONFIG = {"residual": (2, 8, 2), "silu": (2, 2, 2), "qkv": (2, 4, 2),
              # 16 rows (NT = 2, the bucket of prompts up to 16 tokens), H200 sweep of 61 configs
              # (benchmarks/results/m16_2026-11-30/gemm_m16.json): wqkv 28.35 -> 27.39 us with a 128-byte L2
              # prefetch hint, w13 48.68 -> 46.71 with 256 bytes, wo 13.83 -> 12.27 with one reduction barrier;
              # 7B TTFT at 10 tokens (GPU prefill) 4.29 / 4.29 -> 4.09 / 4.17 ms, two rounds (final7_2026-11-30/)
              ("qkv", 2): (2, 4, 2, 1, 0, 1), ("silu", 2): (2, 2, 2, 1, 0, 2), ("residual", 2): (1, 8, 2, 1, 0, 0, 0, 1)}
_KNOBS = (("RT", 1), ("XS", 0), ("PF", 0), ("WS", 0), ("PR", 0))
_SMEM_MAX = 48 * 1024
_EPI_THREADS = 128


def _dtype(name):
    """numpy dtype of a name or dtype ("bfloat16" through ml_dtypes, as CuPy 14 does)."""
    if str(name) == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _fn(name: str, dtype, nt: int = 1, wm: int = 2, wk: int = 4, stages: int = 2, *knobs):
    defines = {"NT": nt, "WM": wm, "WK": wk, "STAGES": stages}
    # knobs at their defaults are left out, so the default configs keep their compiled modules
    defines.update({k: v for (k, d), v in zip(_KNOBS, knobs) if v != d})
    return get_function("gemm.cu", name, defines, dtype=dtype)


def full_config(cfg) -> tuple:
    """(WM, WK, STAGES, RT, XS, PF, WS, PR): cfg with the knobs it leaves out at their defaults."""
    cfg = tuple(cfg)
    return cfg + tuple(d for _, d in _KNOBS)[len(cfg) - 3:]


def own_config(op: str, nt: int) -> tuple:
    """Full config (full_config) of the own kernel for op at nt token tiles."""
    return full_config(OWN_CONFIG.get((op, nt), OWN_CONFIG[op]))


def own_smem_bytes(cfg: tuple, nt: int) -> int:
    """Static shared memory of gemm.cu at a full config: reduction buffer(s) + x ring (XS) + W rings (WS)."""
    wm, wk, stages, rt, xs, _, ws, pr = cfg
    rings = wm * wk * stages * rt * 2048 if ws == 1 else (wm * wk * rt * (8192 >> (ws - 2)) if ws >= 2 else 0)
    return (wk if pr else 1) * wm * rt * 8 * nt * 16 * 4 + (stages * wk * 8 * nt * 128 if xs else 0) + rings


def own_block_rows(op: str, cfg: tuple) -> int:
    """Output rows one block of the own kernel covers at full config cfg (silu: its w1 and w3 tiles pair up)."""
    wm, rt = cfg[0], cfg[3]
    return 16 * (wm * rt // 2 if op == "silu" else wm * rt)


def own_config_ok(op: str, cfg: tuple, nt: int) -> str:
    """'' if gemm.cu builds and launches the full config cfg for op at nt token tiles, else why not."""
    wm, wk, stages, rt, xs, _, ws, _ = cfg
    if op == "silu" and wm * rt % 2:
        return "matmul_silu needs an even WM * RT"
    if 32 * wm * wk > 1024:
        return "more than 1024 threads"
    if not 0 <= ws <= 4:
        return "WS must be 0-4"
    if xs and ws >= 2:
        return "row loads (WS >= 2) read x through L1: XS must be 0"
    if (xs or ws == 1) and stages < 2:
        return "XS / WS need STAGES >= 2"
    if xs and wm > 1 and wk > 15:
        return "XS needs WK <= 15 when WM > 1 (named barriers)"
    if own_smem_bytes(cfg, nt) > _SMEM_MAX:
        return f"shared memory {own_smem_bytes(cfg, nt)} bytes > {_SMEM_MAX}"
    return ""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise BackendError(f"gemm: {what}")


def _contig(*arrays) -> None:
    for a in arrays:
        _check(a.flags.c_contiguous, f"array of shape {a.shape} is not C-contiguous")


def _own_ok(M: int, K: int, *arrays) -> bool:
    """Own kernel: M <= OWN_MAX_M, K % 8 == 0 and 16-byte aligned operands (its loads are 16 bytes wide)."""
    return 1 < M <= OWN_MAX_M and K % 8 == 0 and all(a.data.ptr % 16 == 0 for a in arrays)


def _use_own(impl: str, op: str, M: int, K: int, *arrays) -> bool:
    if impl == "own":
        _check(_own_ok(M, K, *arrays), f"own kernel cannot run M={M} K={K} (M <= {OWN_MAX_M}, K % 8 == 0)")
        return True
    if impl == "cublas":
        return False
    _check(impl == "auto", f"impl must be auto|own|cublas, got {impl!r}")
    if M > AUTO_OWN_MAX_M[op] or (op == "residual" and K > AUTO_RESIDUAL_MAX_K):
        return False
    return _own_ok(M, K, *arrays)


def _launch_own(kernel: str, op: str, dtype, M: int, out_rows: int, args, smem: int = 0) -> None:
    import cupy as cp
    nt = (M + 7) // 8
    cfg = own_config(op, nt)
    why = own_config_ok(op, cfg, nt)
    _check(not why, f"own config {cfg} for {op} at NT={nt}: {why}")
    rows_per_block = own_block_rows(op, cfg)
    grid = ((out_rows + rows_per_block - 1) // rows_per_block,)
    _fn(kernel, dtype, nt, *cfg)(grid, (32 * cfg[0] * cfg[1],), args, stream=cp.cuda.get_current_stream(),
                                 shared_mem=smem)


def _epi_launch(kernel: str, dtype, M: int, cols: int, args) -> None:
    """Stand-alone epilogue over [M, cols] output columns, 8 columns per thread, one grid row per token."""
    import cupy as cp
    grid = ((cols + 8 * _EPI_THREADS - 1) // (8 * _EPI_THREADS), M)
    _fn(kernel, dtype)(grid, (_EPI_THREADS,), args, stream=cp.cuda.get_current_stream())


def warmup(dtype, rows) -> None:
    """Compile and load (NVRTC, disk-cached by CuPy) every gemm.cu module that prefill at these row counts
    launches with impl="auto", so that start-up can do it while the Numba compiles run in other processes."""
    fns = [_fn("silu_mul_rows", dtype)]  # the stand-alone epilogues (one module)
    for M in rows:
        for op, kernel in (("qkv", "gemm_qkv_rope"), ("silu", "gemm_silu"), ("residual", "gemm_residual")):
            if 1 < M <= AUTO_OWN_MAX_M[op]:
                nt = (M + 7) // 8
                fns.append(_fn(kernel, dtype, nt, *own_config(op, nt)))
    for f in fns:
        f.attributes  # forces the compile and module load now


# ---- scratch for the cuBLAS path ------------------------------------------------------------------------
_SCRATCH: dict = {}
_RETIRED: list = []


def prepare(max_tokens: int, max_cols: int = 0, dtype="float16") -> None:
    """Create the cuBLAS handle and its 32 MiB workspace and a scratch of max_tokens x max_cols elements of
    `dtype` (max_cols = max(qkv_dim, 2 * hidden_dim)). Call before capturing any graph that uses the cuBLAS path;
    an eager warm-up call of every op at the largest bucket has the same effect."""
    from . import cublas
    cublas.handle()
    _scratch(max_tokens * max_cols, dtype)


def workspace_bytes() -> int:
    """Device bytes of the current device's cuBLAS / cuBLASLt workspaces and GEMM scratch (retired scratch
    included)."""
    from . import cublas, cublaslt
    from .cuda_kernels import device_id
    dev = device_id()
    h, lt = cublas._HANDLES.get(dev), cublaslt._HANDLES.get(dev)
    return ((h.workspace.nbytes if h is not None else 0) + (lt.workspace.nbytes if lt is not None else 0) + sum(b.nbytes for k, b in _SCRATCH.items() if k[0] == dev)
            + sum(b.nbytes for b in _RETIRED if b.device.id == dev))


def _scratch(n: int, dtype):
    """A flat device buffer of at least n elements; grows only outside capture (addresses freeze in graphs)."""
    import cupy as cp
    from .cuda_kernels import device_id
    key = (device_id(), str(dtype))
    buf = _SCRATCH.get(key)
    if buf is None or buf.size < n:
        _check(not cp.cuda.get_current_stream().is_capturing(),
               f"cuBLAS scratch of {n} elements needed inside capture: call gemm.prepare() before capture")
        if buf is not None:
            _RETIRED.append(buf)  # graphs captured earlier (smaller buckets) still point at it: never free
        buf = cp.empty(max(n, 0 if buf is None else buf.size), dtype=_dtype(dtype))
        _SCRATCH[key] = buf
    return buf


def _cublas_into(c, a, w) -> None:
    from . import gemm_tune  # GemmEx or the cuBLASLt algorithm timed fastest for this shape
    gemm_tune.gemm_nt(c, a, w)


# ---- the ops ------------------------------------------------------------------------------------------------
def _own_norm(op: str, M: int, K: int, cols: int, *arrays) -> int:
    """The fused prefill norms (ops.py) run only on the own kernels: M <= 16, K % 8 == 0, 16-column partials, and
    a consumer's (qkv, silu) inv (M floats of dynamic shared memory) within 48 KiB with the config's static bytes.
    Returns those dynamic bytes (0 for the producer, residual)."""
    smem = 0 if op == "residual" else M * 4
    nt = (M + 7) // 8
    fits = own_smem_bytes(own_config(op, nt), nt) + smem <= _SMEM_MAX
    _check(_own_ok(M, K, *arrays) and M <= AUTO_OWN_MAX_M[op] and cols % 16 == 0 and fits,
           f"{op} with the fused prefill norm: M={M} (<= {AUTO_OWN_MAX_M[op]}), K={K} (% 8), {cols} columns (% 16)")
    return smem


def matmul_residual(x, a, w, *, impl: str = "auto", xh=None, ss=None) -> None:
    """x f32 [M, N] += a T[M, K] @ w T[N, K].T; with ss (the fused prefill norms, own kernel only): also xh T[M, N]
    = T(new x) and ss f32 [M, N / 16], the sums of squares of its 16-column slices."""
    M, K = a.shape
    N = w.shape[0]
    _check(x.shape == (M, N) and w.shape[1] == K and str(x.dtype) == "float32" and a.dtype == w.dtype,
           f"matmul_residual: x{x.shape} {x.dtype}, a{a.shape} {a.dtype}, w{w.shape} {w.dtype}")
    _contig(x, a, w)
    if ss is not None:
        _own_norm("residual", M, K, N, a, w)
        _check(xh.shape == (M, N) and xh.dtype == a.dtype and ss.size >= M * N // 16, "matmul_residual: xh / ss")
        _launch_own("gemm_residual_ss", "residual", a.dtype, M, N,
                    (x, xh, ss, a, w, np.int32(M), np.int32(N), np.int32(K)))
        return
    if _use_own(impl, "residual", M, K, a, w):
        _launch_own("gemm_residual", "residual", a.dtype, M, N,
                    (x, a, w, np.int32(M), np.int32(N), np.int32(K)))
    else:
        from . import gemm_tune
        gemm_tune.gemm_nt(x, a, w, accumulate=True)


def matmul_partial(c, a, w) -> None:
    """c [M, N] (f32 or T) = a T[M, K] @ w T[N, K].T, written whole (cuBLAS, beta = 0): a tensor-parallel partial
    sum."""
    M, K = a.shape
    _check(c.shape == (M, w.shape[0]) and w.shape[1] == K and str(c.dtype) in ("float32", str(a.dtype))
           and a.dtype == w.dtype, f"matmul_partial: c{c.shape} {c.dtype}, a{a.shape} {a.dtype}, w{w.shape} {w.dtype}")
    _contig(c, a, w)
    from . import gemm_tune
    gemm_tune.gemm_nt(c, a, w)


def matmul_silu(h, xn, w13, *, impl: str = "auto", ss=None, eps: float = 0.0) -> None:
    """h T[M, F] = silu(xn @ w1.T) * (xn @ w3.T), w13 = [w1; w3] T[2F, D]; with ss (own kernel only): xn = T(x)
    un-normed, each token's sums scaled by rsqrt(sum of its ss [M, D / 16] / D + eps)."""
    M, K = xn.shape
    F = h.shape[1]
    _check(h.shape[0] == M and w13.shape == (2 * F, K) and h.dtype == xn.dtype == w13.dtype,
           f"matmul_silu: h{h.shape} {h.dtype}, xn{xn.shape} {xn.dtype}, w13{w13.shape} {w13.dtype}")
    _contig(h, xn, w13)
    if ss is not None:
        smem = _own_norm("silu", M, K, K, xn, w13)
        _launch_own("gemm_silu_ss", "silu", xn.dtype, M, F, (h, xn, w13, ss, np.int32(M), np.int32(F), np.int32(K),
                                                             np.int32(K // 16), np.float32(eps)), smem)
        return
    if _use_own(impl, "silu", M, K, xn, w13):
        _launch_own("gemm_silu", "silu", xn.dtype, M, F, (h, xn, w13, np.int32(M), np.int32(F), np.int32(K)))
        return
    g = _scratch(M * 2 * F, xn.dtype)[: M * 2 * F].reshape(M, 2 * F)
    _cublas_into(g, xn, w13)
    _epi_launch("silu_mul_rows", xn.dtype, M, F, (h, g, np.int32(F), np.int32(F % 8 == 0)))


def qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, *, impl: str = "auto", ss=None,
             eps: float = 0.0) -> None:
    """q T[M, D] = roped (xn @ wq.T); k/v rows -> k_cache/v_cache T[S, KVH, hd] at pos[0] + m for real rows.

    Rows m >= n_tokens[0] (padding) and positions >= S never touch the cache; their q rows are written roped at a
    clamped position (finite, ignored downstream). rope_cs f32 [>= S, hd/2, 2] (cos, sin). With ss (own kernel
    only): xn = T(x) un-normed, scaled per token as in matmul_silu.
    """
    M, K = xn.shape
    D = q.shape[1]  # query width: K on one GPU, this GPU's heads under tensor parallelism (gpu/tp_engine.py)
    S, KVH, hd = k_cache.shape
    kvd = KVH * hd
    NQ = D + 2 * kvd
    _check(q.shape == (M, D) and wqkv.shape == (NQ, K) and v_cache.shape == k_cache.shape
           and q.dtype == xn.dtype == wqkv.dtype == k_cache.dtype == v_cache.dtype and D % hd == 0
           and hd % 2 == 0 and str(rope_cs.dtype) == "float32" and rope_cs.shape[0] >= S
           and rope_cs.shape[1:] == (hd // 2, 2) and str(pos.dtype) == "int32" and str(n_tokens.dtype) == "int32",
           f"qkv_rope: q{q.shape}, xn{xn.shape}, wqkv{wqkv.shape}, cache{k_cache.shape}, rope{rope_cs.shape}")
    _contig(q, xn, wqkv, rope_cs, k_cache, v_cache)
    tail = (np.int32(M), np.int32(D), np.int32(kvd), np.int32(hd), np.int32(S))
    if ss is not None:
        smem = _own_norm("qkv", M, K, K, xn, wqkv)
        _check(D == K, f"qkv_rope with the fused prefill norm: q width {D} != K {K}")
        args = (q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, ss) + tail + (np.int32(K // 16), np.float32(eps))
        _launch_own("gemm_qkv_rope_ss", "qkv", xn.dtype, M, NQ, args, smem)
        return
    if D == K and _use_own(impl, "qkv", M, D, xn, wqkv):  # the own kernel's K is D
        _launch_own("gemm_qkv_rope", "qkv", xn.dtype, M, NQ,
                    (q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens) + tail)
        return
    g = _scratch(M * NQ, xn.dtype)[: M * NQ].reshape(M, NQ)
    _cublas_into(g, xn, wqkv)
    vec = D % 8 == 0 and kvd % 8 == 0 and hd % 8 == 0
    _epi_launch("qkv_rope_rows", xn.dtype, M, NQ,
                (q, g, rope_cs, k_cache, v_cache, pos, n_tokens) + tail[1:] + (np.int32(vec),))
