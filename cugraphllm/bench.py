"""`python -m cugraphllm bench`: the paper's batch-1 latency protocol on our engines.

Per mode (eager, graph, hybrid on the cuda backend; one system on numpy) and prompt length: random prompt ids
(seeded, the same prompts for every mode), greedy, exactly --new-tokens tokens (the engine's generate iterator is
driven directly, so EOS never stops it), warm-up runs discarded. Host wall clock: TTFT is the time from the
generate call to the first yielded token (what a user sees), inter-token latencies are the times between yields.
Writes <out>/<stem>.json (schema cugraphllm-bench/1, shared with scripts/bench_peers.py), .md and .png; <out>
defaults to ./bench-results (git-ignored; pass --out benchmarks/results to add to the stored results).
Without --model or --preset: the LLaMA-2-7B shapes on cuda, the tiny preset on numpy (7B in float32 needs 27 GB).
Progress goes to stderr. `--merge A.json B.json ...` only merges documents (e.g. ours with the torch peers).
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

from . import bench_report as br
from .bench_args import DEFAULT_OUT, PAPER_LENS, parse_args  # noqa: F401 - the bench's public names
from .bench_env import cuda_copy_gbps, device_info, free_memory, memory_bytes, versions  # noqa: F401
from .bench_model import model_entry as _model_entry, quant_gbps as _quant_gbps
from .config import ModelConfig, RuntimeConfig
from .errors import ConfigError, ContextLimitError, CugraphError

DEFAULT_PRESET = {"cuda": "llama-2-7b", "numpy": "tiny"}
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---- timing one generation ----------------------------------------------------------------------
def gpu_times(engine):
    """(prefill ms, decode ms per step or None) from the engine's CUDA events, when it has them (cuda backend)."""
    get = getattr(engine, "last_gpu_times", None)
    t = get() if get is not None else None
    if t is None:
        return None
    prefill_ms, decode_ms, steps = t
    return prefill_ms, (decode_ms / steps if steps else None)


def time_generation(engine, prompt: list[int], n: int, params) -> tuple[float, list[float]]:
    """Reset, then drive engine.generate for exactly n tokens. Returns (ttft_s, the n-1 inter-token intervals)."""
    engine.reset()
    if hasattr(engine, "sync"):
        engine.sync()
    t0 = time.perf_counter()
    it = engine.generate(prompt, params, n)
    times = []
    try:
        for _ in range(n):
            next(it)
            times.append(time.perf_counter())
    except StopIteration:
        raise ContextLimitError(f"bench: the engine stopped after {len(times)} of {n} tokens "
                                f"(prompt {len(prompt)}, context {engine.max_seq_len})") from None
    finally:
        it.close()
    return times[0] - t0, [b - a for a, b in zip(times, times[1:])]


def prompts_for(length: int, count: int, vocab: int, seed: int) -> list[list[int]]:
    """`count` random prompts of `length` ids in [3, vocab) (above llama's unk/bos/eos); keyed by (seed, length)
    so every mode and every run of the bench sees the same prompts."""
    rng = np.random.default_rng([seed, length])
    lo = 3 if vocab > 3 else 0
    return [rng.integers(lo, vocab, size=length).tolist() for _ in range(count)]


def bench_length(engine, length: int, args, config: ModelConfig, itemsize: int, params) -> dict:
    """Timed runs at one prompt length: the first `reps` run the full length, the rest (up to ttft_reps) stop
    after the first token."""
    total = max(args.reps, args.ttft_reps)
    ttft, itl_runs, gpu_prefill, gpu_step = [], [], [], []
    for r, prompt in enumerate(prompts_for(length, total, config.vocab_size, args.seed)):
        full = r < args.reps
        if args.idle_ms:  # the idle time a user leaves between prompts (README: power management)
            time.sleep(args.idle_ms / 1000)
        t, itl = time_generation(engine, prompt, args.new_tokens if full else 1, params)
        ttft.append(t)
        g = gpu_times(engine)
        if g is not None:
            gpu_prefill.append(g[0])
            if full and g[1] is not None:
                gpu_step.append(g[1])
        if full:
            itl_runs.append(itl)
    row = br.result_entry(length, args.new_tokens, ttft, itl_runs, config, itemsize)
    if gpu_prefill:  # CUDA events around the device work: prefill (incl. first sample) and per decode step
        row["gpu_prefill_ms"] = br.ttft_stats(gpu_prefill)
        row["gpu_tpot_ms"] = float(np.median(gpu_step)) if gpu_step else None
    return row


