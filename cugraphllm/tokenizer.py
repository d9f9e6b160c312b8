"""SentencePiece tokenizer (LLaMA-2 / llama2.c `tokenizer.model`) and streaming detokenization.

`Tokenizer` is a thin wrapper: sentencepiece itself does BPE with byte fallback, the dummy-prefix space, and the
decoding of byte pieces (`<0xE6>`) into UTF-8, where each byte that does not complete a valid character becomes
U+FFFD. `StreamDecoder` turns a token stream into text chunks whose concatenation equals `decode(all ids)`.

Padded vocabularies: checkpoints often round the vocabulary up past the tokenizer's pieces (32000 -> 32001, 32016,
...). `pad_to(n)` accepts ids in [pieces, n): they have no piece, so they print nothing (as BOS/EOS print nothing).
`LLM.load` pads up to MAX_PADDING ids and refuses a tokenizer with fewer pieces than that (a wrong tokenizer).
"""
from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Iterable

from .errors import TokenizerError

# Lead byte -> length of the UTF-8 sequence it starts, as sentencepiece's decoder reads it (C0..F7 are leads;
# it rejects overlong, surrogate and > U+10FFFF forms later, byte by byte, which only makes us more cautious).
_LEAD_LEN = {b: 2 for b in range(0xC0, 0xE0)} | {b: 3 for b in range(0xE0, 0xF0)} | {b: 4 for b in range(0xF0, 0xF8)}


MAX_PADDING = 1024  # model vocabulary ids beyond the tokenizer's pieces that LLM.load accepts (see above)


def find_tokenizer_in(folder: Path) -> Path | None:
    """folder/tokenizer.model, else the folder's only *.model file; None when neither exists."""
    if (folder / "tokenizer.model").is_file():
        return folder / "tokenizer.model"
    models = sorted(p for p in folder.glob("*.model") if p.is_file())
    return models[0] if len(models) == 1 else None


