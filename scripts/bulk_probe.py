"""Where the bulk tiles' time goes (kernels/gemv_quant_bulk.cuh; twelfth session): every 7B GEMV of one format
under the default plan and a few bulk plans, each with QG_KO 0 (the real kernel) and 7 (loads only: no
prologue, products or epilogue), graph us per call (scripts/bench_kernels.graph_us over weight
copies > 4x L2). One line per (matrix, plan) on stderr; JSON to --out.

    python -m scripts.bulk_probe [--format int4] [--matrices wqkv+norm,w2+ss] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from scripts import bench_kernels as bk
from scripts import bench_quant as bq
from scripts.quant_knockout import with_ko

PLANS = {"default": {}, "bulk16x8": dict(mma=1, bulk=1, bulk_cfg=(16, 1, 8)),
         "bulk8x8": dict(mma=1, bulk=1, bulk_cfg=(8, 1, 8)),
         "bulk8x8-2sm": dict(mma=1, bulk=1, bulk_cfg=(8, 1, 8), bulk_bps=2),
         "bulk8x4-2sm": dict(mma=1, bulk=1, bulk_cfg=(8, 1, 4), bulk_bps=2)}
KOS = (0, 7)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", default="int4", choices=("int4", "fp8", "int8"))
    ap.add_argument("--matrices", default="wqkv+norm,w2+ss", help="comma list of bench_quant.MATS names")
    ap.add_argument("--out", default=None, help="JSON file")
    a = ap.parse_args(argv)
    import cupy as cp
    from cugraphllm.gpu import gemv_plan
    from cugraphllm.gpu import ops_quant as oq
    stream, T, keep, keep_fn = cp.cuda.Stream(non_blocking=True), bk._dtype("float16"), None, oq.get_function
    keep = gemv_plan.QUANT_PLANS[a.format]
    rows = []
    try:
        for name in a.matrices.split(","):
            op, N, K = bq.MATS[name]
            ws, _ = bq.weight_copies(a.format, N, K, T, 128)
            for pname, d in PLANS.items():
                gemv_plan.QUANT_PLANS[a.format] = dataclasses.replace(keep, **d)
                us = {}
                for ko in KOS:
                    with_ko(ko)
                    fn, _ = bq.case(op, N, K, ws, T)
                    try:
                        us[ko] = bk.graph_us(stream, fn, len(ws))
                    except Exception as exc:  # noqa: BLE001 - e.g. a block shape the ss chunking refuses
                        us[ko] = None
                        print(f"{name} {pname} ko {ko}: {str(exc).splitlines()[0]}", file=sys.stderr)
                rows.append({"format": a.format, "matrix": name, "plan": pname, **d, "us": us})
                print(f"probe {a.format} {name:12s} {pname:12s} " + " ".join(
                    f"ko{k} {v:7.2f}" if v else f"ko{k}   -   " for k, v in us.items()), file=sys.stderr, flush=True)
            del ws
            cp.get_default_memory_pool().free_all_blocks()
    finally:
        gemv_plan.QUANT_PLANS[a.format] = keep
        oq.get_function = keep_fn
        oq._cache.clear()
    doc = {**bk.environment(), "kos": list(KOS), "rows": rows}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
