"""The "tc" path of gemm_quant (gemm_quant_tc.py, kernels/gemm_quant_tc.cu) at awkward sizes: every tile config
forced on the same problem, M / N / K not multiples of the tiles, int4 groups smaller than, equal to and larger
than the 64-column k-tile, split-K on and off. Same reference and tolerances as test_quant_prefill_gpu.py (the 7B /
70B shapes run there, where "tc" is one of the paths). The plan / smem checks at the end need no GPU.
"""
import numpy as np
import pytest

from cugraphllm import reference as ref
from cugraphllm.gpu import gemm_quant_tc as tc

cp = pytest.importorskip("cupy")
from test_gemm_gpu import _dtypes, _np_dtype, _sample, dev_random, host64, poison, relerr, rng_seed  # noqa: E402
from test_quant_prefill_gpu import FMTS, TOL, TOL_F32, dev_quant, ref_product  # noqa: E402

gpu = pytest.mark.gpu

# (M, N, K, int4 group, extras): K % 64 != 0 in most; N not a multiple of 64 / 128; M across the row tiles
CASES = [(3, 201, 160, 32, False), (20, 136, 96, 96, True), (50, 300, 224, 32, False), (77, 131, 1056, 1056, True),
         (150, 264, 288, 96, False), (5, 72, 1056, 32, True)]  # odd N: the epilogue's one-column stores


def _force(monkeypatch, cfg, splits):
    if cfg is not None:
        monkeypatch.setattr(tc, "CONFIG_BY_M", ((1 << 30, cfg),))
    if splits is not None:
        monkeypatch.setattr(tc, "MAX_SPLITS", splits)


@gpu
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("splits", [None, 1], ids=["split-auto", "no-split"])
@pytest.mark.parametrize("cfg", list(tc.CONFIGS))
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,N,K,group,extras", CASES)
def test_tc_residual(M, N, K, group, extras, fmt, cfg, splits, dtype, monkeypatch):
    from cugraphllm.gpu import gemm_quant
    _force(monkeypatch, cfg, splits)
    rng, seed = rng_seed()
    a = dev_random((M, K), dtype, 1.0, seed)
    w = dev_quant(fmt, N, K, seed + 1, extras, group=group)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    x = x0.copy()
    gemm_quant.matmul_residual(x, a, w, impl="tc")
    got = host64(x) - host64(x0)
    err = relerr(got, ref_product(a, w, np.arange(N)))
    assert err < TOL_F32[dtype], f"tc {cfg} splits={splits} {fmt} M={M} N={N} K={K} g={group} {dtype} " \
                                 f"seed={seed}: rel err {err:.2e}"


@gpu
@pytest.mark.parametrize("splits", [None, 1], ids=["split-auto", "no-split"])
def test_tc_residual_unaligned_out(splits, monkeypatch):
    """x at an address that is not 8-byte aligned: the epilogue must not use its two-column float2 stores."""
    from cugraphllm.gpu import gemm_quant
    _force(monkeypatch, None, splits)
    M, N, K = 6, 96, 1056
    rng, seed = rng_seed()
    a, w = dev_random((M, K), "float16", 1.0, seed), dev_quant("int4", N, K, seed + 1, group=32)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    buf = cp.empty(M * N + 1, cp.float32)
    x = buf[1:].reshape(M, N)
    assert x.data.ptr % 8 == 4
    x[...] = x0
    gemm_quant.matmul_residual(x, a, w, impl="tc")
    err = relerr(host64(x) - host64(x0), ref_product(a, w, np.arange(N)))
    assert err < TOL_F32["float16"], f"splits={splits} seed={seed}: rel err {err:.2e}"


@gpu
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,F,K,group", [(9, 100, 160, 32), (70, 150, 288, 96), (10, 11008, 4096, 128),
                                         (200, 11008, 4096, 128)])
@pytest.mark.parametrize("splits", [None, 1], ids=["split-auto", "no-split"])  # split: SiLU fused in the reduce
def test_tc_silu(M, F, K, group, fmt, dtype, splits, monkeypatch):
    from cugraphllm.gpu import gemm_quant
    _force(monkeypatch, None, splits)
    rng, seed = rng_seed()
    xn = dev_random((M, K), dtype, 1.0, seed)
    w13 = dev_quant(fmt, 2 * F, K, seed + 1, True, group=group)
    fs = _sample(F, 384, rng)
    want = ref.silu(ref_product(xn, w13, fs)) * ref_product(xn, w13, fs + F)
    h = cp.empty((M, F), dtype=_np_dtype(dtype))
    poison(h)
    gemm_quant.matmul_silu(h, xn, w13, impl="tc")
    got = host64(h)
    assert np.all(np.isfinite(got)), "tc: unwritten h"
    err = relerr(got[:, fs], want)
    assert err < TOL[dtype], f"tc {fmt} M={M} F={F} K={K} g={group} {dtype} seed={seed}: {err:.2e}"


