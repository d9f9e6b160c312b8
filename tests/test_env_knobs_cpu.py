"""gpu/env.py, the one parser of the CUGRAPHLLM_* knobs read at call time, and each knob function that uses it:
unset or blank gives the default, a valid value that value, anything else a one-line ConfigError that names the
variable and the bad value. No GPU needed."""
import subprocess
import sys

import pytest

from cugraphllm.errors import ConfigError
from cugraphllm.gpu import env

NAME = "CUGRAPHLLM_TEST_KNOB"  # a variable nothing else reads


def _set(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(NAME, raising=False)
    else:
        monkeypatch.setenv(NAME, value)


def _one_line_error(fn, value, expected: str):
    """fn() raises a ConfigError of one line: NAME='value': expected ..."""
    with pytest.raises(ConfigError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{NAME}={value.strip()!r}: expected "), msg
    assert expected in msg, msg


@pytest.mark.parametrize("value,default,want", [(None, True, True), ("", True, True), ("  ", True, True),
                                                (None, False, False), ("", False, False), ("1", False, True),
                                                (" 1 ", True, True), ("0", True, False), ("0\n", True, False)])
def test_env_bit_values(value, default, want, monkeypatch):
    _set(monkeypatch, value)
    assert env.env_bit(NAME, default=default) is want


@pytest.mark.parametrize("value", ["2", "yes", "true", "on", "-1", "01x"])
def test_env_bit_bad(value, monkeypatch):
    _set(monkeypatch, value)
    _one_line_error(lambda: env.env_bit(NAME), value, "expected 0 or 1")


def test_env_bit_raw_wins_over_environment(monkeypatch):
    _set(monkeypatch, "0")
    assert env.env_bit(NAME, "1") is True and env.env_bit(NAME, "") is True
    with pytest.raises(ConfigError, match=NAME):
        env.env_bit(NAME, "x")


def test_env_bit_reexported_from_cuda_kernels():
    from cugraphllm.gpu import cuda_kernels
    assert cuda_kernels.env_bit is env.env_bit


@pytest.mark.parametrize("value,want", [(None, 7), ("", 7), (" ", 7), ("0", 0), ("5", 5), (" 9 ", 9), ("10", 10),
                                        ("007", 7)])
def test_env_int_values(value, want, monkeypatch):
    _set(monkeypatch, value)
    assert env.env_int(NAME, 7, 0, 10) == want


@pytest.mark.parametrize("value", ["11", "-1", "x", "2.5", "1e3", "+3", "1_0", "٣", "3 4"])
def test_env_int_bad(value, monkeypatch):
    _set(monkeypatch, value)
    _one_line_error(lambda: env.env_int(NAME, 7, 0, 10), value, "expected a whole number from 0 to 10")


def test_env_int_open_range_and_negative_bound(monkeypatch):
    _set(monkeypatch, "123456")
    assert env.env_int(NAME, 1, 1) == 123456
    _set(monkeypatch, "0")
    _one_line_error(lambda: env.env_int(NAME, 1, 1), "0", "expected a whole number >= 1")
    _set(monkeypatch, "-3")
    assert env.env_int(NAME, 0, -5, 5) == -3
    assert env.env_int(NAME, 0, 0, raw="4") == 4  # raw instead of the environment


@pytest.mark.parametrize("value,want", [(None, "b"), ("", "b"), ("a", "a"), (" c ", "c")])
def test_env_choice_values(value, want, monkeypatch):
    _set(monkeypatch, value)
    assert env.env_choice(NAME, "b", ("a", "b", "c")) == want


@pytest.mark.parametrize("value", ["d", "A", "a,b"])
def test_env_choice_bad(value, monkeypatch):
    _set(monkeypatch, value)
    _one_line_error(lambda: env.env_choice(NAME, "b", ("a", "b", "c")), value, "expected one of a, b, c")


def test_env_imports_without_gpu_libraries():
    """env.py must import where CuPy / Numba cannot (a blocked import raises ImportError)."""
    code = ("import sys; sys.modules.update(cupy=None, numba=None, cuda=None); import cugraphllm.gpu.env as e; "
            "print(e.env_int('X', 3, 1, raw=''))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "3", r.stderr


# ---- each knob function that parses through env.py: a bad value is a one-line ConfigError naming it ----------
def _attention():
    from cugraphllm.gpu import attention
    return attention._compile_jobs


def _gemv_early():
    from cugraphllm.gpu import gemv_plan
    return gemv_plan.gemv_early


def _fuse_actq():
    from cugraphllm.gpu import fp8_actq
    return fp8_actq.mode


def _split_sum():
    from cugraphllm.gpu import gemm_w4
    return gemm_w4.split_sum


def _small():
    from cugraphllm.gpu import gemm_w4
    return lambda: gemm_w4.small("int8")


def _outer():
    from cugraphllm.gpu import gemm_quant_lt
    return gemm_quant_lt.outer_enabled


def _outer_rows():
    from cugraphllm.gpu import gemm_quant_lt
    return gemm_quant_lt.outer_min_rows


KNOBS = [  # (variable, its function, a bad value, what the message expects)
    ("CUGRAPHLLM_COMPILE_JOBS", _attention, "0", "a whole number >= 1"),
    ("CUGRAPHLLM_COMPILE_JOBS", _attention, "x", "a whole number >= 1"),
    ("CUGRAPHLLM_GEMV_EARLY", _gemv_early, "4", "a whole number from 0 to 3"),
    ("CUGRAPHLLM_FP8_FUSE_ACTQ", _fuse_actq, "on", "a whole number from 0 to 2"),
    ("CUGRAPHLLM_W4_SPLIT_SUM", _split_sum, "fast", "one of serial, park, atomic"),
    ("CUGRAPHLLM_W4_SMALL", _small, "yes", "0 or 1"),
    ("CUGRAPHLLM_FP8_OUTER_SCALE", _outer, "off", "0 or 1"),
    ("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", _outer_rows, "many", "a whole number >= 0"),
    ("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", _outer_rows, "-1", "a whole number >= 0"),
]


@pytest.mark.parametrize("name,fn,bad,expected", KNOBS, ids=[f"{k[0]}={k[2]}" for k in KNOBS])
def test_knob_bad_value_is_one_line_config_error(name, fn, bad, expected, monkeypatch):
    monkeypatch.setenv(name, bad)
    with pytest.raises(ConfigError) as e:
        fn()()
    assert str(e.value) == f"{name}={bad!r}: expected {expected}"


@pytest.mark.parametrize("name,fn,want", [
    ("CUGRAPHLLM_COMPILE_JOBS", _attention, None), ("CUGRAPHLLM_GEMV_EARLY", _gemv_early, 1),
    ("CUGRAPHLLM_FP8_FUSE_ACTQ", _fuse_actq, 2), ("CUGRAPHLLM_W4_SPLIT_SUM", _split_sum, "serial"),
    ("CUGRAPHLLM_W4_SMALL", _small, False), ("CUGRAPHLLM_FP8_OUTER_SCALE", _outer, True),
    ("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", _outer_rows, 384)])
def test_knob_blank_is_its_default(name, fn, want, monkeypatch):
    """Blank and unset alike give the documented default (None: _compile_jobs' CPU-dependent one, >= 1)."""
    monkeypatch.delenv(name, raising=False)
    unset = fn()()
    monkeypatch.setenv(name, "  ")
    assert fn()() == unset and (unset == want if want is not None else unset >= 1)


def test_w4_small_default_depends_on_format(monkeypatch):
    from cugraphllm.gpu import gemm_w4
    monkeypatch.delenv(gemm_w4.SMALL_ENV, raising=False)
    assert gemm_w4.small("int4") is True and gemm_w4.small("int8") is False
    for v, want in (("1", True), ("0", False)):
        monkeypatch.setenv(gemm_w4.SMALL_ENV, v)
        assert gemm_w4.small("int4") is want and gemm_w4.small("int8") is want
