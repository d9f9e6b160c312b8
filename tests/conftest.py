"""Shared fixtures: the packaged stories260K, the ../shared test models and their tokenizers, the `gpu` marker (skipped without CuPy and a
GPU), and a Ctrl-C runner for the CLI."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STORIES_GOLDEN = REPO / "tests" / "data" / "stories260K_golden_greedy.json"
SHARED = Path(os.environ.get("CUGRAPHLLM_SHARED", REPO.parent / "shared")) / "models"


def pinned_gpu(environ) -> str | None:
    """With CUGRAPHLLM_PIN_GPUS=N under pytest-xdist, worker gwK sees only GPU K mod N (set before CUDA starts), so
    `-n 12` spreads a one-GPU suite over the N GPUs of a machine; tests that need two GPUs then skip (run them in a
    second, unpinned pass). None: leave CUDA_VISIBLE_DEVICES alone."""
    n, worker = environ.get("CUGRAPHLLM_PIN_GPUS"), environ.get("PYTEST_XDIST_WORKER", "")
    if not n or not worker.startswith("gw"):
        return None
    return str(int(worker[2:]) % int(n))


_PINNED = pinned_gpu(os.environ)
if _PINNED is not None:
    os.environ["CUDA_VISIBLE_DEVICES"] = _PINNED
if os.environ.get("PYTEST_XDIST_WORKER"):  # one attention compile process a worker (gpu/attention.py)
    os.environ.setdefault("CUGRAPHLLM_COMPILE_JOBS", "1")


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
    """The packaged stories260K (stories260K.bin, tok512.model): no ../shared needed."""
    from cugraphllm.models import DEFAULT_DIR
    return DEFAULT_DIR


@pytest.fixture(scope="session")
def shared_stories_dir() -> Path:
    """../shared/models/stories260K: also golden_encode.json and the llama2.c tok512.bin."""
    return _shared("stories260K")


def stories_golden() -> dict:
    """../shared's golden_greedy.json for stories260K, kept in tests/data (written for this project)."""
    return json.loads(STORIES_GOLDEN.read_text())


@pytest.fixture(scope="session")
def llama2_tokenizer_dir() -> Path:
    return _shared("llama2-tokenizer")


@pytest.fixture(scope="module")
def llama2(llama2_tokenizer_dir):
    from cugraphllm.tokenizer import Tokenizer
    return Tokenizer.load(llama2_tokenizer_dir / "tokenizer.model")


@pytest.fixture(scope="module")
def stories_ckpt(stories_dir):
    """The packaged stories260K checkpoint with its tok512 tokenizer (the GPU engine tests' model)."""
    from cugraphllm.loader import load_checkpoint
    return load_checkpoint(stories_dir / "stories260K.bin", tokenizer=stories_dir / "tok512.model")


@pytest.fixture(scope="module")
def tok512(stories_dir):
    from cugraphllm.tokenizer import Tokenizer
    return Tokenizer.load(stories_dir / "tok512.model")


def interrupt_cli(args, wait_s: float, timeout: float):
    """Run `python -m cugraphllm ARGS`, send SIGINT `wait_s` after its first byte of output; (returncode, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "cugraphllm", *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout.read(1)                                   # decoding has started
        time.sleep(wait_s)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=timeout)
    finally:
        p.kill()
    return p.returncode, err.decode()


# ---- the GPU kernel tests' module handles (imported only when a gpu test runs) -----------------------------
@pytest.fixture(scope="module")
def cp():
    import cupy
    return cupy


@pytest.fixture(scope="module")
def ops():
    from cugraphllm.gpu import ops
    return ops


@pytest.fixture(scope="module")
def state():
    from cugraphllm.gpu import state
    return state


@pytest.fixture(scope="module")
def qu():
    from cugraphllm.gpu import quant_upload
    return quant_upload
