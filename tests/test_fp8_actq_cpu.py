"""The host side of CUGRAPHLLM_FP8_FUSE_ACTQ (gpu/fp8_actq.py) without a GPU: the switch values and the hand-off of
quantized activations between a producer and the next fp8 product (stand-in arrays: address, shape, dtype)."""
from types import SimpleNamespace

import pytest

from cugraphllm.errors import BackendError, ConfigError


@pytest.fixture
def actq(monkeypatch):
    from cugraphllm.gpu import fp8_actq
    monkeypatch.setattr(fp8_actq, "_PENDING", {})
    monkeypatch.setattr(fp8_actq, "_dev", lambda: 0)
    return fp8_actq


def _arr(ptr, shape=(48, 1008), dtype="float16"):
    return SimpleNamespace(data=SimpleNamespace(ptr=ptr), shape=shape, dtype=SimpleNamespace(name=dtype))


@pytest.mark.parametrize("value,want", [(None, 2), ("", 2), ("0", 0), ("1", 1), (" 1 ", 1), ("2", 2)])
def test_switch_values(value, want, actq, monkeypatch):
    if value is None:
        monkeypatch.delenv("CUGRAPHLLM_FP8_FUSE_ACTQ", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", value)
    assert actq.mode() == want


@pytest.mark.parametrize("value", ["yes", "3", "-1"])
def test_bad_switch_is_one_line_error(value, actq, monkeypatch):
    monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", value)
    with pytest.raises(ConfigError, match="CUGRAPHLLM_FP8_FUSE_ACTQ") as e:
        actq.mode()
    assert "\n" not in str(e.value)


def test_handoff_taken_once_by_its_array_only(actq):
    h, gain = _arr(4096), object()
    plain, gained = SimpleNamespace(perm=None, gain=None), SimpleNamespace(perm=None, gain=gain)
    actq.offer(h, None, written=True)
    assert actq.take(h, plain) and not actq.take(h, plain)          # popped
    actq.offer(h, None, written=True)
    assert not actq.take(_arr(4096, (48, 1000)), plain)              # another shape: not taken, and dropped
    assert not actq.take(h, plain)
    actq.offer(h, gain, written=True)
    assert not actq.take(h, plain)                                   # codes made with another gain
    actq.offer(h, gain, written=False)
    assert actq.take(h, gained)
    actq.offer(h, None, written=True)
    assert not actq.take(h, SimpleNamespace(perm=object(), gain=None))  # a perm: h is there, requantized


def test_unwritten_activation_that_cannot_be_taken_raises(actq):
    h = _arr(8192)
    actq.offer(h, None, written=False)
    with pytest.raises(BackendError, match="unwritten"):
        actq.take(h, SimpleNamespace(perm=None, gain=object()))
    assert actq._PENDING == {}
    actq.offer(h, None, written=False)
    actq.forget()
    assert not actq.take(h, SimpleNamespace(perm=None, gain=object()))


@pytest.mark.parametrize("mode,M,F,D,write_h", [(0, 48, 1008, 400, None), (1, 48, 1008, 400, 1), (2, 48, 1008, 400, 0),
                                                (2, 32, 1008, 400, 1), (2, 48, 1000, 400, 1), (2, 48, 1008, 392, 1),
                                                (2, 48, 1004, 400, None)])
def test_silu_skips_h_only_where_w2_takes_the_codes(mode, M, F, D, write_h, actq, monkeypatch):
    """Switch 2 leaves h unwritten only where w2 [D, F] takes the lt path (M > 32, F and D % 16); F % 8 != 0 or
    switch 0: no fused launch at all (the caller runs the plain epilogue)."""
    from cugraphllm.gpu import gemm_quant
    calls = []
    monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", str(mode))
    monkeypatch.setattr(actq, "_launch", lambda kernel, dtype, rows, threads, args: calls.append((kernel, args)))
    monkeypatch.setattr(gemm_quant, "_view", lambda name, shape, dtype: _arr(1 << 20, shape, dtype))
    h, sa = _arr(4096, (M, F)), _arr(8192, (M,), "float32")
    for scaled, kernel in ((True, "silu_mul_quant_rows"), (False, "w8a8_silu_quant_rows")):
        done = actq.silu(h, _arr(1 << 24, (M, 2 * F)), sa, SimpleNamespace(shape=(2 * F, D), scales="sw"), scaled)
        assert done is (write_h is not None)
        if done:
            name, args = calls.pop()
            assert name == kernel and int(args[-1]) == write_h and (args[4] == "sw") is not scaled
            assert actq._PENDING[0] == (4096, (M, F), "float16", None, bool(write_h))
    assert not calls
