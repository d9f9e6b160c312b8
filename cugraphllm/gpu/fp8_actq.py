"""fp8 prefill: the per-token activation quantization fused into the producer of the activations (issue #10).

Switch CUGRAPHLLM_FP8_FUSE_ACTQ, read at each eager or captured call (one process can A/B it):
  0: as before: every fp8 "lt" product quantizes its 16-bit input in a pass of its own
     (gemm_quant.cu quant_act_fp8);
  1: the prefill RMSNorm of norm_qkv_rope / norm_matmul_silu writes the e4m3 codes and token scales of its output
     directly (rmsnorm.cu rmsnorm_unit_fp8; the 16-bit xn is not written: that op's product is its only reader, the
     LM head normalizes x itself); the SiLU*up epilogue writes h and also w2's codes and scales
     (fp8_actq.cu silu_mul_quant_rows / w8a8_silu_quant_rows), which w2's product then takes instead of
     re-reading h; any other input (wo's: the attention output) goes through a vectorized quant_act_fp8_v;
  2 (default): as 1, and the SiLU*up epilogue does not write h either (w2 reads only the codes). Valid where w2
     is the same kind of fp8 weight as w13 without perm / gain (every fp8 loader: quant/layers.py quantizes the four matrices
     of a layer alike); an lt product that finds h unwritten and cannot take the codes raises.
Every fused kernel writes exactly what quant_act_fp8 writes from the 16-bit values (kernels/fp8_codes.cuh).
Measured (H200, 7B fp8, benchmarks/results/ninth_2026-11-30/): TTFT at 128 / 500 tokens 4.49, 4.35 / 8.63, 8.44 ms
at 0 against 3.81, 3.81 / 7.94, 7.96 at 2, alternating in one call; decode unchanged.

The hand-off: gemm_quant's aq / sa workspace holds the codes of one 16-bit activation array a (offer); the next
lt product pops that record (take) and uses the codes if its input is a (same address, shape, dtype) and its
weight has no perm and the gain the codes were made with. Host state, set in launch order, so a captured graph
replays the same hand-offs. Shapes: M rows, D dim, F hidden_dim (this GPU's part under TP).
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendError
from .env import env_int

_PENDING: dict = {}  # device -> (ptr, shape, dtype name, gain array or None, written)
KERNELS = ("quant_act_fp8_v", "silu_mul_quant_rows", "w8a8_silu_quant_rows")  # kernels/fp8_actq.cu


def mode() -> int:
    """CUGRAPHLLM_FP8_FUSE_ACTQ now: 0 off, 1 fused, 2 fused with h unwritten (default: unset / blank); a one-line
    ConfigError otherwise."""
    return env_int("CUGRAPHLLM_FP8_FUSE_ACTQ", 2, 0, 2)


def _dev() -> int:
    from .cuda_kernels import device_id
    return device_id()


def _key(a) -> tuple:
    return (a.data.ptr, tuple(a.shape), a.dtype.name)


def offer(a, gain, written: bool) -> None:
    """gemm_quant's aq / sa now hold the codes of a (times gain); written: whether a itself holds its values."""
    _PENDING[_dev()] = _key(a) + (gain, written)


def forget() -> None:
    _PENDING.pop(_dev(), None)


def take(a, w) -> bool:
    """Pops the hand-off; True where it holds a's codes for weight w (no perm, the same gain)."""
    if not _PENDING:  # the common case (switch off): no device query
        return False
    rec = _PENDING.pop(_dev(), None)
    if rec is None:
        return False
    ok = rec[:3] == _key(a) and w.perm is None and rec[3] is w.gain
    if not ok and not rec[4] and rec[:3] == _key(a):
        raise BackendError("fp8 fused activation quantization (CUGRAPHLLM_FP8_FUSE_ACTQ=2) left this activation "
                           "unwritten, and its product cannot take the codes (weight with perm / another gain)")
    return ok