def bench_engine(engine, args, config: ModelConfig, itemsize: int) -> list[dict]:
    """Warm-up at every length (largest first, so buffers and graphs are sized once; its first TTFT is kept as
    cold_ttft_ms), then the timed runs, shortest length first."""
    from .sampling import SamplingParams
    params = SamplingParams()  # greedy
    cold = {}
    for length in sorted(args.prompt_lens, reverse=True):
        for w, prompt in enumerate(prompts_for(length, args.warmup, config.vocab_size, args.seed + 1)):
            t, _ = time_generation(engine, prompt, args.new_tokens, params)
            cold.setdefault(length, 1e3 * t)
        log(f"  warm-up L={length} done")
    rows = []
    for length in sorted(args.prompt_lens):
        row = bench_length(engine, length, args, config, itemsize, params)
        row["cold_ttft_ms"] = cold.get(length)
        tp = row["tpot_ms"]
        log(f"  L={length}: TTFT median {row['ttft_ms']['median']:.2f} ms, P99 {row['ttft_ms']['p99']:.2f} ms"
            + ("" if tp is None else f", TPOT {tp:.3f} ms ({row['tokens_per_s']:.1f} tok/s)"))
        rows.append(row)
    return rows


# ---- engines ------------------------------------------------------------------------------------
def resolve_backend(name: str) -> str:
    """auto -> cuda or numpy; cuda without CuPy or a driver is a one-line BackendError (api's rule)."""
    from .engines import resolve_backend as resolve
    return resolve(name)


def load_source(args, backend: str):
    """A Checkpoint (from --model) or a ModelConfig (the preset, meaning seeded dummy weights)."""
    args.packaged = args.model is None and args.preset is None and backend == "numpy"
    if args.packaged:  # the model that ships in the package
        from .models import default_model
        args.model = str(default_model(None, log))
    if args.model is None:
        preset = args.preset or DEFAULT_PRESET[backend]
        if args.preset is None:
            log(f"no --model or --preset: the {preset} preset on {backend}")
        return ModelConfig.from_preset(preset), preset + " (random weights)"
    from .loader import load_checkpoint, parse_model_arg
    kind, what = parse_model_arg(args.model)
    if kind == "dummy":
        return ModelConfig.from_preset(what), what + " (random weights)"
    dtype = "float16" if backend == "cuda" and args.dtype == "float16" else "float32"
    t = time.perf_counter()
    cuda = backend == "cuda"  # cuda: streamed at each upload and quantized there; numpy: quantized on the host
    ckpt = load_checkpoint(what, dtype=dtype, progress=False, lazy=cuda,
                           quant=None if cuda else _runtime_quant(args).quant_spec())
    log(f"loaded {what} in {time.perf_counter() - t:.1f} s")
    return ckpt, Path(what).name


def _runtime_quant(args) -> RuntimeConfig:
    """A RuntimeConfig carrying only the --quant flags (validates them)."""
    return RuntimeConfig(quant=args.quant, group_size=args.group_size, quant_head=args.quant_head)


def make_engine(source, backend: str, mode: str, args, max_seq: int):
    from .engines import _make_engine
    runtime = RuntimeConfig(backend=backend, mode=mode, dtype=args.dtype, max_seq_len=max_seq, seed=args.seed,
                            quant=args.quant, group_size=args.group_size, quant_head=args.quant_head, tp=args.tp,
                            prefill_rows=args.prefill_rows)
    t = time.perf_counter()
    engine = _make_engine(source, runtime)
    wall = time.perf_counter() - t
    if hasattr(engine, "wait_ready"):  # measure steady state: every bucket compiled, every graph captured
        engine.wait_ready()
    return engine, float(getattr(engine, "startup_s", None) or wall)


def tp_entry(engine, args) -> dict:
    """--tp N: the device time of one decode step's collectives alone (a graph of just them) and the GPU count;
    memory figures of a TP engine are per GPU."""
    if args.tp <= 1:
        return {}
    us, how = engine.collective_us(), getattr(engine, "allreduce", "nccl")
    log(f"  collectives (2 all-reduces per layer + logits all-gather, {how}): {us:.1f} us per step over {args.tp} "
        "GPUs")
    return {"tp": args.tp, "allreduce_us_per_step": us, "allreduce_backend": how, "memory_per_gpu": True}


def gemm_entry(backend: str) -> dict:
    """cuda: the prefill GEMMs' tuned algorithms so far (gpu/gemm_tune.py: shape, choice, its time and GemmEx's)."""
    if backend != "cuda":
        return {}
    from .gpu import gemm_tune
    return {"prefill_gemm_tuning": gemm_tune.report()}


