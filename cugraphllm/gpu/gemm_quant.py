"""Prefill (M > 1) ops for quantized weights: gemm.py's qkv_rope / matmul_residual / matmul_silu with a QuantLinear
(quant/formats.py layouts, CuPy arrays) as the weight; same epilogues, same results as gemm.py on the dequantized
weight within the format's tolerance. Kernels: kernels/gemm_quant*.cu. Four paths, picked per call (`impl`):
- "own":     swap-AB mma.sync kernel dequantizing the weight tiles on load, epilogue fused (K % 8 == 0); one launch
             per OWN_MAX_M rows (each re-streams the weights, so it pays at small M only);
- "lt":      fp8 only, sm_89+ (K % 16 == 0): W8A8 (gemm_quant_lt.py). Activations quantized per token on the
             device (amax -> e4m3), cuBLASLt FP8 GEMM (algorithm per shape: gemm_tune.fp8_matmul); where cuBLASLt
             applies the token and row scales itself (outer-vector scaling, sm_90) it writes x += / a T scratch
             for gemm.cu's epilogues, else an f32 scratch that an epilogue scales with the residual / SiLU*up / RoPE;
- "dequant": int8 / int4 (and fp8 where "lt" cannot run): slabs of weight rows dequantized into two alternating
             16-bit scratches (the next slab's dequantization overlaps this slab's GEMM: quant_slabs.py), cuBLAS
             GemmEx per slab into the output columns, then gemm.cu's epilogues.
- "tc":      tiled tensor-core GEMM dequantizing packed weight tiles in shared memory (gemm_quant_tc.py), any M;
             int4 needs K % 32 == 0, fp8 / int8 K % 16 == 0; T or f32 output, then gemm.cu's row epilogues.
- "wg":      int4 / int8 on sm_90a, fp16: Hopper wgmma dequantizing in registers (gemm_w4.py); f32 += or T output,
             then gemm.cu's row epilogues.
"auto" (size rule, from scripts/bench_quant_prefill.py): "tc" where AUTO_TC_M (per format: row range) says so;
else "own" up to AUTO_OWN_MAX_M rows, then "wg" (int4 / int8 where it runs), "lt" (fp8) or "dequant". perm /
gain: the activations are gathered and scaled into packed column order first (a'[m, j] = gain[j] * a[m,
perm[j]]); "lt" does it while it quantizes.

Workspace (graphs bake addresses in; nothing allocates inside a capture). The engine calls, at start-up:
    nbytes = workspace_bytes(config, fmt, max_tokens, dtype)   # for its memory estimate
    allocate(config, fmt, max_tokens, dtype)                    # buffers, cuBLAS / cuBLASLt handles and workspaces
    warmup(fmt, dtype, rows, shapes)                            # optional: compiles, cuBLASLt plans per (N, M, K)
An eager call outside capture grows a missing buffer (as gemm.py's scratch does); inside capture it raises.
Shapes: M rows (the padded bucket), N output rows of W, K input columns, D dim, F hidden_dim, S context.
"""
from __future__ import annotations

import numpy as np

from ..quant.formats import FORMATS, QuantLinear
from . import gemm, gemm_w4
from . import gemm_quant_lt as lt
from . import gemm_quant_tc as tc
from . import quant_slabs as slabs
from .cuda_kernels import device_id, get_function
from .gemm_quant_ws import (_RETIRED, _WS, _buf, _tcws, _view, allocate, allocate_layers,  # noqa: F401
                            buffer_bytes, check as _check, layer_formats, workspace_bytes)

