"""The ctypes half of gpu/cublaslt_search.py on a GPU: algorithm ids and capabilities read back, the heuristic's own
configuration rebuilt from its attributes, and searched configurations that cublasLtMatmulAlgoCheck accepts computing
the product (fp16 out, and f32 accumulated with beta = 1) against NumPy float64. Outputs are poisoned first."""
import pytest

from test_gemm_gpu import TOL, TOL_F32, dev_random, host64, poison, relerr, rng_seed

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu

CASES = [(77, 4096, 4096, False), (128, 4096, 11008, True), (200, 1032, 776, False)]


def _setup(M, N, K, acc):
    from cugraphllm.gpu import cublaslt
    _, seed = rng_seed()
    a, w = dev_random((M, K), "float16", 1.0, seed), dev_random((N, K), "float16", K ** -0.5, seed + 1)
    x0 = dev_random((M, N), "float32", 1.0, seed + 2) if acc else None
    want = host64(a) @ host64(w).T + (host64(x0) if acc else 0.0)
    lt = cublaslt.handle()
    cb = cublaslt.CUDA_R_32F if acc else cublaslt.CUDA_R_16F
    plan = lt.algos(N, M, K, cublaslt.CUDA_R_16F, cb, N, 8)[0]
    return lt, plan, a, w, x0, want, cb, seed


def _run(lt, plan, algo, a, w, x0, acc):
    c = x0.copy() if acc else cp.empty((a.shape[0], w.shape[0]), cp.float16)
    if not acc:
        poison(c)
    lt._run((*plan[:4], algo, plan[5]), w, a, c, lt._one if acc else lt._zero)
    return host64(c)


@pytest.mark.parametrize("M,N,K,acc", CASES)
def test_heuristic_config_round_trip(M, N, K, acc):
    from cugraphllm.gpu import cublaslt
    from cugraphllm.gpu import cublaslt_search as ls
    lt, plan, a, w, x0, want, cb, seed = _setup(M, N, K, acc)
    ids = ls.algo_ids(lt, cublaslt.CUDA_R_16F, cb)
    cfg = ls.read_config(plan[4])
    assert cfg.algo_id in ids and len(ids) == len(set(ids))
    caps = ls.capabilities(lt, cfg.algo_id, cublaslt.CUDA_R_16F, cb)
    assert cfg.tile in (caps.tiles or (0,)) and cfg.stages in (caps.stages or (0,))
    algo = ls.make_algo(lt, cfg, cublaslt.CUDA_R_16F, cb)
    assert algo is not None and ls.check(lt, plan, algo) is not None
    assert ls.read_config(algo) == cfg
    err = relerr(_run(lt, plan, algo, a, w, x0, acc), want)
    assert err < (TOL_F32 if acc else TOL["float16"]), f"{cfg.label()} seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("M,N,K,acc", CASES)
def test_searched_configs_compute_the_product(M, N, K, acc):
    """The first 40 enumerated configurations that AlgoCheck accepts (split-K down to K / 4 >= 256 included): every
    one of them correct; at least one accepted."""
    from cugraphllm.gpu import cublaslt
    from cugraphllm.gpu import cublaslt_search as ls
    lt, plan, a, w, x0, want, cb, seed = _setup(M, N, K, acc)
    caps = [ls.capabilities(lt, i, cublaslt.CUDA_R_16F, cb) for i in ls.algo_ids(lt, cublaslt.CUDA_R_16F, cb)]
    cands = ls.enumerate_configs(caps, N, M, K, clusters=(0, 2, 3), max_configs=600, min_k_per_split=256)
    accepted = 0
    for cfg in cands:
        algo = ls.make_algo(lt, cfg, cublaslt.CUDA_R_16F, cb)
        if algo is None or ls.check(lt, plan, algo) is None:
            continue
        err = relerr(_run(lt, plan, algo, a, w, x0, acc), want)
        assert err < (TOL_F32 if acc else TOL["float16"]), f"{cfg.label()} seed={seed}: rel err {err:.2e}"
        accepted += 1
        if accepted == 40:
            break
    assert accepted >= 1, f"AlgoCheck refused all {len(cands)} configurations"
