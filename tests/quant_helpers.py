"""Shared helpers of the quantized-GEMV GPU tests: random packed layers (with perm and gain), their float64
reference products through quant.formats.dequantize (in row chunks: the 70B matrices are large). The storage
dtypes, T tolerances and device helpers are the decode-kernel tests' (kernel_helpers.py)."""
import numpy as np

from cugraphllm.quant.formats import QuantLinear, dequantize, quantize

FMTS = ["fp8", "int8", "int4"]
# fp32 outputs (residual, logits) against the float64 product of the same packed weights and T activation:
# fp8 / int8 values and their products are exact in fp32, only the fp32 sums round; int4 sums (1024 + q) * x
# and subtracts (z + 1024) * sum(x) per 32-value chunk (kernels/gemv_quant.cu), losing ~10 bits of those sums:
# a float32 emulation of that order gives 2.7e-5 .. 3.8e-5 relative error at K = 256 .. 11008 (exact q - z:
# 1e-7), far below the fp16 rounding of the activation itself.
TOL_F32 = {"fp8": 1e-5, "int8": 1e-5, "int4": 2e-4}
# The half2 path (QuantPlan.hacc, kernels/gemv_quant_h2.cuh) rounds the staged activation to half and sums the
# products of each 16-byte weight vector in half before fp32: ~2^-11 * sqrt(terms) per vector sum, ~5e-4 overall
# on these random layers; the fp16 output rounding is of the same order (TOL_T). The tensor-core path
# (QuantPlan.mma, kernels/gemv_quant_mma.cuh) rounds the staged activation to half too, then sums in fp32.
TOL_H2 = 2e-3


def tol_f32(fmt: str) -> float:
    """Tolerance of the fp32 outputs (residual, logits) under the current plan of `fmt`."""
    from cugraphllm.gpu import gemv_plan
    p = gemv_plan.plan_for(fmt)
    return TOL_H2 if p.hacc or p.mma else TOL_F32[fmt]


def make_layer(cp, N, K, fmt, seed, group_size=128, perm=True, gain=True):
    """(host QuantLinear, device QuantLinear) of a random [N, K] matrix (scale K^-0.5), quantized by
    formats.quantize on the host for small sizes and by quant_upload.quantize_matrix on the GPU for large ones
    (the upload tests show the two agree bit for bit), plus a random perm and gain when asked."""
    rng = np.random.default_rng(seed)
    if N * K <= 1 << 22:
        w = (rng.standard_normal((N, K)) * K ** -0.5).astype(np.float32)
        host = quantize(w, fmt, group_size)
        dev = host.map(cp.asarray)
    else:
        from cugraphllm.gpu.quant_upload import quantize_matrix
        g = cp.random.default_rng(seed)
        dev = quantize_matrix(lambda i, j: g.standard_normal((j - i, K), dtype=cp.float32) * np.float32(K ** -0.5),
                              N, K, fmt, group_size)
        host = dev.map(lambda a: a.get())
    if perm:
        host.perm = rng.permutation(K).astype(np.int32)
    if gain:
        host.gain = (1 + 0.3 * rng.standard_normal(K)).astype(np.float32)
    dev.perm = None if host.perm is None else cp.asarray(host.perm)
    dev.gain = None if host.gain is None else cp.asarray(host.gain)
    return host, dev


def rows_of(ql: QuantLinear, i: int, j: int) -> QuantLinear:
    z = None if ql.zeros is None else ql.zeros[i:j]
    return QuantLinear(ql.fmt, ql.qweight[i:j], ql.scales[i:j], (j - i, ql.shape[1]), z, ql.group_size, ql.perm,
                       ql.gain)


def deq_matvec(ql: QuantLinear, a64, rows: int = 1024):
    """float64 dequantize(ql) @ a64 (a64 [K] in the original column order), in row chunks."""
    N = ql.shape[0]
    return np.concatenate([dequantize(rows_of(ql, i, min(N, i + rows))) @ a64 for i in range(0, N, rows)])


def same_bits(names, a, b, what: str) -> None:
    """Each pair of host arrays is finite (all written: the outputs were NaN-poisoned) and bit-identical; `what`
    names the second run's variant in the message."""
    for n, x, y in zip(names, a, b):
        assert np.isfinite(x).all(), f"{n}: not all written"
        assert np.array_equal(x, y), f"{n} differs under {what}"


