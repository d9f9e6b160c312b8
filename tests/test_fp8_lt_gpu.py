"""The fp8 "lt" prefill path (gpu/gemm_quant_lt.py) in both products and both tuning settings, against NumPy float64:
- cuBLASLt's fp8 matmul (gpu/cublaslt.py fp8_matmul) through every heuristic algorithm the tuner may pick, unscaled
  (f32 D) and with outer-vector scales (T D; f32 D accumulated onto), outputs poisoned first;
- gemm_quant's three ops with impl="lt" under CUGRAPHLLM_FP8_OUTER_SCALE=0/1 x gemm_tune on/off, awkward and real
  7B shapes, checking that sm_90 really takes the scaled product;
- the ops captured and replayed in a graph (byte-identical to eager) in both products.
Tolerances as tests/test_quant_prefill_gpu.py (the reference quantizes the activations as the kernel does).
"""
import numpy as np
import pytest

from cugraphllm import reference as ref

cp = pytest.importorskip("cupy")
from test_gemm_gpu import NAN_BITS, _dtypes, _np_dtype, _sample, check_qkv  # noqa: E402
from test_gemm_gpu import dev_random, host64, poison, relerr, rng_seed  # noqa: E402
from test_quant_prefill_gpu import TOL, TOL_F32, _split_rope, dev_quant, ref_product  # noqa: E402
from test_quant_prefill_gpu import replay_layer_ops  # noqa: E402
from test_quant_prefill_gpu import _fp8_actq_off  # noqa: E402,F401  (autouse here too: FUSE_ACTQ=0)

pytestmark = pytest.mark.gpu
MODES = ["outer0", "outer1"]
TUNES = ["tune0", "tune1"]


def _hopper():
    from cugraphllm.gpu import cublaslt
    return cublaslt._cc(cp.cuda.Device().id) // 10 == 9


def _need_fp8():
    from cugraphllm.gpu import cublaslt
    if not cublaslt.fp8_supported():
        pytest.skip("fp8 tensor cores need sm_89+")


@pytest.fixture
def setting(request, monkeypatch):
    """(outer, tune) from the test's parameters: the env switch, gemm_tune.TUNE (every weight tuned) and no fp8
    choice left from an earlier test."""
    from cugraphllm.gpu import gemm_tune
    outer, tune = request.param
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_SCALE", "1" if outer == "outer1" else "0")
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", "0")  # the scaled product at every M these tests use
    monkeypatch.setattr(gemm_tune, "TUNE", tune == "tune1")
    monkeypatch.setattr(gemm_tune, "TUNE_MIN_WEIGHT", 0)
    gemm_tune.forget_fp8()
    yield outer == "outer1", tune == "tune1"
    gemm_tune.forget_fp8()


SETTINGS = [(o, t) for o in MODES for t in TUNES]


# ---- the probe -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", _dtypes())
def test_probe_passes_on_hopper(dtype):
    """The docs list outer-vector scaling for compute capability 9.0: the probe must pass there (elsewhere its answer
    is reported, and the ops below fall back)."""
    from cugraphllm.gpu import cublaslt
    _need_fp8()
    got = (cublaslt.outer_scale_ok(dtype, False), cublaslt.outer_scale_ok("float32", True))
    if not _hopper():
        pytest.skip(f"not sm_90: probe says {got}")
    assert got == (True, True), f"cuBLASLt {cublaslt.version()} refused or miscomputed outer scaling: {got}"


def test_probe_unknown_inside_capture_is_false_and_not_cached():
    from cugraphllm.gpu import cublaslt
    _need_fp8()
    key = (cp.cuda.Device().id, "float16", False)
    saved = cublaslt._OUTER_OK.pop(key, None)
    s = cp.cuda.Stream(non_blocking=True)
    try:
        with s:
            s.begin_capture()
            got = cublaslt.outer_scale_ok("float16", False)
            s.end_capture()
        assert got is False and key not in cublaslt._OUTER_OK
    finally:
        if saved is not None:
            cublaslt._OUTER_OK[key] = saved


