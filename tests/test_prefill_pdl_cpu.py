"""The prefill PDL switches without a GPU: both off by default, and their builds (gemm.cu GEMM_PDL, attention_prefill.cu
PREFILL_PDL) compile for sm_90 with griddepcontrol in them, while the default builds have none."""
import os
import shutil
import subprocess

import pytest

from cugraphllm.gpu.cuda_kernels import kernel_dir

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")  # as tests/test_kernels_compile.py


def test_switches_are_off_by_default():
    from cugraphllm.gpu import attention_prefill, gemm
    assert gemm.PDL_RESIDUAL is False and attention_prefill.PDL_ATTN is False


def _ptx(src: str, defines: dict, tmp_path) -> str:
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    out = tmp_path / "k.ptx"
    flags = [f"-D{k}={v}" for k, v in defines.items()]
    cmd = [NVCC, "-arch=sm_90", "-ptx", "-std=c++17", "-I", str(kernel_dir()), *flags, "-o", str(out),
           str(kernel_dir() / src)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out.read_text()


@pytest.mark.parametrize("cfg", [{"WM": 1, "WK": 8, "PR": 1}, {"WM": 2, "WK": 4, "PF": 1}, {"WM": 1, "XS": 1}])
def test_gemm_pdl_build(cfg, tmp_path):
    base = {"NT": 2, "STAGES": 2, **cfg}
    assert "griddepcontrol" not in _ptx("gemm.cu", base, tmp_path)
    ptx = _ptx("gemm.cu", {**base, "GEMM_PDL": 1}, tmp_path)
    assert "griddepcontrol.wait" in ptx and ("ld.global.cg" in ptx or cfg.get("XS"))


@pytest.mark.parametrize("hd", [64, 128])
def test_attention_prefill_pdl_build(hd, tmp_path):
    base = {"HD": hd, "N_REP": 1}
    assert "griddepcontrol" not in _ptx("attention_prefill.cu", base, tmp_path)
    assert "griddepcontrol.wait" in _ptx("attention_prefill.cu", {**base, "PREFILL_PDL": 1}, tmp_path)
