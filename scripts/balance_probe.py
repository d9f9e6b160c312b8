"""Wave-balance probe of the short prefill's own GEMM (gemm.cu, M <= 16): does w13's grid of 688 blocks (5.21 a
SM on 132 SMs) lose time to the SMs that run a sixth block? Times the own kernel of each op at output widths
that give whole and fractional blocks a SM, beside a bare read of the same weight bytes (bench_kernels.read_floor),
interleaved in rounds; prints us and GB/s of weight bytes for each.
Usage: python3 -m scripts.balance_probe [--ms 10,16] [--out F.json]
"""
from __future__ import annotations

import argparse
import json

from scripts.bench_gemm import _graph, _interleaved_us, _op_call, _operands, environment
from scripts.bench_kernels import read_floor_call

# op, K, output widths N (silu: N = 2F; qkv's (N - K) / 2 a whole number of 128-wide heads)
CASES = (("silu", 4096, (2 * 10560, 2 * 10816, 2 * 11008, 2 * 11264, 2 * 12672, 2 * 8448)),
         ("qkv", 4096, (12288, 12544, 8448)),
         ("residual", 4096, (4096, 4224, 2112, 6336)))


def _blocks(op, N, M):
    """The own kernel's grid at M rows (as gemm._launch_own launches it)."""
    from cugraphllm.gpu import gemm
    rows = gemm.own_block_rows(op, gemm.own_config(op, (M + 7) // 8))
    return -(-(N // 2 if op == "silu" else N) // rows)


def case(op, K, N, M, stream, sms):
    d = _operands(op, M, K, N, "float16")
    blocks = _blocks(op, N, M)
    graphs = {"own": _graph(stream, _op_call(op, d, "own"), d["n"]),
              "read": _graph(stream, read_floor_call(d["ws"]), d["n"])}
    us = _interleaved_us(stream, graphs)
    gb = N * K * 2 / 1e3
    row = {"op": op, "M": M, "K": K, "N": N, "blocks": blocks, "blocks_per_sm": round(blocks / sms, 3),
           "own_us": round(us["own"], 2), "read_us": round(us["read"], 2),
           "own_gbps": round(gb / us["own"], 1), "read_gbps": round(gb / us["read"], 1),
           "own_over_read": round(us["own"] / us["read"], 4)}
    print(json.dumps(row), flush=True)
    return row


def main():
    import cupy as cp
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="10,16", help="comma list of row counts M (<= 16)")
    ap.add_argument("--out", default="", help="write the rows as JSON here")
    a = ap.parse_args()
    stream = cp.cuda.Stream(non_blocking=True)
    res = {"env": environment(), "rows": []}
    sms = res["env"]["sms"]
    for M in map(int, a.ms.split(",")):
        for op, K, ns in CASES:
            for N in ns:
                res["rows"].append(case(op, K, N, M, stream, sms))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
