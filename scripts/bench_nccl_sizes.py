"""NCCL all-reduce time at the prefill sizes of tensor parallelism (M rows of the residual, D wide), f32 as prefill
sends it today and 16-bit as it could: one process, every rank's call in one group (gpu/tp.py's way), CALLS calls
per timed batch between CUDA events on rank 0, median of REPS batches. Also the bytes per second this makes of each
rank's buffer (algorithm bandwidth).

    NCCL_NVLS_ENABLE=0 python3 -m scripts.bench_nccl_sizes [--tp 2] [--rows 16,128,512] [--dims 4096,5120,8192]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CALLS, REPS = 20, 9


def _batch_ms(comms, bufs, streams, n, code, nccl, cp):
    r0 = 0
    with cp.cuda.Device(r0):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(streams[r0])
    for _ in range(CALLS):
        nccl.groupStart()
        for r, c in enumerate(comms):
            with cp.cuda.Device(r):
                c.allReduce(bufs[r].data.ptr, bufs[r].data.ptr, n, code, nccl.NCCL_SUM, streams[r].ptr)
        nccl.groupEnd()
    with cp.cuda.Device(r0):
        b.record(streams[r0])
    for r, s in enumerate(streams):
        with cp.cuda.Device(r):
            s.synchronize()
    return cp.cuda.get_elapsed_time(a, b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--rows", default="16,128,512")
    ap.add_argument("--dims", default="4096,5120,8192")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from cugraphllm.gpu.tp import _nccl
    nccl = _nccl()
    import cupy as cp
    devs = list(range(args.tp))
    comms = nccl.NcclCommunicator.initAll(devs)
    streams = []
    for r in devs:
        with cp.cuda.Device(r):
            streams.append(cp.cuda.Stream(non_blocking=True))
    rows = []
    for dtype, code in (("float32", nccl.NCCL_FLOAT32), ("float16", nccl.NCCL_FLOAT16)):
        for D in (int(d) for d in args.dims.split(",")):
            for M in (int(m) for m in args.rows.split(",")):
                n = M * D
                bufs = []
                for r in devs:
                    with cp.cuda.Device(r):
                        bufs.append(cp.full(n, 1e-3, dtype=dtype))
                        cp.cuda.Device(r).synchronize()
                _batch_ms(comms, bufs, streams, n, code, nccl, cp)  # warm-up
                ms = [_batch_ms(comms, bufs, streams, n, code, nccl, cp) for _ in range(REPS)]
                us = 1000 * float(np.median(ms)) / CALLS
                row = {"dtype": dtype, "M": M, "D": D, "bytes": n * bufs[0].itemsize, "us": round(us, 2),
                       "algbw_gbps": round(n * bufs[0].itemsize / us / 1e3, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                del bufs
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"tp": args.tp, "calls": CALLS, "reps": REPS, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