# ---- every algorithm of fp8_matmul -------------------------------------------------------------------------------
def _codes(shape, seed):
    from cugraphllm.quant import formats
    table = cp.asarray(formats.fp8_e4m3_encode(np.random.default_rng(seed).standard_normal(1 << 16) * 64))
    return table[cp.random.RandomState(seed).randint(0, 1 << 16, shape)]


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K", [(37, 208, 400), (128, 4096, 4096), (512, 4096, 11008)])
def test_every_fp8_algorithm(M, N, K, dtype):
    from cugraphllm.gpu import cublas, cublaslt, gemm_tune
    from cugraphllm.quant import formats
    _need_fp8()
    rng, seed = rng_seed()
    aq, wq = _codes((M, K), seed), _codes((N, K), seed + 1)
    sa = cp.asarray(rng.uniform(0.5, 2.0, M).astype(np.float32)) * np.float32(1 / 64)
    sw = cp.asarray(rng.uniform(0.5, 2.0, N).astype(np.float32)) * np.float32(K ** -0.5 / 64)
    cols = _sample(N, 256, rng)
    prod = formats.fp8_e4m3_decode(aq.get()) @ formats.fp8_e4m3_decode(wq[cp.asarray(cols)].get()).T
    scaled = prod * host64(sa)[:, None] * host64(sw)[cols][None, :]
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    lt = cublaslt.handle()
    modes = [("unscaled", "float32", False)]
    if cublaslt.outer_scale_ok(dtype, False):
        modes.append(("outer", dtype, False))
    if cublaslt.outer_scale_ok("float32", True):
        modes.append(("outer", "float32", True))
    for mode, out, acc in modes:
        outer = mode == "outer"
        n = len(lt.algos(N, M, K, cublaslt.CUDA_R_8F_E4M3, cublas._dtype_code(out), N, gemm_tune.TUNE_ALGOS, outer))
        assert n >= 1
        for j in range(n):
            d = x0.copy() if acc else cp.empty((M, N), _np_dtype(out))
            if not acc:
                poison(d)
            lt.fp8_matmul(d, aq, wq, sa if outer else None, sw if outer else None, acc, algo=j,
                          count=gemm_tune.TUNE_ALGOS)
            got = host64(d)[:, cols] - (host64(x0)[:, cols] if acc else 0)
            want = scaled if outer else prod
            tol = TOL_F32["float16"] if out == "float32" else TOL[out]
            err = relerr(got, want)
            assert err < tol, f"lt{j} {mode} out={out} acc={acc} M={M} N={N} K={K} seed={seed}: {err:.2e}"


# ---- the ops in every setting ------------------------------------------------------------------------------------
def _check_mode(out, acc, w, M, outer):
    """The product the op took: never scaled with the switch off; scaled at the real 7B shapes where the probe
    passed (test_probe_passes_on_hopper pins it on sm_90); awkward shapes may fall back (no heuristic algorithm)."""
    from cugraphllm.gpu import cublaslt, gemm_quant_lt
    took = gemm_quant_lt.scaled(out, acc, w, cp.zeros(M, cp.float32), M)
    if not outer:
        assert not took, "scaled product with CUGRAPHLLM_FP8_OUTER_SCALE=0"
    elif min(w.shape) >= 4096:
        assert took == cublaslt.outer_scale_ok(out, acc), f"7B shape {w.shape} M={M} out={out}: took scaled={took}"


def _check_tuned(M, N, K, out, acc, w, setting):
    """With tuning on, the product's key was timed (at least one candidate) and its choice kept; off: untimed."""
    from cugraphllm.gpu import gemm_quant_lt, gemm_tune
    from cugraphllm.gpu.cuda_kernels import device_id
    outer = gemm_quant_lt.scaled(out, acc, w, cp.zeros(M, cp.float32), M)
    key = (device_id(), M, N, K, "e4m3", out if outer else "float32", acc and outer, outer)
    assert key in gemm_tune._CHOICE, f"no fp8 choice for {key}"
    assert (len(gemm_tune._TIMES.get(key, {})) >= 1) == setting[1], f"{key}: timed {gemm_tune._TIMES.get(key)}"


