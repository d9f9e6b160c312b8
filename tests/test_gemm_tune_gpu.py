"""cuBLASLt 16-bit matmuls (gpu/cublaslt.py matmul16, every algorithm the tuner may pick) and the tuned dispatch
of the prefill GEMMs (gpu/gemm_tune.py) against NumPy float64 references. Outputs are poisoned first; accumulating
calls start from random f32 values and must add the product exactly once (tuning times on a copy)."""
import pytest

from test_gemm_gpu import TOL, TOL_F32, _dtypes, dev_random, host64, poison, relerr, rng_seed

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu

CASES = [(3, 72, 40), (37, 200, 136), (128, 1000, 520), (192, 4096, 4096)]


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K", CASES)
def test_every_lt_algorithm(M, N, K, dtype):
    from cugraphllm.gpu import cublas, cublaslt, gemm_tune
    _, seed = rng_seed()
    a, w = dev_random((M, K), dtype, 1.0, seed), dev_random((N, K), dtype, K ** -0.5, seed + 1)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    want = host64(a) @ host64(w).T
    lt = cublaslt.handle()
    n16 = len(lt.algos(N, M, K, cublas._dtype_code(a.dtype), cublas._dtype_code(a.dtype), N, gemm_tune.TUNE_ALGOS))
    n32 = len(lt.algos(N, M, K, cublas._dtype_code(a.dtype), cublas.CUDA_R_32F, N, gemm_tune.TUNE_ALGOS))
    assert n16 >= 1 and n32 >= 1
    for j in range(max(n16, n32)):
        c = cp.empty((M, N), dtype)
        poison(c)
        lt.matmul16(c, a, w, algo=j, count=gemm_tune.TUNE_ALGOS)
        err = relerr(host64(c), want)
        assert err < TOL[dtype], f"lt{j} M={M} N={N} K={K} {dtype} seed={seed}: rel err {err:.2e}"
        x = x0.copy()
        lt.matmul16(x, a, w, accumulate=True, algo=j, count=gemm_tune.TUNE_ALGOS)
        err = relerr(host64(x), host64(x0) + want)
        assert err < TOL_F32, f"lt{j} accumulate M={M} N={N} K={K} {dtype} seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("dtype", _dtypes())
def test_tuned_dispatch_adds_once_and_replays_in_a_graph(dtype, monkeypatch):
    from cugraphllm.gpu import gemm, gemm_tune
    monkeypatch.setattr(gemm_tune, "TUNE", True)
    monkeypatch.setattr(gemm_tune, "TUNE_MIN_WEIGHT", 0)
    M, N, K = 96, 1032, 776
    _, seed = rng_seed()
    a, w = dev_random((M, K), dtype, 1.0, seed), dev_random((N, K), dtype, K ** -0.5, seed + 1)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2)
    want = host64(x0) + host64(a) @ host64(w).T
    key = gemm_tune._key(x0, a, w, True)
    gemm_tune._CHOICE.pop(key, None)
    x = x0.copy()
    gemm.matmul_residual(x, a, w, impl="cublas")  # first eager call: tunes, then runs once
    err = relerr(host64(x), want)
    assert err < TOL_F32, f"tuned first call {dtype} seed={seed}: rel err {err:.2e}"
    assert key in gemm_tune._CHOICE and gemm_tune.GEMMEX in gemm_tune._TIMES[key]
    assert len(gemm_tune._TIMES[key]) >= 2, "no cuBLASLt candidate was timed"
    stream = cp.cuda.Stream(non_blocking=True)
    x = x0.copy()
    cp.cuda.Device().synchronize()
    with stream:
        stream.begin_capture()
        gemm.matmul_residual(x, a, w, impl="cublas")
        g = stream.end_capture()
        g.launch()
    stream.synchronize()
    err = relerr(host64(x), want)
    assert err < TOL_F32, f"graph replay, choice {gemm_tune._CHOICE[key]} {dtype} seed={seed}: rel err {err:.2e}"


def test_key_first_seen_in_capture_keeps_gemmex(monkeypatch):
    from cugraphllm.gpu import gemm_tune
    monkeypatch.setattr(gemm_tune, "TUNE_MIN_WEIGHT", 0)
    M, N, K = 40, 264, 328
    _, seed = rng_seed()
    a, w = dev_random((M, K), "float16", 1.0, seed), dev_random((N, K), "float16", K ** -0.5, seed + 1)
    c = cp.empty((M, N), "float16")
    poison(c)
    key = gemm_tune._key(c, a, w, False)
    gemm_tune._CHOICE.pop(key, None)
    from cugraphllm.gpu import cublas
    cublas.handle()
    stream = cp.cuda.Stream(non_blocking=True)
    cp.cuda.Device().synchronize()
    with stream:
        stream.begin_capture()
        gemm_tune.gemm_nt(c, a, w)
        g = stream.end_capture()
        g.launch()
    stream.synchronize()
    assert key not in gemm_tune._CHOICE, "a choice was fixed inside capture"
    err = relerr(host64(c), host64(a) @ host64(w).T)
    assert err < TOL["float16"], f"seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("dtype", _dtypes())
@pytest.mark.parametrize("M,N,K", [(2, 72, 40), (128, 4096, 2048), (512, 8192, 520)])
@pytest.mark.parametrize("out", ["float32", "same"])
def test_matmul_partial_writes_the_whole_product(M, N, K, dtype, out):
    """The TP prefill partial sum p = a @ w.T (gemm.matmul_partial), f32 or in a's dtype (the 16-bit partials of
    the lamport all-reduce): beta = 0, so a NaN-poisoned p is fully replaced."""
    from cugraphllm.gpu import gemm
    _, seed = rng_seed()
    a, w = dev_random((M, K), dtype, 1.0, seed), dev_random((N, K), dtype, K ** -0.5, seed + 1)
    c = cp.empty((M, N), "float32" if out == "float32" else a.dtype)
    poison(c)
    gemm.matmul_partial(c, a, w)
    err = relerr(host64(c), host64(a) @ host64(w).T)
    tol = TOL_F32 if out == "float32" else TOL[dtype]
    assert err < tol, f"M={M} N={N} K={K} {dtype} -> {c.dtype} seed={seed}: rel err {err:.2e}"
