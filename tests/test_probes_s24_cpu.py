"""The sixteenth session's tools without a GPU: prefill_kernels' summary of an ncu CSV, prefill_ab's module-attribute
settings (applied, then undone by the next setting), wgmma_probe's kernel source under nvcc for sm_90a (every define
set it launches) and both scripts' one-line error without a GPU."""
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from scripts import prefill_ab as pab
from scripts import prefill_kernels as pk
from scripts import wgmma_probe as wp
from scripts.wgmma_probe_src import SRC as WGMMA_SRC
from scripts.wgmma_probe_src import SRC_TMA as WGMMA_TMA_SRC

NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
HEADER = '"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"\n'


def _row(i, name, unit, value):
    return f'"{i}","{name}(float*, int)","gpu__time_duration.sum","{unit}","{value}"\n'


def test_summarize_splits_steps_at_the_embedding(tmp_path):
    csv = tmp_path / "k.csv"
    lines = ["==PROF== noise line\n", HEADER,
             _row(0, "embedding", "nsecond", "3,000"), _row(1, "gemm_silu", "usecond", "40.5"),
             _row(2, "gemm_silu", "usecond", "41.5"), _row(3, "rmsnorm_unit", "nsecond", "2,000"),
             _row(4, "embedding", "nsecond", "4,000"), _row(5, "nvjet_sm90_hsh", "msecond", "0.25")]
    csv.write_text("".join(lines))
    out = pk.summarize(str(csv), [16, 128], floor_ms=3.0)
    s16, s128 = out[16], out[128]
    assert s16["launches"] == 4 and s128["launches"] == 2
    assert s16["kernels"]["gemm_silu"] == {"count": 2, "ms": 0.082, "share": round(0.082 / 0.087, 4)}
    assert list(s16["kernels"])[0] == "gemm_silu"              # largest first
    assert s16["total_ms"] == 0.087 and s16["weight_floor_ms"] == 3.0
    assert s128["kernels"]["nvjet_sm90_hsh"]["ms"] == 0.25 and s128["total_ms"] == 0.254


def test_prefill_ab_module_attributes_are_undone():
    from cugraphllm.gpu import gemm
    before = gemm.AUTO_RESIDUAL_MAX_K
    try:
        pab.apply("gemm.AUTO_RESIDUAL_MAX_K=11008")
        assert gemm.AUTO_RESIDUAL_MAX_K == 11008
        pab.apply("tune0")
        assert gemm.AUTO_RESIDUAL_MAX_K == before
        with pytest.raises(SystemExit, match="no such attribute"):
            pab.apply("gemm.NO_SUCH_KNOB=1")
    finally:
        pab.apply("tune0")
        gemm.AUTO_RESIDUAL_MAX_K = before


@pytest.mark.parametrize("src,defines", [("ring", "-DWG=2 -DBT=128 -DSTAGES=4 -DPIPE=0"),
                                         ("ring", "-DWG=2 -DBT=64 -DSTAGES=6 -DPIPE=1"),
                                         ("ring", "-DWG=4 -DBT=128 -DSTAGES=4 -DPIPE=1 -DCLUSTER=1"),
                                         ("tma", "-DWG=4 -DSTAGES=4"), ("tma", "-DWG=2 -DSTAGES=6 -DKO=1"),
                                         ("tma", "-DWG=4 -DSTAGES=4 -DEPI=0"), ("tma", "-DWG=2 -DSTAGES=8 -DBT=16")])
def test_wgmma_probe_compiles_for_sm90a(src, defines):
    if NVCC is None:
        pytest.skip("nvcc not installed")
    with tempfile.TemporaryDirectory() as d:
        cu = Path(d) / "probe.cu"
        cu.write_text(WGMMA_SRC if src == "ring" else WGMMA_TMA_SRC)
        out = subprocess.run([NVCC, "-arch=sm_90a", "-std=c++17", "-cubin", "-o", str(Path(d) / "p.cubin"),
                              *defines.split(), str(cu)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("script,main,argv", [("wgmma_probe", wp.main, []),
                                              ("prefill_kernels", pk.main, ["--rows", "16"])])
def test_no_gpu_is_a_one_line_error(capsys, script, main, argv):
    from conftest import GPU
    if GPU:
        pytest.skip("a GPU is present: the script would run")
    assert main(argv) == 2
    assert capsys.readouterr().err == f"{script}: error: needs CuPy and a CUDA GPU\n"


def test_plan_bench_applies_each_kind_and_refuses_bad_input(capsys):
    import dataclasses
    from cugraphllm.gpu import attention, gemv_plan
    from scripts import plan_bench as pb
    knobs, shapes, plans = dict(attention.DECODE_KNOBS), dict(gemv_plan.GEMV_SHAPES), dict(gemv_plan.QUANT_PLANS)
    try:
        pb.apply("attn", ["0", "unroll=4,n_warps=4"])
        assert attention.DECODE_KNOBS["unroll"] == 4 and attention.DECODE_KNOBS["n_warps"] == 4
        pb.apply("gemv16", ["gemv_residual:4096:2048=16:1:4"])
        assert gemv_plan.GEMV_SHAPES[("gemv_residual", 4096, 2048)] == (16, 1, 4)
        shape = (("qgemv_silu_norm", 4096, 11008), (8, 2, 4))
        pb.apply("quant", ["int4", f"pipe=1, mma_shapes=({shape!r},)"])
        p = gemv_plan.QUANT_PLANS["int4"]
        assert p.pipe == 1 and p.mma_shapes == (shape,)
        assert dataclasses.replace(p, pipe=plans["int4"].pipe, mma_shapes=plans["int4"].mma_shapes) == plans["int4"]
        assert pb.main(["quant", "int4", "no_such_field=1"]) == 2
        assert "plan_bench: error: quant int4 no_such_field=1:" in capsys.readouterr().err
        assert pb.main(["tiles"]) == 2 and "usage" in capsys.readouterr().err
    finally:
        attention.DECODE_KNOBS.clear()
        attention.DECODE_KNOBS.update(knobs)
        gemv_plan.GEMV_SHAPES.clear()
        gemv_plan.GEMV_SHAPES.update(shapes)
        gemv_plan.QUANT_PLANS.update(plans)
