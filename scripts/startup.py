"""Start-up to ready: weight upload, kernel compiles (RawModule + Numba attention), warm-up and graph capture.

    python3 -m scripts.startup --preset llama-2-7b --mode hybrid --cold   # fresh compile caches
    python3 -m scripts.startup --preset llama-2-7b --mode hybrid          # caches from the previous run
    python3 -m scripts.startup --prefill-rows 2048                        # larger prefill buckets (their cost)

Each measurement runs in a fresh process (so in-process caches do not help); --cold points CUPY_CACHE_DIR and
CUGRAPHLLM_CACHE_DIR at empty folders. Dummy weights are made on the GPU, so "load" here is allocation + RNG.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

from cugraphllm.config import PREFILL_ROWS_DEFAULT, PREFILL_ROWS_SIZES

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from cugraphllm.config import ModelConfig, RuntimeConfig
from cugraphllm.gpu.engine import CudaEngine
e = CudaEngine.dummy(ModelConfig.from_preset(sys.argv[1]), RuntimeConfig(backend="cuda", mode=sys.argv[2],
                     max_seq_len=int(sys.argv[3]), prefill_rows=int(sys.argv[4])))
e.sync()
print(json.dumps({"total_s": time.perf_counter() - t0, "engine_startup_s": e.startup_s,
                  "weights_and_alloc_s": e.load_s, "compile_s": e.compile_s, "capture_s": e.rt.capture_s,
                  "memory": e.memory_report()}))
"""


def run(preset, mode, max_seq, env, prefill_rows: int = PREFILL_ROWS_DEFAULT):
    out = subprocess.run([sys.executable, "-c", CHILD, preset, mode, str(max_seq), str(prefill_rows)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(out.returncode)
    return json.loads(out.stdout.strip().splitlines()[-1])


def environment() -> dict:
    """Date, device and versions for the JSON; where this process cannot use the GPU (the runs are children), the
    part that needs it is one error line instead."""
    from cugraphllm.bench_env import device_info, versions
    env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for key, fn in (("device", device_info), ("versions", versions)):
        try:
            env[key] = fn("cuda")
        except Exception as exc:  # noqa: BLE001 - informational, never the reason the script fails
            env[key] = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama-2-7b", help="model preset (dummy weights)")
    ap.add_argument("--mode", default="hybrid", choices=["eager", "graph", "hybrid"], help="runtime mode")
    ap.add_argument("--max-seq-len", type=int, default=4096, help="context to allocate")
    ap.add_argument("--prefill-rows", type=int, default=PREFILL_ROWS_DEFAULT, choices=PREFILL_ROWS_SIZES,
                    metavar="N", help=f"largest prefill bucket (default {PREFILL_ROWS_DEFAULT}; one of "
                    f"{', '.join(map(str, PREFILL_ROWS_SIZES))})")
    ap.add_argument("--out", default=None, help="write JSON here")
    a = ap.parse_args(argv)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        env["CUPY_CACHE_DIR"] = os.path.join(d, "cupy")
        env["CUGRAPHLLM_CACHE_DIR"] = os.path.join(d, "cugraphllm")
        cold = run(a.preset, a.mode, a.max_seq_len, env, a.prefill_rows)
        time.sleep(2.0)  # background compiles of the cold run finish into the cache
        warm = run(a.preset, a.mode, a.max_seq_len, env, a.prefill_rows)
    rep = {**environment(), "preset": a.preset, "mode": a.mode, "prefill_rows": a.prefill_rows, "cold": cold,
           "warm": warm}
    print(json.dumps(rep, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
