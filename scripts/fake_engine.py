"""An engine of fixed latency, to measure what the server adds to TTFT without a GPU (scripts/bench_server.py
--fake). It mimics the CUDA engine's host behaviour: a step first holds the GIL a while (Python launching
kernels: long for an eager prefill, short for a graph decode) while a modelled GPU runs them, then waits with
the GIL released (an event synchronize) for the GPU to finish (busy()).

    python scripts/fake_engine.py serve --prefill-ms 5 --decode-ms 3 --prefill-spin-ms 2.5 --decode-spin-ms 0.1

The tokenizer and the cache protocol (tokens, truncate, reset, generate) are the packaged stories260K model's;
the tokens are a fixed cycle of ordinary pieces, so every request's text is the same for the same length.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


LAUNCHES = 64   # kernel launches per step


def busy(seconds: float, spin: float) -> None:
    """A step of `seconds` whose host work is `spin` seconds of this thread's CPU time holding the GIL (Python
    launching LAUNCHES kernels), on a GPU that runs each kernel after its launch and the previous kernel, then a
    synchronize (GIL released). Uncontended it takes `seconds`; work that takes the GIL or the core from this
    thread delays the launches, and so the step where the launches are the bottleneck (spin near seconds), as
    on a real GPU (a spin timed by the wall clock would hide that)."""
    launch = spin / LAUNCHES
    kernel = max(seconds - launch, 0.0) / LAUNCHES
    gpu_free = time.perf_counter()
    for _ in range(LAUNCHES):
        cpu = time.thread_time() + launch
        while time.thread_time() < cpu:
            pass
        gpu_free = max(gpu_free, time.perf_counter()) + kernel
    rest = gpu_free - time.perf_counter()
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
        self.steps = 0
        busy(self.prefill_s, self.spin[0])
        self.tokens.extend(new)
        for i in range(budget):
            tok = self.cycle[(len(self.tokens) + i) % len(self.cycle)]
            if i:
                busy(self.decode_s, self.spin[1])
                self.steps += 1
            yield tok
            self.tokens.append(tok)


def fake_llm(prefill_ms: float, decode_ms: float, prefill_spin_ms: float, decode_spin_ms: float,
             max_seq_len: int = 1024):
    """The packaged stories260K LLM with its engine replaced by a FakeEngine."""
    from cugraphllm.api import LLM
    from cugraphllm.models import DEFAULT_MODEL

    llm = LLM.load(str(DEFAULT_MODEL), backend="numpy", max_seq_len=max_seq_len, progress=False)
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
    ap.add_argument("--prefill-spin-ms", type=float, default=2.5, help="of the prefill, ms holding the GIL")
    ap.add_argument("--decode-spin-ms", type=float, default=0.1, help="of a decode step, ms holding the GIL")
    ap.add_argument("--max-seq-len", type=int, default=1024)
    ap.add_argument("-q", "--quiet", action="store_true")
    add_server_flags(ap, cli._checked)
    args = ap.parse_args(argv)
    args.served_model_name = args.served_model_name or "fake"
    check_installed()
    llm = fake_llm(args.prefill_ms, args.decode_ms, args.prefill_spin_ms, args.decode_spin_ms, args.max_seq_len)
    return serve(llm, args, lambda text: cli._status(args, text))


if __name__ == "__main__":
    sys.exit(main())
