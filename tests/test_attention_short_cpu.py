"""The short prefill attention without a GPU (gpu/attention_short.py, kernels/attention_short.cu): the kernel
compiles for sm_90 in both storage dtypes without spilling; which prefill steps the runtime sends to the short
graphs ("prefill_short" keys: <= 16 rows ending within MAX_KEYS keys, engines that take it)."""
import os
import shutil
import subprocess

import pytest

from cugraphllm.gpu import attention_short
from cugraphllm.gpu.cuda_kernels import kernel_dir

NVCC = shutil.which("nvcc")


@pytest.mark.parametrize("bf16", [False, True])
def test_kernel_compiles_without_spills(bf16, tmp_path):
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, "-arch=sm_90", "-cubin", "-std=c++17", "-I", str(kernel_dir()), "--resource-usage",
           f"-DNWARPS={attention_short.NWARPS}", "-o", str(tmp_path / "k.cubin"),
           str(kernel_dir() / "attention_short.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    assert "0 bytes spill stores" in r.stderr + r.stdout, r.stderr


class _Attn:
    prefill_buckets = [16, 32, 64, 128, 256, 512]

    def bucket_for(self, length, kind):
        return next(b for b in self.prefill_buckets if b >= length)


class _Engine:
    def __init__(self, on):
        self.short_prefill, self.attn = on, _Attn()


K = attention_short.MAX_KEYS


@pytest.mark.parametrize("on,length,pos,kind", [
    (True, 10, 0, "prefill_short"), (True, 16, K - 16, "prefill_short"), (True, 16, K - 15, "prefill"),
    (True, 17, 0, "prefill"), (True, 2, K - 2, "prefill_short"), (False, 10, 0, "prefill")])
def test_runtime_key(on, length, pos, kind):
    from cugraphllm.gpu.runtime import GraphRuntime
    rt = object.__new__(GraphRuntime)  # no stream: _key and prefill_keys need only the engine
    rt.e, rt.mode = _Engine(on), "hybrid"
    assert rt._key("prefill", length, True, pos) == (kind, rt.e.attn.bucket_for(length, "prefill"), True)
    assert rt._key("decode", 10, True, pos)[0] == "decode"
    assert (("prefill_short", 16, False) in rt.prefill_keys(False)) == on
    assert sum(k[0] == "prefill_short" for k in rt.prefill_keys(True)) == int(on)


def test_engine_rule():
    from cugraphllm.config import ModelConfig
    assert attention_short.engine_ok(ModelConfig.from_preset("llama-2-7b"))
    assert attention_short.engine_ok(ModelConfig.from_preset("llama-2-70b"))
    assert not attention_short.supported(8, 8, 256) and not attention_short.supported(8, 8, 36)
    assert attention_short.short(16, K) and not attention_short.short(16, K + 1) and not attention_short.short(32, 32)
