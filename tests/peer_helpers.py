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
    for r in (0, 1):
        with cp.cuda.Device(r), streams[r]:
            pb.launch(r, src[r], dst[r], n, gather)
    sync_both()