@gpu
@pytest.mark.parametrize("splits", [None, 1], ids=["split-auto", "no-split"])  # split: RoPE / stores in the reduce
@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos", [(20, 17, 5, 1, 64, 40, 30), (3, 3, 6, 2, 32, 64, 0)])
def test_tc_qkv_rope(M, ntok, H, KVH, hd, S, pos, fmt, splits, monkeypatch):
    """Padding rows (ntok < M) and positions past the cache (pos + ntok > S) included: the cache outside
    [pos, min(pos + ntok, S)) keeps its bits."""
    from cugraphllm.gpu import gemm_quant
    from test_quant_prefill_gpu import NAN_BITS, _split_rope
    _force(monkeypatch, None, splits)
    rng, seed = rng_seed()
    D, kvd, dtype = H * hd, KVH * hd, "float16"
    xn = dev_random((M, D), dtype, 1.0, seed)
    wqkv = dev_quant(fmt, D + 2 * kvd, D, seed + 1, True, group=32)
    table = ref.rope_table(S, hd, 10000.0)
    y = ref_product(xn, wqkv, np.arange(D + 2 * kvd))
    q_ref, k_ref, v_ref = _split_rope(y, D, hd, pos, table.astype(np.float32).astype(np.float64))
    lo, hi = pos, min(pos + ntok, S)
    kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2), dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    kc, vc, q = kc0.copy(), vc0.copy(), cp.empty((M, D), dtype=_np_dtype(dtype))
    poison(q)
    kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    gemm_quant.qkv_rope(q, xn, wqkv, cp.asarray(table.astype(np.float32)), kc, vc, cp.asarray([pos], cp.int32),
                        cp.asarray([ntok], cp.int32), impl="tc")
    tag = f"tc {fmt} splits={splits} M={M} ntok={ntok} pos={pos} S={S} seed={seed}"
    q64 = host64(q).reshape(M, H, hd)
    assert np.all(np.isfinite(q64)), f"{tag}: q not fully written"
    n_real = hi - lo
    assert relerr(q64[:n_real], q_ref[:n_real]) < TOL[dtype], tag
    for name, c, c0, want in (("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)):
        cu, c0u = c.view(cp.uint16).get(), c0.view(cp.uint16).get()
        assert np.array_equal(cu[:lo], c0u[:lo]) and np.array_equal(cu[hi:], c0u[hi:]), f"{tag}: {name} outside"
        got = host64(c)[lo:hi]
        assert np.all(np.isfinite(got)) and relerr(got, want[:n_real]) < TOL[dtype], f"{tag}: {name}"


@gpu
@pytest.mark.parametrize("fmt", FMTS)
def test_tc_auto_and_unsupported(fmt):
    """auto takes tc where AUTO_TC_M says so; a K the kernel cannot tile is a one-line error for impl="tc"."""
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm_quant
    M, N, K = 40, 96, 136 if fmt != "int4" else 144  # K % 16 / % 32 != 0
    a = dev_random((M, K), "float16", 1.0, 7)
    w = dev_quant(fmt, N, K, 8, group=K if fmt == "int4" else 128)
    x = cp.zeros((M, N), cp.float32)
    with pytest.raises(BackendError, match="tc kernel cannot run") as e:
        gemm_quant.matmul_residual(x, a, w, impl="tc")
    assert "\n" not in str(e.value)
    gemm_quant.matmul_residual(x, a, w)  # auto falls back to own / dequant here
    assert relerr(host64(x), ref_product(a, w, np.arange(N))) < TOL_F32["float16"]
    K2 = 160
    a2, w2 = dev_random((M, K2), "float16", 1.0, 9), dev_quant(fmt, N, K2, 10, group=32)
    lo, hi = gemm_quant.AUTO_TC_M.get(fmt, (1, 0))
    want_tc = lo <= M <= hi
    assert (gemm_quant._path("auto", "residual", w2, a2) == "tc") == want_tc


# ---- no GPU: the launch plan -----------------------------------------------------------------------------------
@pytest.mark.parametrize("M", [1, 10, 16, 17, 32, 33, 64, 65, 128, 500, 512])
@pytest.mark.parametrize("N,K", [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008), (200, 160),
                                 (57344, 8192), (8192, 28672)])
def test_plan_covers_k_and_fits_workspace(M, N, K):
    for sms in (108, 132):
        name, grid, splits, kper = tc.plan(M, N, K, "int4", sms=sms)
        bm, bn = tc.CONFIGS[name][:2]
        kt = -(-K // tc.BK)
        assert M <= bm or name == tc.CONFIG_BY_M[-1][1]
        assert grid == (-(-N // bn), -(-M // bm))
        assert 1 <= splits <= tc.MAX_SPLITS and (splits - 1) * kper < kt <= splits * kper  # every split non-empty
        assert splits == 1 or splits * M * N * 4 <= tc.WS_BYTES


@pytest.mark.parametrize("fmt", FMTS)
def test_configs_fit_shared_memory(fmt):
    for name, (bm, bn, wm, wn, stages, pipe) in tc.CONFIGS.items():
        assert bm % (16 * wm) == 0 and bn % (16 * wn) == 0, name
        assert pipe in (1, 2) and stages >= 2 + (pipe == 2), name
        assert name in tc.TARGET_BLOCKS_PER_SM, name
        assert tc.smem_bytes(name, fmt) <= 227 << 10, name  # sm_80 / sm_90 opt-in maximum per block
