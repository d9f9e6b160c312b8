"""The prologue of the quantized decode GEMVs (kernels/gemv_quant_prologue.cuh xpro_load, then stage / stage_h2 /
stage_mma): the ss partial sums and the activation loaded in one round, one (ss sum, |x| max) block reduction,
the first chunks kept in registers (QG_XREGS) and the rest loaded again. test_quant_gpu.py's fused-norm tests run
with a perm on every layer; here the fused-norm LM head runs under every path and the default plan with the
production staging (no perm: 16-byte activation loads, the norm gain folded), and with K past the kept chunks
(13B D = 5120; D = 8320: two reload rounds and more ss partials than a 256-thread block loads at once).
Reference: float64 rmsnorm then the dequantized product; outputs poisoned first, fresh random inputs.
"""
import dataclasses

import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu.state import Residual
from kernel_helpers import TOL_T, host64, produced_x, rel_err, twice
from quant_helpers import FMTS, deq_matvec, make_layer

pytestmark = pytest.mark.gpu
EPS = 1e-5
PATHS = {"default": {}, "f32acc": dict(hacc=0, mma=0), "h2acc": dict(hacc=1, mma=0),
         "mma": dict(hacc=0, mma=1, mma_min_pairs=0), "f32_pipe": dict(hacc=0, mma=0, pipe=1),
         "h2_pipe": dict(hacc=1, mma=0, pipe=1)}
# (D, V, perm, gain, dtype): V 769 (an odd row count: the last pair has one row; tiles: 8 warps a block),
# 24577 (tiles: 16 warps a block, one kept chunk a thread)
CASES = [(4096, 769, False, True, "float16"), (4096, 769, False, False, "bfloat16"),
         (5120, 769, False, True, "bfloat16"), (5120, 769, True, False, "float16"),
         (8320, 769, True, True, "float16"), (8320, 769, False, True, "float16"),
         (5120, 24577, False, True, "float16")]


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    from cugraphllm.gpu import gemv_plan
    for fmt in FMTS:
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, fmt,
                            dataclasses.replace(gemv_plan.QUANT_PLANS[fmt], **PATHS[request.param]))
    return request.param


_inputs: dict = {}


def inputs(cp, ops, fmt, D, V, perm, gain, dtype):
    """(device layer, x, xn, ss, float64 reference) of one case, made once for all paths (the reference of a
    24577-row layer takes ~10 s)."""
    key = (fmt, D, V, perm, gain, dtype)
    if key not in _inputs:
        host, w = make_layer(cp, V, D, fmt, seed=D + V + 2 * perm + gain, group_size=128, perm=perm, gain=gain)
        x, xn, ss = produced_x(cp, ops, D, dtype, seed=D + 3 * V)
        _inputs[key] = (w, x, xn, ss, deq_matvec(host, ref.rmsnorm(host64(x)[0], np.ones(D), EPS)))
    return _inputs[key]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("D,V,perm,gain,dtype", CASES)
def test_norm_logits_prologue(cp, ops, path, fmt, D, V, perm, gain, dtype):
    if V > 8192 and path not in ("mma", "default"):
        pytest.skip("the 16-warp tiles case; the other paths run the smaller V")
    w, x, xn, ss, want = inputs(cp, ops, fmt, D, V, perm, gain, dtype)
    n = cp.ones(1, cp.int32)
    logits = twice(cp, lambda out: ops.norm_matmul_logits(out, Residual(x, xn, ss), EPS, w, n), (1, V), cp.float32)
    assert rel_err(logits.get()[0], want) < TOL_T[dtype]
