"""The fused short-prefill attention without a GPU (gpu/qkv_attn.py, kernels/qkv_attn.cuh): its kernels compile for
sm_90 at the engine's 16-row qkv config; the group counting rule (every block's adds reach qattn_total exactly once
per group) on a Python model of the kernel's arithmetic; which prefill steps the runtime sends to the fused graph."""
import os
import shutil
import subprocess

import pytest

from cugraphllm.gpu import qkv_attn
from cugraphllm.gpu.cuda_kernels import kernel_dir

NVCC = shutil.which("nvcc")


@pytest.mark.parametrize("bf16", [False, True])
def test_qattn_build_compiles(bf16, tmp_path):
    from cugraphllm.gpu.gemm import own_config
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    names = ("WM", "WK", "STAGES", "RT", "XS", "PF", "WS", "PR")
    defs = {"NT": 2, "QATTN": 1, **dict(zip(names, own_config("qkv", 2)))}
    cmd = [NVCC, "-arch=sm_90", "-cubin", "-std=c++17", "-I", str(kernel_dir()), "--resource-usage",
           *[f"-D{k}={v}" for k, v in defs.items()], "-o", str(tmp_path / "k.cubin"),
           str(kernel_dir() / "gemm.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    assert "gemm_qkv_rope_attn_ss" in r.stdout + r.stderr and "gemm_qkv_rope_attn'" in r.stdout + r.stderr


def _total(g, B, D, kvd, hd, R):  # kernels/qkv_attn.cuh qattn_total
    starts, sizes = (g * R * hd, D + g * hd, D + kvd + g * hd), (R * hd, hd, hd)
    return sum((a + n - 1) // B - a // B + 1 for a, n in zip(starts, sizes))


def _adds(a, b, D, kvd, hd, R):  # qattn_signal: the groups of one block's rows [a, b), one add a (region, group)
    out = []
    for lo, hi, per in ((0, D, R * hd), (D, D + kvd, hd), (D + kvd, D + 2 * kvd, hd)):
        x, y = max(a, lo), min(b, hi)
        if x < y:
            out += list(range((x - lo) // per, (y - 1 - lo) // per + 1))
    return out


@pytest.mark.parametrize("H,KVH,hd,B", [(3, 1, 32, 32), (4, 2, 24, 32), (8, 2, 64, 32), (32, 32, 128, 32),
                                        (64, 8, 128, 32), (40, 40, 128, 48), (6, 3, 16, 32), (5, 5, 40, 16)])
def test_group_counts_reach_the_total_once(H, KVH, hd, B):
    D, kvd = H * hd, KVH * hd
    R, NQ = H // KVH, D + 2 * kvd
    counts = [0] * KVH
    for row0 in range(0, NQ, B):
        for g in _adds(row0, min(row0 + B, NQ), D, kvd, hd, R):
            counts[g] += 1
    assert counts == [_total(g, B, D, kvd, hd, R) for g in range(KVH)]


class _Attn:
    prefill_buckets = [16, 32, 64, 128, 256, 512]

    def bucket_for(self, length, kind):
        return next(b for b in self.prefill_buckets if b >= length)


class _Engine:
    def __init__(self, on):
        self.qkv_attn, self.attn = on, _Attn()


@pytest.mark.parametrize("on,length,pos,kind", [
    (True, 10, 0, "prefill_short"), (True, 16, 240, "prefill_short"), (True, 16, 241, "prefill"),
    (True, 17, 0, "prefill"), (True, 2, 254, "prefill_short"), (False, 10, 0, "prefill")])
def test_runtime_key(on, length, pos, kind):
    from cugraphllm.gpu.runtime import GraphRuntime
    rt = object.__new__(GraphRuntime)  # no stream: _key and prefill_keys need only the engine
    rt.e, rt.mode = _Engine(on), "hybrid"
    assert rt._key("prefill", length, True, pos) == (kind, rt.e.attn.bucket_for(length, "prefill"), True)
    assert (("prefill_short", 16, False) in rt.prefill_keys(False)) == on
    assert qkv_attn.short(16, qkv_attn.MAX_KEYS) and not qkv_attn.short(32, 32)
