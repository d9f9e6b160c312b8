"""One launcher per RawKernel of kernels/*.cu: the ops table of docs/DESIGN.md.

Each launcher checks shapes, dtypes and contiguity (ValueError), computes the grid and launches on the current
CuPy stream. None allocates, none synchronizes, and everything that changes between steps (pos, n_tokens,
token ids) is read from device memory, so every launcher is capturable in a cupy.cuda.Graph and one graph serves
every step. M == 1 matmuls run our GEMV kernels (kernels/gemv.cu); M > 1 goes to gemm.py (the prefill path).
A weight that is a QuantLinear (quant/formats.py) goes to gpu/ops_quant.py instead (same contracts).
Storage dtype T (float16 / bfloat16) is taken from the arrays; kernels compile once per dtype. GEMV launch shapes
(warps, unroll, ksplit per matrix) and the ss chunking come from gpu/gemv_plan.py.

The residual stream is one object, a state.Residual r (x f32, its 16-bit copy xn, the norm's partial sums ss, and a
communicator under tensor parallelism), that embedding, the norm_* ops and matmul_residual take.
Fused RMSNorm (decode): the `norm_*` ops take the residual stream with the norm gain folded into their weights
(state.py). In decode (M == 1) the producer of x (`embedding` / `matmul_residual` with r.ss set) also writes
r.xn = T(x) and r.ss = per-block sums of squares of x, and the consumer GEMV turns them into inv_rms itself
(kernels/gemv.cu): no separate norm kernel. In prefill (M > 1) they run a unit-gain `rmsnorm` into r.xn first.
Tensor parallelism (r.comm set, gpu/tp.py): matmul_residual computes its partial product into r.comm.part, NCCL
all-reduces it on the current stream and adds it into x (kernels/tp.cu, writing xn and ss in decode);
norm_matmul_logits computes the rank's vocabulary slice into r.comm.logits and all-gathers the full logits.
Parts live beside this module and are re-exported here: the embedding and norms (gpu/ops_norm.py), the linear ops
(gpu/ops_gemv.py), the tensor-parallel residual update and warm-up (gpu/ops_tp.py), token selection
(gpu/ops_select.py).
"""
from __future__ import annotations

import os

import numpy as np

from . import cuda_kernels as ck
from . import pdl
from ..quant.formats import QuantLinear
from . import gemv_plan as plan
from .gemv_plan import norm_chunk, norm_partials  # noqa: F401  (part of the ops API)

_cache: dict = {}  # (device, file, kernel, dtype, defines) -> RawKernel

# Prefill norms (M = 2..16 rows, one GPU, 16-bit weights): fused as in decode. The producers of x (embedding_pss,
# gemm.cu gemm_residual_ss) also write xn = T(x) and ss f32 [M, D / 16] (sums of squares of 16 columns); the
# norm_* ops' own GEMMs (gemm_qkv_rope_ss, gemm_silu_ss) sum ss per token and scale their fp32 sums by inv_rms in
# the epilogue: no rmsnorm kernel. Larger prefills (cuBLAS) keep the unit-gain rmsnorm into xn.
# CUGRAPHLLM_PREFILL_NORM=0: the rmsnorm kernel at every M (A/B).
PREFILL_NORM = os.environ.get("CUGRAPHLLM_PREFILL_NORM", "1") != "0"
PREFILL_NORM_MAX_M = 16  # the own GEMM's 16-row bucket (gemm.AUTO_OWN_MAX_M)


def prefill_norm_ok(config, weights) -> bool:
    """Whether an engine's prefill of <= 16 rows takes the fused norms: every layer's four matrices 16-bit arrays
    (a QuantLinear layer runs its own prefill path), dim % 16 == 0 and hidden_dim % 8 == 0 (the own kernels)."""
    mats = [m for lw in weights.layers for m in (lw.wqkv, lw.wo, lw.w13, lw.w2)]
    return (PREFILL_NORM and config.dim % 16 == 0 and config.hidden_dim % 8 == 0
            and not any(isinstance(m, QuantLinear) for m in mats))


# ---- helpers -----------------------------------------------------------------------------------------------
def _tname(name, a) -> str:
    n = a.dtype.name
    if n not in ("float16", "bfloat16"):
        raise ValueError(f"{name}: storage dtype must be float16 or bfloat16, got {n}")
    return n


