"""Every kernels/*.cu compiles with nvcc for sm_90 and sm_80, in float16 and bfloat16 (-DCG_BF16).

Runs without a GPU (CI). Skipped only when nvcc is missing AND the CI variable is unset: in CI a missing
nvcc is a failure, not a skip. Size defines take their defaults (each .cu has #ifndef fallbacks).
"""
import os
import re
import shutil
import subprocess

import pytest

from cugraphllm.gpu.cuda_kernels import kernel_dir, kernel_sources

NVCC = shutil.which("nvcc") or (shutil.which("nvcc", path="/usr/local/cuda/bin"))
SOURCES = kernel_sources()


def test_there_are_kernels():
    names = {p.name for p in SOURCES}
    assert {"rmsnorm.cu", "embedding.cu", "gemv.cu", "gemv_quant.cu", "sampling.cu"} <= names


@pytest.mark.parametrize("arch", ["sm_90", "sm_80"])
@pytest.mark.parametrize("bf16", [False, True], ids=["fp16", "bf16"])
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_compiles(src, arch, bf16, tmp_path):
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()),
           "-o", str(tmp_path / "k.cubin"), str(src)] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    assert (tmp_path / "k.cubin").stat().st_size > 0


@pytest.mark.parametrize("src", ["gemm_quant.cu", "gemm_quant_tc.cu"])
@pytest.mark.parametrize("arch,bf16", [("sm_90", False), ("sm_80", True)], ids=["sm_90-fp16", "sm_80-bf16"])
@pytest.mark.parametrize("qfmt", [0, 1], ids=["fp8", "int8"])
def test_gemm_quant_formats_compile(qfmt, arch, bf16, src, tmp_path):
    """gemm_quant*.cu's other weight formats (QFMT 2, int4, is their default and compiles in all four above); two
    arch / dtype pairs each keep the suite's compile time down."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()), f"-DQFMT={qfmt}",
           "-o", str(tmp_path / "k.cubin"), str(kernel_dir() / src)] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"


@pytest.mark.parametrize("cfg", ["s16", "s32", "m64", "l256", "s16d", "l128d", "s16w"])
def test_gemm_quant_tc_configs_compile(cfg, tmp_path):
    """gemm_quant_tc.cu's other tile configs (l128 is the default), each with another format / arch / dtype;
    l128w4 differs from l256 only in warp counts."""
    from cugraphllm.gpu.gemm_quant_tc import CONFIGS
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    qfmt, arch, bf16 = {"s16": (2, "sm_90", True), "s32": (1, "sm_80", False), "m64": (2, "sm_80", False),
                        "l256": (1, "sm_90", False), "s16d": (1, "sm_80", True), "l128d": (2, "sm_90", False),
                        "s16w": (2, "sm_80", True)}[cfg]
    defs = [f"-D{k}={v}" for k, v in zip(("BM", "BN", "WARPS_M", "WARPS_N", "STAGES", "PIPE"), CONFIGS[cfg])]
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()), f"-DQFMT={qfmt}", *defs,
           "-o", str(tmp_path / "k.cubin"), str(kernel_dir() / "gemm_quant_tc.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"


@pytest.mark.parametrize("qfmt,arch,bf16", [(1, "sm_90", False), (1, "sm_80", True), (2, "sm_90", True),
                                            (3, "sm_90", False), (3, "sm_80", True)])
@pytest.mark.parametrize("path", [("-DQG_HACC=1",), ("-DQG_MMA=1", "-DQG_MSPLIT=4"),
                                  ("-DQG_PIPE=1",), ("-DQG_PIPE=1", "-DQG_HACC=1")],
                         ids=["half2", "mma", "pipe", "half2_pipe"])
def test_gemv_quant_half2_path_compiles(qfmt, arch, bf16, path, tmp_path):
    """gemv_quant.cu's half2 path (QG_HACC=1, gemv_quant_h2.cuh), tensor-core path (QG_MMA=1,
    gemv_quant_mma.cuh) and pipelined row-pair loop (QG_PIPE=1, gemv_quant_pipe.cuh) per format: fp8 both ways (hardware e4m3 convert on sm_90, the bit placement on sm_80),
    int8, int4."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()), f"-DQFMT={qfmt}", *path,
           "-o", str(tmp_path / "k.cubin"), str(kernel_dir() / "gemv_quant.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"


def _nvcc_gemm(defines: dict, arch: str, bf16: bool, tmp_path):
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()),
           *[f"-D{k}={v}" for k, v in defines.items()], "-o", str(tmp_path / "k.cubin"),
           str(kernel_dir() / "gemm.cu")] + (["-DCG_BF16"] if bf16 else [])
    return cmd, subprocess.run(cmd, capture_output=True, text=True)


