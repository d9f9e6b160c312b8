"""The prologue-bug A/B switches without a GPU (cuda_kernels.py docstring): CUGRAPHLLM_PDL_ORDER=early|late reaches
every module compiled by get_function (and its cache key) as PDL_LATE and the decode attention spec as pdl_order;
CUGRAPHLLM_QG_LDCG=0|1 (default 1) reaches the quantized GEMV compile (ops_quant._function) as QG_LDCG and its cache key; bad
values are one-line ConfigErrors. The PTX effect of both defines: tests/test_kernels_compile.py."""
import pytest

from cugraphllm.errors import ConfigError, CugraphError
from cugraphllm.gpu import cuda_kernels as ck


@pytest.mark.parametrize("raw,late", [(None, False), ("", False), ("early", False), ("late", True),
                                      (" LATE ", True), ("Early", False)])
def test_pdl_order_values(raw, late, monkeypatch):
    monkeypatch.setattr(ck, "_PDL_ORDER_RAW", raw)
    assert ck.pdl_late() is late
    assert ck.pdl_late(raw if raw else "early") is late


@pytest.mark.parametrize("raw", ["lat", "1", "wait-first", "early,late"])
def test_pdl_order_bad_value_is_one_line(raw, monkeypatch):
    monkeypatch.setattr(ck, "_PDL_ORDER_RAW", raw)
    with pytest.raises(ConfigError) as e:
        ck.pdl_late()
    assert isinstance(e.value, CugraphError) and "\n" not in str(e.value)
    assert "CUGRAPHLLM_PDL_ORDER" in str(e.value) and repr(raw) in str(e.value)