def _fn(file: str, kernel: str, tname: str, **defines):
    key = (ck.device_id(), file, kernel, tname, tuple(sorted(defines.items())))
    f = _cache.get(key)
    if f is None:
        f = _cache[key] = ck.get_function(file, kernel, defines=defines, dtype=tname)
    return f


def _need_smem(fn, nbytes: int) -> None:
    """Raise the kernel's dynamic shared-memory limit on the current device once (outside capture: warmup() calls
    this first, under each device it will run on)."""
    ck.raise_smem_limit(fn, nbytes)


def _check(name, a, shape=None, dtype=None, align=0):
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
    if dtype is not None and a.dtype.name != dtype:
        raise ValueError(f"{name}: expected dtype {dtype}, got {a.dtype.name}")
    if align and a.data.ptr % align:
        raise ValueError(f"{name}: data must be {align}-byte aligned")


def _rows(name, a, ndim=2):
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(a.shape)}")
    return a.shape


def _scalar(name, a, dtype="int32"):
    _check(name, a, shape=(1,), dtype=dtype)


def _qkv_geometry(q, k_cache):
    """(M, D, S, KVH, hd) of a qkv op: q T[M, D], k_cache T[S, KVH, hd]."""
    M, D = _rows("q", q)
    S, KVH, hd = _rows("k_cache", k_cache, 3)
    return M, D, S, KVH, hd


