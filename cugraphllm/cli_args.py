"""The `cugraphllm` command line's flags: one-line usage errors (`_Parser`), checked value types, and the
generate / chat / serve / quantize parsers (`bench` parses its own: bench_args.py)."""
from __future__ import annotations

import argparse
import math
import sys

from . import __version__
from .config import PREFILL_ROWS_DEFAULT, PREFILL_ROWS_SIZES
from .sampling import TOP_K_MAX, penalty_ok, temperature_ok

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the default prints the whole usage first)."""

    def error(self, message):
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)

    def _get_values(self, action, arg_strings):
        # argparse drops a value that is exactly "--" (`--max-new-tokens=--` parses to []): refuse it here
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            what = getattr(action.type, "__name__", "a value")
            self.error(f"argument {'/'.join(action.option_strings)}: expected {what}, got '--'")
        return super()._get_values(action, arg_strings)


def _checked(kind, ok, what):
    """An argparse `type` that parses with `kind` and rejects values where ok(v) is false."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


def _finite(v):
    return math.isfinite(v)


NONNEG_INT = _checked(int, lambda v: v >= 0, "an integer >= 0")
POS_INT = _checked(int, lambda v: v > 0, "an integer > 0")
SEED = _checked(int, lambda v: 0 <= v < 2 ** 64, "an integer in [0, 2**64)")
TEMPERATURE = _checked(float, lambda v: _finite(v) and temperature_ok(v), "0 (greedy) or a number in [0.001, 1000]")
TOP_P = _checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
PENALTY = _checked(float, lambda v: _finite(v) and penalty_ok(v), "a number in [0.001, 1000]")
TOP_K = _checked(int, lambda v: 0 <= v <= TOP_K_MAX, f"an integer in [0, {TOP_K_MAX}]")
STOP_TEXT = _checked(str, lambda v: v != "", "a non-empty string")
PREFILL_ROWS = _checked(int, lambda v: v in PREFILL_ROWS_SIZES, f"one of {', '.join(map(str, PREFILL_ROWS_SIZES))}")
PREFILL_ROWS_HELP = ("cuda only: the largest prefill bucket, in rows; a longer prompt is prefilled in chunks of "
                     f"this many tokens (one of {', '.join(map(str, PREFILL_ROWS_SIZES))}; larger chunks run larger "
                     "GEMMs and take more scratch memory; default %(default)s)")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", metavar="PATH",
                   help="a Hugging Face model folder (config.json + *.safetensors), a llama2.c .bin file, "
                        "or dummy:<preset> for seeded random weights (llama-2-7b, llama-2-13b, llama-2-70b, tiny); "
                        "default: the packaged 260K-parameter TinyStories model")
    g.add_argument("--tokenizer", metavar="PATH",
                   help="sentencepiece tokenizer.model, or a folder holding it (or a single *.model); default: the "
                        "same search beside the model")
    g.add_argument("--backend", choices=("auto", "numpy", "cuda"), default="auto",
                   help="auto: cuda when CuPy sees a GPU, else numpy (float32 reference on the CPU)")
    g.add_argument("--mode", choices=("eager", "graph", "hybrid"), default="hybrid",
                   help="cuda only: eager launches, CUDA graphs, or graphs for the static parts with per-bucket "
                        "attention (default hybrid)")
    g.add_argument("--dtype", choices=("float16", "bfloat16"), default="float16",
                   help="cuda only: weight and KV-cache storage dtype (math is float32; numpy is always float32)")
    g.add_argument("--max-seq-len", type=POS_INT, metavar="N",
                   help="context to allocate, in tokens (default and maximum: the model's; on numpy at most what "
                        "memory holds)")
    g.add_argument("--prefill-rows", type=PREFILL_ROWS, default=PREFILL_ROWS_DEFAULT, metavar="N",
                   help=PREFILL_ROWS_HELP)
    g.add_argument("--tp", type=POS_INT, default=1, metavar="N",
                   help="cuda only: tensor parallel over N GPUs of this host (NCCL; default 1)")
    g.add_argument("-q", "--quiet", action="store_true", help="no status lines or timings on stderr")
    _add_quant_flags(p)


GROUP = _checked(int, lambda v: v == -1 or (v > 0 and v % 8 == 0), "-1 or a positive multiple of 8")


def _add_quant_flags(p: argparse.ArgumentParser, required: bool = False) -> None:
    g = p.add_argument_group("quantized weights")
    g.add_argument("--quant", choices=("fp8", "int8", "int4"), required=required,
                   help="quantize the weights at load (round to nearest; norm gains folded first): fp8 e4m3 or "
                        "int8 with a scale per row, int4 with a scale and zero per group. GPTQ / AWQ folders "
                        "load quantized without it")
    g.add_argument("--group-size", type=GROUP, default=128, metavar="G",
                   help="int4: input columns per group (default 128; -1 = one group per row)")
    g.add_argument("--quant-head", action="store_true",
                   help="quantize the LM head too (the embedding always stays 16-bit)")