def quant(a, w, aq, sa) -> bool:
    """quant_act_fp8_v (switch on, no perm, K % 8 == 0, 16-byte rows): aq [M, K] uint8, sa [M] f32."""
    M, K = a.shape
    if not mode() or w.perm is not None or K % 8 or a.data.ptr % 16:
        return False
    gain = w.gain if w.gain is not None else sa
    _launch("quant_act_fp8_v", a.dtype, M, _threads(K), (aq, sa, a, gain, np.int32(K), np.int32(w.gain is not None)))
    return True


def norm(r, eps, w, op: str, own: bool = True) -> bool:
    """Prefill norm of a norm_* op: aq / sa = the codes of rmsnorm_unit(r.x) (times w.gain) where the switch is
    on and the op's product takes the lt path (gemm_quant auto); r.xn is then left unwritten. False: do nothing."""
    from . import gemm_quant as gq
    from . import ops
    x, xn = r.x, r.xn
    M, D = x.shape
    aligned = x.data.ptr % 16 == 0 and (w.gain is None or w.gain.data.ptr % 16 == 0)  # float4 loads
    if not mode() or M < 2 or w.perm is not None or D % 4 or not aligned or gq._path("auto", op, w, xn, own) != "lt":
        return False
    aq, sa = gq._view("aq", (M, D), "uint8"), gq._view("sa", (M,), "float32")
    gain = w.gain if w.gain is not None else sa
    fn = ops._fn("rmsnorm.cu", "rmsnorm_unit_fp8", ops._tname("xn", xn))
    fn((M,), (ops._norm_threads(D),), (aq, sa, x, gain, np.float32(eps), np.int32(D), np.int32(w.gain is not None)))
    offer(xn, w.gain, written=False)
    return True


def silu(h, src, sa, w13, scaled: bool) -> bool:
    """SiLU*up of lt.silu with w2's quantization: src the scaled product g T [M, 2F] (scaled) or the unscaled
    d f32 [M, 2F] (sa = w13's token scales, then overwritten with w2's). False: switch off or F % 8 != 0."""
    from . import gemm_quant as gq
    M, F = h.shape
    m = mode()
    if not m or F % 8:
        return False
    D = w13.shape[1]
    # w2 [D, F] takes the lt path (gemm_quant._path for an fp8 weight with impl "auto")
    skip_h = m == 2 and F % 16 == 0 and D % 16 == 0 and M > gq.AUTO_OWN_MAX_M["residual"] and not gq._auto_tc("fp8", M)
    aq = gq._view("aq", (M, F), "uint8")
    args = (aq, sa, h, src) + (() if scaled else (w13.scales,)) + (sa, np.int32(F), np.int32(0), np.int32(not skip_h))
    _launch("silu_mul_quant_rows" if scaled else "w8a8_silu_quant_rows", h.dtype, M, _threads(F), args)
    offer(h, None, written=not skip_h)
    return True


def _threads(K: int) -> int:
    """About two 8-column pieces per thread, 64..512 threads."""
    return max(64, min(512, (K // 16 + 31) // 32 * 32))


def _launch(kernel, dtype, M, threads, args) -> None:
    import cupy as cp
    from .cuda_kernels import get_function
    get_function("fp8_actq.cu", kernel, dtype=str(dtype))((M,), (threads,), args,
                                                         stream=cp.cuda.get_current_stream())


def warmup(dtype) -> None:
    """Compile and load these kernels (whatever the switch says now: it may change before a capture)."""
    from . import ops
    from .cuda_kernels import get_function
    t = "bfloat16" if str(dtype) in ("bfloat16", "bf16") else "float16"
    fns = [get_function("fp8_actq.cu", k, dtype=t) for k in KERNELS] + [ops._fn("rmsnorm.cu", "rmsnorm_unit_fp8", t)]
    for f in fns:
        f.attributes  # forces the compile and module load now
