"""scripts/quant_knockout.py without a GPU: its command line (one-line errors, exit 2), the launches it reports
against gpu/ops_quant.py's own compiles, the QG_KO define it adds; and, with nvcc, kernels/gemv_quant.cu's row-pair
drivers under each knockout: every row-pair config ops_quant picks for the presets compiles under each QG_KO value
without spills, QG_KO = 0 gives the engine's PTX, and each bit removes what it says while the weight loads stay.

Compile time: each module keeps only the kernels a config launches (the others stripped from the source), and all
compiles start at once on every core (module fixture)."""
import concurrent.futures as cf
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest

from cugraphllm.config import PRESETS
from cugraphllm.gpu import cuda_kernels as ck
from cugraphllm.gpu import gemv_plan
from cugraphllm.gpu import ops_quant as oq
from scripts import bench_quant as bq
from scripts import quant_knockout as qk

REPO = Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
KOS = (1, 2, 4, 7)
LLAMA = [c for name, c in PRESETS.items() if name.startswith("llama-2")]  # not the tiny test model's small shapes
WEIGHT_LOAD = "ld.global.nc.L1::no_allocate"   # ld_stream16: the weight stream


def products(d: dict) -> str:
    """The instruction KO 2 drops: the tiles' mma, else the half2 FMAs (QG_HACC, whichever row-pair loop), else
    fp8's e4m3 converts (its fp32 products; the PTX cases hold no fp32 int8 / int4 path)."""
    if qk.driver(d) == "tiles":
        return "mma.sync"
    return "fma.rn.f16x2" if d.get("QG_HACC") else "cvt.rn.f16x2.e4m3x2"


# matrices whose launch the PTX test reads: fp8 and int8 pipe, int4 half2 (wo / w2 shapes), one of them bf16
PTX_CASES = [("fp8", "wo+ss", "float16"), ("fp8", "w13+norm", "float16"), ("int8", "wqkv+norm", "float16"),
             ("int8", "w2+ss", "float16"), ("int4", "wo+ss", "float16"), ("int4", "w2+ss", "bfloat16")]


# ---- the command line ------------------------------------------------------------------------------------
def test_defaults():
    a = qk.parse_args([])
    assert (a.formats, a.matrices, a.kos) == (qk.FORMATS, qk.MATRICES, qk.KOS) == (
        ("fp8", "int8", "int4"), ("wqkv+norm", "wo+ss", "w13+norm", "w2+ss"), (0, 1, 2, 4, 7))
    assert set(a.matrices) <= set(bq.MATS) and a.out is None and a.jobs >= 1
    b = qk.parse_args(["--formats", "int4,fp8", "--matrices", "w2+ss", "--kos", "7,0,3", "--group-size", "256"])
    assert (b.formats, b.matrices, b.kos, b.group_size) == (("int4", "fp8"), ("w2+ss",), (7, 0, 3), 256)
    assert a.plan == {} and qk.parse_args(["--plan", "mma_min_pairs=0,ksplit=8"]).plan == {"mma_min_pairs": 0,
                                                                                          "ksplit": 8}


def test_plan_reaches_the_launch(monkeypatch):
    """--plan replaces QuantPlan fields in this process (the compiling workers get it in their task): int4's 7B
    w2 leaves the half2 path for 8-warp tiles of 8 warps a tile."""
    monkeypatch.setattr(gemv_plan, "QUANT_PLANS", dict(gemv_plan.QUANT_PLANS))
    assert qk.driver(qk.compile_defines("int4", "w2+ss")) == "half2"
    qk.with_plan(("int4",), qk.parse_args(["--plan", "mma_min_pairs=0,warps=8,ksplit=8"]).plan)
    d = qk.compile_defines("int4", "w2+ss")
    assert qk.driver(d) == "tiles" and (d["QG_WARPS"], d["QG_MSPLIT"]) == (8, 8)


