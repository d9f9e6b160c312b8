"""An engine of fixed latency, to measure what the server adds to TTFT without a GPU (scripts/bench_server.py
--fake). It mimics the CUDA engine's host behaviour (launch()): a step's host work holds the GIL a while
(short for a graph, long for eager launches), letting it go at each launch as CuPy does, while a modelled GPU
runs the work; the step that makes token i+1 is queued before token i is waited for (GIL released, an event
synchronize) and yielded, as CudaEngine pipelines decode.

    python3 -m scripts.fake_engine serve --prefill-ms 5 --decode-ms 3 --prefill-spin-ms 0.3 --decode-spin-ms 0.1

The tokenizer (or --tokenizer's) and the cache protocol (tokens, truncate, reset, generate) are the packaged
stories260K model's; the tokens are a fixed cycle of ordinary pieces, so every request's text is the same for
the same length.
"""
from __future__ import annotations

import sys
import time



LAUNCHES = (8, 2)   # host calls per prefill (H2D copies, a graph launch) and per decode step (launch, record)


def launch(seconds: float, spin: float, launches: int, gpu_free: float) -> float:
    """Queue a step of `seconds` on the modelled GPU (free from `gpu_free` on); returns when it will be done. The
    host work is `spin` seconds of this thread's CPU time holding the GIL, cut into `launches` calls that each
    let the GIL go (as CuPy's launches and copies do); the GPU runs each call's work after it and the previous
    one. Uncontended, a step on an idle GPU takes `seconds`; another thread holding the GIL delays the launches
    (each release lets it in: up to a switch interval per call), and so the step where the launches are the
    bottleneck or the GPU idles for them, as on a real GPU (a spin timed by the wall clock would hide that)."""
    per_launch = spin / launches
    kernel = max(seconds - per_launch, 0.0) / launches
    for _ in range(launches):
        cpu = time.thread_time() + per_launch
        while time.thread_time() < cpu:
            pass
        time.sleep(0)   # the GIL goes and comes back, as around cuLaunchKernel
        gpu_free = max(gpu_free, time.perf_counter()) + kernel
    return gpu_free


def wait_until(t: float) -> None:
    """An event synchronize: the GIL released until the GPU is done."""
    rest = t - time.perf_counter()
    if rest > 0:
        time.sleep(rest)


class FakeEngine:
    """The Engine protocol of DESIGN.md over a real engine's config, with timed steps instead of a model."""

    def __init__(self, inner, prefill_s: float, decode_s: float, spin: tuple, cycle: list[int]):
        self.inner, self.prefill_s, self.decode_s, self.spin = inner, prefill_s, decode_s, spin
        self.config, self.max_seq_len = inner.config, inner.max_seq_len
        self.tokens: list[int] = []
        self.cycle = cycle
        self.steps = None   # decode steps of the last generation

    def reset(self) -> None:
        self.tokens = []

    def truncate(self, n: int) -> None:
        self.tokens = self.tokens[:n]

    def generate(self, new_tokens, params, max_new_tokens: int):
        return self._steps([int(t) for t in new_tokens], max_new_tokens)

    def last_gpu_times(self):
        """As CudaEngine's: (prefill ms, decode ms, decode steps) of the last generation, here the modelled ones."""
        return None if self.steps is None else (self.prefill_s * 1e3, self.decode_s * 1e3 * self.steps, self.steps)

    def _steps(self, new, budget):
        """As CudaEngine._generate: the step that makes token i+1 is queued before token i is waited for and
        yielded, so that the GPU works while the consumer handles token i."""
        self.steps = 0
        done = launch(self.prefill_s, self.spin[0], LAUNCHES[0], time.perf_counter())
        self.tokens.extend(new)
        for i in range(budget):
            tok = self.cycle[(len(self.tokens) + i) % len(self.cycle)]
            after = None
            if i + 1 < budget:
                after = launch(self.decode_s, self.spin[1], LAUNCHES[1], done)
                self.steps += 1
            wait_until(done)
            yield tok
            self.tokens.append(tok)
            done = after


def fake_llm(prefill_ms: float, decode_ms: float, prefill_spin_ms: float, decode_spin_ms: float,
             max_seq_len: int = 1024, tokenizer=None):
    """The packaged stories260K LLM with its engine replaced by a FakeEngine; tokenizer: a tokenizer.model to use
    instead of stories260K's 512 pieces (LLaMA-2's: prompts of a given length in tokens as long in bytes, and as
    slow to tokenize, as the real model's)."""
    from cugraphllm.api import LLM
    from cugraphllm.models import DEFAULT_MODEL
    from cugraphllm.tokenizer import Tokenizer

    llm = LLM.load(str(DEFAULT_MODEL), backend="numpy", max_seq_len=max_seq_len, progress=False)
    if tokenizer is not None:
        llm.tokenizer = Tokenizer.load(tokenizer)
    tok = llm.tokenizer
    cycle = [i for i in range(tok.vocab_size) if i > 2 and tok.sp.IdToPiece(i).startswith("\u2581")]
    llm.engine = FakeEngine(llm.engine, prefill_ms / 1e3, decode_ms / 1e3,
                            (prefill_spin_ms / 1e3, decode_spin_ms / 1e3), cycle)
    llm.end_ids = frozenset()  # the cycle never ends a text early: every request makes max_tokens
    return llm


def main(argv=None) -> int:
    import argparse

    from cugraphllm import cli
    from cugraphllm.server import add_server_flags, check_installed, serve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("serve",))
    ap.add_argument("--prefill-ms", type=float, default=5.0)
    ap.add_argument("--decode-ms", type=float, default=3.0)
    ap.add_argument("--prefill-spin-ms", type=float, default=0.3, help="of the prefill, ms holding the GIL")
    ap.add_argument("--decode-spin-ms", type=float, default=0.1, help="of a decode step, ms holding the GIL")
    ap.add_argument("--max-seq-len", type=int, default=1024)
    ap.add_argument("--tokenizer", help="tokenizer.model (default: the packaged stories260K's)")
    ap.add_argument("-q", "--quiet", action="store_true")
    add_server_flags(ap, cli._checked)
    args = ap.parse_args(argv)
    args.served_model_name = args.served_model_name or "fake"
    check_installed()
    llm = fake_llm(args.prefill_ms, args.decode_ms, args.prefill_spin_ms, args.decode_spin_ms, args.max_seq_len,
                   args.tokenizer)
    return serve(llm, args, lambda text: cli._status(args, text))


if __name__ == "__main__":
    sys.exit(main())
