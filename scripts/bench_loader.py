#!/usr/bin/env python3
"""Loader at full size: dummy weights of a preset, written as a sharded Hugging Face folder, loaded back.

    python3 -m scripts.bench_loader --preset llama-2-7b --dtype bfloat16 --shards 3 --dir /tmp/llama7b-hf

Prints the time of each step, the bytes NumPy allocated at peak while loading (tracemalloc), and the
process's anonymous RSS, to show the checkpoint is held once (fused output) and not twice.
"""
import argparse
import shutil
import time
import tracemalloc
from pathlib import Path


from cugraphllm.config import ModelConfig
from cugraphllm.convert import write_hf
from cugraphllm.loader import dummy_weights, load_checkpoint


def rss_anon_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="llama-2-7b")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--load-dtype", default="float16", choices=["float32", "float16"])
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--layers", type=int, default=None, help="override n_layers (a smaller run of the same shapes)")
    ap.add_argument("--dir", default="/tmp/bench-loader-hf")
    args = ap.parse_args()
    cfg = ModelConfig.from_preset(args.preset)
    cfg = cfg.with_(n_layers=args.layers) if args.layers else cfg
    out = Path(args.dir)

    t = time.perf_counter()
    w = dummy_weights(cfg, seed=0, dtype="float16")
    dt = time.perf_counter() - t
    print(f"dummy {args.preset} ({cfg.n_layers} layers) float16: {w.nbytes() / 1e9:.2f} GB in {dt:.1f} s ({w.nbytes() / dt / 1e9:.2f} GB/s)")
    t = time.perf_counter()
    write_hf(out, cfg, w, dtype=args.dtype, shards=args.shards)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    print(f"write {args.dtype} x{args.shards} shards: {size / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s")
    del w
    print(f"anon RSS before load: {rss_anon_gb():.2f} GB")

    tracemalloc.start()
    t = time.perf_counter()
    ck = load_checkpoint(out, dtype=args.load_dtype, progress=True)
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nbytes = ck.weights.nbytes()
    print(f"load -> {args.load_dtype}: {nbytes / 1e9:.2f} GB of weights in {dt:.1f} s ({size / dt / 1e9:.2f} GB/s "
          f"read); NumPy peak allocation {peak / 1e9:.2f} GB; anon RSS {rss_anon_gb():.2f} GB")
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