@pytest.mark.parametrize("argv", [["--formats", "fp16"], ["--formats", "fp8,fp8"], ["--formats", ""],
                                  ["--matrices", "wo"], ["--kos", "256"], ["--kos", "-1"], ["--kos", "1,x"],
                                  ["--kos", "2,2"], ["--jobs", "0"], ["--group-size", "48"],
                                  ["--group-size", "512"], ["--dtype", "float32"], ["--bogus"],
                                  ["--plan", "warps"], ["--plan", "nosuch=1"], ["--plan", "warps=x"]])
def test_bad_input_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        qk.parse_args(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("quant_knockout: error:")


def test_cli_error_exit_code_and_no_traceback():
    for mod in ("scripts.quant_knockout", "scripts.int4_knockout"):
        r = subprocess.run([sys.executable, "-m", mod, "--kos", "300"], cwd=REPO, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
        assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--kos" in r.stderr


def test_no_gpu_is_a_one_line_error(capsys, tmp_path):
    from conftest import GPU
    if GPU:
        pytest.skip("a GPU is present: the script would run the profile")
    out = tmp_path / "ko.json"
    assert qk.main(["--jobs", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "quant_knockout: error: needs CuPy and a CUDA GPU\n" and not out.exists()


def test_imports_and_reports_launches_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import scripts.int4_knockout\n"
            "from scripts import quant_knockout as q\n"
            "print(sorted({q.driver(q.compile_defines(f, m)) for f in q.FORMATS for m in q.MATRICES}))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-1500:]
    assert set(eval(r.stdout)) <= {"tiles", "pipe", "half2", "fp32"}


# ---- what the script reports and compiles ----------------------------------------------------------------
def ops_configs(dtype="float16") -> dict:
    """{sorted define items: kernels} of every module ops_quant's warm-up compiles for the LLaMA-2 presets (all
    formats, LM head included), its compiles intercepted."""
    seen = {}

    def record(file, kernel, defines=None, options=(), dtype=None):
        seen.setdefault(tuple(sorted({**defines, **ck.dtype_defines(dtype)}.items())), set()).add(kernel)
        return mock.Mock()
    with mock.patch.object(oq, "get_function", record), mock.patch.object(oq, "device_id", lambda: "enum"), \
            mock.patch.object(oq._ops, "_need_smem", lambda fn, n: None), mock.patch.dict(oq._cache):
        for preset in LLAMA:
            for fmt in qk.FORMATS:
                oq.warmup(preset, dtype, fmt, head=True)
    return seen


def test_launches_are_the_ones_ops_quant_compiles():
    """Each (format, matrix): the kernel and defines the script reports are among those ops_quant's warm-up
    compiles for 7B; the driver follows the format's plan; the bf16 module differs by CG_BF16 alone."""
    seen = ops_configs()
    for fmt in qk.FORMATS:
        plan = gemv_plan.plan_for(fmt)
        for m in tuple(bq.MATS):
            d = qk.compile_defines(fmt, m)
            kernel, K, pairs, chunk, group = qk.launch(fmt, m)
            assert kernel in seen[tuple(sorted(d.items()))] and K == bq.MATS[m][2]
            want = "tiles" if plan.use_mma(pairs, kernel, K) else ("pipe" if plan.pipe else ("half2" if plan.hacc else "fp32"))
            assert qk.driver(d) == want, (fmt, m)
            assert qk.compile_defines(fmt, m, "bfloat16") == {**d, "CG_BF16": 1}
            assert (chunk > 0) == m.endswith("+ss") and group == (128 if fmt == "int4" else K)


def test_with_ko_adds_the_define(monkeypatch):
    calls = []
    monkeypatch.setattr(oq, "get_function", oq.get_function)  # restored after the test
    monkeypatch.setattr(oq, "_cache", {"stale": 1})
    monkeypatch.setattr(ck, "get_function", lambda *a: calls.append(a) or "fn")
    qk.with_ko(5)
    assert oq._cache == {}
    assert oq.get_function("gemv_quant.cu", "qgemv_silu", {"QFMT": 2, "QG_WARPS": 8}, dtype="bfloat16") == "fn"
    assert calls == [("gemv_quant.cu", "qgemv_silu", {"QFMT": 2, "QG_WARPS": 8, "QG_KO": 5}, (), "bfloat16")]
    assert qk.knocked(5) == ["prologue", "epilogue"] and qk.knocked(0) == []


def test_table_has_a_line_per_matrix():
    rows = [{"format": f, "matrix": m, "driver": "pipe", "read_floor_us": 7.5, "ko": ko, "us": 10.0 + ko}
            for f in ("fp8", "int8") for m in ("wo+ss", "w2+ss") for ko in (0, 2)]
    lines = qk.table(rows, (0, 2)).splitlines()
    assert len(lines) == 5 and lines[0].split() == ["format", "matrix", "driver", "floor", "ko", "0", "ko", "2"]
    assert lines[3].split() == ["int8", "wo+ss", "pipe", "7.50", "10.00", "12.00"]


# ---- the kernels under QG_KO (nvcc) ------------------------------------------------------------------------
_KERNEL_RE = re.compile(r'extern "C" __global__ void QG_BOUNDS\s+(\w+)\(.*?\n\}\n', re.S)


def _compile(defines: dict, kernels: frozenset, ko) -> tuple[str, dict]:
    """(PTX text, {kernel: spill bytes}) of gemv_quant.cu as the engine compiles it (read_source), keeping only
    `kernels`; ko None: no QG_KO define."""
    src = ck.read_source("gemv_quant.cu", defines if ko is None else {**defines, "QG_KO": ko})
    names = [m.group(1) for m in _KERNEL_RE.finditer(src)]
    assert kernels <= set(names), (sorted(kernels), names)
    src = _KERNEL_RE.sub(lambda m: m.group(0) if m.group(1) in kernels else "", src)
    with tempfile.TemporaryDirectory() as d:
        cu, ptx = Path(d) / "k.cu", Path(d) / "k.ptx"
        cu.write_text(src)
        r = subprocess.run([NVCC, "-arch=sm_90", "-ptx", "-std=c++17", "-o", str(ptx), str(cu)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        r = subprocess.run([NVCC, "-arch=sm_90", "-cubin", "-Xptxas", "-v", "-o", str(Path(d) / "k.cubin"), str(ptx)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        spills = {m.group(1): int(m.group(2)) + int(m.group(3)) for m in re.finditer(
            r"Function properties for (\w+)\n\s*\d+ bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill "
            r"loads", r.stderr)}
        assert set(spills) == kernels, r.stderr[-2000:]
        return ptx.read_text(), spills


def _row_pair_configs():
    """{defines: the decode step's kernels} of the presets' row-pair modules (the unfused variants, which ops_quant
    compiles into the same modules, left out: they double the compile time)."""
    decode = frozenset(qk.KERNELS.values())
    configs = {d: frozenset(k) & decode for d, k in ops_configs().items() if not dict(d).get("QG_MMA")}
    return {d: k for d, k in configs.items() if k}


ROW_PAIR = _row_pair_configs()


def _ptx_module(case):
    """(defines, kernels) of a PTX case's compile: its config's row-pair module where the fp16 set has it."""
    d = tuple(sorted(qk.compile_defines(*case).items()))
    return d, ROW_PAIR.get(d, frozenset([qk.launch(*case[:2])[0]]))


@pytest.fixture(scope="module")
def builds():
    """Every compile of the tests below, started at once on every core: {(defines, kernels, ko): future}."""
    if NVCC is None:
        if os.environ.get("CI"):
            pytest.fail("nvcc not found in CI: the kernel compile check cannot run")
        pytest.skip("nvcc not installed")
    jobs = {(d, k, ko) for d, k in ROW_PAIR.items() for ko in (0,) + KOS}
    jobs |= {_ptx_module(c) + (ko,) for c in PTX_CASES for ko in (None, 0, 1, 2, 4)}
    with cf.ThreadPoolExecutor(os.cpu_count() or 2) as ex:  # the largest modules first
        yield {j: ex.submit(_compile, dict(j[0]), j[1], j[2]) for j in sorted(jobs, key=lambda j: -len(j[1]))}


def test_row_pair_configs_cover_the_formats():
    """The presets' row-pair modules: fp8 and int8 pipelined, int4 half2, each with 16-warp and (fp8 / int8)
    8-warp blocks; ksplit 1 and 2 (4 only below 1024 row pairs: the tiny preset)."""
    assert {(dict(d)["QFMT"], qk.driver(dict(d))) for d in ROW_PAIR} == {(1, "pipe"), (2, "pipe"), (3, "half2")}
    assert {dict(d)["QG_KSPLIT"] for d in ROW_PAIR} == {1, 2}
    assert {dict(d)["QG_WARPS"] for d in ROW_PAIR} == {8, 16}


@pytest.mark.parametrize("defines", list(ROW_PAIR), ids=lambda d: "-".join(f"{v}" for k, v in d))
def test_knockouts_add_no_spills(builds, defines):
    """Every QG_KO value, in each decode kernel ops_quant launches from this module: no more spilled bytes than the
    real kernel's (QG_KO 0; a knockout that spilled more would time the spill, not the phase). Some real kernels
    spill already under nvcc 13.0 (the fp8 pipelined and int4 half2 16-warp ksplit-2 residual GEMVs: 14 B out,
    16 B in)."""
    _, real = builds[(defines, ROW_PAIR[defines], 0)].result()
    for ko in KOS:
        _, spills = builds[(defines, ROW_PAIR[defines], ko)].result()
        assert all(spills[k] <= real[k] for k in real), (ko, spills, real)


def _entry(ptx: str, name: str) -> str:
    body = ptx[ptx.index(f".entry {name}("):]
    return body[:body.index(".entry ", 10)] if ".entry " in body[10:] else body


@pytest.mark.parametrize("case", PTX_CASES, ids=lambda c: "-".join(c))
def test_ko_zero_is_the_engine_and_each_bit_knocks_its_phase(builds, case):
    """QG_KO 0's PTX is the engine's (no QG_KO define); 1 drops the activation / ss loads (ld.global.cg under
    QG_LDCG), 2 the products (fp8's e4m3 converts / the half2 FMAs of the vector loop), 4 the epilogue's stores,
    none of them a weight load (ld_stream16)."""
    d, kernels = _ptx_module(case)
    kernel = qk.launch(*case[:2])[0]
    ptx = {ko: _entry(builds[(d, kernels, ko)].result()[0], kernel) for ko in (None, 0, 1, 2, 4)}
    assert ptx[0] == ptx[None]
    loads = {ko: p.count(WEIGHT_LOAD) for ko, p in ptx.items()}
    assert loads[0] > 0 and all(n >= loads[0] for n in loads.values()), loads  # (unrolling may copy some)
    assert "ld.global.cg" in ptx[0] and "ld.global.cg" not in ptx[1]
    prod = {ko: ptx[ko].count(products(dict(d))) for ko in (0, 2)}
    assert prod[2] < prod[0] / 2, prod  # what is left: fp8's scalar path for awkward K (deq_at)
    assert "st.global" in ptx[0] and "st.global" not in ptx[4]
    for ko in (1, 2, 4):
        assert ptx[ko] != ptx[0]


def test_knockouts_take_the_engines_layout(monkeypatch):
    """13B's int4 matrices are tile-contiguous in the one-GPU engine (gpu/quant_tiles.py), so their knockouts compile
    with QG_TILED (and bench_quant.weight_copies tiles their weights); CUGRAPHLLM_QG_TILED=0: row-major, as 7B's."""
    monkeypatch.setattr(qk.bq, "MATS", qk.bq.mats("llama-2-13b")[0])
    assert qk.engine_tiled("int4", "w13+norm") and qk.compile_defines("int4", "w13+norm")["QG_TILED"] == 1
    assert not qk.engine_tiled("int8", "w13+norm")
    monkeypatch.setenv("CUGRAPHLLM_QG_TILED", "0")
    assert not qk.engine_tiled("int4", "w13+norm") and "QG_TILED" not in qk.compile_defines("int4", "w13+norm")
    monkeypatch.delenv("CUGRAPHLLM_QG_TILED")
    monkeypatch.setattr(qk.bq, "MATS", qk.bq.mats("llama-2-7b")[0])
    assert not qk.engine_tiled("int4", "w13+norm")
