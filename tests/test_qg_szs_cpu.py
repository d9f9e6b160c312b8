"""CUGRAPHLLM_QG_SZS=0|1 (A/B, off by default) without a GPU: its way into the int4 cursor tile compile as QG_SZS and
into the cache key (nothing else changes: other formats, the half2 path, the loop without cursors), its one-line
error, and the kernels it selects (kernels/gemv_quant_tiles.cuh szs_fill, gemv_quant_cursor.cuh cload): the 7B int4
tile configs compile with it at today's 80 registers, wqkv's without spills. Results: tests/test_qg_cursor_gpu.py
run with the switch on (the cursor loop, which stages, must give the bits of the loop without cursors, which does
not); scripts/device_next_szs.sh."""
import pytest

from cugraphllm.errors import ConfigError
from test_qg_cursor_cpu import NVCC, PTXAS, TILE_OPS, _nvcc, _ptxas, compiles  # noqa: F401 (fixture)


@pytest.mark.parametrize("kernel,K,pairs", TILE_OPS)
def test_qg_szs_reaches_the_int4_cursor_tile_compile_and_its_key(compiles, monkeypatch, kernel, K, pairs):
    oq, calls = compiles
    monkeypatch.delenv("CUGRAPHLLM_QG_CURSOR", raising=False)
    monkeypatch.delenv("CUGRAPHLLM_QG_SZS", raising=False)  # unset: off
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    monkeypatch.setenv("CUGRAPHLLM_QG_SZS", "1")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 2 and "QG_SZS" not in calls[0][2] and calls[1][2] == {**calls[0][2], "QG_SZS": 1}
    assert len(oq._cache) == 2 and all(k[-1] for k in oq._cache)  # QG_CURSOR stays the key's last element
    monkeypatch.setenv("CUGRAPHLLM_QG_SZS", "0")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 2  # the default module, cached
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "0")
    monkeypatch.setenv("CUGRAPHLLM_QG_SZS", "1")
    oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert len(calls) == 3 and "QG_SZS" not in calls[2][2] and "QG_CURSOR" not in calls[2][2]
    monkeypatch.setenv("CUGRAPHLLM_QG_SZS", "on")
    monkeypatch.setenv("CUGRAPHLLM_QG_CURSOR", "1")
    with pytest.raises(ConfigError, match="CUGRAPHLLM_QG_SZS") as e:
        oq._function(kernel, "int4", "float16", K, pairs, 0, 128)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("fmt,kernel,pairs", [("fp8", "qgemv_logits_norm", 16000), ("int8", "qgemv_silu_norm", 11008),
                                              ("int4", "qgemv_residual", 2048)])
def test_qg_szs_leaves_other_paths_alone(compiles, monkeypatch, fmt, kernel, pairs):
    oq, calls = compiles
    for v in ("0", "1"):
        monkeypatch.setenv("CUGRAPHLLM_QG_SZS", v)
        oq._function(kernel, fmt, "float16", 4096, pairs, 0, 128)
    assert len(calls) == 1 and "QG_SZS" not in calls[0][2]


@pytest.mark.parametrize("cfg,entry,spills_ok", [((8, 2, 4), "qgemv_qkv_rope_norm", False),
                                                 ((8, 2, 2), "qgemv_silu_norm", True)])
def test_qg_szs_kernels_build(tmp_path, cfg, entry, spills_ok):
    """7B wqkv / w13 tile configs with QG_SZS=1: 80 registers (3 blocks an SM); wqkv without spills (w13: ptxas
    spills 8 bytes with it, nvcc 13.0)."""
    if not (NVCC and PTXAS):
        pytest.skip("nvcc / ptxas not installed")
    w, u, ms = cfg
    d = {"QFMT": 3, "QG_WARPS": w, "QG_UNROLL": u, "QG_KSPLIT": 1, "QG_MMA": 1, "QG_MSPLIT": ms, "QG_HACC": 0,
         "QG_PFS": 0, "QG_PIPE": 0, "QG_LDCG": 1, "QG_CURSOR": 1, "QG_SZS": 1}
    ptx = _nvcc(d, tmp_path, "szs")
    assert "cp.async.ca.shared.global" in ptx
    regs, st, ld = _ptxas(ptx, [entry], tmp_path, "szs")[entry]
    assert regs <= 80 and (spills_ok or st == ld == 0), (regs, st, ld)