# gemm.cu's RT (row tiles per warp) / XS (x ring in shared memory) / PF (L2 prefetch hint) / WS (W rings) /
# PR (one-barrier reduction) knobs: (NT, WM, WK, STAGES, RT, XS, PF, WS, PR), arch, bf16
GEMM_KNOBS = {"rt2": ((2, 2, 4, 2, 2, 0, 0, 0, 0), "sm_90", False),
              "xs_nt8": ((8, 2, 2, 2, 1, 1, 1, 0, 0), "sm_80", True),
              "rt2xs_wm1": ((2, 1, 8, 2, 2, 1, 2, 0, 1), "sm_90", True),
              "rt2xs_s3": ((5, 2, 2, 3, 2, 1, 0, 0, 0), "sm_80", False),
              "ws": ((2, 2, 2, 3, 1, 0, 0, 1, 0), "sm_90", False),
              "ws_xs_rt2": ((1, 1, 2, 3, 2, 1, 2, 1, 1), "sm_80", True),
              "rows1": ((2, 1, 4, 2, 1, 0, 0, 2, 1), "sm_90", False),
              "rows2_rt2": ((1, 1, 4, 2, 2, 0, 2, 3, 0), "sm_80", True),
              "rows4_nt8": ((8, 2, 4, 2, 1, 0, 1, 4, 0), "sm_90", True)}
KNOB_NAMES = ("NT", "WM", "WK", "STAGES", "RT", "XS", "PF", "WS", "PR")


@pytest.mark.parametrize("cfg", GEMM_KNOBS)
def test_gemm_knobs_compile(cfg, tmp_path):
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    vals, arch, bf16 = GEMM_KNOBS[cfg]
    cmd, r = _nvcc_gemm(dict(zip(KNOB_NAMES, vals)), arch, bf16, tmp_path)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"


@pytest.mark.parametrize("nt,cfg,want", [(5, (2, 4, 2, 1, 1, 0, 0, 0), True), (6, (2, 4, 2, 1, 1, 0, 0, 0), False),
                                         (8, (2, 2, 3, 1, 0, 0, 1, 0), True), (2, (2, 4, 3, 1, 0, 0, 1, 0), False),
                                         (8, (2, 4, 2, 1, 0, 0, 0, 1), True), (4, (1, 8, 2, 1, 1, 0, 0, 1), False),
                                         (5, (1, 5, 2, 1, 0, 0, 2, 0), True), (2, (1, 6, 2, 1, 0, 0, 2, 0), False),
                                         (8, (1, 8, 2, 1, 0, 0, 3, 0), True), (2, (2, 4, 2, 2, 0, 0, 3, 1), False)])
def test_gemm_smem_limit_matches_launcher(nt, cfg, want, tmp_path):
    """gemm.py's own_config_ok refuses exactly the configs whose static smem gemm.cu's static_assert rejects:
    XS 2x4x2 fits at NT=5 (46080 bytes), not at NT=6 (55296); WS 2x2x3 at NT=8 (32768), WS 2x4x3 not (51200);
    PR 2x4x2 at NT=8 (32768), PR + XS 1x8x2 not at NT=4 (16384 + 65536); row loads of 1 row (8 KB a warp tile) 1x5 at
    NT=5 (40960 + 2560), 1x6 not at NT=2 (49152 + 1024); of 2 rows (4 KB) 1x8 at NT=8 (32768 + 4096), 2x4 RT2 PR
    not at NT=2 (65536 + 16384)."""
    from cugraphllm.gpu.gemm import own_config_ok, own_smem_bytes
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd, r = _nvcc_gemm(dict(zip(KNOB_NAMES, (nt,) + cfg)), "sm_90", False, tmp_path)
    fits = own_smem_bytes(cfg, nt) <= 48 * 1024
    assert (r.returncode == 0) == (own_config_ok("residual", cfg, nt) == "") == fits, \
        f"{' '.join(cmd)}\n{r.stderr[-400:]}"
    assert fits == want  # the docstring's arithmetic