@pytest.mark.parametrize("setting", SETTINGS, indirect=True, ids=[f"{o}-{t}" for o, t in SETTINGS])
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K,extras", [(37, 208, 400, True), (128, 4096, 4096, False), (512, 4096, 11008, True)])
def test_residual_settings(M, N, K, extras, dtype, setting):
    from cugraphllm.gpu import gemm_quant
    _need_fp8()
    rng, seed = rng_seed()
    a = dev_random((M, K), dtype, 1.0, seed)
    w = dev_quant("fp8", N, K, seed + 1, extras)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    cols = _sample(N, 384, rng)
    x = x0.copy()
    gemm_quant.matmul_residual(x, a, w, impl="lt")
    _check_mode("float32", True, w, M, setting[0])
    _check_tuned(M, N, K, "float32", True, w, setting)
    got = host64(x)[:, cols] - host64(x0)[:, cols]  # the product added exactly once (tuning times on a copy)
    err = relerr(got, ref_product(a, w, cols, lt=True))
    assert err < TOL_F32[dtype], f"{setting} M={M} N={N} K={K} {dtype} seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("setting", SETTINGS, indirect=True, ids=[f"{o}-{t}" for o, t in SETTINGS])
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,F,K,extras", [(37, 104, 400, False), (128, 11008, 4096, True), (512, 11008, 4096, False)])
def test_silu_settings(M, F, K, extras, dtype, setting):
    from cugraphllm.gpu import gemm_quant
    _need_fp8()
    rng, seed = rng_seed()
    xn = dev_random((M, K), dtype, 1.0, seed)
    w13 = dev_quant("fp8", 2 * F, K, seed + 1, extras)
    fs = _sample(F, 384, rng)
    want = ref.silu(ref_product(xn, w13, fs, True)) * ref_product(xn, w13, fs + F, True)
    h = cp.empty((M, F), dtype=_np_dtype(dtype))
    poison(h)
    gemm_quant.matmul_silu(h, xn, w13, impl="lt")
    _check_mode(dtype, False, w13, M, setting[0])
    got = host64(h)
    assert np.all(np.isfinite(got)), "unwritten h"
    err = relerr(got[:, fs], want)
    assert err < TOL[dtype], f"{setting} M={M} F={F} K={K} {dtype} seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("setting", SETTINGS, indirect=True, ids=[f"{o}-{t}" for o, t in SETTINGS])
@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,ntok,H,KVH,hd,S,pos", [(37, 30, 4, 2, 32, 100, 60), (128, 100, 32, 32, 128, 4096, 7),
                                                  (512, 500, 32, 32, 128, 4096, 3590)])
def test_qkv_settings(M, ntok, H, KVH, hd, S, pos, dtype, setting):
    from cugraphllm.gpu import gemm_quant
    _need_fp8()
    rng, seed = rng_seed()
    D, kvd = H * hd, KVH * hd
    xn = dev_random((M, D), dtype, 1.0, seed)
    wqkv = dev_quant("fp8", D + 2 * kvd, D, seed + 1, M == 128)
    table = ref.rope_table(S, hd, 10000.0)
    rope = cp.asarray(table.astype(np.float32))
    hq, hk = _sample(H, 6, rng), _sample(KVH, 4, rng)
    rows = np.concatenate([(hq[:, None] * hd + np.arange(hd)).ravel(), D + (hk[:, None] * hd + np.arange(hd)).ravel(),
                           D + kvd + (hk[:, None] * hd + np.arange(hd)).ravel()])
    lo, hi = pos, min(pos + ntok, S)
    q_ref, k_ref, v_ref = _split_rope(ref_product(xn, wqkv, rows, lt=True), len(hq) * hd, hd, pos,
                                      table.astype(np.float32).astype(np.float64))
    kc0, vc0 = dev_random((S, KVH, hd), dtype, 1.0, seed + 2), dev_random((S, KVH, hd), dtype, 1.0, seed + 3)
    kc, vc = kc0.copy(), vc0.copy()
    kc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    vc[lo:hi].view(cp.uint16).fill(NAN_BITS[dtype])
    q = cp.empty((M, D), dtype=_np_dtype(dtype))
    poison(q)
    gemm_quant.qkv_rope(q, xn, wqkv, rope, kc, vc, cp.asarray([pos], cp.int32), cp.asarray([ntok], cp.int32),
                        impl="lt")
    _check_mode(dtype, False, wqkv, M, setting[0])
    check_qkv(f"{setting} M={M} H={H} KVH={KVH} pos={pos} {dtype} seed={seed}", q.reshape(M, H, hd), hq, q_ref,
              [("k", kc, kc0, k_ref), ("v", vc, vc0, v_ref)], hk, lo, hi, TOL[dtype])


