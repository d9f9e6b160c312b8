"""gpu/gemm_w4.py's tile rule and shared-memory sizes, and scripts/w4_wgmma_probe.py's one-line errors (no GPU)."""
import subprocess
import sys

import pytest

from cugraphllm.gpu import gemm_w4

SMEM_MAX = 227 * 1024  # H100 / H200 dynamic shared memory a block


@pytest.mark.parametrize("mode", ["acc", "store"])
@pytest.mark.parametrize("M", [33, 64, 65, 128, 129, 512, 2048])
@pytest.mark.parametrize("N", [4096, 5120, 12288, 22016, 28672])
def test_config_is_a_compiled_one(mode, M, N):
    wg, bt, splits = gemm_w4.config(mode, M, N)
    assert (wg, bt) in {(2, 64), (2, 128), (3, 64), (3, 128)}
    assert splits == 1 or mode == "acc", "a 16-bit store cannot add split-K partials"
    assert gemm_w4.smem_bytes(wg, bt) <= SMEM_MAX
    # warmup(M) compiles exactly the configs config(.., M, ..) can return
    acc_bt = gemm_w4.config("acc", M, 4096)[1]
    assert mode != "acc" or (wg, bt) == (2, acc_bt)


def test_small_residual_grids_split_k():
    assert gemm_w4.config("acc", 128, 4096) == (2, 64, 2)   # 64 tiles: two K halves fill the 132 SMs
    assert gemm_w4.config("acc", 512, 4096) == (2, 128, 1)
    assert gemm_w4.config("store", 128, 22016)[0] == 3


@pytest.mark.parametrize("args,msg", [(["--configs", "wg4x"], "bad config field"),
                                      (["--configs", "auto"], "needs CuPy and a CUDA GPU")])
def test_probe_one_line_errors(args, msg):
    r = subprocess.run([sys.executable, "-m", "scripts.w4_wgmma_probe", *args], capture_output=True, text=True)
    if "CUDA GPU" in msg and r.returncode == 0:
        pytest.skip("a GPU is present")
    assert r.returncode == 2 or "bad config" in msg and r.returncode != 0
    assert msg in r.stderr + r.stdout and "Traceback" not in r.stderr
