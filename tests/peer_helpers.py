"""Helpers of the two-GPU all-reduce tests (tests/test_allreduce_gpu.py, test_allreduce_lamport_gpu.py)."""


def two_streams() -> list:
    """One non-blocking stream on each of GPUs 0 and 1."""
    import cupy as cp
    streams = []
    for d in (0, 1):
        with cp.cuda.Device(d):
            streams.append(cp.cuda.Stream(non_blocking=True))
    return streams


def sync_both() -> None:
    import cupy as cp
    for d in (0, 1):
        with cp.cuda.Device(d):
            cp.cuda.Device().synchronize()


def on(d, fn):
    """fn() with GPU d current."""
    import cupy as cp
    with cp.cuda.Device(d):
        return fn()


def residual_on_both(pb, streams, p, x, T, chunk) -> list:
    """The fused residual all-reduce of PeerBuffers pb on both GPUs: rank r's partial p[r] f32 [D] onto x f32 [D]
    (its 16-bit copy xn of dtype T and the ss partial sums poisoned with NaN first); returns each rank's device
    buffers (dict of p, x, xn, ss) after both finished."""
    import cupy as cp
    import numpy as np
    D = x.shape[0]
    bufs = [on(r, lambda: dict(p=cp.asarray(p[r][None]), x=cp.asarray(x[None]), xn=cp.full((1, D), np.nan, T),
                               ss=cp.full((D + 1) // 2, np.nan, cp.float32)))
            for r in (0, 1)]
    sync_both()  # staged on the legacy default stream, which the non-blocking streams do not wait for
    for r in (0, 1):
        with cp.cuda.Device(r), streams[r]:
            b = bufs[r]
            pb.launch_residual(r, b["p"], b["x"], b["xn"], b["ss"], chunk)
    sync_both()
    return bufs


def launch_both(pb, streams, src, dst, n, gather) -> None:
    """PeerBuffers.launch on both GPUs (rank 0's kernel waits on the device while the host queues rank 1's), then
    both synchronized."""
    import cupy as cp
    sync_both()  # src / dst staged on the legacy default stream, which the non-blocking streams do not wait for
    for r in (0, 1):
        with cp.cuda.Device(r), streams[r]:
            pb.launch(r, src[r], dst[r], n, gather)
    sync_both()


# Rank 0's all-reduce of n f32 alone (rank 1 never launches its part), in a process of its own: the kernel must trap
# after CUGRAPHLLM_ALLREDUCE_TIMEOUT_MS instead of hanging. argv: protocol, n, buffer cap.
LONE_RANK = r"""
import ctypes, os, sys, time
import cupy as cp
from cugraphllm.gpu import allreduce as ar
protocol, n, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pb = ar.PeerBuffers([0, 1], protocol, cap)
x = cp.ones(n, cp.float32)
t0 = time.perf_counter()
pb.launch(0, x, x, n, False)
try:
    cp.cuda.Device().synchronize()
    print("NO ERROR", flush=True)
except Exception as exc:
    print(f"TRAPPED after {time.perf_counter() - t0:.2f} s: {type(exc).__name__}", flush=True)
ctypes.CDLL(None).fflush(None)  # the device printf went through C stdio; os._exit skips its flush
os._exit(0)  # the context is broken after the trap: no teardown
"""


def lone_rank_trap_seconds(protocol: str, n: int, cap: int) -> float:
    """Run LONE_RANK with a 200 ms timeout (cwd the repository, so `-c` imports this checkout's cugraphllm); the
    seconds until the trap, asserting that it trapped."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = {**os.environ, "CUGRAPHLLM_ALLREDUCE_TIMEOUT_MS": "200"}
    r = subprocess.run([sys.executable, "-c", LONE_RANK, protocol, str(n), str(cap)],
                       cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=120)
    assert "TRAPPED" in r.stdout, (r.stdout, r.stderr[-2000:])  # an error within seconds, not a hang
    return float(r.stdout.split("TRAPPED after ")[1].split(" s")[0])
