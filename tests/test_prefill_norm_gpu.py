"""The fused prefill norms (gpu/ops.py, M = 2..16 rows): the producers of x write xn = T(x) and ss [M, D / 16]
(sums of squares of 16-column slices), and the norm_* ops' own GEMMs scale their sums by rsqrt(sum ss / D + eps).

Each kernel against NumPy float64 on fresh random inputs (awkward and 7B / 70B shapes, outputs poisoned first, a
sentinel past the ss rows that must survive); then a 7B-width engine's prefill logits with the fused norms on
against the NumPy engine and against the rmsnorm path (CUGRAPHLLM_PREFILL_NORM=0)."""
import gc

import numpy as np
import pytest
from test_gemm_gpu import (NAN_BITS, TOL, TOL_F32, _dtypes, _np_dtype, _qkv_reference, _sample, check_qkv,
                           dev_random, host64, poison, relerr, rng_seed)

from cugraphllm import reference as ref
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.sampling import SamplingParams

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu
EPS = 1e-5
SENTINEL = 7.0


def _ss_buffer(M, D):
    """ss with NaN where the kernel must write (M * D / 16 floats) and SENTINEL after it."""
    ss = cp.full(M * D // 16 + 64, SENTINEL, dtype=cp.float32)
    ss[: M * D // 16] = np.nan
    return ss


def _ss64(x64):
    M, D = x64.shape
    return (x64.reshape(M, D // 16, 16) ** 2).sum(axis=2)


def _check_ss(ss, x64, tag):
    M, D = x64.shape
    got = ss[: M * D // 16].get().astype(np.float64).reshape(M, D // 16)
    assert np.isfinite(got).all(), f"{tag}: unwritten ss"
    np.testing.assert_allclose(got, _ss64(x64), rtol=1e-5, atol=1e-30, err_msg=tag)
    assert (ss[M * D // 16:].get() == SENTINEL).all(), f"{tag}: ss written past its rows"


def _inputs(M, D, dtype, seed):
    """x f32 [M, D] (scale 3), xn = T(x), ss as the producers write it, inv float64 [M]."""
    xn = dev_random((M, D), dtype, 3.0, seed)
    x64 = host64(xn)  # taken as x itself (an exact producer: the embedding)
    ss = cp.asarray(_ss64(x64).astype(np.float32).ravel())
    inv = 1.0 / np.sqrt(_ss64(x64).astype(np.float32).astype(np.float64).sum(axis=1) / D + EPS)
    return xn, ss, x64, inv


# ---- gemm_residual_ss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K", [(2, 96, 72), (7, 4096, 11008), (16, 4096, 4096), (13, 8192, 28672)])
def test_residual_writes_xn_and_ss(M, N, K, dtype):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    a, w = dev_random((M, K), dtype, 1.0, seed), dev_random((N, K), dtype, K ** -0.5, seed + 1)
    x = dev_random((M, N), "float32", 1.0, seed + 2)
    want = host64(x) + host64(a) @ host64(w).T
    xh, ss = cp.empty((M, N), dtype=_np_dtype(dtype)), _ss_buffer(M, N)
    poison(xh)
    gemm.matmul_residual(x, a, w, xh=xh, ss=ss)
    tag = f"M={M} N={N} K={K} {dtype} seed={seed}"
    assert relerr(host64(x), want) < TOL_F32, tag
    assert (xh.view(cp.uint16).get() == x.get().astype(_np_dtype(dtype)).view(np.uint16)).all(), f"{tag}: xh != T(x)"
    _check_ss(ss, host64(x), tag)


# ---- gemm_qkv_rope_ss / gemm_silu_ss ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos", [(2, 1, 3, 1, 32, 64, 0), (7, 5, 4, 2, 24, 600, 1),
                                                   (16, 10, 32, 32, 128, 1024, 511), (16, 7, 64, 8, 128, 4096, 4090)])
def test_qkv_rope_applies_the_norm(M, ntok, H, KVH, hd, S, pos, dtype):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    D, kvd = H * hd, KVH * hd
    xn, ss, x64, inv = _inputs(M, D, dtype, seed)
    wqkv = dev_random((D + 2 * kvd, D), dtype, D ** -0.5, seed + 1)
    table = ref.rope_table(S, hd, 10000.0)
    hq, hk = _sample(H, 6, rng), _sample(KVH, 4, rng)
    rows = np.concatenate([(hq[:, None] * hd + np.arange(hd)).ravel(), D + (hk[:, None] * hd + np.arange(hd)).ravel(),
                           D + kvd + (hk[:, None] * hd + np.arange(hd)).ravel()])
    q_ref, k_ref, v_ref = _qkv_reference(x64 * inv[:, None], host64(wqkv[cp.asarray(rows)]), hq, hk, D, kvd, hd,
                                         ntok, pos, table.astype(np.float32).astype(np.float64))
    lo, hi = pos, min(pos + ntok, S)
    kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2), dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    kc, vc = kc0.copy(), vc0.copy()
    q = cp.empty((M, D), dtype=_np_dtype(dtype))
    poison(q)
    kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    gemm.qkv_rope(q, xn, wqkv, cp.asarray(table.astype(np.float32)), kc, vc, cp.asarray([pos], dtype=cp.int32),
                  cp.asarray([ntok], dtype=cp.int32), ss=ss, eps=EPS)
    check_qkv(f"M={M} ntok={ntok} H={H} S={S} pos={pos} {dtype} seed={seed}", q.reshape(M, H, hd), hq, q_ref,
              [("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)], hk, lo, hi, TOL[dtype])


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,F,K", [(2, 44, 96), (7, 48, 96), (16, 11008, 4096), (11, 28672, 8192)])
def test_silu_applies_the_norm(M, F, K, dtype):
    from cugraphllm.gpu import gemm
    rng, seed = rng_seed()
    xn, ss, x64, inv = _inputs(M, K, dtype, seed)
    w13 = dev_random((2 * F, K), dtype, 2 * K ** -0.5, seed + 1)
    fs = _sample(F, 512, rng)
    xs = x64 * inv[:, None]
    want = ref.silu(xs @ host64(w13[cp.asarray(fs)]).T) * (xs @ host64(w13[cp.asarray(fs + F)]).T)
    h = cp.empty((M, F), dtype=_np_dtype(dtype))
    poison(h)
    gemm.matmul_silu(h, xn, w13, ss=ss, eps=EPS)
    assert np.isfinite(host64(h)).all(), "unwritten h"
    err = relerr(host64(h)[:, fs], want)
    assert err < TOL[dtype], f"M={M} F={F} K={K} {dtype} seed={seed}: rel err {err:.2e}"


def test_norm_ops_refuse_what_the_own_kernel_cannot_run():
    from cugraphllm.errors import BackendError
    from cugraphllm.gpu import gemm
    xn, ss = cp.ones((32, 96), cp.float16), cp.ones(32 * 6, cp.float32)
    with pytest.raises(BackendError, match="fused prefill norm"):  # 32 rows: above the own kernel's 16
        gemm.matmul_silu(cp.empty((32, 40), cp.float16), xn, cp.ones((80, 96), cp.float16), ss=ss, eps=EPS)


# ---- embedding_pss ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,D", [(2, 96), (5, 4096), (16, 8192)])
def test_embedding_writes_xn_and_ss(M, D, dtype):
    from cugraphllm.gpu import ops
    from cugraphllm.gpu.state import Residual
    rng, seed = rng_seed()
    V = 100
    table = dev_random((V, D), dtype, 2.0, seed)
    tokens = cp.asarray(rng.integers(0, V, M).astype(np.int32))
    x, xn, ss = cp.full((M, D), np.nan, cp.float32), cp.empty((M, D), dtype=_np_dtype(dtype)), _ss_buffer(M, D)
    poison(xn)
    ops.embedding(Residual(x, xn, ss, None, True), table, tokens)
    want = host64(table)[tokens.get()]
    tag = f"M={M} D={D} {dtype} seed={seed}"
    assert (host64(x) == want).all(), tag
    assert (xn.view(cp.uint16).get() == table.view(cp.uint16).get()[tokens.get()]).all(), tag
    _check_ss(ss, want, tag)


# ---- the engine -------------------------------------------------------------------------------------------
CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)
PROMPTS = {"10": [10], "16": [16], "100+10": [100, 10]}  # token counts fed in turn (the last: pos 100)


@pytest.fixture(scope="module")
def engine_logits():
    """{setting: {case: last logits}} of a 7B-width engine with the fused prefill norms on / off, and the NumPy
    reference; each engine's prefill_norm flag."""
    from cugraphllm.gpu import ops
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.loader import dummy_checkpoint
    from cugraphllm.reference import forward
    w = dummy_checkpoint(CFG, seed=13, dtype="float32").weights
    ids = np.random.default_rng(110).integers(0, CFG.vocab_size, 110).tolist()
    parts = {k: [ids[sum(v[:i]):sum(v[:i + 1])] for i in range(len(v))] for k, v in PROMPTS.items()}
    out, flags = {"ref": {k: forward(CFG, w, ids[:sum(v)])[-1] for k, v in PROMPTS.items()}}, {}
    saved = ops.PREFILL_NORM
    try:
        for on in (True, False):
            ops.PREFILL_NORM = on
            e = CudaEngine(CFG, w, RuntimeConfig(backend="cuda", mode="hybrid", max_seq_len=256))
            flags[on], out[on] = e.s.prefill_norm, {}
            for k, ps in parts.items():
                e.reset()
                for p in ps:
                    e.s.logits.fill(np.nan)
                    list(e.generate(p, SamplingParams(), 1))
                out[on][k] = e.s.logits.get()[0].astype(np.float64)
            del e
            gc.collect()
            cp.get_default_memory_pool().free_all_blocks()
    finally:
        ops.PREFILL_NORM = saved
    return out, flags


@pytest.mark.parametrize("case", list(PROMPTS))
def test_engine_prefill_with_fused_norms(engine_logits, case):
    out, flags = engine_logits
    assert flags == {True: True, False: False}
    err = relerr(out[True][case], out["ref"][case])
    assert err < 2e-2, f"{case}: fused norms vs NumPy {err:.2e}"
    assert relerr(out[True][case], out[False][case]) < 1e-2, case
