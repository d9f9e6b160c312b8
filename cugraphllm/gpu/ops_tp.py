"""The tensor-parallel parts of the ops API (gpu/ops.py re-exports warmup_tp; matmul_residual calls
residual_allreduce when r.comm is set). The ops helpers and matmul_logits are reached through gpu/ops.py at call
time, so that patches of ops (tests/test_allreduce_cpu.py, tests/test_tp_quant.py) apply here too."""
from __future__ import annotations

import numpy as np

from ..quant.formats import QuantLinear
from . import ops as _ops


def residual_allreduce(r, a, w):
    """The tensor-parallel residual update: p = a @ w.T (this rank's partial sum into r.comm.part: f32, or a's
    dtype in prefill where r.comm.add_16bit says so), p summed over ranks (NCCL all-reduce on the current stream,
    or gpu/allreduce.py), x += p; decode with r.ss also writes xn and ss. The partial
    product goes through the same dispatch as one GPU (a QuantLinear w to ops_quant / gemm_quant)."""
    import cupy as cp
    M, N = _ops._rows("x", r.x)
    _ops._check("x", r.x, dtype="float32", align=8)
    t = _ops._tname("a", a)
    if a.ndim != 2 or a.shape[0] != M:
        raise ValueError(f"matmul_residual: a {tuple(a.shape)} does not have the {M} rows of x")
    p = r.comm.part[:M]
    _ops._check("comm.part", p, shape=(M, N), dtype="float32", align=16)
    if M == 1:  # the plain f32-output GEMV (LM head kernel): p = a @ w.T
        _ops.matmul_logits(p, a, w)
    elif isinstance(w, QuantLinear):  # its GEMMs accumulate into p: zero it first (a memset node when captured)
        cp.cuda.runtime.memsetAsync(p.data.ptr, 0, p.nbytes, cp.cuda.get_current_stream().ptr)
        from . import gemm_quant
        gemm_quant.matmul_residual(p, a, w)
    else:  # p = a @ w.T written whole by cuBLAS (beta = 0): no memset; in a's dtype where the comm sums that
        from . import gemm
        if r.comm.add_16bit(M * N, t):
            p = r.comm.part.reshape(-1).view(a.dtype)[: M * N].reshape(M, N)
        gemm.matmul_partial(p, a, w)
    if M == 1 and r.ss is not None:
        _ops._check_stats(r.xn, r.ss, N, t)
        n, chunk = _ops.norm_partials(N), _ops.norm_chunk(N)
        fused = getattr(r.comm, "all_reduce_residual", None)  # gpu/allreduce.py: sum and update in one kernel
        if fused is not None and fused(p, r, chunk):
            return
        r.comm.all_reduce(p)
        _ops._fn("tp.cu", "residual_add_ss", t)((-(-n // 4),), (128,),
                                                (r.x, r.xn, r.ss, p, np.int32(N), np.int32(chunk)))
        return
    add = getattr(r.comm, "all_reduce_add", None)  # gpu/allreduce.py lamport: sum and x += in one kernel
    if add is not None and add(p, r.x):
        return
    r.comm.all_reduce(p)
    _ops._fn("tp.cu", "residual_add", t)((min(-(-(M * N) // 256), 4096),), (256,), (r.x, p, np.int64(M * N)))


def warmup_tp(config, local, dtype: str = "float16") -> None:
    """warmup() for one GPU of a tensor-parallel engine: the GEMVs at its slice's shapes (`local`: its heads, its
    part of hidden_dim and of the vocabulary; K = the full dim where the input is the residual stream), the partial
    residual products (plain f32 GEMVs) and kernels/tp.cu. Call with that GPU current."""
    t = "bfloat16" if dtype in ("bfloat16", "bf16") else "float16"
    D, c = config.dim, local
    fns = [_ops._fn("tp.cu", k, t) for k in ("residual_add_ss", "residual_add")]
    v = (c.vocab_size + 1) // 2
    for kernel, K, pairs in (("gemv_qkv_rope_norm", D, c.qkv_dim // 2), ("gemv_silu_norm", D, c.hidden_dim),
                             ("gemv_logits_norm", D, v), ("gemv_logits", D, v),
                             ("gemv_logits", c.dim, (D + 1) // 2), ("gemv_logits", c.hidden_dim, (D + 1) // 2)):
        fns.append(_ops._gemv_fn(kernel, t, K, pairs)[0])
    for f in fns:
        f.attributes