def _is_trail(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


class Tokenizer:
    """Encode text to ids and back. `bos_id`/`eos_id` are -1 when the model has none."""

    def __init__(self, processor, path: Path | None = None):
        self.sp = processor
        self.path = path
        self.vocab_size: int = processor.vocab_size()
        self.n_ids: int = self.vocab_size  # ids accepted by decode: the pieces, then padding (see pad_to)
        self.bos_id: int = processor.bos_id()
        self.eos_id: int = processor.eos_id()
        # byte value of each byte-fallback piece (id -> 0..255); the streaming decoder needs them
        self.byte_of: dict[int, int] = {
            i: int(processor.id_to_piece(i)[3:5], 16) for i in range(self.vocab_size) if processor.is_byte(i)}

    @functools.cached_property
    def context_piece(self) -> tuple[int, int]:
        """(id, length of its text) of the piece StreamDecoder decodes in front of a restarted window: found once
        (a generation makes a decoder before its first token: this is on every TTFT's path)."""
        i = _context_piece(self)
        return i, len(self.sp.decode([i]))

    @classmethod
    def load(cls, path) -> "Tokenizer":
        """Load a sentencepiece `tokenizer.model` (or a folder holding one, or holding a single *.model)."""
        import sentencepiece as spm

        path = Path(path).expanduser()
        if path.is_dir():
            found = find_tokenizer_in(path)
            if found is None:
                raise TokenizerError(f"tokenizer {path}: not found (no tokenizer.model in the folder, nor a single "
                                     "*.model)")
            path = found
        if not path.is_file():
            raise TokenizerError(f"tokenizer {path}: file not found")
        data = path.read_bytes()
        hint = " (a llama2.c tokenizer.bin; pass the sentencepiece tokenizer.model)" if path.suffix == ".bin" else ""
        try:
            if not data:
                raise ValueError("empty file")
            proc = spm.SentencePieceProcessor(model_proto=data)
        except Exception as err:  # sentencepiece raises RuntimeError/OSError with multi-line text
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TokenizerError(f"tokenizer {path}: not a sentencepiece model{hint}: {reason}") from None
        if proc.vocab_size() <= 0:
            raise TokenizerError(f"tokenizer {path}: the model has no pieces")
        return cls(proc, path)

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise TokenizerError(f"tokenizer: can only encode str, got {type(text).__name__}")
        try:
            ids = list(self.sp.encode(text, out_type=int))
        except RuntimeError:  # pybind11 cannot cast a str with lone surrogates (e.g. argv bytes that were not UTF-8)
            _check_utf8(text)
            raise
        if bos:
            ids.insert(0, self._special(self.bos_id, "BOS"))
        if eos:
            ids.append(self._special(self.eos_id, "EOS"))
        return ids

    def pad_to(self, n_ids: int) -> None:
        """Accept ids up to n_ids (a model vocabulary padded past the pieces); the padding ids print nothing."""
        self.n_ids = max(self.vocab_size, int(n_ids))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; BOS/EOS and padding ids print nothing, the first piece loses its dummy-prefix space."""
        ids = [self._checked(i) for i in ids]
        return self.sp.decode([i for i in ids if i < self.vocab_size])

    def _checked(self, token_id) -> int:
        token_id = int(token_id)
        if not 0 <= token_id < self.n_ids:
            raise TokenizerError(f"tokenizer: token id {token_id} is outside the vocabulary [0, {self.n_ids})")
        return token_id

    def is_control(self, token_id: int) -> bool:
        return bool(self.sp.is_control(token_id))

    def _special(self, token_id: int, name: str) -> int:
        if token_id < 0:
            raise TokenizerError(f"tokenizer {self.path}: the model defines no {name} token")
        return token_id

    def __repr__(self) -> str:
        return f"Tokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


class StreamDecoder:
    """Incremental detokenizer: `"".join(push(t) for t in ids) + flush() == tokenizer.decode(ids)`.

    It decodes a short window of recent ids and prints the part of its text that can no longer change. Text can
    change only at the end: a trailing U+FFFD may be the first bytes of a character still arriving, so trailing
    U+FFFD are held back. Once a prefix of the window is printed and ends at a safe boundary (not inside a UTF-8
    sequence of byte pieces), the window restarts there. A restarted window is decoded behind a fixed context
    piece, so its first piece keeps its leading space: sentencepiece strips the dummy-prefix space only at the
    start of the text (LLaMA-2: from the first piece; tok512, with remove_extra_whitespaces: every leading space
    piece), so the window restarts only once some text is out.
    Cost per token: one decode of at most `max_window` ids.
    """

    def __init__(self, tokenizer: Tokenizer, max_window: int = 8):
        self.tok = tokenizer
        self.max_window = max(2, max_window)
        self._ctx, self._ctx_len = tokenizer.context_piece
        self.reset()

    def reset(self) -> None:
        self._window: list[int] = []   # ids not yet behind the anchor
        self._printed = 0              # chars of the window's text already returned
        self._anchored = False         # True once the window starts after printed text (behind _ctx)

    def push(self, token_id: int) -> str:
        token_id = self.tok._checked(token_id)
        if token_id >= self.tok.vocab_size:
            return ""  # padding id: no piece, no text (as decode skips it)
        self._window.append(token_id)
        text = self._text(self._window)
        # at most 3 trailing U+FFFD (the bytes of an unfinished character) can still change
        stable = len(text) - min(3, len(text) - len(text.rstrip("\ufffd")))
        out = text[self._printed:stable]
        self._printed = max(self._printed, stable)
        if len(self._window) >= self.max_window:
            self._advance()
        return out

    def prime(self, ids) -> None:
        """Start after `ids` (a prompt) as if their text were already printed, so that the pushed text is
        decode(ids + new) minus decode(ids): the first new word keeps its space. A character left unfinished by
        the prompt's last byte pieces prints whole once the new ids complete it."""
        ids = [int(i) for i in ids]
        cut = low = max(0, len(ids) - (self.max_window - 1))
        byte_of = self.tok.byte_of
        # never cut a UTF-8 sequence of byte pieces: its bytes decode apart as U+FFFD (at most 3 continuation bytes)
        while cut > max(0, low - 3) and ids[cut] in byte_of and _is_trail(byte_of[ids[cut]]) and ids[cut - 1] in byte_of:
            cut -= 1
        head, tail = ids[:cut], ids[cut:]
        self.reset()
        # behind the anchor when text precedes the tail (the start-of-text space rules no longer apply); the last
        # 64 ids almost always answer that, the whole head only when they print nothing
        self._anchored = bool(head) and bool(self.tok.sp.decode(head[-64:]) or self.tok.sp.decode(head))
        self._window = tail
        text = self._text(tail)
        self._printed = len(text) - min(3, len(text) - len(text.rstrip("\ufffd")))

    def flush(self) -> str:
        """Whatever is still held back (trailing U+FFFD of an unfinished character); the next push starts a new text."""
        out = self._text(self._window)[self._printed:]
        self.reset()
        return out

    def _text(self, ids: list[int], behind_ctx: bool | None = None) -> str:
        """Text of `ids` at the start of the stream, or (anchored) as they print after earlier text."""
        if not (self._anchored if behind_ctx is None else behind_ctx):
            return self.tok.sp.decode(ids)
        return self.tok.sp.decode([self._ctx] + ids)[self._ctx_len:]

    def _advance(self) -> None:
        """Move the anchor to the latest safe boundary whose text is all printed."""
        w = self._window
        if not self._anchored:  # leading BOS/EOS print nothing and do not count as the first piece: drop them
            while w and self.tok.is_control(w[0]):
                w.pop(0)
        full = self._text(w)
        for b in range(len(w), 0, -1):
            if not self._safe_boundary(b):
                continue
            head = self._text(w[:b])
            if len(head) > self._printed:
                continue
            if not self._anchored and not head:
                return  # nothing printed yet: the start-of-text space rules may still apply to w[b:]
            if head + self._text(w[b:], behind_ctx=True) != full:  # a decoder rule we do not model
                continue
            self._window, self._anchored = w[b:], True
            self._printed -= len(head)
            return

    def _safe_boundary(self, b: int) -> bool:
        """True unless a UTF-8 sequence of byte pieces may span w[b-1] | w[b] (then splitting would change text)."""
        w, byte_of = self._window, self.tok.byte_of
        before = []  # the byte run ending at w[b-1]: its last 3 bytes at most
        for t in reversed(w[max(0, b - 3):b]):
            if t not in byte_of:
                break  # any other piece, control ones included, ends a run
            before.insert(0, byte_of[t])
        for j, lead in enumerate(before):
            missing = _LEAD_LEN.get(lead, 1) - (len(before) - j)
            if missing > 0 and all(_is_trail(x) for x in before[j + 1:]) and not self._breaks(w[b:b + missing]):
                return False
        return True

    def _breaks(self, following: list[int]) -> bool:
        """True when these `missing` ids after a boundary surely do not complete a sequence begun before it."""
        for t in following:
            byte = self.tok.byte_of.get(t)
            if byte is None or not _is_trail(byte):
                return True  # the run ends, or a non-continuation byte: the lead is an error either way
        return False  # all continuation bytes so far (or none known yet): the sequence may be completed


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise TokenizerError(f"tokenizer: the text is not valid Unicode: U+{ord(text[e.start]):04X} at index "
                             f"{e.start} is a lone surrogate (input bytes that were not UTF-8?)") from None


def _context_piece(tokenizer: Tokenizer) -> int:
    """A normal piece with visible text (a letter if there is one), decoded in front of a restarted window so that
    the window's first piece prints as it does after earlier text."""
    sp = tokenizer.sp
    letters = [sp.piece_to_id(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    for i in itertools.chain(letters, range(tokenizer.vocab_size - 1, -1, -1)):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i):
            continue
        text = sp.decode([i])
        if text.strip() and "\ufffd" not in text:
            return i
    raise TokenizerError(f"tokenizer {tokenizer.path}: no printable piece in the vocabulary")