OWN_MAX_M = 64
AUTO_OWN_MAX_M = {"qkv": 32, "silu": 32, "residual": 32}  # to be tuned with scripts/bench_quant_prefill.py
# auto takes "tc" for lo <= M <= hi (format absent: never). H200, 2026-11-30 (benchmarks/results/
# quant_prefill_2026-11-30.json, same call): int4 wqkv M=10 own 40.5 / tc 50.3 us, M=128 dequant 75.9 / tc 93.2,
# M=512 dequant 116.9 / tc 277.4 (int8 alike), so no format takes it by default; impl="tc" still selects it.
AUTO_TC_M: dict = {}  # empty: measured slower than own / dequant (above)
# (WM, WK, STAGES) as gemm.OWN_CONFIG, (op, NT) keys override; 512 threads at NT > 4 would spill (128 registers)
OWN_CONFIG = {"residual": (2, 8, 2), "silu": (2, 2, 2), "qkv": (2, 4, 2),
              **{("residual", nt): (2, 4, 2) for nt in (5, 6, 7, 8)}}
_QFMT = {"fp8": 0, "int8": 1, "int4": 2}
_THREADS = 256


def _fn(name: str, fmt: str, dtype, cfg: tuple = ()):
    defines = {"QFMT": _QFMT[fmt]}
    if cfg:
        defines.update(NT=cfg[0], WM=cfg[1], WK=cfg[2], STAGES=cfg[3])
    return get_function("gemm_quant.cu", name, defines, dtype=getattr(dtype, "name", dtype))


def _launch(name, fmt, dtype, grid, block, args, cfg=()):
    import cupy as cp
    _fn(name, fmt, dtype, cfg)(grid, (block,), args, stream=cp.cuda.get_current_stream())


# ---- workspace: gemm_quant_ws.py (re-exported above: the engine, tests and scripts use these names here) --
def warmup(fmt: str, dtype, rows, shapes=(), groups=(128,)) -> None:
    """Compile the modules these ops launch at the given row counts and make the cuBLASLt plans for (N, K) in
    shapes (fp8), so that nothing compiles or queries heuristics during capture; groups: int4 group sizes (0: a
    whole row) for the wgmma path."""
    from . import cublaslt
    fns = [_fn("prep_act", fmt, dtype)]
    for M in rows:
        for op, kernel in (("qkv", "qgemm_qkv_rope"), ("silu", "qgemm_silu"), ("residual", "qgemm_residual")):
            fns.append(_fn(kernel, fmt, dtype, _own_cfg(op, min(M, OWN_MAX_M))))
        if _auto_tc(fmt, M):
            tc.warmup(fmt, dtype, [M])
        if M > AUTO_OWN_MAX_M["qkv"] and fmt == "fp8" and cublaslt.fp8_supported():
            lt.warmup(dtype, [M], shapes)
        if fmt in ("int4", "int8") and str(dtype) == "float16" and gemm_w4.usable():
            tiled = [k for k in groups if isinstance(k, tuple) and k[1]]  # tile-contiguous: wg at every M
            keys = groups if M > min(AUTO_OWN_MAX_M.values()) or gemm_w4.small(fmt) else tiled
            if keys:
                gemm_w4.warmup(M, keys, fmt)
    for f in fns:
        f.attributes  # forces the compile and module load now