def _qkv_checks(q, k_cache, v_cache, rope_cs, pos, n_tokens, Mx: int, t) -> None:
    """The checks the 16-bit and quantized qkv ops share, once xn's rows Mx and dtype t are known."""
    (M, D), (S, KVH, hd) = q.shape, k_cache.shape
    if Mx != M or D % hd or hd % 2:
        raise ValueError(f"qkv_rope: xn rows {Mx} vs q rows {M}, dim {D}, head_dim {hd}")
    _check("q", q, dtype=t)
    _check("k_cache", k_cache, dtype=t)
    _check("v_cache", v_cache, shape=(S, KVH, hd), dtype=t)
    if rope_cs.ndim != 3 or rope_cs.shape[0] < S or tuple(rope_cs.shape[1:]) != (hd // 2, 2):
        raise ValueError(f"rope_cs: expected float32 [>= {S}, {hd // 2}, 2], got {tuple(rope_cs.shape)}")
    _check("rope_cs", rope_cs, dtype="float32")
    _scalar("pos", pos)
    _scalar("n_tokens", n_tokens)


def _quant():
    """gpu/ops_quant.py: the launchers for QuantLinear weights (imported on first use; it imports this module)."""
    from . import ops_quant
    return ops_quant


def _norm_threads(D: int) -> int:
    """Block size of the row kernels of kernels/rmsnorm.cu: NORM_REGS (4) float4 columns a thread, so a row's loads
    are all in flight at once and a 512-row prefill's blocks fit in one wave (7B: 256 threads)."""
    per = (D + 15) // 16
    return max(32, min(1024, (per + 31) // 32 * 32))


# ---- embedding and norms: gpu/ops_norm.py ---------------------------------------------------------------------
from .ops_norm import add_rmsnorm, embedding, rmsnorm, rmsnorm_last  # noqa: E402,F401


# ---- GEMV (M == 1) with epilogues --------------------------------------------------------------------------
def _check_stats(xh, ss, D: int, t: str) -> None:
    if xh is None or ss is None:
        raise ValueError("xh and ss go together (the fused norm needs both)")
    _check("xh", xh, shape=(1, D), dtype=t)
    if ss.ndim != 1 or ss.size < norm_partials(D):
        raise ValueError(f"ss: expected float32 [>= {norm_partials(D)}], got shape {tuple(ss.shape)}")
    _check("ss", ss, dtype="float32")


def _check_pnorm(r, M: int, D: int, t: str) -> None:
    """The fused prefill norms' stream: xn T [M, D] and ss f32 [>= M * D / 16], D % 16 == 0."""
    if D % 16 or r.ss is None or r.ss.size < M * D // 16 or M > PREFILL_NORM_MAX_M:
        raise ValueError(f"prefill norms: need D % 16 == 0, M <= {PREFILL_NORM_MAX_M} and ss of >= M * D / 16 floats"
                         f" (D {D}, M {M}, ss {None if r.ss is None else r.ss.size})")
    _check("xn", r.xn, shape=(M, D), dtype=t, align=16)
    _check("ss", r.ss, dtype="float32")


def _norm_args(r, eps):
    """Checks of a norm_* op's residual stream r; returns (M, D, xn, x, the GEMV's extra arguments)."""
    x, xn, ss = r.x, r.xn, r.ss
    M, D = _rows("x", x)
    _check("x", x, dtype="float32")
    _check("xn", xn, shape=(M, D))
    if M == 1:
        _check_stats(xn, ss, D, _tname("xn", xn))
    return M, D, xn, x, (ss, np.int32(norm_partials(D)), np.float32(eps))


def _gemv_fn(kernel: str, t: str, K: int, n_pairs: int):
    """(function, dynamic smem bytes, blocks, threads) of one GEMV launch."""
    p = plan.plan_for("fp16")
    warps, unroll, ks = p.gemv_config(kernel, K, n_pairs)
    xsmem = p.xsmem
    fn = _fn("gemv.cu", kernel, t, GEMV_WARPS=warps, GEMV_UNROLL=unroll, GEMV_KSPLIT=ks, GEMV_XSMEM=xsmem,
             GEMV_EARLY=plan.gemv_early())
    smem = (2 * K + 15) // 16 * 16 if xsmem else 0
    _need_smem(fn, smem)
    return fn, smem, -(-n_pairs // (warps // ks)), 32 * warps


def _gemv_check(a_name, a, w_name, w, n_rows):
    M, K = _rows(a_name, a)
    t = _tname(w_name, w)
    al = 16 if K % 8 == 0 else 0
    _check(a_name, a, dtype=t, align=al)
    _check(w_name, w, shape=(n_rows, K), align=al)
    return M, K, t


def _launch_gemv(kernel, t, K, n_pairs, args):
    fn, smem, blocks, threads = _gemv_fn(kernel, t, K, n_pairs)
    pdl.launch(fn, (blocks,), (threads,), args, smem, pdl=True)  # kernels/gemv.cu calls pdl_enter


# ---- the linear ops (qkv_rope, matmul_residual, matmul_silu, matmul_logits, norm_*): gpu/ops_gemv.py ---------
from .ops_gemv import (matmul_logits, matmul_residual, matmul_silu, norm_matmul_logits,  # noqa: E402,F401
                       norm_matmul_silu, norm_qkv_rope, qkv_rope)


# ---- token selection: gpu/ops_select.py (argmax, the multi-block sampler and its workspace) ----------------
from .ops_select import (SAMPLE_CHUNK, SAMPLE_NB, SAMPLE_THREADS, SampleWork, argmax,  # noqa: E402,F401
                         sample, sample_workspace, sampling_params_array)


# ---- warm-up -----------------------------------------------------------------------------------------------
def warmup(config, dtype: str = "float16") -> None:
    """Compile and load every decode kernel for this model and dtype, and raise shared-memory limits, so that
    nothing compiles or sets attributes during graph capture. Allocates nothing on the GPU."""
    t = "bfloat16" if dtype in ("bfloat16", "bf16") else "float16"
    fns = [_fn("embedding.cu", k, t) for k in ("embedding", "embedding_ss")]
    fns += [_fn("rmsnorm.cu", k, t) for k in ("rmsnorm", "add_rmsnorm", "rmsnorm_last", "rmsnorm_unit",
                                              "rmsnorm_last_unit")]
    c = config
    for kernel, K, pairs in (("gemv_qkv_rope", c.dim, c.qkv_dim // 2), ("gemv_residual", c.dim, (c.dim + 1) // 2),
                             ("gemv_residual", c.hidden_dim, (c.dim + 1) // 2), ("gemv_silu", c.dim, c.hidden_dim),
                             ("gemv_logits", c.dim, (c.vocab_size + 1) // 2)):
        for k in (kernel, {"gemv_residual": "gemv_residual_ss"}.get(kernel, kernel + "_norm")):
            fns.append(_gemv_fn(k, t, K, pairs)[0])
    fns += [_fn("sampling.cu", k, "float16") for k in ("argmax", "sample_prep", "sample_draw", "sample_prep_v2",
                                                     "sample_draw_v2", "sample_draw_v3")]
    for f in fns:
        f.attributes  # forces NVRTC compile + module load now


from .ops_tp import residual_allreduce, warmup_tp  # noqa: E402,F401  (tensor parallelism; warmup_tp: ops API)
