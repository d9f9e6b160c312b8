"""conftest.pinned_gpu: the GPU an xdist worker is pinned to under CUGRAPHLLM_PIN_GPUS (scripts/device_suite.sh)."""
import pytest
from conftest import pinned_gpu


@pytest.mark.parametrize("env,want", [
    ({}, None),
    ({"PYTEST_XDIST_WORKER": "gw3"}, None),                               # not asked for
    ({"CUGRAPHLLM_PIN_GPUS": "2"}, None),                                 # not under xdist
    ({"CUGRAPHLLM_PIN_GPUS": "2", "PYTEST_XDIST_WORKER": "gw0"}, "0"),
    ({"CUGRAPHLLM_PIN_GPUS": "2", "PYTEST_XDIST_WORKER": "gw5"}, "1"),
    ({"CUGRAPHLLM_PIN_GPUS": "1", "PYTEST_XDIST_WORKER": "gw7"}, "0"),
])
def test_pinned_gpu(env, want):
    assert pinned_gpu(env) == want
