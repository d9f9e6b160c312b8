"""One parser for the CUGRAPHLLM_* knobs that functions read at call time, so that every such knob behaves alike:
unset or blank gives its default, a valid value that value, anything else a one-line ConfigError naming the
variable, the value and what is expected (the CLI prints it and exits 2). Each parser takes `raw` to parse a string
the caller already holds instead of the environment. Imports no CuPy / Numba: usable on a machine without a GPU.

Known exceptions, read once at import (an error there would break the import; anything but "0" is on):
CUGRAPHLLM_PDL (pdl.PDL), CUGRAPHLLM_GEMM_TUNE (gemm_tune.TUNE), CUGRAPHLLM_PREFILL_NORM (ops.PREFILL_NORM);
CUGRAPHLLM_SAMPLER (ops_select.SAMPLER) and CUGRAPHLLM_PDL_ORDER (cuda_kernels.pdl_late) are also read at import
and checked when used. Parsed elsewhere: the all-reduce knobs (allreduce_setup / allreduce.py: BackendError,
a fractional timeout; CustomComm reads FUSE / T16 at construction, anything but "0" on), CUGRAPHLLM_TP_LAUNCH
(tp_runtime) and the path CUGRAPHLLM_CACHE_DIR (jit_cache).
"""
from __future__ import annotations

import os
import re

from ..errors import ConfigError

_WHOLE = re.compile(r"-?[0-9]+")  # int() alone would also take "+3", "1_000" and non-ASCII digits


def _read(name: str, raw: str | None) -> str:
    """`raw`, else variable `name` now ("" when unset), stripped: "" means the default."""
    return (os.environ.get(name, "") if raw is None else raw).strip()


def env_bit(name: str, raw: str | None = None, default: bool = True) -> bool:
    """A 0 / 1 switch: 1 True, 0 False, unset / blank `default` (on unless given)."""
    v = _read(name, raw)
    if not v:
        return default
    if v not in ("0", "1"):
        raise ConfigError(f"{name}={v!r}: expected 0 or 1")
    return v == "1"


def env_int(name: str, default: int, lo: int, hi: int | None = None, raw: str | None = None) -> int:
    """A whole number in lo..hi (inclusive; no upper bound where hi is None), unset / blank `default`."""
    v = _read(name, raw)
    if not v:
        return default
    n = int(v) if _WHOLE.fullmatch(v) else None
    if n is None or n < lo or (hi is not None and n > hi):
        want = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        raise ConfigError(f"{name}={v!r}: expected a whole number {want}")
    return n


def env_choice(name: str, default: str, choices, raw: str | None = None) -> str:
    """One of `choices` (exact, case included), unset / blank `default`."""
    v = _read(name, raw)
    if not v:
        return default
    if v not in choices:
        raise ConfigError(f"{name}={v!r}: expected one of {', '.join(choices)}")
    return v
