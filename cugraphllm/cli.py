"""`python -m cugraphllm generate|chat|bench`: the command line.

Text goes to stdout (flushed per chunk); status, prompts and timings go to stderr, so stdout can be piped.
Every user error (CugraphError, bad flag) is one line "error: ..." on stderr and exit code 2, no traceback.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time

from .cli_args import EXIT_USAGE, _checked, _Parser, build_parser  # noqa: F401 - the CLI's public names
from .errors import ConfigError, CugraphError

EXIT_INTERRUPTED = 130


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
                   group_size=args.group_size, quant_head=args.quant_head, tp=args.tp,
                   prefill_rows=args.prefill_rows)
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