# ---- operand checks and path choice ---------------------------------------------------------------------
def _check_weight(w: QuantLinear, N: int, K: int, op: str) -> None:
    _check(isinstance(w, QuantLinear) and w.fmt in FORMATS, f"{op}: weight must be a QuantLinear ({FORMATS})")
    _check(tuple(w.shape) == (N, K), f"{op}: weight shape {tuple(w.shape)}, expected {(N, K)}")
    q, s = w.qweight, w.scales
    if w.fmt == "int4":
        gs = w.group_size
        _check(gs > 0 and gs % 8 == 0 and K % gs == 0, f"{op}: int4 group size {gs} must divide K={K}, % 8 == 0")
        _check(q.shape == (N, K // 8) and str(q.dtype) == "uint32", f"{op}: int4 qweight {q.shape} {q.dtype}")
        for a in (s, w.zeros):
            _check(a is not None and a.shape == (N, K // gs) and str(a.dtype) == "float16",
                   f"{op}: int4 scales / zeros must be float16 [{N}, {K // gs}]")
    else:
        qdt = "uint8" if w.fmt == "fp8" else "int8"
        _check(q.shape == (N, K) and str(q.dtype) == qdt, f"{op}: {w.fmt} qweight {q.shape} {q.dtype}")
        _check(s.shape == (N,) and str(s.dtype) == "float32", f"{op}: {w.fmt} scales must be float32 [{N}]")
    _check(w.perm is None or (w.perm.shape == (K,) and str(w.perm.dtype) == "int32"), f"{op}: perm int32 [{K}]")
    _check(w.gain is None or (w.gain.shape == (K,) and str(w.gain.dtype) == "float32"), f"{op}: gain float32 [{K}]")
    gemm._contig(*(a for a in (q, s, w.zeros, w.perm, w.gain) if a is not None))


def _auto_tc(fmt: str, M: int) -> bool:
    lo, hi = AUTO_TC_M.get(fmt, (1, 0))
    return lo <= M <= hi


def _path(impl: str, op: str, w: QuantLinear, a, own: bool = True) -> str:
    """The path of one call; own needs 16-byte aligned operands (its activation loads are 16 bytes wide)."""
    from . import cublaslt
    M, K = a.shape
    N = w.shape[0]
    own_ok = own and K % 8 == 0 and a.data.ptr % 16 == 0 and w.qweight.data.ptr % 16 == 0
    lt_ok = w.fmt == "fp8" and K % 16 == 0 and N % 16 == 0 and cublaslt.fp8_supported()
    tc_ok = own and tc.supported(w, a)  # own False: a TP query width != K, which tc's qkv store assumes too
    wg_ok = gemm_w4.supported(w, a)
    if w.tiles:  # tile-contiguous int4 (gpu/quant_tiles.py): the two paths that read that layout
        _check(impl in ("auto", "wg", "dequant"), f"impl {impl!r} cannot read a tile-contiguous weight (wg, dequant)")
        if impl == "auto":
            return "wg" if wg_ok else "dequant"
    if impl == "auto":
        if tc_ok and _auto_tc(w.fmt, M):
            return "tc"
        if own_ok and M <= AUTO_OWN_MAX_M[op] and not (wg_ok and gemm_w4.small(w.fmt)):
            return "own"
        return "wg" if wg_ok else "lt" if lt_ok else "dequant"
    _check(impl in ("own", "lt", "dequant", "tc", "wg"), f"impl must be auto|own|lt|dequant|tc|wg, got {impl!r}")
    _check(impl != "wg" or wg_ok, f"wg kernel cannot run K={K} {w.fmt} {a.dtype} (int4 K % 32 / int8 K % 16, fp16, "
                                  f"sm_90)")
    _check(impl != "tc" or tc_ok, f"tc kernel cannot run K={K} {w.fmt} (int4 K % 32, else K % 16; aligned)")
    _check(impl != "own" or own_ok, f"own kernel cannot run K={K} (K % 8 == 0, 16-byte aligned operands)")
    _check(impl != "lt" or lt_ok, f"lt needs fp8 weights, N and K % 16 == 0, sm_89+ (N={N} K={K} {w.fmt})")
    return impl


def _own(kernel: str, op: str, w: QuantLinear, a, out_rows: int, args) -> None:
    """The own kernel over row chunks [m0, m0 + mc) of at most OWN_MAX_M rows; args(m0, mc) -> kernel args."""
    M = a.shape[0]
    for m0 in range(0, M, OWN_MAX_M):
        mc = min(OWN_MAX_M, M - m0)
        cfg = _own_cfg(op, mc)
        _check(op != "silu" or cfg[1] % 2 == 0, "matmul_silu needs an even WM (w1 and w3 tiles pair up)")
        rows = 16 * (cfg[1] // 2 if op == "silu" else cfg[1])
        _launch(kernel, w.fmt, a.dtype, ((out_rows + rows - 1) // rows,), 32 * cfg[1] * cfg[2], args(m0, mc), cfg)


def _own_cfg(op: str, M: int) -> tuple:
    nt = (M + 7) // 8
    wm, wk, stages = OWN_CONFIG.get((op, nt), OWN_CONFIG[op])
    return (nt, wm, wk, stages)


def _wargs(w: QuantLinear, K: int) -> tuple:
    """(q, row scales, group scales, zeros, gs) kernel arguments; unused pointers repeat the scales."""
    if w.fmt == "int4":
        return (w.qweight, w.scales, w.scales, w.zeros, np.int32(w.group_size))
    return (w.qweight, w.scales, w.scales, w.scales, np.int32(K))


def _prep(a, w: QuantLinear):
    """a' = T(gain * a[:, perm]) in the act buffer, or a itself when the layer has neither."""
    if w.perm is None and w.gain is None:
        return a
    M, K = a.shape
    out = _view("act", (M, K), a.dtype)
    perm = w.perm if w.perm is not None else w.scales  # unused pointers (flags 0)
    gain = w.gain if w.gain is not None else w.scales
    _launch("prep_act", w.fmt, a.dtype, ((K + _THREADS - 1) // _THREADS, M), _THREADS,
            (out, a, perm, gain, np.int32(K), np.int32(w.perm is not None), np.int32(w.gain is not None)))
    return out


def _dequant_gemm(c, a, w: QuantLinear, accumulate: bool) -> None:
    """c[:, :N] (=|+=) a' @ W.T, slab by slab of dequantized rows (c [M, N] f32 or T): quant_slabs.py."""
    a = _prep(a, w)
    K = w.shape[1]
    wargs, vec = _wargs(w, K), np.int32(K % 8 == 0)

    def dequant(slab, r0, n):
        _launch("dequant_rows", w.fmt, a.dtype, ((K + 8 * 128 - 1) // (8 * 128), n), 128,
                (slab, *wargs[:4], np.int32(r0), np.int32(K), wargs[4], vec, np.int32(w.tiles),
                 np.int32(w.shape[0])))
    slabs.dequant_gemm(c, a, w, accumulate, _view, dequant, device_id())


# ---- the ops ------------------------------------------------------------------------------------------------
def matmul_residual(x, a, w: QuantLinear, *, impl: str = "auto") -> None:
    """x f32 [M, N] += a T[M, K] @ W.T, W = the dequantized [N, K] of w"""
    M, K = a.shape
    N = x.shape[1]
    _check(x.shape == (M, N) and str(x.dtype) == "float32", f"matmul_residual: x{x.shape} {x.dtype}, a{a.shape}")
    _check_weight(w, N, K, "matmul_residual")
    gemm._contig(x, a)
    path = _path(impl, "residual", w, a)
    if path == "own":
        ap, wa = _prep(a, w), _wargs(w, K)
        _own("qgemm_residual", "residual", w, a, N, lambda m0, mc: (
            x[m0:m0 + mc], ap[m0:m0 + mc], *wa[:4], np.int32(mc), np.int32(N), np.int32(K), wa[4]))
    elif path == "lt":
        lt.residual(x, a, w)
    elif path == "tc":
        tc.run(x, _prep(a, w), w, "acc", _tcws())
    elif path == "wg":
        gemm_w4.run(x, _prep(a, w), w, "acc", ws=_tcws())
    else:
        _dequant_gemm(x, a, w, accumulate=True)


def matmul_silu(h, xn, w13: QuantLinear, *, impl: str = "auto") -> None:
    """h T[M, F] = silu(xn @ W1.T) * (xn @ W3.T), W13 = [W1; W3] the dequantized [2F, D] of w13"""
    M, K = xn.shape
    F = h.shape[1]
    _check(h.shape[0] == M and h.dtype == xn.dtype, f"matmul_silu: h{h.shape} {h.dtype}, xn{xn.shape} {xn.dtype}")
    _check_weight(w13, 2 * F, K, "matmul_silu")
    gemm._contig(h, xn)
    path = _path(impl, "silu", w13, xn)
    if path == "own":
        ap, wa = _prep(xn, w13), _wargs(w13, K)
        _own("qgemm_silu", "silu", w13, xn, F, lambda m0, mc: (
            h[m0:m0 + mc], ap[m0:m0 + mc], *wa[:4], np.int32(mc), np.int32(F), np.int32(K), wa[4]))
    elif path == "lt":
        lt.silu(h, xn, w13)
    elif path == "tc":
        tc.run(h, _prep(xn, w13), w13, "silu", _tcws(), g=_view("g", (M, 2 * F), xn.dtype))
    else:
        g = _view("g", (M, 2 * F), xn.dtype)
        if path == "wg":
            gemm_w4.run(g, _prep(xn, w13), w13, "store")
        else:
            _dequant_gemm(g, xn, w13, accumulate=False)
        gemm._epi_launch("silu_mul_rows", xn.dtype, M, F, (h, g, np.int32(F), np.int32(F % 8 == 0)))


def qkv_rope(q, xn, wqkv: QuantLinear, rope_cs, k_cache, v_cache, pos, n_tokens, *, impl: str = "auto") -> None:
    """gemm.qkv_rope with the dequantized [D + 2*kvd, D] of wqkv: q T[M, D] roped; k/v rows of real tokens to the
    caches T[S, KVH, hd] at pos[0] + m (padding rows and positions >= S never touch the cache)."""
    M, K = xn.shape
    D = q.shape[1]  # query width: K on one GPU, this GPU's heads under tensor parallelism (gpu/tp_engine.py)
    S, KVH, hd = k_cache.shape
    kvd = KVH * hd
    NQ = D + 2 * kvd
    _check(q.shape == (M, D) and v_cache.shape == k_cache.shape and q.dtype == xn.dtype == k_cache.dtype
           == v_cache.dtype and D % hd == 0 and hd % 2 == 0 and str(rope_cs.dtype) == "float32"
           and rope_cs.shape[0] >= S and rope_cs.shape[1:] == (hd // 2, 2) and str(pos.dtype) == "int32"
           and str(n_tokens.dtype) == "int32", f"qkv_rope: q{q.shape}, xn{xn.shape}, cache{k_cache.shape}")
    _check_weight(wqkv, NQ, K, "qkv_rope")
    gemm._contig(q, xn, rope_cs, k_cache, v_cache)
    path = _path(impl, "qkv", wqkv, xn, own=D == K)  # the own kernel's K is D
    geo = (np.int32(D), np.int32(kvd), np.int32(hd), np.int32(S))
    if path == "own":
        ap, wa = _prep(xn, wqkv), _wargs(wqkv, D)
        _own("qgemm_qkv_rope", "qkv", wqkv, xn, NQ, lambda m0, mc: (
            q[m0:m0 + mc], ap[m0:m0 + mc], *wa[:4], rope_cs, k_cache, v_cache, pos, n_tokens, np.int32(mc))
            + geo + (wa[4], np.int32(m0)))
    elif path == "lt":
        lt.qkv(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens, geo)
    elif path == "tc":
        tc.run(q, _prep(xn, wqkv), wqkv, "qkv", _tcws(), g=_view("g", (M, NQ), xn.dtype),
               qkv=(rope_cs, k_cache, v_cache, pos, n_tokens, (D, kvd, hd, S)))
    else:
        g = _view("g", (M, NQ), xn.dtype)
        if path == "wg":
            gemm_w4.run(g, _prep(xn, wqkv), wqkv, "store")
        else:
            _dequant_gemm(g, xn, wqkv, accumulate=False)
        vec = D % 8 == 0 and kvd % 8 == 0 and hd % 8 == 0
        gemm._epi_launch("qkv_rope_rows", xn.dtype, M, NQ,
                         (q, g, rope_cs, k_cache, v_cache, pos, n_tokens) + geo + (np.int32(vec),))
