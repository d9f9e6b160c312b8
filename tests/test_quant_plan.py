"""CPU checks of the quantized decode path (no GPU): the frozen launch plans, the ss chunking rule shared by
16-bit and quantized residual GEMVs, the weight bytes and floors per format, and that kernels/gemv_quant.cu
compiles with nvcc for every format x architecture x activation dtype and every launch shape the plan picks."""
import dataclasses
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import gemv_plan, ops_quant
from cugraphllm.gpu.cuda_kernels import kernel_dir
from cugraphllm.gpu.quant_upload import decode_floor, matrix_bytes, weight_bytes

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
PRESETS = ["llama-2-7b", "llama-2-13b", "llama-2-70b"]
SHAPES = [(c.dim, c.hidden_dim, c.qkv_dim, c.vocab_size) for c in map(ModelConfig.from_preset, PRESETS)] + [
    (64, 172, 128, 512), (200, 385, 280, 769), (2050, 8193, 4100, 1000)]


def test_plans_are_frozen_and_per_format():
    p = gemv_plan.plan_for("int4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.warps = 4
    assert gemv_plan.plan_for("fp8") is gemv_plan.plan_for("fp8")
    assert {gemv_plan.plan_for(f).fmt for f in ("fp8", "int8", "int4")} == {"fp8", "int8", "int4"}
    assert gemv_plan.plan_for("fp16") == gemv_plan.plan_for("bfloat16") == gemv_plan.GemvPlan()
    with pytest.raises(ValueError, match="int3"):
        gemv_plan.plan_for("int3")


@pytest.mark.parametrize("fmt", ["fp8", "int8", "int4"])
@pytest.mark.parametrize("dim,hidden,qkv,vocab", SHAPES)
def test_quant_residual_blocks_hold_whole_ss_chunks(fmt, dim, hidden, qkv, vocab):
    """A quantized residual GEMV writes the ss partials in the 16-bit chunking, so its block rows must be a
    multiple of norm_chunk(dim); the other GEMVs may pick any shape."""
    chunk = gemv_plan.norm_chunk(dim)
    for K in (dim, hidden):
        warps, unroll, ks = ops_quant._config("qgemv_residual_ss", fmt, K, (dim + 1) // 2, chunk)
        # tensor-core tiles (QuantPlan.mma) run the epilogue in rounds of one pair a warp: 2 * warps rows
        tiles = gemv_plan.plan_for(fmt).use_mma((dim + 1) // 2, "qgemv_residual_ss", K)
        rows = 2 * warps if tiles else 2 * (warps // ks)
        assert warps % ks == 0 and rows % chunk == 0 and unroll >= 1
    for kernel, pairs in (("qgemv_qkv_rope", qkv // 2), ("qgemv_silu", hidden), ("qgemv_logits", (vocab + 1) // 2)):
        warps, _, ks = ops_quant._config(kernel, fmt, dim, pairs)
        assert warps % ks == 0 and warps * 32 <= 1024


def test_weight_bytes_per_format():
    """Bytes from the layouts of quant/formats.py, summed independently of quant_upload's per-matrix rule."""
    c = ModelConfig.from_preset("llama-2-7b")
    lin = c.n_layers * (c.qkv_dim * c.dim + c.dim * c.dim + 2 * c.hidden_dim * c.dim + c.dim * c.hidden_dim)
    rows = c.n_layers * (c.qkv_dim + c.dim + 2 * c.hidden_dim + c.dim)
    groups = c.n_layers * (c.qkv_dim * c.dim // 128 + c.dim * c.dim // 128 + 2 * c.hidden_dim * c.dim // 128
                           + c.dim * c.hidden_dim // 128)
    head = c.vocab_size * c.dim * 2
    assert weight_bytes(c, None)[1] == 2 * lin + head + 2 * c.dim
    assert weight_bytes(c, "fp8")[1] == weight_bytes(c, "int8")[1] == lin + 4 * rows + head + 2 * c.dim
    assert weight_bytes(c, "int4", 128)[1] == lin // 2 + 4 * groups + head + 2 * c.dim
    assert weight_bytes(c, "int4", 128, quant_head=True)[1] == (
        lin // 2 + 4 * groups + c.vocab_size * c.dim // 2 + 4 * c.vocab_size * c.dim // 128 + 2 * c.dim)
    assert matrix_bytes(4096, 4096, "int4", -1) == 4096 * 2048 + 4 * 4096
    f16, f4 = decode_floor(c), decode_floor(c, "int4")
    assert f4["floor_ms"] == pytest.approx(f4["bytes_per_token"] / 4.24e12 * 1e3)
    assert 3.4 < f16["floor_ms"] / f4["floor_ms"] < 3.7  # 16 bits vs 4 bits + 0.25 bit of scale and zero


def _nvcc(args, tmp):
    fmt, arch, bf16, cfg = args
    w, u, ks = cfg
    out = tmp / f"q{fmt}_{arch}_{bf16}_{w}_{u}_{ks}.cubin"
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()), f"-DQFMT={fmt}",
           f"-DQG_WARPS={w}", f"-DQG_UNROLL={u}", f"-DQG_KSPLIT={ks}", "-o", str(out),
           str(kernel_dir() / "gemv_quant.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    return " ".join(cmd), r.returncode, r.stderr


def test_every_quant_kernel_config_compiles(tmp_path):
    """fp8 and int8 in both archs and dtypes (int4 at defaults is in test_kernels_compile.py), and every launch
    shape the plan can pick for int4 and fp8. Compiles run two at a time (CI has two cores)."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    default = (16, 2, 1)
    jobs = [(f, a, b, default) for f in (1, 2) for a in ("sm_90", "sm_80") for b in (False, True)]
    shapes = {gemv_plan.plan_for("int4").gemv_config("qgemv_silu", 4096, p) for p in (100, 1000, 5000)}
    jobs += [(3, "sm_90", False, s) for s in sorted(shapes - {default})]
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda j: _nvcc(j, tmp_path), jobs))
    bad = [f"{cmd}\n{err}" for cmd, rc, err in results if rc != 0]
    assert not bad, "\n".join(bad)


def test_unquantizable_tensor_is_named():
    from cugraphllm.errors import ConfigError
    from cugraphllm.gpu.quant_upload import check_shapes
    check_shapes([("layers.0.wo", (64, 256))], "int4", 128)
    with pytest.raises(ConfigError, match=r"layers\.3\.w2 \[64, 172\].*divide"):
        check_shapes([("layers.0.wo", (64, 256)), ("layers.3.w2", (64, 172))], "int4", 128)
    with pytest.raises(ConfigError, match="int4"):
        check_shapes([("output", (512, 64))], "int4", 48)
    with pytest.raises(ConfigError, match="supported"):
        check_shapes([("output", (512, 64))], "int2", 128)


@pytest.mark.parametrize("K, group, want", [
    (28672, 128, 2 * 28672 + 8 * 224),   # 70B w2: the half staging, three blocks an SM instead of one
    (4096, 128, 2 * 4096 + 8 * 32),
    (4096, 64, 4 * (4096 + 128)),        # groups of 64 split an iteration: the kernel's fp32 fallback
    (4160, 4160, 4 * (4160 + 130)),      # K not a multiple of 128 columns: fallback
    (4096, None, 4 * (4096 + 128)),      # group unknown (warm-up): sized for the fallback
])
def test_tiles_smem_is_their_staging(K, group, want):
    """int4 tiles get 2K + 8 K / 128 bytes where kernels/gemv_quant_tiles.cuh's qm_ok holds (xh half [K], then
    float2 per 128-column iteration), the fp32 staging of their fallback elsewhere; tight=0 is the old sizing;
    the row-pair paths keep theirs."""
    plan = gemv_plan.plan_for("int4")
    assert plan.use_mma(8192) and plan.smem_bytes(K, 8192, group) == want
    assert dataclasses.replace(plan, tight=0).smem_bytes(K, 8192, group) == 4 * (K + K // 32)
    assert plan.smem_bytes(K, 2048, group) == 2 * ((K + 63) // 64 * 64)   # half2 row pairs (wo, w2 of 7B)
    assert gemv_plan.plan_for("fp8").smem_bytes(K, 8192, group) == 4 * ((K + 31) // 32 * 32)


def test_int4_tiles_where_measured_faster():
    """The tiles on 7B's wqkv / w13 / LM head, on every matrix of 13B (wo / w2 through mma_shapes since the cursor
    loop) and of 70B (wo / w2 since the tile-contiguous layout, twentieth session); the half2 path on 7B's wo and
    w2 ((kernel, K, row pairs) per matrix of each preset); no config puts more than 8 warps on a tile
    (kernels/gemv_quant_mma.cuh)."""
    plan = gemv_plan.plan_for("int4")
    every, three = {"wqkv", "wo", "w13", "w2", "head"}, {"wqkv", "w13", "head"}
    for preset, tiles in (("llama-2-7b", three), ("llama-2-13b", every), ("llama-2-70b", every)):
        c = ModelConfig.from_preset(preset)
        launches = {"wqkv": ("qgemv_qkv_rope_norm", c.dim, c.qkv_dim // 2),
                    "wo": ("qgemv_residual_ss", c.dim, c.dim // 2),
                    "w13": ("qgemv_silu_norm", c.dim, c.hidden_dim),
                    "w2": ("qgemv_residual_ss", c.hidden_dim, c.dim // 2),
                    "head": ("qgemv_logits_norm", c.dim, c.vocab_size // 2)}
        assert {m for m, (k, K, n) in launches.items() if plan.use_mma(n, k, K)} == tiles, preset
        for k, K, n in launches.values():  # an mma_shapes entry is the config of that launch
            if (k, K, n) in dict(plan.mma_shapes):
                assert plan.gemv_config(k, K, n) == dict(plan.mma_shapes)[(k, K, n)]
            if plan.use_mma(n, k, K):
                warps, _, ms = plan.gemv_config(k, K, n)
                assert warps % ms == 0 and ms <= 8, (preset, k, warps, ms)


# (row pairs -> the best (warps, unroll, warps a tile) of the H200 tile sweeps with the cursor loop, eleventh
# session: s19f 7B wqkv / w13 / LM head and 13B wqkv, s19c 13B wo / w2 and 70B wqkv)
MEASURED_BEST = {6144: (8, 2, 4), 11008: (8, 2, 2), 16000: (16, 2, 2), 7680: (16, 2, 4), 2560: (8, 2, 8),
                 5120: (8, 2, 4)}


def test_waves_rule_picks_the_measured_best_configs():
    plan = gemv_plan.plan_for("int4")   # mma_waves=1 since the twelfth session (13B int4 3.39 -> 3.21 ms/token)
    base = dataclasses.replace(plan, mma_waves=0)
    assert {n: plan.waves_config(n) for n in MEASURED_BEST} == MEASURED_BEST
    for n in (2048, 2560, 4096, 5120, 6144, 7680, 8000, 11008, 13824, 16000, 28672):  # within its limits
        cfg = plan.mma_config(n)
        assert cfg[0] % cfg[2] == 0 and cfg[2] <= 8 and cfg[1] == base.unroll, (n, cfg)
    assert plan.waves_config(100000) is None and plan.mma_config(100000) == base.mma_config(100000)  # > 2 waves
    assert base.mma_config(7680) == (8, 2, 4)  # the fixed rule without it
    forced = dataclasses.replace(plan, ksplit=2, warps=8)
    assert forced.mma_config(7680) == (8, 2, 2)  # a forced ksplit (sweeps, tests) bypasses the rule
