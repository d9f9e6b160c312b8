"""Knockout profile of the int4 tensor-core tile GEMVs (bench only; session 18's run, benchmarks/results/
tenth_2026-11-30/s18d/int4_knockout.json): now an alias of scripts/quant_knockout.py for int4 on the two tile
matrices (wqkv + norm + RoPE, w13 + norm + SiLU) with every QG_KO combination. Its JSON rows are quant_knockout's
(the read floor a field of each row, no longer a row of its own).

Usage: python3 -m scripts.int4_knockout [--out FILE] [other scripts.quant_knockout options]
"""
from __future__ import annotations

import sys

from scripts.quant_knockout import main as _main
from scripts.quant_knockout import with_ko  # noqa: F401  (the name this script exported before)

ARGS = ["--formats", "int4", "--matrices", "wqkv+norm,w13+norm", "--kos", "0,1,2,4,3,5,6,7"]


def main(argv=None) -> int:
    return _main(ARGS + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