def qkv_outputs(cp, ops, wqkv, a, res, rope, pos: int, KVH: int, hd: int, S: int, eps: float, norm: bool) -> list:
    """One decode qkv GEMV into fresh NaN-poisoned q [1, D] and KV caches [S, KVH, hd] (T = float16): fused-norm on
    copies of res = (x, xn, ss), else on a; returns [q, k row pos, v row pos] on the host as float32."""
    from cugraphllm.gpu.state import Residual
    from kernel_helpers import poison
    q = poison(cp, (1, a.shape[1]), cp.float16)
    kc, vc = poison(cp, (S, KVH, hd), cp.float16), poison(cp, (S, KVH, hd), cp.float16)
    p, n = cp.asarray([pos], dtype=cp.int32), cp.ones(1, cp.int32)
    if norm:
        x, xn, ss = res
        ops.norm_qkv_rope(q, Residual(x.copy(), xn.copy(), ss.copy()), eps, wqkv, rope, kc, vc, p, n)
    else:
        ops.qkv_rope(q, a, wqkv, rope, kc, vc, p, n)
    return [q.get().astype(np.float32), kc[pos].get().astype(np.float32), vc[pos].get().astype(np.float32)]


def qkv_case(cp, ops, D: int, H: int, KVH: int, S: int):
    """(head_dim, RoPE table [S, hd / 2, 2], a random int4 wqkv [D + 2 KVH hd, D] on the device, activation a T [1, D],
    a producer's residual (x, xn, ss)) of the decode qkv GEMV tests, seeded by the shape."""
    from cugraphllm import reference as ref
    from kernel_helpers import produced_x, rand_t
    hd = D // H
    rope = cp.asarray(ref.rope_table(S, hd, 10000.0).astype(np.float32))
    _, wqkv = make_layer(cp, D + 2 * KVH * hd, D, "int4", seed=D + H)
    return hd, rope, wqkv, rand_t(cp, (1, D), "float16", seed=D + 1), produced_x(cp, ops, D, "float16", seed=D + 2)


def silu_outputs(cp, ops, w13, a, res, eps: float, norm: bool) -> list:
    """One decode SiLU*up GEMV into a fresh NaN-poisoned h [1, F] (T = float16): fused-norm on copies of res = (x, xn,
    ss), else on a; returns [h] on the host."""
    from cugraphllm.gpu.state import Residual
    from kernel_helpers import poison
    h = poison(cp, (1, w13.shape[0] // 2), cp.float16)
    if norm:
        x, xn, ss = res
        ops.norm_matmul_silu(h, Residual(x.copy(), xn.copy(), ss.copy()), eps, w13)
    else:
        ops.matmul_silu(h, a, w13)
    return [h.get()]


def int4_plan_setter(monkeypatch, configs: dict):
    """use(name): the int4 QuantPlan with configs[name]'s fields for this test (gemv_plan.QUANT_PLANS patched, ops_quant's
    module cache emptied, both restored by monkeypatch)."""
    import dataclasses
    from cugraphllm.gpu import gemv_plan, ops_quant
    base = gemv_plan.QUANT_PLANS["int4"]
    monkeypatch.setattr(ops_quant, "_cache", {})

    def use(name: str):
        monkeypatch.setitem(gemv_plan.QUANT_PLANS, "int4", dataclasses.replace(base, **configs[name]))
    return use


def residual_ss_outputs(cp, ops, w, a, x0) -> list:
    """One residual GEMV with the next norm's stats on a copy of x0 (f32 [1, N]) into NaN-poisoned xh / ss (T =
    float16); returns [x, xh, the ss partials] on the host as float32."""
    from cugraphllm.gpu.state import Residual
    from kernel_helpers import poison
    N = x0.shape[1]
    x, xn, ss = cp.asarray(x0), poison(cp, (1, N), cp.float16), poison(cp, ((N + 1) // 2,), cp.float32)
    ops.matmul_residual(Residual(x, xn, ss), a, w)
    return [x.get(), xn.get().astype(np.float32), ss.get()[:ops.norm_partials(N)]]

