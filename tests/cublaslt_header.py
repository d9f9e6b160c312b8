"""cublasLt.h for the enum checks of the cuBLASLt ctypes bindings (test_fp8_lt_cpu.py, test_lt_search_cpu.py): the
first copy found under CUDA_HOME, /usr/local/cuda or a pip nvidia-cublas / nvidia-cu13 package; skips without one."""
import os
import re
import sys
from pathlib import Path

import pytest


def _headers() -> list:
    roots = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    roots += [str(Path(p) / "nvidia" / sub) for p in sys.path if p for sub in ("cu13", "cublas")]
    return [Path(r) / "include" / "cublasLt.h" for r in roots if r and (Path(r) / "include" / "cublasLt.h").is_file()]


def header_text() -> str:
    """The header's text, or a pytest skip naming what would provide one."""
    found = _headers()
    if not found:
        pytest.skip("no cublasLt.h installed (pip nvidia-cublas or a CUDA toolkit; or set CUDA_HOME)")
    return found[0].read_text()


def enum(text: str, name: str) -> int:
    """The value `name = N` in the header text (fails if the name is absent)."""
    m = re.search(rf"\b{name}\s*=\s*(\d+)", text)
    assert m, f"{name} not in cublasLt.h"
    return int(m.group(1))
