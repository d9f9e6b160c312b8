"""The prefill attention's K/V tile ring switch (gpu/attention_prefill.ring, CUGRAPHLLM_PREFILL_ATTN_RING): parsing,
refusals and the shared-memory size the launcher asks for. No GPU."""
import pytest

from cugraphllm.errors import ConfigError
from cugraphllm.gpu import attention_prefill as ap


def test_default_ring_and_smem(monkeypatch):
    monkeypatch.delenv(ap.RING_ENV, raising=False)
    assert ap.ring() == ap.RING == (2, 64)
    assert ap.smem_bytes(128) == (64 + 4 * 64) * 128 * 2 == 80 * 1024  # the double-buffered kernel's 80 KiB


@pytest.mark.parametrize("value,want", [("3,64", (3, 64)), (" 4,32 ", (4, 32)), ("6,32", (6, 32))])
def test_env_override(monkeypatch, value, want):
    monkeypatch.setenv(ap.RING_ENV, value)
    assert ap.ring() == want
    assert ap.smem_bytes(128, *want) == (64 + 2 * want[0] * want[1]) * 256


@pytest.mark.parametrize("value", ["1,64", "3", "3,40", "a,b", "3,64,1", "3,256"])
def test_env_refused(monkeypatch, value):
    monkeypatch.setenv(ap.RING_ENV, value)
    with pytest.raises(ConfigError, match=ap.RING_ENV):
        ap.ring()
