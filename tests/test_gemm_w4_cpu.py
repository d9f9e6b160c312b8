"""gpu/gemm_w4.py's tile rule and shared-memory sizes, and scripts/w4_wgmma_probe.py's one-line errors (no GPU)."""
import subprocess
import sys

import pytest

from cugraphllm.gpu import gemm_w4

SMEM_MAX = 227 * 1024  # H100 / H200 dynamic shared memory a block


@pytest.mark.parametrize("rule", ["1", "0"])
@pytest.mark.parametrize("mode", ["acc", "store"])
@pytest.mark.parametrize("M", [33, 64, 65, 128, 129, 256, 384, 512, 2048])
@pytest.mark.parametrize("N", [4096, 5120, 12288, 22016, 28672])
def test_config_is_a_compiled_one(mode, M, N, rule, monkeypatch):
    monkeypatch.setenv(gemm_w4.TILES_ENV, rule)
    wg, bt, splits, pw = gemm_w4.config(mode, M, N)
    assert (wg, bt) in {(2, 64), (2, 128), (2, 256), (3, 64), (3, 128)}
    assert bt != 256 or wg == 2 and pw, "256-token tiles need the register-giving producer (128 accumulators)"
    assert pw == 0 or M > 128, "the producer warpgroup was timed above 128 rows only (and lost on wqkv at 256)"
    assert splits == 1 or mode == "acc", "a 16-bit store cannot add split-K partials"
    assert gemm_w4.smem_bytes(wg, bt) <= SMEM_MAX
    # warmup(M) compiles exactly the configs config(.., M, ..) can return: acc's tile does not depend on N, store's
    # only on N >= 16384
    assert config_key(mode, M, N) == config_key(mode, M, 4096 if N < 16384 else 16384)


def config_key(mode, M, N):
    c = gemm_w4.config(mode, M, N)
    return c[:2] + c[3:]


def test_tile_rule(monkeypatch):
    monkeypatch.setenv(gemm_w4.TILES_ENV, "1")
    assert gemm_w4.config("acc", 128, 4096) == (2, 64, 2, 0)    # 64 tiles: two K halves fill the 132 SMs
    assert gemm_w4.config("acc", 256, 4096) == (2, 128, 2, 1)
    assert gemm_w4.config("acc", 512, 4096) == (2, 256, 2, 1)
    assert gemm_w4.config("acc", 512, 5120) == (2, 256, 2, 1)  # 13B: 80 tiles, split
    assert gemm_w4.config("acc", 512, 8192) == (2, 256, 1, 1)  # 70B: 128 tiles
    assert gemm_w4.config("store", 128, 22016) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 256, 22016) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 256, 12288) == (3, 128, 1, 0)
    assert gemm_w4.config("store", 512, 22016) == (2, 256, 1, 1)
    assert gemm_w4.config("store", 512, 12288) == (3, 128, 1, 1)
    assert gemm_w4.config("store", 768, 22016) == (2, 256, 1, 1)
    monkeypatch.setenv(gemm_w4.TILES_ENV, "0")  # the seventeenth session's rule
    assert gemm_w4.config("acc", 512, 4096) == (2, 128, 1, 0)
    assert gemm_w4.config("store", 512, 22016) == (3, 128, 1, 0)


@pytest.mark.parametrize("args,msg", [(["--configs", "wg4x"], "bad config field"),
                                      (["--configs", "auto"], "needs CuPy and a CUDA GPU")])
def test_probe_one_line_errors(args, msg):
    r = subprocess.run([sys.executable, "-m", "scripts.w4_wgmma_probe", *args], capture_output=True, text=True)
    if "CUDA GPU" in msg and r.returncode == 0:
        pytest.skip("a GPU is present")
    assert r.returncode == 2 or "bad config" in msg and r.returncode != 0
    assert msg in r.stderr + r.stdout and "Traceback" not in r.stderr
