"""The host side of CUGRAPHLLM_GEMV_EARLY (gpu/gemv_plan.py gemv_early, kernels/gemv.cu GEMV_EARLY) without a GPU:
the switch values, the define in every decode GEMV's compile key and source, and what it selects in the kernel."""
import shutil
import subprocess

import pytest

from cugraphllm.errors import ConfigError
from cugraphllm.gpu import cuda_kernels as ck
from cugraphllm.gpu import gemv_plan

ENV = "CUGRAPHLLM_GEMV_EARLY"


@pytest.mark.parametrize("value,want", [(None, 1), ("", 1), ("0", 0), ("1", 1), (" 0 ", 0), ("2", 2),
                                        ("3", 3)])
def test_switch_values(value, want, monkeypatch):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert gemv_plan.gemv_early() == want


@pytest.mark.parametrize("value", ["yes", "4", "on", "-1", "1.0"])
def test_bad_switch_is_one_line_error(value, monkeypatch):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigError, match=ENV) as e:
        gemv_plan.gemv_early()
    assert "\n" not in str(e.value)


@pytest.fixture
def compiled(monkeypatch):
    """ops with a stand-in compiler: records (file, kernel, defines) of each compile, device 0."""
    from cugraphllm.gpu import ops
    calls = []

    class Fn:
        shared_size_bytes = 0

    def get_function(file, kernel, defines=None, options=(), dtype=None):
        calls.append((file, kernel, dict(defines)))
        return Fn()
    monkeypatch.setattr(ops, "_cache", {})
    monkeypatch.setattr(ck, "get_function", get_function)
    monkeypatch.setattr(ck, "device_id", lambda: 0)
    return ops, calls


@pytest.mark.parametrize("kernel,K,pairs", [("gemv_qkv_rope_norm", 4096, 6144), ("gemv_residual_ss", 11008, 2048),
                                            ("gemv_residual_ss", 4096, 2048), ("gemv_logits_norm", 4096, 16000)])
def test_define_in_compile_key(kernel, K, pairs, compiled, monkeypatch):
    ops, calls = compiled
    fns = {}
    for v in ("1", "0", "1"):
        monkeypatch.setenv(ENV, v)
        fns.setdefault(v, []).append(ops._gemv_fn(kernel, "float16", K, pairs)[0])
    assert [c[2]["GEMV_EARLY"] for c in calls] == [1, 0]          # one compile per value, the third call cached
    assert fns["1"][0] is fns["1"][1] and fns["0"][0] is not fns["1"][0]
    assert {k: v for k, v in calls[0][2].items() if k != "GEMV_EARLY"} == \
        {k: v for k, v in calls[1][2].items() if k != "GEMV_EARLY"}
    monkeypatch.setenv(ENV, "x")
    with pytest.raises(ConfigError, match=ENV):
        ops._gemv_fn(kernel, "float16", K, pairs)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("early", [0, 1, 2, 3])
def test_define_selects_epilogue(early, tmp_path):
    """read_source puts the define first; preprocessed, bit 1 loads the residual epilogue's input in its hook
    (residual_pair_load of has1), bit 2 the qkv one's (qkv_pair_load); a clear bit leaves residual_pair /
    qkv_pair_store in that epilogue."""
    src = ck.read_source("gemv.cu", {"GEMV_EARLY": early, "GEMV_WARPS": 16})
    assert src.startswith(f"#define GEMV_EARLY {early}\n")
    (tmp_path / "g.cu").write_text(src)
    pp = subprocess.run(["nvcc", "-E", "-arch=sm_90", "-std=c++17", str(tmp_path / "g.cu")], check=True,
                        capture_output=True, text=True).stdout
    body = pp[pp.index("void residual_body"):]
    hooks = ("residual_pair_load(x, r0, has1)" in body, "e = qkv_pair_load(" in body)
    plain = ("residual_pair(x, xh," in body, "qkv_pair_store(q, k_cache" in body)
    assert hooks == (bool(early & 1), bool(early & 2)) and plain == (not early & 1, not early & 2)
