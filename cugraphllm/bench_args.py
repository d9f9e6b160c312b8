"""`cugraphllm bench` command line: flags, defaults and their checks (one-line usage errors, as generate and chat)."""
from __future__ import annotations

import argparse

from .config import MODES, PREFILL_ROWS_DEFAULT, PRESETS

PAPER_LENS = "10,25,50,100,128,200,300,500"
DEFAULT_OUT = "bench-results"
DESCRIPTION = "`python -m cugraphllm bench`: the paper's batch-1 latency protocol on our engines."


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in --help, except None and False (their help says what happens)."""

    def _get_help_string(self, action):
        hidden = action.default is None or action.default is False or action.default == []
        return action.help if hidden else super()._get_help_string(action)


def _parser():
    from .cli_args import _Parser  # one-line usage errors, as generate and chat
    p = _Parser(prog="cugraphllm bench", description=DESCRIPTION,
                formatter_class=_Help)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="checkpoint path (or dummy:<preset>)")
    src.add_argument("--preset", default=None, choices=sorted(PRESETS),
                     help="dummy weights of a preset (default: llama-2-7b on cuda; on numpy the packaged "
                          "stories260K)")
    p.add_argument("--backend", default="auto", choices=("auto", "cuda", "numpy"),
                   help="engine backend; auto = cuda when CuPy and a GPU are present, else numpy")
    p.add_argument("--modes", default=",".join(MODES),
                   help="cuda runtime modes to measure, comma-separated (eager, graph, hybrid)")
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16"),
                   help="GPU storage dtype of weights, activations and KV cache")
    p.add_argument("--quant", default=None, choices=("fp8", "int8", "int4"),
                   help="quantize the weights at load (dummy weights too)")
    p.add_argument("--group-size", type=int, default=128, help="int4 columns per group (-1: one per row)")
    p.add_argument("--quant-head", action="store_true", help="quantize the LM head too")
    return _protocol_flags(p)


def _protocol_flags(p):
    """The measurement protocol (lengths, repetitions, seed) and the outputs."""
    p.add_argument("--prompt-lens", "--lengths", dest="prompt_lens", default=PAPER_LENS,
                   help=f"comma-separated prompt lengths in tokens (default: the paper's {PAPER_LENS})")
    p.add_argument("--new-tokens", type=int, default=128,
                   help="tokens generated per run (forced: EOS is ignored)")
    p.add_argument("--max-seq-len", type=int, default=None, metavar="N",
                   help="context to allocate (KV cache, buckets); default: the longest prompt + --new-tokens")
    from .cli_args import PREFILL_ROWS, PREFILL_ROWS_HELP
    p.add_argument("--prefill-rows", type=PREFILL_ROWS, default=PREFILL_ROWS_DEFAULT, metavar="N",
                   help=PREFILL_ROWS_HELP.replace("; default %(default)s)", ")"))
    p.add_argument("--tp", type=int, default=1, metavar="N",
                   help="tensor parallel over N GPUs (cuda); reports the all-reduce time per step and bytes per GPU")
    p.add_argument("--reps", type=int, default=5, help="full-length runs per prompt length")
    p.add_argument("--ttft-reps", type=int, default=0, help="TTFT samples per length (at least --reps)")
    p.add_argument("--warmup", type=int, default=1, help="discarded full runs per length")
    p.add_argument("--idle-ms", type=float, default=0.0, metavar="MS",
                   help="idle time before each timed run (0: back to back; the GPU's power management slows "
                        "long prefills run back to back, see the README)")
    p.add_argument("--paper", action="store_true", help="the paper's protocol: 100 TTFT repetitions per length")
    p.add_argument("--seed", type=int, default=0, help="seed of the random prompt ids")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for the JSON, Markdown and PNG outputs (the stored "
                                                      "results are benchmarks/results)")
    p.add_argument("--stem", default=None, help="output file stem (default: bench_<backend>_<date>)")
    p.add_argument("--peers", nargs="*", default=[], metavar="JSON", help="peer results to show alongside")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON", help="only merge these result files")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot (needs matplotlib otherwise)")
    return p


def parse_args(argv):
    p = _parser()
    a = p.parse_args(argv)
    a.ttft_reps = max(a.ttft_reps, 100 if a.paper else 0)
    try:
        a.prompt_lens = sorted({int(x) for x in a.prompt_lens.split(",") if x.strip()})
    except ValueError:
        p.error(f"--prompt-lens: expected comma-separated integers, got {a.prompt_lens!r}")
    a.modes = [m for m in a.modes.split(",") if m]
    for bad, what in ((not a.prompt_lens or min(a.prompt_lens) < 1, "--prompt-lens must be >= 1"),
                      (a.new_tokens < 1 or a.reps < 1 or a.warmup < 0, "--new-tokens and --reps must be >= 1"),
                      (a.max_seq_len is not None and a.max_seq_len < max(a.prompt_lens or [1]) + a.new_tokens,
                       "--max-seq-len must hold the longest prompt plus --new-tokens"),
                      (any(m not in MODES for m in a.modes), f"--modes must be among {MODES}"),
                      (a.tp < 1, "--tp must be >= 1"), (not a.idle_ms >= 0, "--idle-ms must be >= 0")):
        if bad:
            p.error(what)
    return a
