"""Host memory while a real sharded checkpoint streams to the GPU (issue 11): write a LLaMA-2-13B Hugging Face folder
of seeded fp16 weights (26 GB in --shards files; the GPU machine has 64 GB of disk), then, in a fresh process, load
it with the cuda backend (load_checkpoint(lazy=True) + the staged upload) and report peak host RSS (lifetime peak,
and the sampled peaks of anonymous and file-backed resident memory), GPU memory and timings; a few tensors are
checked on the device against the files. Exit 1 if the peak RSS is above --max-rss-gb.

    python -m scripts.mem_13b --out /tmp/llama13b --json $OUT/mem_13b.json     # write, load, delete the folder
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from cugraphllm.config import ModelConfig
from cugraphllm.convert import hf_config
from cugraphllm.loader_hf import INDEX, hf_name
from cugraphllm.safetensors_io import write_safetensors

GB = 1e9


class Seeded:
    """A tensor generated only when written (np.asarray): seeded pieces of a shared N(0, 0.02^2) pool (memcpy
    speed), or gains around 1 for the norms, so that folding them matters."""

    def __init__(self, shape, seed: int, pool: np.ndarray):
        self.shape, self.seed, self.pool = tuple(shape), seed, pool

    def __array__(self, dtype=None, copy=None):
        rng = np.random.default_rng(self.seed)
        if len(self.shape) == 1:
            out = rng.uniform(0.8, 1.2, self.shape).astype(np.float16)
        else:
            flat = np.empty(int(np.prod(self.shape)), np.float16)
            piece = 1 << 18
            for k, off in enumerate(rng.integers(0, self.pool.size - piece, -(-flat.size // piece))):
                part = flat[k * piece:(k + 1) * piece]
                part[:] = self.pool[off:off + part.size]
            out = flat.reshape(self.shape)
        return out if dtype is None else out.astype(dtype, copy=False)


def shapes(cfg: ModelConfig) -> dict:
    D, F, V, KV = cfg.dim, cfg.hidden_dim, cfg.vocab_size, cfg.kv_dim
    per = {"attention_norm": (D,), "wq": (D, D), "wk": (KV, D), "wv": (KV, D), "wo": (D, D), "ffn_norm": (D,),
           "w1": (F, D), "w2": (D, F), "w3": (F, D)}
    out = {hf_name("tok_embeddings", None): (V, D)}
    for i in range(cfg.n_layers):
        out.update({hf_name(k, i): s for k, s in per.items()})
    out[hf_name("norm", None)] = (D,)
    out[hf_name("output", None)] = (V, D)
    return out


def write(folder: Path, cfg: ModelConfig, shards: int) -> float:
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config(cfg, "float16"), indent=2) + "\n")
    pool = (np.random.default_rng(0).standard_normal(1 << 22, dtype=np.float32) * 0.02).astype(np.float16)
    names = list(shapes(cfg).items())
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        group = {n: Seeded(s, seed=i, pool=pool) for i, (n, s) in enumerate(names) if i // per == k}
        total += write_safetensors(folder / fname, group, "float16", metadata={"format": "pt"})
        weight_map.update({n: fname for n in group})
        print(f"wrote {fname}: {total / GB:.1f} GB so far", file=sys.stderr, flush=True)
    (folder / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}) + "\n")
    return time.perf_counter() - t0


class RssSampler(threading.Thread):
    """Peaks of VmRSS, RssAnon and RssFile (/proc/self/status) every 20 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self.stop = threading.Event()

    def sample(self):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in self.peak:
                self.peak[key] = max(self.peak[key], int(rest.split()[0]) * 1024)

    def run(self):
        while not self.stop.wait(0.02):
            self.sample()


