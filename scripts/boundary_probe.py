"""Probe (bench only, no library code): what kernel boundaries cost a stream of weight reads, with and without PDL.

The fp8 decode GEMVs of a 7B layer take 60.5 us against 53.1 for four linear reads of their bytes (thirteenth
session), and every product or staging path probed left that gap; what was not measured is the boundary itself.
Here one layer's weight bytes (fp8 or int4 sizes of wqkv, wo, w13, w2; 32 layers of distinct buffers, 6.5 / 3.4 GB,
so nothing is found in L2) are read by plain XOR-reducing kernels in a captured graph, three ways:
  one    one kernel a layer over the four matrices' bytes (no boundary inside a layer);
  four   four kernels a layer, one a matrix, plain launches;
  pdl    the same four with programmatic dependent launch (gpu/pdl.py): each kernel lets the next launch at once
         (griddepcontrol.launch_dependents), reads its bytes, and waits (griddepcontrol.wait) only before its
         final store, as a GEMV whose weights need nothing from the kernel before would.
us a layer = graph time / 32; the copy floor is the bytes at the measured device-to-device copy rate.

Usage: python3 -m scripts.boundary_probe [--formats fp8,int4] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts.ring_probe import LDW_SRC

SRC = LDW_SRC + r"""
// XOR of n 16-byte vectors (grid-stride, 4 loads in flight a thread); PDL: let the next kernel launch at once, wait
// for the previous one only before the store (the reads need nothing from it)
extern "C" __global__ void rd(const uint4* __restrict__ w, unsigned* __restrict__ sink, long long n) {
#if PDL
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    unsigned acc = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = ldw(w + i), b = ldw(w + i + stride), c = ldw(w + i + 2 * stride), d = ldw(w + i + 3 * stride);
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n; i += stride) { const uint4 a = ldw(w + i); acc ^= a.x ^ a.y ^ a.z ^ a.w; }
#if PDL
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // keeps the loads alive; practically never taken
}
"""

LAYERS = 32
# bytes of one 7B layer's matrices (wqkv, wo, w13, w2) per format: fp8 one byte a weight, int4 half a byte plus
# a (scale, zero) half2 per 128 weights
SHAPES = ((12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008))
BYTES = {"fp8": [n * k for n, k in SHAPES], "int4": [n * k // 2 + n * (k // 128) * 4 for n, k in SHAPES]}


def kernels(cp):
    return {pdl: cp.RawKernel(SRC, "rd", options=(f"-DPDL={pdl}",)) for pdl in (0, 1)}


def layer_us(cp, stream, fns, bufs, sizes, mode, sms) -> float:
    """us a layer: a graph of LAYERS layers, each read as `mode` (one / four / pdl) from its own buffer."""
    from cugraphllm.gpu import pdl as pdl_mod
    sink = cp.zeros(sms * 8, cp.uint32)
    offs = np.cumsum([0] + sizes)

    def read(buf, lo, hi, use_pdl):
        n = (hi - lo) // 16
        grid, block = (min(sms * 8, -(-n // 1024)),), (256,)
        args = (buf[lo:hi], sink, np.int64(n))
        if use_pdl:
            pdl_mod.launch(fns[1], grid, block, args, 0, pdl=True)
        else:
            fns[0](grid, block, args)

    def layer(i):
        buf = bufs[i % len(bufs)]
        if mode == "one":
            read(buf, 0, int(offs[-1]), False)
        else:
            for a, b in zip(offs[:-1], offs[1:]):
                read(buf, int(a), int(b), mode == "pdl")
    return bk.graph_us(stream, layer, len(bufs), calls=LAYERS, reps=20)


def layer_buffers(cp, fmt: str, copy_gbps: float):
    """(sizes, bufs, floor): the four matrices' byte counts (16-byte multiples), LAYERS buffers of one layer each,
    written (any bytes do: plain global memory is not compressed), and one layer's us at the copy rate."""
    sizes = [(b + 15) // 16 * 16 for b in BYTES[fmt]]
    bufs = [cp.empty(sum(sizes), cp.uint8) for _ in range(LAYERS)]
    for i, b in enumerate(bufs):
        b.view(cp.uint32)[:] = 0x9e3779b1 * (i + 1) & 0xffffffff
    return sizes, bufs, sum(sizes) / (copy_gbps * 1e3)


def record(rows: list, fmt: str, mode: str, us: float, floor: float, **extra) -> None:
    """Appends one row (us a layer against the copy floor) and prints it."""
    rows.append({"format": fmt, "mode": mode, **extra, "us_per_layer": us, "copy_floor_us": floor,
                 "pct_copy": 100.0 * floor / us})
    print(f"{fmt:5s} {mode:8s} {us:7.2f} us a layer  (copy floor {floor:6.2f}, {rows[-1]['pct_copy']:5.1f}%)",
          file=sys.stderr)


def save(path, copy_gbps: float, rows: list) -> None:
    from cugraphllm.gpu import pdl
    if not pdl.PDL:
        print("PDL was off or failed: the pdl rows are plain launches", file=sys.stderr)
    if path:
        with open(path, "w") as f:
            json.dump({**bk.environment(), "copy_gbps": copy_gbps, "pdl_on": pdl.PDL, "rows": rows}, f, indent=1)


def start(name: str):
    """(cupy, a stream, SMs, the copy rate in GB/s); None, after the one-line error, without a GPU."""
    if bk.gpu_missing(name):
        return None
    import cupy as cp
    stream = cp.cuda.Stream(non_blocking=True)
    return cp, stream, cp.cuda.Device().attributes["MultiProcessorCount"], bk.copy_gbps(stream)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="fp8,int4")
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args(argv)
    env = start("boundary_probe")
    if env is None:
        return 2
    cp, stream, sms, copy = env
    fns = kernels(cp)
    rows = []
    for fmt in args.formats.split(","):
        sizes, bufs, floor = layer_buffers(cp, fmt, copy)
        for mode in ("one", "four", "pdl", "one", "four", "pdl"):
            record(rows, fmt, mode, layer_us(cp, stream, fns, bufs, sizes, mode, sms), floor,
                   bytes_per_layer=sum(sizes))
        del bufs
        cp.get_default_memory_pool().free_all_blocks()
    save(args.out, copy, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
