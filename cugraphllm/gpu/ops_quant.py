"""Launchers of the quantized decode GEMVs (kernels/gemv_quant.cu): the ops of gpu/ops.py when the weight is a
`QuantLinear` of CuPy arrays (cugraphllm/quant/formats.py). gpu/ops.py dispatches here; same signatures, same
outputs, same rules (no allocation, no sync, capturable). M > 1 (prefill) goes to gpu/gemm_quant.py.

One module per (format, activation dtype T, launch shape); launch shapes come from gemv_plan.plan_for(fmt). The
residual GEMVs write the ss partial sums with the model-wide chunking gemv_plan.norm_chunk(D), so a quantized
producer feeds a 16-bit consumer and the other way round.
"""
from __future__ import annotations

import numpy as np

from ..quant.formats import FORMATS, QuantLinear
from . import gemv_plan
from . import ops as _ops
from . import pdl, quant_tiles
from .cuda_kernels import device_id, env_bit, get_function, qg_ldcg

_FMT_ID = {"fp8": 1, "int8": 2, "int4": 3}
_NULL = np.uint64(0)  # a null pointer argument (no perm / no gain / no zeros)
_cache: dict = {}
CURSOR_ENV = "CUGRAPHLLM_QG_CURSOR"
PARK_ENV = "CUGRAPHLLM_QG_PARK"  # 1 / unset: QG_PARK's default (kernels/gemv_quant.cuh); 0: off everywhere


def qg_cursor() -> bool:
    """CUGRAPHLLM_QG_CURSOR now: 1 / unset the tiles load through per-lane cursors (kernels/gemv_quant_cursor.cuh;
    int4, and fp8 / int8 where a plan puts them on the tiles; 7B int4 decode 1.67-1.68 / 1.80-1.81 vs 1.77 /
    1.89-1.90 ms/token at prompt 10 / 500, H200, eleventh session), 0 the loop of before; a one-line ConfigError
    otherwise. Read at each launch: part of the cache key."""
    return env_bit(CURSOR_ENV)


def is_quant(w) -> bool:
    return isinstance(w, QuantLinear)


def _prefill(op: str):
    """gemm_quant.<op> (the M > 1 GEMMs of quantized weights), or a clear error while that module is absent."""
    try:
        from . import gemm_quant
    except ImportError:
        raise NotImplementedError(f"{op}: prefill (M > 1) with quantized weights needs gpu/gemm_quant.py, "
                                  "which is not installed") from None
    return getattr(gemm_quant, op)


# ---- weight checks -------------------------------------------------------------------------------------------
def _arr(name, a, shape, dtype, align=0):
    _ops._check(name, a, shape=shape, dtype=dtype, align=align)


