"""GEMV launch-config rules of gpu/plan.py (no GPU needed): a residual GEMV's block shape fixes the chunking of the
partial sums of squares (ss) that the next fused norm reads, so every override must keep norm_chunk; and every
configuration the rules can pick compiles for sm_90."""
import shutil
import subprocess

import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import gemv_plan as plan
from cugraphllm.gpu.cuda_kernels import kernel_dir

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
PRESETS = ["llama-2-7b", "llama-2-13b", "llama-2-70b"]


def shapes():
    """(dim, hidden_dim) of the presets plus awkward sizes around the thresholds."""
    out = [(c.dim, c.hidden_dim) for c in (ModelConfig.from_preset(p) for p in PRESETS)]
    return out + [(64, 172), (2046, 8191), (2048, 8192), (2050, 8193), (4097, 11007), (1, 9000)]


@pytest.mark.parametrize("dim,hidden", shapes())
def test_residual_overrides_keep_the_ss_chunking(dim, hidden):
    pairs = (dim + 1) // 2
    for K in (dim, hidden):  # wo (K = dim) and w2 (K = hidden) both write ss for the next fused norm
        warps, unroll, ks = plan.gemv_config("gemv_residual_ss", K, pairs)
        assert warps % ks == 0 and unroll >= 1
        assert 2 * (warps // ks) == plan.norm_chunk(dim), (dim, K, (warps, unroll, ks))
        assert -(-dim // (2 * (warps // ks))) == plan.norm_partials(dim)


def test_rules_pick_the_swept_configs_on_7b():
    c = ModelConfig.from_preset("llama-2-7b")
    assert plan.gemv_config("gemv_qkv_rope_norm", c.dim, c.qkv_dim // 2) == plan.GEMV_WIDE
    assert plan.gemv_config("gemv_silu_norm", c.dim, c.hidden_dim) == plan.GEMV_WIDE
    assert plan.gemv_config("gemv_logits_norm", c.dim, c.vocab_size // 2) == plan.GEMV_WIDE
    assert plan.gemv_config("gemv_residual_ss", c.hidden_dim, c.dim // 2) == plan.GEMV_LONG_K
    # wo: its GEMV_SHAPES entry (H200 end to end, fourteenth session), with the rule's rows a block (the ss chunk)
    wo = plan.gemv_config("gemv_residual_ss", c.dim, c.dim // 2)
    assert wo == (16, 1, 4) and 2 * (wo[0] // wo[2]) == plan.norm_chunk(c.dim)


def test_explicit_ksplit_applies_to_every_kernel(monkeypatch):
    monkeypatch.setattr(plan, "GEMV_KSPLIT", 4)
    for k in ("gemv_qkv_rope", "gemv_residual_ss", "gemv_logits"):
        assert plan.gemv_config(k, 11008, 16000) == (plan.GEMV_WARPS, plan.GEMV_UNROLL, 4)


def test_shape_overrides_apply_to_their_shape_only():
    for (kernel, K, pairs), cfg in plan.GEMV_SHAPES.items():
        w, u, ks = cfg
        assert w % ks == 0 and u >= 1 and ks >= 1
        if kernel.startswith("gemv_residual"):  # rows a block = the ss chunk, or the next fused norm reads wrong
            assert 2 * (w // ks) == plan.norm_chunk(2 * pairs), "a residual override changes the ss chunking"
        assert plan.gemv_config(kernel, K, pairs) == cfg
    for p in PRESETS:  # no one-GPU LLaMA-2 GEMV takes an override
        c = ModelConfig.from_preset(p)
        for key in (("gemv_qkv_rope_norm", c.dim, c.qkv_dim // 2), ("gemv_silu_norm", c.dim, c.hidden_dim),
                    ("gemv_logits_norm", c.dim, c.vocab_size // 2), ("gemv_logits", c.dim, c.vocab_size // 2)):
            assert key not in plan.GEMV_SHAPES, (p, key)


@pytest.mark.parametrize("cfg", sorted({plan.GEMV_WIDE, plan.GEMV_LONG_K, *plan.GEMV_SHAPES.values()}))
def test_override_configs_compile(cfg, tmp_path):
    if NVCC is None:
        pytest.skip("nvcc not installed")
    w, u, ks = cfg
    cmd = [NVCC, "-arch=sm_90", "-cubin", "-std=c++17", "-I", str(kernel_dir()), f"-DGEMV_WARPS={w}",
           f"-DGEMV_UNROLL={u}", f"-DGEMV_KSPLIT={ks}", "-o", str(tmp_path / "g.cubin"),
           str(kernel_dir() / "gemv.cu")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