def load(folder: Path, max_seq_len: int) -> dict:
    """Runs in a fresh process: everything it reports is the load's own."""
    import cupy as cp

    from cugraphllm.config import RuntimeConfig
    from cugraphllm.gpu.engine import CudaEngine
    from cugraphllm.loader import load_checkpoint
    from cugraphllm.sampling import SamplingParams
    sampler = RssSampler()
    sampler.sample()
    before = dict(sampler.peak)
    sampler.start()
    t0 = time.perf_counter()
    ck = load_checkpoint(folder, dtype="float16", lazy=True, progress=False)
    rc = RuntimeConfig(backend="cuda", mode="graph", max_seq_len=max_seq_len)
    engine = CudaEngine(ck.config, ck.weights, rc, progress=lambda line: print(line, file=sys.stderr, flush=True))
    load_s = time.perf_counter() - t0
    toks = list(engine.generate(list(range(3, 40)), SamplingParams(), 8))
    sampler.stop.set()
    sampler.join()
    free, total = cp.cuda.runtime.memGetInfo()
    return {"model_bytes": ck.weights.nbytes(), "load_s": load_s, "engine_startup_s": engine.startup_s,
            "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rss_before": before, "rss_peak": sampler.peak, "gpu_used_bytes": total - free,
            "pool_total_bytes": cp.get_default_memory_pool().total_bytes(),
            "memory_report": engine.memory_report(), "tokens": toks, "checks": check(ck, engine)}


def check(ck, engine) -> dict:
    """Device tensors against the files: wo of layer 7 bit for bit; sampled rows of the folded output head."""
    import cupy as cp
    w, dev = ck.weights, engine.w
    wo = np.asarray(w.layers[7].wo)
    same_wo = bool(cp.array_equal(dev.layers[7].wo, cp.asarray(wo)))
    rows = np.random.default_rng(1).integers(0, w.output.shape[0], 64)
    buf = np.empty((1, w.output.shape[1]), np.float16)
    want = []
    for r in rows:
        w.output.read_rows(int(r), int(r) + 1, buf)
        want.append((buf[0].astype(np.float32) * np.asarray(w.norm, np.float32)).astype(np.float16))
    same_out = bool(np.array_equal(dev.output[cp.asarray(rows)].get(), np.stack(want)))
    return {"layer7_wo_bit_exact": same_wo, "output_rows_folded_bit_exact": same_out}


REPO = Path(__file__).resolve().parents[1]


def child_argv(out: Path, max_seq_len: int) -> list[str]:
    """The fresh process that loads the folder: this module, run from the repository root (as a script by path
    it would not find the package where it is not installed: the 2026-11-30 fifth session's device call)."""
    return [sys.executable, "-m", "scripts.mem_13b", "--load-only", "--out", str(out), "--max-seq-len",
            str(max_seq_len)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "cugraphllm_13b")
    p.add_argument("--shards", type=int, default=6)
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--max-rss-gb", type=float, default=4.0, help="fail above this peak host RSS (model: 26 GB)")
    p.add_argument("--keep", action="store_true", help="keep the folder (default: delete it at the end)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    a = p.parse_args(argv)
    if a.load_only:
        print(json.dumps(load(a.out, a.max_seq_len)))
        return 0
    cfg = ModelConfig.from_preset("llama-2-13b")
    try:
        write_s = 0.0 if (a.out / INDEX).is_file() else write(a.out, cfg, a.shards)
        child = subprocess.run(child_argv(a.out, a.max_seq_len), stdout=subprocess.PIPE, text=True, check=True,
                               cwd=REPO)
    finally:
        if not a.keep:
            shutil.rmtree(a.out, ignore_errors=True)
    res = json.loads(child.stdout.strip().splitlines()[-1]) | {"write_s": write_s, "max_rss_gb": a.max_rss_gb}
    peak = max(res["ru_maxrss_bytes"], res["rss_peak"]["VmRSS"])
    res["pass"] = peak < a.max_rss_gb * GB and all(res["checks"].values())
    print(f"13B fp16 ({res['model_bytes'] / GB:.1f} GB): load {res['load_s']:.1f} s; peak host RSS "
          f"{peak / GB:.2f} GB (anon {res['rss_peak']['RssAnon'] / GB:.2f}, "
          f"file {res['rss_peak']['RssFile'] / GB:.2f}); "
          f"GPU used {res['gpu_used_bytes'] / GB:.2f} GB, pool {res['pool_total_bytes'] / GB:.2f} GB; "
          f"checks {res['checks']}; {'PASS' if res['pass'] else 'FAIL'}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
