"""`python -m cugraphllm generate|chat|bench`: the command line.

Text goes to stdout (flushed per chunk); status, prompts and timings go to stderr, so stdout can be piped.
Every user error (CugraphError, bad flag) is one line "error: ..." on stderr and exit code 2, no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import sys
import time

from . import __version__
from .errors import ConfigError, CugraphError
from .sampling import TOP_K_MAX, penalty_ok, temperature_ok

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the default prints the whole usage first)."""

    def error(self, message):
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


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
    gen = sub.add_parser("generate", help="complete a prompt, streamed to stdout",
                         description="Complete --prompt and stream the text to stdout; tokens/s on stderr.")
    _add_model_flags(gen)
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", metavar="TEXT", help="the text to complete (BOS is prepended); - reads stdin")
    src.add_argument("--prompt-file", metavar="PATH", help="read the prompt from a UTF-8 file (one final newline "
                                                           "is dropped)")
    gen.add_argument("--no-echo", action="store_true", help="print only the completion, not the prompt first")
    _add_sampling_flags(gen, max_new=256, temperature=0.0, top_p=1.0)
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
    sub.add_parser("bench", add_help=False, help="benchmarks (python -m cugraphllm bench --help)")
    _add_serve_parser(sub)
    qz = sub.add_parser("quantize", help="write a quantized copy of a model (loads with no requantization)",
                        description="Quantize --model and write a safetensors folder in cugraphllm's packed "
                                    "layout (config.json with a cugraphllm quantization_config) to --out.")
    qz.add_argument("--model", required=True, metavar="PATH", help="a Hugging Face folder or a llama2.c .bin")
    qz.add_argument("--tokenizer", metavar="PATH", help="tokenizer.model to copy (default: the one beside it)")
    qz.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    qz.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_quant_flags(qz, required=True)
    return top


def _add_serve_parser(sub) -> None:
    from .server import SERVE_DESCRIPTION, add_server_flags
    serve = sub.add_parser("serve", help="OpenAI-compatible HTTP server (needs the [serve] extra)",
                           description=SERVE_DESCRIPTION)
    _add_model_flags(serve)
    add_server_flags(serve, _checked)


# ---- helpers --------------------------------------------------------------------------------------------------
def _status(args, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _load(args):
    from .api import LLM
    from .models import default_model
    t0 = time.perf_counter()  # no "loading" line first: a bad path must give exactly one line on stderr
    model = default_model(args.model, lambda text: _status(args, text))
    llm = LLM.load(model, tokenizer=args.tokenizer, backend=args.backend, mode=args.mode, dtype=args.dtype,
                   max_seq_len=args.max_seq_len, seed=args.seed, progress=not args.quiet, quant=args.quant,
                   group_size=args.group_size, quant_head=args.quant_head, tp=args.tp)
    c = llm.config
    _status(args, f"loaded in {time.perf_counter() - t0:.2f} s: dim {c.dim}, {c.n_layers} layers, "
                  f"{c.n_heads}/{c.n_kv_heads} heads, vocab {c.vocab_size}; backend {llm.runtime.backend}, "
                  f"context {llm.engine.max_seq_len}")
    for note in llm.notes:  # what load adjusted: --max-seq-len clamped, the context bounded by memory
        _status(args, "note: " + note.replace("max_seq_len ", "--max-seq-len ", 1))
    return llm


def _prompt_text(args) -> str:
    """--prompt TEXT, --prompt - (stdin) or --prompt-file PATH; a file or stdin loses one final newline."""
    if args.prompt is not None and args.prompt != "-":
        return args.prompt
    if args.prompt_file is None:
        data, where = sys.stdin.buffer.read(), "stdin"
    else:
        where = args.prompt_file
        try:
            with open(os.path.expanduser(where), "rb") as f:
                data = f.read()
        except OSError as err:
            raise ConfigError(f"--prompt-file {where}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"prompt from {where}: not UTF-8 text (byte {err.start})") from None
    return text[:-1].removesuffix("\r") if text.endswith("\n") else text


def _sampling(args) -> dict:
    return dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed, stop=args.stop)


def _write_stream(chunks) -> None:
    """Print chunks as they come; close the iterator whatever happens (keeps the engine consistent)."""
    try:
        for chunk in chunks:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    finally:
        chunks.close()


def _report(args, stats, chat: bool = False) -> None:
    if stats is None:
        return
    if stats.finish_reason == "context":
        more = "; the next message drops the oldest exchanges" if chat else ""
        sys.stderr.write(f"[{stats.message}{more}]\n")
    cached = f" ({stats.cached_tokens} reused from the cache)" if chat else ""
    _status(args, f"[{stats.prompt_tokens} prompt{cached} + {stats.new_tokens} new tokens in {stats.total_s:.2f} s; "
                  f"first token {stats.first_token_s * 1e3:.0f} ms; decode {stats.decode_tokens_per_s:.1f} "
                  f"tokens/s; finish: {stats.finish_reason}]")


# ---- commands -------------------------------------------------------------------------------------------------
def cmd_generate(args) -> int:
    prompt = _prompt_text(args)  # before loading: a bad file is one line at once
    llm = _load(args)
    chunks = llm.generate(prompt, stream=True, **_sampling(args))
    if not args.no_echo:
        sys.stdout.write(prompt)
    try:
        _write_stream(chunks)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        _report(args, llm.last)
        return EXIT_INTERRUPTED
    sys.stdout.write("\n")
    sys.stdout.flush()
    _report(args, llm.last)
    return 0


def cmd_chat(args) -> int:
    llm = _load(args)
    session = llm.chat(system=args.system)
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (arrow keys and history for input())
        except ImportError:
            pass
    if not any(w in llm.name.lower() for w in ("chat", "instruct")):
        _status(args, f"note: {os.path.basename(llm.name.rstrip('/')) or llm.name} does not look like a chat model "
                      "(no 'chat' in its name): it may continue the text rather than answer")
    _status(args, "chat: /help lists commands, /reset starts over, /exit quits"
            + (", Ctrl-C stops a reply" if interactive else ""))
    from .repl import chat_loop
    return chat_loop(args, session, interactive)


def cmd_serve(args) -> int:
    from .server import check_installed, serve
    check_installed()  # before loading a model
    return serve(_load(args), args, lambda text: _status(args, text))


def cmd_quantize(args) -> int:
    from .quant.saved import quantize_model
    quantize_model(args.model, args.out, args.quant, args.group_size, args.quant_head, args.tokenizer,
                   progress=not args.quiet)
    return 0


def cmd_bench(argv: list[str]) -> int:
    if importlib.util.find_spec("cugraphllm.bench") is None:
        sys.stderr.write("error: bench: the benchmark module cugraphllm.bench is not part of this build\n")
        return EXIT_USAGE
    return int(importlib.import_module("cugraphllm.bench").main(argv) or 0)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    if hasattr(sys.stdin, "reconfigure"):  # a UTF-8 locale reads stdin strictly: bad bytes would be a traceback
        sys.stdin.reconfigure(errors="replace")
    try:
        if argv[:1] == ["bench"]:
            return cmd_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return {"generate": cmd_generate, "chat": cmd_chat, "serve": cmd_serve,
                "quantize": cmd_quantize}[args.command](args)
    except CugraphError as err:
        sys.stderr.write(f"error: {_one_line(err)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (| head): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