def _floor(config, args, backend: str) -> dict:
    """Weight bytes read per decode token in this format and their floor at the H200 copy rate (logged)."""
    from .gpu.quant_upload import decode_floor
    fmt, group, head = (getattr(args, "quant", None), getattr(args, "group_size", 128),
                        getattr(args, "quant_head", False))
    f = decode_floor(config, fmt, group, head, 2 if backend == "cuda" else 4)
    log(f"weights {fmt or args.dtype}: {f['bytes_per_token'] / 1e9:.2f} GB read per token, floor "
        f"{f['floor_ms']:.3f} ms/token at {f['copy_bps'] / 1e12:.2f} TB/s")
    return f


def _context(args, source, config, backend: str) -> int:
    """The context to allocate (--max-seq-len, else the longest prompt + --new-tokens); the packaged model keeps
    only the paper lengths that fit it. A context the model or (numpy) the host cannot hold is one line."""
    if args.packaged and args.prompt_lens == [int(x) for x in PAPER_LENS.split(",")]:  # the lengths that fit it
        args.prompt_lens = [n for n in args.prompt_lens if n + args.new_tokens <= config.max_seq_len] or [1]
    max_seq = args.max_seq_len or max(args.prompt_lens) + args.new_tokens
    if max_seq > config.max_seq_len:
        raise ConfigError(f"bench: a context of {max_seq} tokens (prompt {max(args.prompt_lens)} + {args.new_tokens} "
                          f"new, or --max-seq-len) exceeds the model's context of {config.max_seq_len}")
    if backend == "numpy":  # before any work: a model too big for memory is one line
        from .reference import numpy_context
        numpy_context(config, max_seq, weights_in_memory=not isinstance(source, ModelConfig))
    return max_seq


def _systems(args, source, config, backend: str, max_seq: int, floor: dict, itemsize: int) -> list[dict]:
    """One system entry per mode (cuda) or the NumPy engine, each engine closed and freed before the next."""
    systems = []
    for mode in (args.modes if backend == "cuda" else ["reference"]):
        sysname = f"cugraphllm-{mode if backend == 'cuda' else 'numpy'}" + (f"-tp{args.tp}" if args.tp > 1 else "")
        log(f"{sysname}: starting the engine")
        engine, startup = make_engine(source, backend, mode if backend == "cuda" else "hybrid", args, max_seq)
        rows = _quant_gbps(bench_engine(engine, args, config, itemsize), config, floor, itemsize, args.new_tokens)
        total, report = memory_bytes(engine, backend)
        systems.append(br.system_entry(sysname, startup, total, rows, memory=report, **tp_entry(engine, args),
                                       **gemm_entry(backend)))
        if hasattr(engine, "close"):
            engine.close()
        engine = None
        free_memory(backend)
    return systems


def run(args) -> tuple[dict, str]:
    backend = resolve_backend(args.backend)
    source, name = load_source(args, backend)
    config = source if isinstance(source, ModelConfig) else source.config
    max_seq = _context(args, source, config, backend)
    itemsize = 2 if backend == "cuda" else 4
    device = device_info(backend)
    log(f"{device['name']}: {name}, backend {backend}, lengths {args.prompt_lens}, {args.new_tokens} new tokens"
        + ("" if device["copy_gbps"] is None else f", copy {device['copy_gbps']:.0f} GB/s"))
    floor = _floor(config, args, backend)
    systems = _systems(args, source, config, backend, max_seq, floor, itemsize)
    model = _model_entry(args, config, name, backend, floor, itemsize)
    notes = [f"protocol: batch 1, random prompt ids (seed {args.seed}), greedy, forced length {args.new_tokens}, "
             f"{args.warmup} warm-up run(s) per length discarded, {args.reps} full runs and "
             f"{max(args.reps, args.ttft_reps)} TTFT samples per length"
             + (f", {args.idle_ms:g} ms idle before each" if args.idle_ms else "") + "; host wall clock per yielded token"]
    return br.make_doc(device, versions(backend), model, systems, notes), backend


def main(argv=None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    today = dt.date.today().isoformat()
    if args.merge:
        doc = br.merge([br.load(p) for p in args.merge])
        stem = args.stem or f"merged_{today}"
    else:
        doc, backend = run(args)
        if args.peers:
            doc = br.merge([doc] + [br.load(p) for p in args.peers])
        stem = args.stem or f"bench_{backend}_{today}"
    paths = br.write_outputs(doc, Path(args.out), stem, png=not args.no_plot, log=log)
    sys.stdout.write(br.to_markdown(doc))
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CugraphError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
