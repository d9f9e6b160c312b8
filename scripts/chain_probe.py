"""Probe (bench only, no library code): a chain of weight-streaming kernels where each needs the previous one's
output before it can compute, as the decode GEMVs do, and whether weights prefetched into shared memory before
that wait recover the rate of independent reads.

boundary_probe.py showed that four PDL kernels a layer read a 7B layer's bytes as fast as one kernel (int4 23.6 vs
25.1 us) when nothing waits. The GEMVs do wait: after their first register round of weight loads a block sits in
griddepcontrol.wait until the previous kernel is done, then loads and stages the activation, and only then issues
more loads (the knockouts: the prologue costs fp8 5.5 us a layer, int4's half2 matrices 3.4). Here each kernel
(`dep`, 256 threads, a contiguous slice of the bytes a block, 8 loads in flight a thread) does:
  1. launch_dependents; cp.async of the first PRE KB of its slice into shared memory (PRE 0: none);
  2. its first register round (8 x 16 bytes a thread);
  3. griddepcontrol.wait; the 8 KB activation the previous kernel wrote, into shared memory; a barrier;
  4. the prefetched bytes, the register round, the rest of the slice; one word a warp out for the next kernel.
With blocks small enough for two kernels' blocks to share an SM (shared memory, registers), the next kernel's
blocks start while this one streams, so their prefetch overlaps it. Modes: (blocks an SM, PRE KB); `free` is
boundary_probe's PDL read (no wait) on the same bytes, the ceiling. us a layer = graph time / 32 layers.

Usage: python3 -m scripts.chain_probe [--formats int4,fp8] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from scripts import bench_kernels as bk
from scripts import boundary_probe as bp
from scripts.ring_probe import LDW_SRC

SRC = LDW_SRC + r"""
#define NT 256
#ifndef INFL
#define INFL 8    // 16-byte loads in flight a thread
#endif
#ifndef STAGE
#define STAGE 1   // 0: no activation load or barrier after the wait (the dependency alone)
#endif
#define NX 2048   // activation words (8 KB)

__device__ __forceinline__ void cp_async16(void* s, const void* g) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(a), "l"(g) : "memory");
}