@pytest.mark.parametrize("arch,bf16", [("sm_90", False), ("sm_80", True)], ids=["sm_90-fp16", "sm_80-bf16"])
def test_gemv_late_epilogue_compiles(arch, bf16, tmp_path):
    """gemv.cu with GEMV_EARLY=0 (CUGRAPHLLM_GEMV_EARLY=0: the epilogues load their inputs after the weight stream);
    the default 1 compiles in test_compiles."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, f"-arch={arch}", "-cubin", "-std=c++17", "-I", str(kernel_dir()), "-DGEMV_EARLY=0",
           "-o", str(tmp_path / "k.cubin"), str(kernel_dir() / "gemv.cu")] + (["-DCG_BF16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"



def _entry(ptx: str, name: str) -> str:
    body = ptx[ptx.index(f".entry {name}("):]
    return body[:body.index(".entry ", 10)] if ".entry " in body[10:] else body


@pytest.fixture(scope="module")
def logits_norm_ptx(tmp_path_factory):
    """PTX of qgemv_logits_norm on the 16-warp int4 tensor-core tile (the prologue bug's kernel) as the engine
    compiles it (read_source), by default and under each A/B define of the prologue bug."""
    from cugraphllm.gpu.cuda_kernels import dtype_defines, read_source
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    base = dict(QFMT=3, QG_WARPS=16, QG_UNROLL=1, QG_KSPLIT=1, QG_HACC=0, QG_PFS=0, QG_PIPE=0, QG_MMA=1, QG_MSPLIT=2,
                **dtype_defines("float16"))
    out = {}
    for name, extra in {"default": {"QG_LDCG": 0}, "late": {"PDL_LATE": 1, "QG_LDCG": 0}, "ldcg": {}}.items():
        d = tmp_path_factory.mktemp(name)
        (d / "k.cu").write_text(read_source("gemv_quant.cu", {**base, **extra}))
        r = subprocess.run([NVCC, "-arch=sm_90", "-ptx", "-std=c++17", "-o", str(d / "k.ptx"), str(d / "k.cu")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = _entry((d / "k.ptx").read_text(), "qgemv_logits_norm")
    return out


def test_pdl_late_swaps_griddepcontrol(logits_norm_ptx):
    """PDL_LATE (CUGRAPHLLM_PDL_ORDER=late): wait, then launch_dependents, in both drivers of the kernel."""
    seq = {k: re.findall(r"griddepcontrol\.(\w+)", v) for k, v in logits_norm_ptx.items()}
    assert seq["default"] == ["launch_dependents", "wait"] * 2 == seq["ldcg"]
    assert seq["late"] == ["wait", "launch_dependents"] * 2


def test_qg_ldcg_loads_activation_and_ss_through_l2(logits_norm_ptx):
    """QG_LDCG (CUGRAPHLLM_QG_LDCG=1): the activation's 16-byte chunks (v4.u32) and perm gathers (16-bit) and the
    ss partials (f32) load as ld.global.cg; by default all of them are ld.global.nc and nothing is .cg. Weights keep
    ld.global.nc.L1::no_allocate (ld_stream16), the int4 scales / zeros ld.global.nc.b16."""
    d, c = logits_norm_ptx["default"], logits_norm_ptx["ldcg"]
    assert "ld.global.cg" not in d
    for op in ("ld.global.nc.v4.u32", "ld.global.nc.u16", "ld.global.nc.f32"):
        assert op in d
    for op in ("ld.global.cg.v4.u32", "ld.global.cg.b16", "ld.global.cg.f32"):
        assert op in c
    assert "ld.global.nc.v4.u32" not in c and "ld.global.nc.u16" not in c
    n = {k: len(re.findall(r"ld\.global\.nc\.L1::no_allocate", v)) for k, v in logits_norm_ptx.items()}
    assert n["default"] == n["ldcg"] > 0
    assert logits_norm_ptx["late"].count("ld.global.nc") == d.count("ld.global.nc")


@pytest.mark.parametrize("defs", ["WG=2 BT=64 MODE=0 GS=128", "WG=2 BT=128 MODE=0 GS=0", "WG=3 BT=128 MODE=1 GS=128",
                                  "WG=2 BT=64 MODE=1 GS=32", "WG=3 BT=64 MODE=1 GS=64",
                                  "WG=3 BT=128 MODE=1 GS=32 PW=1", "WG=2 BT=128 MODE=0 GS=128 PW=1",
                                  "WG=2 BT=256 MODE=0 GS=128 PW=1", "WG=2 BT=256 MODE=1 GS=32 PW=1",
                                  "WG=2 BT=256 MODE=1 GS=0 PW=1", "WG=3 BT=128 MODE=1 FMT=8",
                                  "WG=2 BT=256 MODE=0 FMT=8 PW=1", "WG=2 BT=64 MODE=0 FMT=8",
                                  "WG=2 BT=256 MODE=0 GS=128 PW=1 SERIAL=1", "WG=2 BT=64 MODE=0 GS=32 SERIAL=1"])
def test_w4_wgmma_compiles_for_sm90a(defs, tmp_path):
    """gemm_w4_wgmma.cu's configs (gpu/gemm_w4.py) for sm_90a, where its body exists: no register spill, and no
    wgmma serialization (ptxas C7510-C7519 'Potential Performance Loss')."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    cmd = [NVCC, "-arch=sm_90a", "-cubin", "-std=c++17", "-Xptxas", "-v", "-o", str(tmp_path / "k.cubin"),
           str(kernel_dir() / "gemm_w4_wgmma.cu")] + [f"-D{d}" for d in defs.split()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    assert "Performance Loss" not in r.stderr, r.stderr
    assert re.search(r"\b0 bytes spill stores", r.stderr), r.stderr
