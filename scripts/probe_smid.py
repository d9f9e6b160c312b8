"""Where the block scheduler puts a grid's first blocks (GPU only): which SM each block of a launch lands on, for
the grid shapes of the prefill attention (80 KiB of shared memory and 128 threads a block, two blocks an SM).

    python3 -m scripts.probe_smid [--smem-kib 80] [--out FILE]

For each grid it prints how many SMs the "working" blocks (split index 0, the only ones with keys to walk where
a short prefix takes one range) share, and the most of them on one SM: two on one SM halve each one's share of
its tensor cores and shared-memory bandwidth.
"""
from __future__ import annotations

import argparse
import collections
import json

SRC = r"""
extern "C" __global__ void __launch_bounds__(128, 2) probe(int* smid, long long spin) {
    extern __shared__ int pad[];
    unsigned id;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
    if (threadIdx.x == 0) {
        pad[0] = id;
        smid[(blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = pad[0];
    }
    const long long t0 = clock64();
    while (clock64() - t0 < spin) {}  // keep every block resident while the rest are placed
}
"""

# name -> (grid, is_working(x, y, z)): the old split order (H, tiles, n_split), the split index fastest
# (n_split, H, tiles), the plain kernel (H, tiles)
GRIDS = {
    "split_z_last_32x1x8": ((32, 1, 8), lambda x, y, z: z == 0),
    "split_z_last_32x1x4": ((32, 1, 4), lambda x, y, z: z == 0),
    "split_z_first_8x32x1": ((8, 32, 1), lambda x, y, z: x == 0),
    "split_z_first_4x32x2": ((4, 32, 2), lambda x, y, z: x == 0),
    "plain_32x1": ((32, 1, 1), lambda x, y, z: True),
    "plain_32x2": ((32, 2, 1), lambda x, y, z: True),
}


def probe(cp, fn, grid, smem: int) -> list[int]:
    n = grid[0] * grid[1] * grid[2]
    out = cp.full(n, -1, dtype=cp.int32)
    fn(grid, (128,), (out, cp.int64(200_000)), shared_mem=smem)
    cp.cuda.runtime.deviceSynchronize()
    return out.get().tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smem-kib", type=int, default=80, help="dynamic shared memory a block (KiB; default 80)")
    ap.add_argument("--out", help="write the placements as JSON here")
    args = ap.parse_args()
    import cupy as cp
    fn = cp.RawKernel(SRC, "probe")
    smem = args.smem_kib * 1024
    fn.max_dynamic_shared_size_bytes = smem
    rows = {}
    for name, (grid, working) in GRIDS.items():
        ids = probe(cp, fn, grid, smem)
        gx, gy, gz = grid
        work = [ids[(z * gy + y) * gx + x] for z in range(gz) for y in range(gy) for x in range(gx)
                if working(x, y, z)]
        per = collections.Counter(work)
        rows[name] = {"grid": grid, "working": len(work), "sms": len(per), "most_on_one_sm": max(per.values()),
                      "smid": ids}
        print(f"{name:24s} working {len(work):3d} on {len(per):3d} SMs, at most {max(per.values())} on one")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f)


if __name__ == "__main__":
    main()