extern "C" __global__ void __launch_bounds__(NT) dep(const uint4* __restrict__ w, long long n, int pre,
                                                     const unsigned* __restrict__ xin, unsigned* __restrict__ xout) {
    extern __shared__ uint4 sm[];            // [pre] prefetched vectors, then xs [NX]
    unsigned* xs = reinterpret_cast<unsigned*>(sm + pre);
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    const int t = threadIdx.x;
    const long long per = (n + gridDim.x - 1) / gridDim.x, lo = blockIdx.x * per;
    const long long hi = lo + per < n ? lo + per : n, pe = lo + pre < hi ? lo + pre : hi;
    for (long long i = lo + t; i < pe; i += NT) cp_async16(sm + (i - lo), w + i);
    asm volatile("cp.async.commit_group;" ::: "memory");
    uint4 r[INFL];
    const long long i0 = pe + t;
#pragma unroll
    for (int k = 0; k < INFL; ++k) r[k] = i0 + k * NT < hi ? ldw(w + i0 + k * NT) : make_uint4(0u, 0u, 0u, 0u);
    asm volatile("griddepcontrol.wait;" ::: "memory");
#if STAGE
    for (int j = t; j < NX; j += NT) xs[j] = __ldcg(xin + j);
    __syncthreads();
    unsigned acc = xs[(t * 7) % NX];
#else
    unsigned acc = t;
    (void)xs; (void)xin;
#endif
    asm volatile("cp.async.wait_all;" ::: "memory");   // this thread's own copies: no barrier needed
    for (long long i = lo + t; i < pe; i += NT) { const uint4 a = sm[i - lo]; acc ^= a.x ^ a.y ^ a.z ^ a.w; }
#pragma unroll
    for (int k = 0; k < INFL; ++k) acc ^= r[k].x ^ r[k].y ^ r[k].z ^ r[k].w;
    for (long long i = i0 + INFL * NT; i < hi; i += INFL * NT) {
#pragma unroll
        for (int k = 0; k < INFL; ++k) r[k] = i + k * NT < hi ? ldw(w + i + k * NT) : make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
        for (int k = 0; k < INFL; ++k) acc ^= r[k].x ^ r[k].y ^ r[k].z ^ r[k].w;
    }
    acc = __reduce_xor_sync(0xffffffffu, acc);
    if ((t & 31) == 0) xout[(blockIdx.x * (NT / 32) + (t >> 5)) % NX] = acc;
}
"""
NX_BYTES = 2048 * 4
# (name, blocks an SM, KB prefetched into shared memory a block, nvcc options); two kernels' blocks can share an
# SM where 2 x bps x (PRE + 8 + 1 reserved KB) <= 228 KB (pre48x2 cannot: 228 KB and 4 KB reserved)
MODES = [("reg2", 2, 0, ()), ("reg3", 3, 0, ()), ("pre24x2", 2, 24, ()), ("pre48x2", 2, 48, ()),
         ("pre96x1", 1, 96, ()), ("pre64x1", 1, 64, ())]
# --set more (fourteenth session, second run): the dependency without the staging, 16 loads in flight, more
# prefetch modes that leave room for the next kernel's blocks
MORE = [("reg2", 2, 0, ()), ("reg2nostage", 2, 0, ("-DSTAGE=0",)), ("reg1", 1, 0, ()),
        ("reg2i16", 2, 0, ("-DINFL=16",)), ("reg1i16", 1, 0, ("-DINFL=16",)), ("pre40x2", 2, 40, ()),
        ("pre16x3", 3, 16, ()), ("pre24x2nostage", 2, 24, ("-DSTAGE=0",)), ("pre96x1i16", 1, 96, ("-DINFL=16",))]


def chain_us(cp, stream, fn, bufs, sizes, bps, pre_kb, sms) -> float:
    """us a layer: LAYERS layers of four dependent `dep` kernels (PDL), each over one matrix's bytes."""
    from cugraphllm.gpu import pdl
    xs = [cp.full(2048, 7 + i, cp.uint32) for i in range(2)]
    offs = np.cumsum([0] + sizes)
    pre = pre_kb * 1024 // 16
    smem = pre * 16 + NX_BYTES
    fn.max_dynamic_shared_size_bytes = smem
    k = [0]

    def layer(i):
        buf = bufs[i % len(bufs)]
        for a, b in zip(offs[:-1], offs[1:]):
            args = (buf[int(a):int(b)], np.int64((int(b) - int(a)) // 16), np.int32(pre), xs[k[0] % 2],
                    xs[(k[0] + 1) % 2])
            pdl.launch(fn, (sms * bps,), (256,), args, smem, pdl=True)
            k[0] += 1
    return bk.graph_us(stream, layer, len(bufs), calls=bp.LAYERS, reps=20)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="int4,fp8")
    ap.add_argument("--set", choices=("base", "more"), default="base")
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args(argv)
    env = bp.start("chain_probe")
    if env is None:
        return 2
    cp, stream, sms, copy = env
    modes = MODES if args.set == "base" else MORE
    fns, free = {o: cp.RawKernel(SRC, "dep", options=o) for *_, o in modes}, bp.kernels(cp)
    rows = []
    for fmt in args.formats.split(","):
        sizes, bufs, floor = bp.layer_buffers(cp, fmt, copy)
        for _ in range(2):
            for name, bps, pre_kb, opts in [("free", 0, 0, ())] + modes:
                us = (bp.layer_us(cp, stream, free, bufs, sizes, "pdl", sms) if name == "free"
                      else chain_us(cp, stream, fns[opts], bufs, sizes, bps, pre_kb, sms))
                bp.record(rows, fmt, name, us, floor, blocks_per_sm=bps, prefetch_kb=pre_kb, options=list(opts))
        del bufs
        cp.get_default_memory_pool().free_all_blocks()
    bp.save(args.out, copy, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
