"""The setup side of the custom all-reduce (gpu/allreduce.py, which re-exports these names): its environment knobs
(names and parsing, one-line BackendErrors for bad values) and enabling peer access between an engine's GPUs."""
from __future__ import annotations

import os

from ..errors import BackendError
from .allreduce_layout import MAX_BLOCKS, SEQ_BLOCKS, WIDE_BLOCKS

ENV, TIMEOUT_ENV, FUSE_ENV = "CUGRAPHLLM_ALLREDUCE", "CUGRAPHLLM_ALLREDUCE_TIMEOUT_MS", "CUGRAPHLLM_ALLREDUCE_FUSE"
WIDE_ENV, T16_ENV = "CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS", "CUGRAPHLLM_ALLREDUCE_T16"


def _env(name: str, default: str, cast, ok, what: str):
    raw = os.environ.get(name, default)
    try:
        v = cast(raw)
    except ValueError:
        v = None
    if v is None or not ok(v):
        raise BackendError(f"{name}={raw!r}: expected {what}")
    return v


def timeout_ns() -> int:
    return int(_env(TIMEOUT_ENV, "1000", float, lambda ms: ms > 0, "a positive number of milliseconds") * 1e6)


def wide_blocks() -> int:
    """ar_lamport_wide's grid: CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS (A/B), default WIDE_BLOCKS."""
    return _env(WIDE_ENV, str(WIDE_BLOCKS), int, lambda v: MAX_BLOCKS <= v <= SEQ_BLOCKS,
                f"a whole number of blocks from {MAX_BLOCKS} to {SEQ_BLOCKS}")


def enable_peers(devices: list[int]) -> None:
    """Peer access from every device to every other (already enabled, e.g. by NCCL, is fine)."""
    import cupy as cp
    for a in devices:
        with cp.cuda.Device(a):
            for b in devices:
                if a == b:
                    continue
                try:
                    cp.cuda.runtime.deviceEnablePeerAccess(b)
                except cp.cuda.runtime.CUDARuntimeError as exc:
                    if exc.status != 704:  # cudaErrorPeerAccessAlreadyEnabled (CuPy clears the last error)
                        raise BackendError(f"custom all-reduce: peer access {a} -> {b} failed: {exc}") from None
