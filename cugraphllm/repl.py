"""The chat REPL of `python -m cugraphllm chat`: read a line, run a turn, report; commands /help /reset /exit.

Replies go to stdout, everything else to stderr. A message too long for the context even without history is an
error line and the REPL goes on; the exit code is EXIT_USAGE when every message sent failed.
"""
from __future__ import annotations

import sys

from .cli import EXIT_USAGE, _one_line, _report, _sampling, _status, _write_stream
from .errors import ContextLimitError, CugraphError


def read_line(interactive: bool) -> str | None:
    """One line of input, prompt on stderr; None at end of input. Raises KeyboardInterrupt on Ctrl-C."""
    if not interactive:
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\r\n")
    sys.stderr.write("\n>>> ")  # on stderr, so stdout holds replies only
    sys.stderr.flush()
    try:
        return input()  # line editing through readline when it is available
    except EOFError:
        return None


CHAT_HELP = ("commands: /help this list; /reset start a new conversation (the system prompt stays); /exit or "
             "/quit (or end of input) quit. Ctrl-C stops a reply; twice at the prompt quits. Old exchanges are "
             "dropped when the context is full.")


def chat_turn(args, session, text: str) -> None:
    chunks = session.send(text, stream=True, **_sampling(args))
    if session.dropped:  # before the reply: the model no longer sees those exchanges
        sys.stderr.write(f"[context full: dropped the oldest {session.dropped} exchange"
                         f"{'s' if session.dropped > 1 else ''}; the system prompt is kept]\n")
    try:
        _write_stream(chunks)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stdout.flush()
        _status(args, "[reply interrupted]")
        return
    sys.stdout.write("\n")
    sys.stdout.flush()
    _report(args, session.llm.last, chat=True)


def too_long(session, err: ContextLimitError) -> str:
    """The error of a message that does not fit even without history (history is dropped as needed)."""
    llm, what = session.llm, "the message" + (" or the system prompt" if session.system else "")
    more = (f", or pass a larger --max-seq-len (the model allows {llm.config.max_seq_len})"
            if llm.engine.max_seq_len < llm.config.max_seq_len else "")
    return f"error: {_one_line(err)}; shorten {what}{more}"


def chat_loop(args, session, interactive: bool) -> int:
    """The REPL; exit code 0, or EXIT_USAGE when every message sent failed."""
    armed = False  # a first Ctrl-C at the prompt arms, the second exits
    sent = failed = 0
    while True:
        try:
            line = read_line(interactive)
        except KeyboardInterrupt:
            if armed:
                sys.stderr.write("\n")
                return 0
            armed = True
            sys.stderr.write("\n(Ctrl-C again or /exit to quit)")
            continue
        armed = False
        command = line.strip() if line is not None else "/exit"
        if command in ("/exit", "/quit"):
            return EXIT_USAGE if sent and failed == sent else 0
        if command == "/reset":
            session.reset()
            _status(args, "[conversation reset]")
        elif command in ("/help", "/?"):
            sys.stderr.write(CHAT_HELP + "\n")
        elif command:
            sent += 1
            try:
                chat_turn(args, session, line)
            except ContextLimitError as err:  # too long even alone: history is dropped as needed
                failed += 1
                sys.stderr.write(too_long(session, err) + "\n")
            except CugraphError as err:
                failed += 1
                sys.stderr.write(f"error: {_one_line(err)}\n")
