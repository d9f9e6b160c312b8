"""HTTP overhead of `cugraphllm serve`: TTFT and inter-token latency through SSE streaming on loopback, next to
the library's own (LLM.generate, streamed) on the same prompts, in one run.

    python -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --out benchmarks/results/server_7b.json
    python -m scripts.bench_server --backend numpy --prompt-lens 10,100 --new-tokens 32 --out /tmp/server.json

Both sides see the same prompt texts (random vocabulary pieces, one per repetition, so no two share more than
BOS: no prefix reuse on either side), greedy, `--new-tokens` per request. The library side times the chunks of
`LLM.generate(prompt, stream=True)` in this process; its model is then freed and the server runs in a
subprocess (`python -m cugraphllm serve`, same model flags and context), timed by a small HTTP/1.1 client here
(scripts/server_side.py's Connection: a blocking socket, http.client's request, the response parsed from recv())
over one kept-alive connection (--fresh-connections: a TCP connect per request), from sending the request to
each `data:` chunk's text decoded, as the library side stamps a chunk once it has its text (before 2026-12:
http.client, whose own Python added ~0.2 ms to each TTFT on the 2-vCPU machine; the variant httpclient).
TTFT: to the first text chunk; ITL: between consecutive chunks. Target (issue 12): HTTP adds
<= 1 ms to the TTFT median and <= 3% to the ITL median. Without --model: the packaged stories260K; a dummy model
takes its tokenizer from --tokenizer (default ../shared's LLaMA-2 one).

The library is also timed on a fresh thread (`library_thread`: what a non-main thread costs the engine, apart from
HTTP), and the time to tokenize each prompt (both sides pay it): back to back (`tokenize_ms_median`, caches warm)
and inside the library's TTFT (`library_tokenize_in_ttft_ms`, timed as generate() runs it; after other work it
takes about twice as long on either side: set it beside the server's parsed -> tokenized). Where the server's
time goes: each request's stderr line carries its timeline (worker.TIMELINE) and the engine thread's longest gap
between tokens; the JSON's `server_timeline` gives their medians (scripts/server_side.py says what each step
is). The ITL's first gap (after the first chunk, which the engine thread writes or waits for) is given apart.

--variants default,early,h11 serves and times one server per variant in turn (scripts/serve_variant.py: each
undoes one of the server's latency choices), so that one run says what each choice is worth on that machine;
the first variant is the result; `legacy` is the request path of 2026-11-30 (before fastpath.py). --interleave
keeps every variant's server up beside the library and sends each prompt through all sides in a random order:
on a machine whose speed drifts, the fairest A/B. Beside the TTFT medians, the timeline gives `http_only_ms` per
length: per request, the TTFT less the server's tokenizing and its engine thread's time to the first text, the
part HTTP adds free of those two's noise. No GPU: --fake PREFILL,DECODE,PREFILL_SPIN,DECODE_SPIN (ms) serves an
engine of fixed latency (scripts/fake_engine.py) on both sides, e.g.

    python3 -m scripts.bench_server --fake 5,3,0.3,0.1 --prompt-lens 10 --new-tokens 32 --reps 30 --out /tmp/f.json

(--tokenizer ../shared/models/llama2-tokenizer/tokenizer.model with --fake: LLaMA-2's pieces, so that a
500-token prompt is as long in bytes and as slow to tokenize as the 7B's.)

The JSON records which HTTP parser and event loop uvicorn used (server_http, server_loop). Run on a quiet
machine: the server's thread hand-offs suffer most from CPU contention.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import time
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from cugraphllm import bench
from cugraphllm.api import LLM
from cugraphllm.models import DEFAULT_MODEL
from scripts.serve_variant import VARIANTS
from scripts.server_side import VariantServer, run_variant

SHARED_TOKENIZER = REPO.parent / "shared" / "models" / "llama2-tokenizer" / "tokenizer.model"


def prompts(tok, length: int, reps: int, seed: int) -> list[str]:
    """`reps` texts of about `length` tokens (BOS included), each starting with a different piece."""
    rng = np.random.default_rng(seed + length)
    normal = [i for i in range(tok.vocab_size) if not (tok.sp.is_control(i) or tok.sp.is_byte(i)
                                                       or tok.sp.is_unknown(i) or tok.sp.is_unused(i))]
    out = []
    for r in range(reps):
        ids = [normal[(r * 7919) % len(normal)]] + list(rng.choice(normal, size=max(0, length - 2)))
        text = tok.decode(ids)
        while len(tok.encode(text)) > length and len(ids) > 1:   # decode/encode may merge or split pieces
            ids = ids[:-1]
            text = tok.decode(ids)
        out.append(text)
    return out


def summary(xs) -> dict:
    a = np.asarray(xs, dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": float(np.median(a)), "mean": float(a.mean()),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


class TimedEncode:
    """llm.tokenizer.encode, timed: `last` is the seconds its last call took (~0.3 us more per call)."""

    def __init__(self, encode):
        self.encode, self.last = encode, None

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        ids = self.encode(*args, **kwargs)
        self.last = time.perf_counter() - t0
        return ids


def stamps_library(llm, gpu: dict, text: str, n: int, tokenized: dict | None = None) -> list[float]:
    """One streamed generation: each text chunk's time after the call; gpu[text]: its prefill's GPU ms (cuda);
    tokenized[text]: the seconds generate() spent tokenizing it (where llm.tokenizer.encode is a TimedEncode)."""
    t0 = time.perf_counter()
    out = []
    for chunk in llm.generate(text, max_new_tokens=n, temperature=0.0, stream=True):
        if chunk:
            out.append(time.perf_counter() - t0)
    times = llm.engine.last_gpu_times() if hasattr(llm.engine, "last_gpu_times") else None
    if times:
        gpu[text] = times[0]
    if tokenized is not None:
        tokenized[text] = getattr(llm.tokenizer.encode, "last", None)
    return out


def in_thread(stamp):
    """stamp run on a fresh thread (the caller waits in join, GIL released), as the server's engine thread runs
    the engine: what a thread costs the engine (CUDA per-thread state, ...) apart from what HTTP costs."""
    def run(text, n):
        box = []
        worker = threading.Thread(target=lambda: box.append(stamp(text, n)))
        worker.start()
        worker.join()
        return box[0]
    return run


def measure(stamp, texts_by_len: dict, n: int, warmup: int) -> dict:
    return measure_many({None: stamp}, texts_by_len, n, warmup)[None]


def measure_many(stamps: dict, texts_by_len: dict, n: int, warmup: int) -> dict:
    """{side: rows per prompt length}; each text goes through every side in turn, in a fresh (seeded) random
    order each time, so that a drift of the machine, or what a side's previous request left running, falls on all
    sides alike."""
    out = {side: {} for side in stamps}
    rng = np.random.default_rng(0)
    for length, texts in texts_by_len.items():
        got = {side: [] for side in stamps}
        for text in texts:
            for side in rng.permutation(list(stamps)) if len(stamps) > 1 else stamps:
                got[side].append(stamps[side](text, n))
        for side, runs in got.items():
            ttft, itl, first, chunks = [], [], [], []
            for s in runs[warmup:]:
                ttft.append(s[0])
                itl += list(np.diff(s))
                first += list(np.diff(s[:2]))
                chunks.append(len(s))
            # the gap after the first chunk apart: the server's engine thread may wait for that chunk's write
            out[side][length] = {"ttft_ms": summary(ttft), "itl_ms": summary(itl),
                                 "itl_first_gap_ms": summary(first), "chunks_per_request": float(np.mean(chunks))}
    return out


def compare(lens, library: dict, threaded: dict, server: dict, extra: dict, inside: dict, label: str) -> list[dict]:
    """One row per prompt length: both sides and what HTTP adds (TTFT ms, ITL %), printed as it goes."""
    rows = []
    for n in lens:
        lib, thr, srv = library[n], threaded[n], server[n]
        ttft_add = srv["ttft_ms"]["median"] - lib["ttft_ms"]["median"]
        itl_pct = 100 * (srv["itl_ms"]["median"] / lib["itl_ms"]["median"] - 1) if lib["itl_ms"]["n"] else None
        rows.append({"prompt_len": n, **extra[n], "library": lib, "library_thread": thr, "server": srv,
                     "http_ttft_added_ms": ttft_add, "http_itl_added_pct": itl_pct, "server_timeline": inside.get(n),
                     "meets_target": ttft_add <= 1.0 and (itl_pct is None or itl_pct <= 3.0)})
        med = {k: [side[k].get("median", 0) for side in (lib, thr, srv)] for k in ("ttft_ms", "itl_ms")}
        steps = (inside.get(n) or {}).get("median_ms", {})
        gpu = (f"; GPU prefill library {extra[n]['library_gpu_prefill_ms']:.3f} / server {steps['gpu_prefill']:.3f}"
               if "library_gpu_prefill_ms" in extra[n] and "gpu_prefill" in steps else "")
        print(f"prompt {n:4d}: {label}: TTFT median library {med['ttft_ms'][0]:.3f} ms (on a thread {med['ttft_ms'][1]:.3f}; "
              f"tokenizing {extra[n]['tokenize_ms_median']:.3f}, inside its TTFT "
              f"{extra[n].get('library_tokenize_in_ttft_ms', float('nan')):.3f}), server {med['ttft_ms'][2]:.3f} ms "
              f"(+{ttft_add:.3f}){gpu}; ITL median {med['itl_ms'][0]:.3f} / {med['itl_ms'][2]:.3f} ms "
              f"({itl_pct if itl_pct is None else round(itl_pct, 2)}%)", file=sys.stderr)
        print(f"prompt {n:4d}: {label}: ITL p99 library {lib['itl_ms'].get('p99', 0):.3f} / server "
              f"{srv['itl_ms'].get('p99', 0):.3f} ms, max {lib['itl_ms'].get('max', 0):.3f} / "
              f"{srv['itl_ms'].get('max', 0):.3f}; first gap median {lib['itl_first_gap_ms'].get('median', 0):.3f} / "
              f"{srv['itl_first_gap_ms'].get('median', 0):.3f} ms", file=sys.stderr)
    return rows


def tokenize_ms(tok, texts: list[str]) -> float:
    """Median ms to tokenize one of `texts` back to back (caches warm; inside a TTFT, after other work, it takes
    longer on either side: library_tokenize_in_ttft_ms, the server's parsed -> tokenized)."""
    out = []
    for text in texts:
        t0 = time.perf_counter()
        tok.encode(text)
        out.append(time.perf_counter() - t0)
    return float(np.median(out) * 1e3)


def server_command(args, model: str, backend: str, max_seq: int, tokenizer) -> list[str]:
    """The server's python arguments: cugraphllm serve, or the fake engine's (--fake)."""
    if args.fake:
        fake = [float(x) for x in args.fake.split(",")]
        return ["-m", "scripts.fake_engine", "serve", "--prefill-ms", str(fake[0]), "--decode-ms", str(fake[1]),
                "--prefill-spin-ms", str(fake[2]), "--decode-spin-ms", str(fake[3]), "--max-seq-len", str(max_seq)
                ] + (["--tokenizer", args.tokenizer] if args.tokenizer else [])
    return ["-m", "cugraphllm", "serve", "--model", model, "--backend", backend, "--mode", args.mode, "--dtype",
            args.dtype, "--max-seq-len", str(max_seq)] + (["--tokenizer", tokenizer] if tokenizer else [])


def free_model(backend: str) -> None:
    """After the library's model is dropped: its memory back before the servers load theirs."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    if backend == "cuda":
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()


def interleaved(sides: dict, variants: list[str], command: list[str], texts: dict, args):
    """--interleave: every variant's server up beside the library, each text through all sides in turn;
    (library rows, library_thread rows, {variant: run_variant's dict})."""
    servers = {}
    try:
        for v in variants:
            servers[v] = VariantServer(v, command, args)
        rows = measure_many({**sides, **{v: s.stamp for v, s in servers.items()}}, texts, args.new_tokens,
                            args.warmup)
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return rows["library"], rows["library_thread"], {v: s.finish(rows[v], texts) for v, s in servers.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint or dummy:<preset> (default: packaged stories260K)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer.model (dummy models: default ../shared's LLaMA-2)")
    ap.add_argument("--backend", default="auto", choices=("auto", "numpy", "cuda"))
    ap.add_argument("--mode", default="hybrid", choices=("eager", "graph", "hybrid"))
    ap.add_argument("--dtype", default="float16", choices=("float16", "bfloat16"))
    ap.add_argument("--prompt-lens", default="10,128,500", help="prompt lengths in tokens, comma-separated")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20, help="measured requests per prompt length and side")
    ap.add_argument("--warmup", type=int, default=3, help="discarded requests per prompt length and side")
    ap.add_argument("--fake", metavar="PREFILL,DECODE,PREFILL_SPIN,DECODE_SPIN", help="no model: an engine of "
                    "fixed latency (ms; scripts/fake_engine.py; *_SPIN: how much of the step holds the GIL), e.g. "
                    "5,3,0.3,0.1 for the H200's 7B (its prefill is a CUDA graph: little host work)")
    ap.add_argument("--fresh-connections", action="store_true", help="a new TCP connection per request (default: "
                    "one kept-alive connection, as HTTP clients pool them)")
    ap.add_argument("--variants", default="default", help="comma-separated server variants, each served and "
                    "timed in turn after the library (scripts/serve_variant.py: default, early, h11, asyncio, "
                    "nofreeze, noflushwait, switch5ms, and onewrite for the client; combine with +, e.g. early+h11): "
                    "what each choice is worth")
    ap.add_argument("--interleave", action="store_true", help="all variants' servers up at once beside the library "
                    "(its model kept: one more model's memory per variant), each prompt timed through every side in "
                    "turn: a fairer A/B on a machine whose speed drifts (default: the library, then each server)")
    ap.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the server")
    ap.add_argument("--out", required=True, help="JSON output path")
    args = ap.parse_args(argv)
    model = args.model or str(DEFAULT_MODEL)
    tokenizer = args.tokenizer or (str(SHARED_TOKENIZER) if model.startswith("dummy:") else None)
    lens = sorted({int(x) for x in args.prompt_lens.split(",") if x.strip()})
    variants = [v.strip().replace("+", ",") for v in args.variants.split(",") if v.strip()]
    for v in variants:
        for one in v.split(","):
            if one not in VARIANTS:
                ap.error(f"--variants: unknown variant {one!r} (known: {', '.join(VARIANTS)})")
    max_seq = max(lens) + args.new_tokens + 8

    fake = [float(x) for x in args.fake.split(",")] if args.fake else None
    if fake:   # the packaged model's tokenizer (or --tokenizer) over an engine of fixed latency
        from scripts.fake_engine import fake_llm
        llm, model = fake_llm(*fake, max_seq_len=max_seq, tokenizer=args.tokenizer), f"fake:{args.fake}"
    else:
        llm = LLM.load(model, tokenizer=tokenizer, backend=args.backend, mode=args.mode, dtype=args.dtype,
                       max_seq_len=max_seq, progress=False)
    backend = llm.runtime.backend
    texts = {n: prompts(llm.tokenizer, n, args.warmup + args.reps, seed=0) for n in lens}
    extra = {n: {"prompt_tokens_mean": float(np.mean([len(llm.tokenizer.encode(t)) for t in ts])),
                 "tokenize_ms_median": tokenize_ms(llm.tokenizer, ts)} for n, ts in texts.items()}
    print(f"library: {model}, backend {backend}, lengths {lens}", file=sys.stderr)
    # what is loaded lives to the end: out of the collector's sight (as the server does), so that a full
    # collection here (~ms with CuPy and Numba loaded) lands in neither side's figures
    gc.collect()
    gc.freeze()
    device, versions = bench.device_info(backend), bench.versions(backend)
    for pkg in ("starlette", "uvicorn", "h11", "uvloop", "httptools"):  # uvicorn uses the last two if present
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    command = server_command(args, model, backend, max_seq, tokenizer)
    gpu, tokenized = {}, {}
    llm.tokenizer.encode = TimedEncode(llm.tokenizer.encode)   # how long generate() tokenizes, cold as it runs
    sides = {"library": partial(stamps_library, llm, gpu, tokenized=tokenized),
             "library_thread": in_thread(partial(stamps_library, llm, {}))}
    if args.interleave:
        library, threaded, runs = interleaved(sides, variants, command, texts, args)
    else:
        library = measure(sides["library"], texts, args.new_tokens, args.warmup)
        threaded = measure(sides["library_thread"], texts, args.new_tokens, args.warmup)
        del llm, sides
        free_model(backend)
        runs = {v: run_variant(v, command, measure, texts, args) for v in variants}
    for n, ts in texts.items():
        if all(t in gpu for t in ts[args.warmup:]):
            extra[n]["library_gpu_prefill_ms"] = float(np.median([gpu[t] for t in ts[args.warmup:]]))
        if all(tokenized.get(t) is not None for t in ts[args.warmup:]):
            extra[n]["library_tokenize_in_ttft_ms"] = float(np.median([tokenized[t] for t in ts[args.warmup:]]) * 1e3)
    doc = {"what": "HTTP (SSE on loopback) overhead of cugraphllm serve over LLM.generate", "model": model,
           "backend": backend, "mode": args.mode if backend == "cuda" else None, "date": datetime.now(timezone.utc)
           .isoformat(timespec="seconds"), "device": device, "versions": versions, "new_tokens": args.new_tokens,
           "client": "a new connection per request" if args.fresh_connections else "one kept-alive connection",
           "reps": args.reps, "warmup": args.warmup, "interleaved": args.interleave,
           "target": {"ttft_added_ms": 1.0, "itl_added_pct": 3.0}}
    for v, run in runs.items():   # the first variant (default) is the result; the others what each choice is worth
        rows = compare(lens, library, threaded, run["server"], extra, run["timeline"], v)
        entry = {"server_http": run["http"], "server_loop": run["loop"], "results": rows,
                 "meets_target": all(r["meets_target"] for r in rows)}
        if v == variants[0]:
            doc.update(variant=v, **entry)
        else:
            doc.setdefault("variants", {})[v] = entry
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