def _add_sampling_flags(p: argparse.ArgumentParser, max_new: int, temperature: float, top_p: float) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--max-new-tokens", type=NONNEG_INT, default=max_new, metavar="N",
                   help=f"stop after N new tokens (default {max_new}); generation also stops at EOS, at a "
                        "--stop string and when the context is full")
    g.add_argument("--temperature", type=TEMPERATURE, default=temperature, metavar="T",
                   help=f"softmax temperature; 0 = greedy argmax (default {temperature})")
    g.add_argument("--top-k", type=TOP_K, default=0, metavar="K",
                   help="sample among the K most likely tokens only; 0 = no limit (default 0)")
    g.add_argument("--top-p", type=TOP_P, default=top_p, metavar="P",
                   help=f"nucleus sampling: the smallest set of tokens with probability >= P (default {top_p})")
    g.add_argument("--repetition-penalty", type=PENALTY, default=1.0, metavar="R",
                   help="divide the logits of tokens already seen by R (> 1 discourages repeats; default 1.0)")
    g.add_argument("--seed", type=SEED, default=0, metavar="S",
                   help="random seed; the same seed gives the same text (default 0)")
    g.add_argument("--stop", action="append", default=[], type=STOP_TEXT, metavar="TEXT",
                   help="stop when TEXT appears (not printed); repeat the flag for several stop strings")


def build_parser() -> argparse.ArgumentParser:
    top = _Parser(prog="cugraphllm", description="Low-latency LLaMA-2 inference: CUDA graphs + Numba "
                  "attention on one GPU, NumPy reference on the CPU. Commands: generate, chat, bench, serve, quantize.")
    top.add_argument("--version", action="version", version=f"cugraphllm {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="{generate,chat,bench,serve,quantize}",
                             parser_class=_Parser)
    _add_generate_parser(sub)
    _add_chat_parser(sub)
    sub.add_parser("bench", add_help=False, help="benchmarks (python -m cugraphllm bench --help)")
    _add_serve_parser(sub)
    _add_quantize_parser(sub)
    return top


def _add_generate_parser(sub) -> None:
    gen = sub.add_parser("generate", help="complete a prompt, streamed to stdout",
                         description="Complete --prompt and stream the text to stdout; tokens/s on stderr.")
    _add_model_flags(gen)
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", metavar="TEXT", help="the text to complete (BOS is prepended); - reads stdin")
    src.add_argument("--prompt-file", metavar="PATH", help="read the prompt from a UTF-8 file (one final newline "
                                                           "is dropped)")
    gen.add_argument("--no-echo", action="store_true", help="print only the completion, not the prompt first")
    _add_sampling_flags(gen, max_new=256, temperature=0.0, top_p=1.0)


def _add_chat_parser(sub) -> None:
    chat = sub.add_parser("chat", help="interactive LLaMA-2 chat (REPL)",
                          description="Chat with a LLaMA-2 chat model. Type a message and press Enter. "
                                      "/reset starts a new conversation, /help lists the commands, /exit (or end "
                                      "of input) quits. Ctrl-C stops the current reply; Ctrl-C twice at the prompt "
                                      "quits. When the conversation outgrows the context, the oldest exchanges "
                                      "are dropped (the system prompt stays). After each reply, a line on stderr "
                                      "gives the time to first token, tokens/s and the prompt tokens reused from "
                                      "the cache (-q hides it). Works with piped stdin: one message per line, "
                                      "replies on stdout; the exit code is 2 when every message failed.")
    _add_model_flags(chat)
    chat.add_argument("--system", metavar="TEXT", help="system prompt for the conversation (<<SYS>> block)")
    _add_sampling_flags(chat, max_new=512, temperature=0.6, top_p=0.9)


def _add_quantize_parser(sub) -> None:
    qz = sub.add_parser("quantize", help="write a quantized copy of a model (loads with no requantization)",
                        description="Quantize --model and write a safetensors folder in cugraphllm's packed "
                                    "layout (config.json with a cugraphllm quantization_config) to --out.")
    qz.add_argument("--model", required=True, metavar="PATH", help="a Hugging Face folder or a llama2.c .bin")
    qz.add_argument("--tokenizer", metavar="PATH", help="tokenizer.model to copy (default: the one beside it)")
    qz.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    qz.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_quant_flags(qz, required=True)


def _add_serve_parser(sub) -> None:
    from .server import SERVE_DESCRIPTION, add_server_flags
    serve = sub.add_parser("serve", help="OpenAI-compatible HTTP server (needs the [serve] extra)",
                           description=SERVE_DESCRIPTION)
    _add_model_flags(serve)
    add_server_flags(serve, _checked)
