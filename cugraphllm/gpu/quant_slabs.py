"""The "dequant" prefill path of gemm_quant.py: c (=|+=) a' @ W.T with W dequantized slab by slab (a few thousand
weight rows at a time) into a reused 16-bit scratch, and one cuBLAS GEMM per slab into c's output columns.

At M = 128 .. 512 a slab's GEMM is tensor-core bound and its dequantization memory bound, so the two overlap: the
slabs alternate between two buffers, and slab i + 1 is dequantized on a side stream while slab i's GEMM runs on the
caller's stream (events order them: ready[i] before GEMM i, GEMM i - 2 before dequantizing into its buffer again).
The side stream forks from and joins the caller's stream inside each call, so the path is capturable (a graph gets
the same fork / join edges) and nothing outlives the call. PIPE = False runs the slabs on one stream, one buffer.

Shapes: a T [M, K] (already gathered / gained into packed column order), W [N, K] packed, c [M, >= N].
"""
from __future__ import annotations

SLAB_BYTES = 32 << 20   # one slab buffer (two alternate when PIPE)
PIPE = True
SLABS = ("slab", "slab2")   # gemm_quant workspace buffers, each slab_rows * K * itemsize bytes at most
_SIDE: dict = {}        # device id -> (side stream, events)


def slab_rows(N: int, K: int, itemsize: int) -> int:
    """Weight rows per dequantized slab: a multiple of 128 (tile-friendly for cuBLAS), at most N."""
    return min(N, max(128, SLAB_BYTES // (K * itemsize) // 128 * 128))


def _side(device: int):
    """The side stream and its events (start, ready, free of each buffer) of one device."""
    if device not in _SIDE:
        import cupy as cp
        events = [cp.cuda.Event(block=False, disable_timing=True) for _ in range(4)]
        _SIDE[device] = (cp.cuda.Stream(non_blocking=True), events)
    return _SIDE[device]


def dequant_gemm(c, a, w, accumulate: bool, view, dequant, device: int) -> None:
    """c[:, :N] (=|+=) a @ W.T. view(name, shape, dtype) -> a workspace view; dequant(slab, r0, n) launches the
    dequantization of W's rows [r0, r0 + n) into slab[:n] on the current stream."""
    import cupy as cp
    from . import cublas
    N, K = w.shape
    R = slab_rows(N, K, a.dtype.itemsize)
    starts = range(0, N, R)
    if not PIPE:
        slab = view(SLABS[0], (R, K), a.dtype)
        for r0 in starts:
            n = min(R, N - r0)
            dequant(slab, r0, n)
            cublas.handle().gemm_nt(c, a, slab[:n], accumulate=accumulate, col0=r0)
        return
    slabs = [view(name, (R, K), a.dtype) for name in SLABS]
    main = cp.cuda.get_current_stream()
    side, (start, ready, *free) = _side(device)
    start.record(main)
    side.wait_event(start)   # the slabs may still feed the GEMMs of the previous call on `main`
    for i, r0 in enumerate(starts):
        n, buf = min(R, N - r0), slabs[i % 2]
        with side:
            if i >= 2:
                side.wait_event(free[i % 2])   # GEMM i - 2 has read this buffer
            dequant(buf, r0, n)
            ready.record(side)
        main.wait_event(ready)
        cublas.handle().gemm_nt(c, a, buf[:n], accumulate=accumulate, col0=r0)
        free[i % 2].record(main)