def weight_args(name: str, w: QuantLinear, n_rows: int, K: int) -> tuple:
    """Checks one device QuantLinear against [n_rows, K]; returns the kernel's weight arguments
    (qweight, scales, zeros, perm, gain, K, group_size, log2 of the int4 vectors per group or -1)."""
    if w.fmt not in FORMATS:
        raise ValueError(f"{name}: unsupported weight format {w.fmt!r}; supported: {', '.join(FORMATS)}")
    if tuple(w.shape) != (n_rows, K):
        raise ValueError(f"{name}: expected a [{n_rows}, {K}] matrix, got {tuple(w.shape)}")
    gs = 1
    if w.fmt == "int4":
        gs = int(w.group_size)
        if K % 8 or gs <= 0 or gs % 8 or K % gs:
            raise ValueError(f"{name}: int4 needs group size ({gs}) and K ({K}) multiples of 8, group dividing K")
        _arr(f"{name}.qweight", w.qweight, (n_rows, K // 8), "uint32", align=16 if K % 32 == 0 else 4)
        _arr(f"{name}.scales", w.scales, (n_rows, K // gs), "float16")
        _arr(f"{name}.zeros", w.zeros, (n_rows, K // gs), "float16")
        if w.tiles and (K % 128 or gs % 128 or n_rows % 16 or w.tiles not in (1, 2)):
            raise ValueError(f"{name}: tile-contiguous int4 (tiles {w.tiles}) needs K ({K}) and the group ({gs}) "
                             f"multiples of 128 and rows ({n_rows}) of 16")
    else:
        _arr(f"{name}.qweight", w.qweight, (n_rows, K), "uint8" if w.fmt == "fp8" else "int8",
             align=16 if K % 16 == 0 else 0)
        _arr(f"{name}.scales", w.scales, (n_rows,), "float32")
    if w.perm is not None:
        _arr(f"{name}.perm", w.perm, (K,), "int32")
    if w.gain is not None:
        _arr(f"{name}.gain", w.gain, (K,), "float32", align=16)
    zeros = w.zeros if w.fmt == "int4" else _NULL
    v = gs // 32   # int4 16-byte vectors per group: a power of two takes a shift in the kernel
    gsh = v.bit_length() - 1 if gs % 32 == 0 and v & (v - 1) == 0 else -1
    return (w.qweight, w.scales, zeros, _NULL if w.perm is None else w.perm, _NULL if w.gain is None else w.gain,
            np.int32(K), np.int32(gs), np.int32(gsh))


def _act(name, a, K):
    """Activation a T [M, K]; returns (M, T name)."""
    M, Ka = _ops._rows(name, a)
    t = _ops._tname(name, a)
    if Ka != K:
        raise ValueError(f"{name}: expected {K} columns (the weight's K), got {Ka}")
    _ops._check(name, a, dtype=t, align=16 if K % 8 == 0 else 0)
    return M, t


# ---- launch --------------------------------------------------------------------------------------------------
def _config(kernel: str, fmt: str, K: int, n_pairs: int, chunk: int = 0, tiled: bool = False):
    """(warps, unroll, ksplit); a residual-with-ss launch keeps block rows a multiple of the ss chunk."""
    p = gemv_plan.plan_for(fmt)
    warps, unroll, ks = p.gemv_config(kernel, K, n_pairs, tiled)
    if chunk and (tiled or p.use_mma(n_pairs, kernel, K)):  # the epilogue runs in rounds of one pair a warp
        if (2 * warps) % chunk:
            raise ValueError(f"{kernel}: ss chunk {chunk} does not divide the {2 * warps} rows of a round")
    elif chunk:
        while ks > 1 and (2 * (warps // ks)) % chunk:
            ks //= 2
        if (2 * (warps // ks)) % chunk:
            raise ValueError(f"{kernel}: ss chunk {chunk} does not divide the {2 * warps // ks} rows of a block")
    return warps, unroll, ks


def _function(kernel: str, fmt: str, t: str, K: int, n_pairs: int, chunk: int = 0, group: int | None = None,
              tiled: bool = False):
    """(function, dynamic smem bytes, blocks, threads) of one launch; compiles and sets smem limits once.
    group: int4's columns per group (None: not known, the staging sized for any). tiled: the weight is
    tile-contiguous (QuantLinear.tiles): the tiles whatever the plan says."""
    warps, unroll, ks = _config(kernel, fmt, K, n_pairs, chunk, tiled)
    plan = gemv_plan.plan_for(fmt)
    mma = tiled or plan.use_mma(n_pairs, kernel, K)
    ldcg = qg_ldcg()  # the prologue's a / ss loads through __ldcg (CUGRAPHLLM_QG_LDCG=0: ld.global.nc, stale under PDL)
    cursor = qg_cursor() and mma  # QG_CURSOR only where it acts (the tiles): other compiles keep their keys
    park = env_bit(PARK_ENV)
    key = (device_id(), kernel, fmt, t, warps, unroll, ks, plan.hacc, mma, plan.pfs, plan.pipe, ldcg, park, tiled,
           cursor)
    fn = _cache.get(key)
    if fn is None:
        defines = {"QFMT": _FMT_ID[fmt], "QG_WARPS": warps, "QG_UNROLL": unroll, "QG_KSPLIT": ks,
                   "QG_HACC": plan.hacc, "QG_PFS": plan.pfs, "QG_PIPE": plan.pipe, "QG_LDCG": int(ldcg)}
        if mma:  # ks splits a tile's K; the epilogues see one pair a warp
            defines.update(QG_MMA=1, QG_MSPLIT=ks, QG_KSPLIT=1, QG_HACC=0)
        if cursor:
            defines["QG_CURSOR"] = 1
        if not park:
            defines["QG_PARK"] = 0
        if tiled:
            defines["QG_TILED"] = 1
        fn = _cache[key] = get_function("gemv_quant.cu", kernel, defines, dtype=t)
    smem = plan.smem_bytes(K, n_pairs, group, mma)
    _ops._need_smem(fn, smem)
    resident = _resident(fn, 32 * warps, smem) if plan.persist else 0
    return fn, smem, plan.grid(-(-n_pairs // plan.pairs_per_block(warps, ks, mma)), resident), 32 * warps


def _resident(fn, threads: int, smem: int) -> int:
    """Blocks of `fn` that fit on the current GPU at once: per SM by registers (64K, 8-register granules), threads
    (2048) and shared memory (228 KB, 1 KB reserved per block), times the SMs. Cached per (device, function)."""
    key = (device_id(), fn.kernel.ptr, threads, smem)
    if key not in _resident_cache:
        import cupy as cp
        regs = -(-int(fn.num_regs) // 8) * 8
        per_sm = min(65536 // max(1, regs * threads), 2048 // threads,
                     (228 << 10) // (smem + int(fn.shared_size_bytes) + 1024))
        sms = int(cp.cuda.Device().attributes["MultiProcessorCount"])
        _resident_cache[key] = max(1, per_sm) * sms
    return _resident_cache[key]


_resident_cache: dict = {}


def _launch(kernel, w, t, K, n_pairs, args, chunk=0):
    if w.tiles and (w.tiles == quant_tiles.HALVES) != kernel.startswith("qgemv_silu"):  # quant_tiles.FIELDS
        raise ValueError(f"{kernel}: a weight tiled with pairing {w.tiles} belongs to another kernel")
    group = (w.group_size or K) if w.fmt == "int4" else K
    fn, smem, blocks, threads = _function(kernel, w.fmt, t, K, n_pairs, chunk, group, bool(w.tiles))
    pdl.launch(fn, (blocks,), (threads,), args, smem, pdl=True)  # both drivers call pdl_enter


# ---- ops (same contracts as gpu/ops.py) ----------------------------------------------------------------------
def _qkv(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    M, D, S, KVH, hd = _ops._qkv_geometry(q, k_cache)
    kvd = KVH * hd
    K = wqkv.shape[1]
    Mx, t = _act("xn", xn, K)
    wargs = weight_args("wqkv", wqkv, D + 2 * kvd, K)
    _ops._qkv_checks(q, k_cache, v_cache, rope_cs, pos, n_tokens, Mx, t)
    args = (q, k_cache, v_cache, xn, rope_cs, pos, n_tokens, np.int32(D), np.int32(kvd), np.int32(hd),
            np.int32(S)) + wargs
    return M, K, t, (D + 2 * kvd) // 2, args


def qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    M, K, t, pairs, args = _qkv(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    if M > 1:
        return _prefill("qkv_rope")(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _launch("qgemv_qkv_rope", wqkv, t, K, pairs, args)


def norm_qkv_rope(q, r, eps, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens):
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1:
        if not _fused_norm(r, eps, wqkv, "qkv", q.shape[1] == D):  # fp8: the codes instead of xn (fp8_actq.py)
            _ops.rmsnorm(xn, x, None, eps)
        return qkv_rope(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _, K, t, pairs, args = _qkv(q, xn, wqkv, rope_cs, k_cache, v_cache, pos, n_tokens)
    _launch("qgemv_qkv_rope_norm", wqkv, t, K, pairs, args + extra)


def _fused_norm(r, eps, w, op: str, own: bool = True) -> bool:
    """fp8 with CUGRAPHLLM_FP8_FUSE_ACTQ: the prefill norm writes the product's e4m3 input (gpu/fp8_actq.py)."""
    if w.fmt != "fp8":
        return False
    from . import fp8_actq
    return fp8_actq.norm(r, eps, w, op, own)


def matmul_residual(r, a, w):
    """One GPU only (ops.matmul_residual sends r.comm to its all-reduce path first)."""
    x, xh, ss = r.x, r.xn, r.ss
    M, N = _ops._rows("x", x)
    K = w.shape[1]
    Ma, t = _act("a", a, K)
    wargs = weight_args("w", w, N, K)
    if Ma != M:
        raise ValueError(f"matmul_residual: a has {Ma} rows, x has {M}")
    _ops._check("x", x, dtype="float32", align=8)
    if M > 1:
        return _prefill("matmul_residual")(x, a, w)
    if ss is not None:
        _ops._check_stats(xh, ss, N, t)
        chunk = gemv_plan.norm_chunk(N)
        return _launch("qgemv_residual_ss", w, t, K, (N + 1) // 2,
                       (x, xh, ss, np.int32(chunk), a, np.int32(N)) + wargs, chunk)
    _launch("qgemv_residual", w, t, K, (N + 1) // 2, (x, a, np.int32(N)) + wargs)


def _silu(h, xn, w13):
    M, F = _ops._rows("h", h)
    K = w13.shape[1]
    Mx, t = _act("xn", xn, K)
    wargs = weight_args("w13", w13, 2 * F, K)
    if Mx != M:
        raise ValueError(f"matmul_silu: xn has {Mx} rows, h has {M}")
    _ops._check("h", h, dtype=t)
    return M, F, K, t, wargs


def matmul_silu(h, xn, w13):
    M, F, K, t, wargs = _silu(h, xn, w13)
    if M > 1:
        return _prefill("matmul_silu")(h, xn, w13)
    _launch("qgemv_silu", w13, t, K, F, (h, xn, np.int32(F)) + wargs)


def norm_matmul_silu(h, r, eps, w13):
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1:
        if not _fused_norm(r, eps, w13, "silu"):
            _ops.rmsnorm(xn, x, None, eps)
        return matmul_silu(h, xn, w13)
    _, F, K, t, wargs = _silu(h, xn, w13)
    _launch("qgemv_silu_norm", w13, t, K, F, (h, xn, np.int32(F)) + wargs + extra)


def _logits(logits, xn, w):
    _, V = _ops._rows("logits", logits)
    _ops._check("logits", logits, shape=(1, V), dtype="float32")
    K = w.shape[1]
    M, t = _act("xn", xn, K)
    wargs = weight_args("w", w, V, K)
    if M != 1:
        raise ValueError(f"matmul_logits: xn must have 1 row (use rmsnorm_last in prefill), got {M}")
    return V, K, t, wargs


def matmul_logits(logits, xn, w):
    V, K, t, wargs = _logits(logits, xn, w)
    _launch("qgemv_logits", w, t, K, (V + 1) // 2, (logits, xn, np.int32(V)) + wargs)


def norm_matmul_logits(logits, r, eps, w, n_tokens):
    """One GPU's (or one rank's vocabulary slice of) the LM head; ops.norm_matmul_logits does the all-gather."""
    M, D, xn, x, extra = _ops._norm_args(r, eps)
    if M > 1:
        _ops.rmsnorm_last(xn[:1], x, None, eps, n_tokens)
        return matmul_logits(logits, xn[:1], w)
    _ops._scalar("n_tokens", n_tokens)
    V, K, t, wargs = _logits(logits, xn, w)
    _launch("qgemv_logits_norm", w, t, K, (V + 1) // 2, (logits, xn, np.int32(V)) + wargs + extra)


# ---- warm-up -------------------------------------------------------------------------------------------------
def warmup(config, dtype: str, fmt: str, head: bool = False, tiled=frozenset()) -> None:
    """Compile and load every quantized decode kernel of this model (format fmt; the LM head too when `head`);
    tiled: the fields (wqkv, wo, w13, w2, output) whose weights are tile-contiguous (gpu/quant_tiles.py)."""
    t = "bfloat16" if dtype in ("bfloat16", "bf16") else "float16"
    c = config
    chunk = gemv_plan.norm_chunk(c.dim)
    dim, hid = (c.dim, (c.dim + 1) // 2), (c.hidden_dim, (c.dim + 1) // 2)
    qkv = (c.dim, c.qkv_dim // 2)
    todo = [("wqkv", "qgemv_qkv_rope", *qkv, 0), ("wqkv", "qgemv_qkv_rope_norm", *qkv, 0),
            ("wo", "qgemv_residual", *dim, 0), ("wo", "qgemv_residual_ss", *dim, chunk),
            ("w2", "qgemv_residual", *hid, 0), ("w2", "qgemv_residual_ss", *hid, chunk),
            ("w13", "qgemv_silu", c.dim, c.hidden_dim, 0), ("w13", "qgemv_silu_norm", c.dim, c.hidden_dim, 0)]
    if head:
        todo += [("output", "qgemv_logits", c.dim, (c.vocab_size + 1) // 2, 0),
                 ("output", "qgemv_logits_norm", c.dim, (c.vocab_size + 1) // 2, 0)]
    for field, kernel, K, pairs, ch in todo:
        fn = _function(kernel, fmt, t, K, pairs, ch, tiled=field in tiled)[0]
        fn.attributes  # forces NVRTC compile + module load now
