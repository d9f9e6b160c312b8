"""Shared fixtures: the ../shared test models, and the `gpu` marker (skipped without CuPy and a GPU)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CUGRAPHLLM_SHARED", REPO.parent / "shared")) / "models"


def _gpu_available() -> bool:
    try:
        import cupy
        return bool(cupy.cuda.is_available())
    except Exception:
        return False


GPU = _gpu_available()


def pytest_collection_modifyitems(config, items):
    if GPU:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and CuPy (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _shared(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} is absent (expected ../shared/models beside the checkout)")
    return p


@pytest.fixture(scope="session")
def stories_dir() -> Path:
    return _shared("stories260K")


@pytest.fixture(scope="session")
def llama2_tokenizer_dir() -> Path:
    return _shared("llama2-tokenizer")