# ---- capture -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting", SETTINGS, indirect=True, ids=[f"{o}-{t}" for o, t in SETTINGS])
@pytest.mark.parametrize("M", [48, 128])
def test_graph_replay_matches_eager(M, setting):
    """allocate() (probes), the three lt ops eager (tuning at the first call), then captured and replayed at two
    positions: byte-identical to eager."""
    _need_fp8()
    replay_layer_ops("fp8", M, f"{setting}: ", impl="lt")


@pytest.mark.parametrize("dtype", _dtypes())
def test_refused_scaled_product_falls_back(dtype, monkeypatch):
    """A scaled cublasLtMatmul that returns an error status (simulated: cuBLASLt checks before launching, so nothing
    is written) falls back to the unscaled product with the same result, and the shape is not tried again."""
    from cugraphllm.gpu import cublaslt, gemm_quant, gemm_quant_lt
    from cugraphllm.gpu.cublas import CublasError
    _need_fp8()
    if not cublaslt.outer_scale_ok("float32", True) or not cublaslt.outer_scale_ok(dtype, False):
        pytest.skip("no outer-vector scaling on this device: nothing to refuse")
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_SCALE", "1")
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", "1")  # the default (384) would keep M = 64 unscaled
    monkeypatch.setattr(gemm_quant_lt, "_REFUSED", set())
    real, tried = cublaslt.LtHandle.fp8_matmul, []

    def refuse(self, d, aq, wq, sa=None, sw=None, *args, **kw):
        if sa is not None:
            tried.append(d.shape)
            raise CublasError("cuBLASLt: cublasLtMatmul failed with status 7 (simulated)")
        return real(self, d, aq, wq, sa, sw, *args, **kw)
    monkeypatch.setattr(cublaslt.LtHandle, "fp8_matmul", refuse)
    rng, seed = rng_seed()
    M, N, K, F = 64, 1024, 1024, 512  # shapes with a scaled heuristic algorithm for sure (multiples of 128)
    a = dev_random((M, K), dtype, 1.0, seed)
    w, w13 = dev_quant("fp8", N, K, seed + 1, True), dev_quant("fp8", 2 * F, K, seed + 2)
    x0 = dev_random((M, N), "float32", 1.0, seed + 3)
    for rep in range(2):
        x, h = x0.copy(), cp.empty((M, F), dtype=_np_dtype(dtype))
        poison(h)
        gemm_quant.matmul_residual(x, a, w, impl="lt")
        gemm_quant.matmul_silu(h, a, w13, impl="lt")
        err = relerr(host64(x) - host64(x0), ref_product(a, w, np.arange(N), lt=True))
        assert err < TOL_F32[dtype], f"residual rep {rep} {dtype} seed={seed}: rel err {err:.2e}"
        fs = np.arange(F)
        want = ref.silu(ref_product(a, w13, fs, True)) * ref_product(a, w13, fs + F, True)
        err = relerr(host64(h), want)
        assert err < TOL[dtype], f"silu rep {rep} {dtype} seed={seed}: rel err {err:.2e}"
    assert len(tried) == 2 and len(gemm_quant_lt._REFUSED) == 2, f"tried {tried}, refused {gemm_quant_lt._REFUSED}"