@pytest.mark.parametrize("raw,on", [(None, True), ("0", False), (" 0 ", False), ("", True), (" 1 ", True), ("1", True)])
def test_qg_ldcg_values(raw, on, monkeypatch):
    if raw is None:
        monkeypatch.delenv("CUGRAPHLLM_QG_LDCG", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_QG_LDCG", raw)
    assert ck.qg_ldcg() is on


@pytest.mark.parametrize("raw", ["2", "yes", "true", "-1"])
def test_qg_ldcg_bad_value_is_one_line(raw, monkeypatch):
    monkeypatch.setenv("CUGRAPHLLM_QG_LDCG", raw)
    with pytest.raises(ConfigError) as e:
        ck.qg_ldcg()
    assert "\n" not in str(e.value) and "CUGRAPHLLM_QG_LDCG" in str(e.value)


class _Module:  # stands in for cupy.RawModule: records what _module was asked to compile
    def __init__(self, calls, name, defines, options):
        calls.append((name, defines, options))

    def get_function(self, kernel):
        return kernel


@pytest.fixture
def modules(monkeypatch):
    calls = []
    monkeypatch.setattr(ck, "_module", lambda name, defines, options: _Module(calls, name, defines, options))
    return calls


@pytest.mark.parametrize("file,kernel,defines,dtype", [("gemv.cu", "gemv_logits", {"NT": 4}, "float16"),
                                                       ("allreduce.cu", "ar_oneshot", None, "bfloat16"),
                                                       ("gemv_quant.cu", "qgemv_logits_norm", {"QFMT": 3}, None)])
def test_pdl_late_reaches_every_module_and_its_key(modules, monkeypatch, file, kernel, defines, dtype):
    keys = {}
    for raw in ("early", "late", None):
        monkeypatch.setattr(ck, "_PDL_ORDER_RAW", raw)
        ck.get_function(file, kernel, defines, dtype=dtype)
        keys[raw] = modules[-1][1]
    assert keys["early"] == keys[None] and ("PDL_LATE", 1) not in keys["early"]
    assert keys["late"] == tuple(sorted(keys["early"] + (("PDL_LATE", 1),)))  # the other defines kept
    assert all(name == file for name, _, _ in modules)
    head = ck.read_source(file, dict(keys["late"])).split("#pragma once")[0]
    assert "#define PDL_LATE 1\n" in head
    assert "PDL_LATE" not in ck.read_source(file, dict(keys["early"])).split("#pragma once")[0]


def test_pdl_late_bad_value_raised_at_compile(modules, monkeypatch):
    monkeypatch.setattr(ck, "_PDL_ORDER_RAW", "sometimes")
    with pytest.raises(ConfigError, match="CUGRAPHLLM_PDL_ORDER"):
        ck.get_function("gemv.cu", "gemv_logits")
    assert modules == []  # nothing compiled


def test_common_cuh_order_follows_pdl_late():
    """The source side: pdl_enter's two instructions swap under PDL_LATE and only there."""
    src = ck.read_source("gemv.cu", {})
    body = src[src.index("void pdl_enter()"):]
    body = body[:body.index("\n}\n")]
    late, early = body.split("#else")
    assert late.index("griddepcontrol.wait") < late.index("griddepcontrol.launch_dependents")
    assert early.index("griddepcontrol.launch_dependents") < early.index("griddepcontrol.wait")
    assert "#ifdef PDL_LATE" in late


@pytest.fixture
def quant_compiles(monkeypatch):
    from cugraphllm.gpu import ops as _ops
    from cugraphllm.gpu import ops_quant as oq
    calls = []

    def fake_get_function(file, kernel, defines, dtype=None):
        calls.append((file, kernel, dict(defines), dtype))
        return object()

    monkeypatch.setattr(oq, "get_function", fake_get_function)
    monkeypatch.setattr(oq, "device_id", lambda: 0)
    monkeypatch.setattr(oq, "_resident", lambda fn, threads, smem: 132)
    monkeypatch.setattr(_ops, "_need_smem", lambda fn, nbytes: None)
    monkeypatch.setattr(oq, "_cache", {})
    return oq, calls


@pytest.mark.parametrize("fmt", ["int4", "fp8", "int8"])
def test_qg_ldcg_reaches_the_quant_compile_and_its_key(quant_compiles, monkeypatch, fmt):
    oq, calls = quant_compiles
    K, pairs = 4096, 16000   # the 7B LM head: 32000 rows
    monkeypatch.delenv("CUGRAPHLLM_QG_LDCG", raising=False)  # default: on
    oq._function("qgemv_logits_norm", fmt, "float16", K, pairs, 0, 128)
    oq._function("qgemv_logits_norm", fmt, "float16", K, pairs, 0, 128)  # cached: no second compile
    assert len(calls) == 1 and calls[0][2]["QG_LDCG"] == 1
    monkeypatch.setenv("CUGRAPHLLM_QG_LDCG", "0")
    oq._function("qgemv_logits_norm", fmt, "float16", K, pairs, 0, 128)
    assert len(calls) == 2 and calls[1][2] == {**calls[0][2], "QG_LDCG": 0}
    assert len(oq._cache) == 2  # both variants kept under their own keys
    monkeypatch.setenv("CUGRAPHLLM_QG_LDCG", "1")
    oq._function("qgemv_logits_norm", fmt, "float16", K, pairs, 0, 128)
    assert len(calls) == 2
    monkeypatch.setenv("CUGRAPHLLM_QG_LDCG", "on")
    with pytest.raises(ConfigError, match="CUGRAPHLLM_QG_LDCG"):
        oq._function("qgemv_logits_norm", fmt, "float16", K, pairs, 0, 128)


def test_attention_decode_ptx_follows_pdl_order():
    """The decode attention kernel (Numba, gpu/decode_kernels.py): a spec with pdl_order "late" (gpu/attention.py
    adds it only under CUGRAPHLLM_PDL_ORDER=late, so default specs and disk cache keys stay as they were) compiles to
    wait-then-launch, the default spec to launch-then-wait; the two get different disk cache keys."""
    pytest.importorskip("numba.cuda")
    from cugraphllm.config import ModelConfig
    from cugraphllm.gpu import attention as A
    from cugraphllm.gpu import jit_cache
    c = ModelConfig(dim=128, n_layers=1, n_heads=8, n_kv_heads=4, vocab_size=32, hidden_dim=256, max_seq_len=128)
    # early 0: a plan with early K/V loads (the default on <= 128-key buckets since the twenty-sixth session)
    # triggers, preloads and then waits whatever the order
    spec = {**A.plan_decode(c, "float16", 128, early=0), "pdl": 1}
    order = {}
    for extra in ({}, {"pdl_order": "late"}):
        try:
            ptx, _ = jit_cache.compile_ptx({**spec, **extra}, (9, 0))
        except Exception as e:  # no libNVVM here
            pytest.skip(f"numba-cuda cannot compile here: {type(e).__name__}: {e}")
        order[bool(extra)] = [ln.strip() for ln in ptx.splitlines() if "griddepcontrol" in ln]
    assert order[False] == ["griddepcontrol.launch_dependents;", "griddepcontrol.wait;"]
    assert order[True] == ["griddepcontrol.wait;", "griddepcontrol.launch_dependents;"]
    assert jit_cache.cache_key(spec, "90") != jit_cache.cache_key({**spec, "pdl_order": "late"}, "90")
