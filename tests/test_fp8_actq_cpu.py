"""The host side of CUGRAPHLLM_FP8_FUSE_ACTQ (gpu/fp8_actq.py) without a GPU: the switch values and the hand-off of
quantized activations between a producer and the next fp8 product (stand-in arrays: address, shape, dtype)."""
from types import SimpleNamespace

import pytest

from cugraphllm.errors import BackendError


@pytest.fixture
def actq(monkeypatch):
    from cugraphllm.gpu import fp8_actq
    monkeypatch.setattr(fp8_actq, "_PENDING", {})
    monkeypatch.setattr(fp8_actq, "_dev", lambda: 0)
    return fp8_actq


def _arr(ptr, shape=(48, 1008), dtype="float16"):
    return SimpleNamespace(data=SimpleNamespace(ptr=ptr), shape=shape, dtype=SimpleNamespace(name=dtype))


@pytest.mark.parametrize("value,want", [(None, 0), ("0", 0), ("1", 1), ("2", 2)])
def test_switch_values(value, want, actq, monkeypatch):
    if value is None:
        monkeypatch.delenv("CUGRAPHLLM_FP8_FUSE_ACTQ", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", value)
    assert actq.mode() == want


@pytest.mark.parametrize("value", ["yes", "3", ""])
def test_bad_switch_is_one_line_error(value, actq, monkeypatch):
    monkeypatch.setenv("CUGRAPHLLM_FP8_FUSE_ACTQ", value)
    with pytest.raises(BackendError, match="CUGRAPHLLM_FP8_FUSE_ACTQ") as e:
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
