"""The library API: load a model, generate text, chat.

    from cugraphllm import LLM
    llm = LLM.load("weights/llama-2-7b-chat-hf")              # backend="auto": cuda if CuPy sees a GPU
    print(llm.generate("The capital of France is", max_new_tokens=20))
    for chunk in llm.generate("Once upon a time", stream=True):
        print(chunk, end="", flush=True)
    chat = llm.chat(system="Answer briefly.")
    for chunk in chat.send("What is a CUDA graph?"):
        print(chunk, end="", flush=True)

Generation stops at EOS, at a stop string (not printed), after max_new_tokens, or when the context is full.
`llm.last` (a GenerationStats) says which, with token counts and timings, once the text has been consumed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

from .api_load import load_source as _load_source, tokenizer_for as _tokenizer_for
from .config import PREFILL_ROWS_DEFAULT, ModelConfig, RuntimeConfig
from .engines import _make_engine, _plan_context, resolve_backend  # noqa: F401 - also api's public names
from .errors import ConfigError, ContextLimitError, TokenizerError

FINISH_MESSAGES = {
    "eos": "end of sequence",
    "stop": "stop string",
    "length": "max_new_tokens reached",
    "context": "stopped: the context limit of {context} tokens is full",
    "interrupted": "interrupted",
}


@dataclass
class GenerationStats:
    """What one generate/send did. Times are seconds from the call; decode rate excludes the first token."""
    prompt_tokens: int
    context: int
    ids: list = field(default_factory=list)   # every token the engine yielded (an EOS included)
    text: str = ""                            # the text handed to the caller
    finish_reason: str = ""                   # eos | stop | length | context | interrupted
    first_token_s: float = 0.0
    total_s: float = 0.0
    cached_tokens: int = 0                    # prompt tokens whose KV was already in the cache (not prefilled)
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def new_tokens(self) -> int:
        return len(self.ids)

    @property
    def decode_tokens_per_s(self) -> float:
        span = self.total_s - self.first_token_s
        return (self.new_tokens - 1) / span if self.new_tokens > 1 and span > 0 else 0.0

    @property
    def message(self) -> str:
        return FINISH_MESSAGES.get(self.finish_reason, self.finish_reason).format(context=self.context)


def _stderr_line(text: str) -> None:
    import sys
    print(text, file=sys.stderr, flush=True)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _end_reason(ids: list, end_ids, max_new_tokens: int) -> str:
    """Why the token stream ended, no stop string having matched."""
    if ids and ids[-1] in end_ids:
        return "eos"
    return "length" if len(ids) >= max_new_tokens else "context"


def _finish(tokens, stats: GenerationStats, reason: str, on_done) -> None:
    """The end of a text, however it ended: the engine's iterator closed, the stats completed, on_done told."""
    close = getattr(tokens, "close", None)  # an engine may return any iterator
    if close is not None:
        close()
    stats.finish_reason = reason
    stats.total_s = time.perf_counter() - stats._t0
    if on_done is not None:
        on_done(stats)


def _check_max_new(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, got {n!r}")
    return n


class LLM:
    """A model, its tokenizer and an engine (NumPy or CUDA) with its KV cache."""

    def __init__(self, engine, tokenizer, runtime: RuntimeConfig, name: str = "", end_ids=None, notes=()):
        self.engine = engine
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.name = name
        self.config: ModelConfig = engine.config
        self.last: GenerationStats | None = None
        # ids that end a text: EOS; llama2.c models also stop at BOS, which separates their stories (as run.c)
        self.end_ids = frozenset({tokenizer.eos_id} if end_ids is None else end_ids)
        self.notes: list[str] = list(notes)  # what load adjusted (context clamped, ...); the CLI prints them

    @classmethod
    def load(cls, model, tokenizer=None, backend: str = "auto", mode: str = "hybrid", dtype: str = "float16",
             max_seq_len: int | None = None, seed: int = 0, progress: bool = True, quant: str | None = None,
             group_size: int = 128, quant_head: bool = False, tp: int = 1,
             prefill_rows: int = PREFILL_ROWS_DEFAULT) -> "LLM":
        """model: a Hugging Face folder, a llama2.c .bin, or "dummy:<preset>" (seeded random weights).
        tokenizer: a sentencepiece tokenizer.model (or its folder); default: the one beside the model. It may have
        up to tokenizer.MAX_PADDING fewer pieces than the model's vocabulary (padding ids print nothing).
        quant: fp8 | int8 | int4 quantizes the weights at load (group_size: int4 columns per group, -1 = per row;
        quant_head: the LM head too); on cuda on the GPU at upload, on numpy on the host layer by layer.
        GPTQ / AWQ / our quantized folders load quantized without it. prefill_rows (cuda): the largest prefill
        bucket, the chunk a longer prompt is prefilled in (RuntimeConfig.prefill_rows; default 512).
        `llm.notes` says what was adjusted: a max_seq_len above the model's, a numpy context bounded by memory."""
        from .loader import checkpoint_config, parse_model_arg

        runtime = RuntimeConfig(backend=backend, dtype=dtype, mode=mode, max_seq_len=max_seq_len, seed=seed,
                                quant=quant, group_size=group_size, quant_head=quant_head, tp=tp,
                                prefill_rows=prefill_rows)
        runtime = replace(runtime, backend=resolve_backend(backend))
        kind, arg = parse_model_arg(model)
        runtime, notes = _plan_context(checkpoint_config(model), runtime)  # before any weight is read
        source, tok_path = _load_source(kind, arg, tokenizer, runtime, progress)
        if tok_path is None:
            raise TokenizerError(f"{model}: no tokenizer found beside the model; pass tokenizer= "
                                 "(CLI: --tokenizer PATH to a sentencepiece tokenizer.model)")
        config = source if kind == "dummy" else source.config
        tok = _tokenizer_for(tok_path, config.vocab_size)
        end_ids = None
        if kind != "dummy" and source.source == "llama2c" and tok.bos_id >= 0:
            end_ids = {tok.eos_id, tok.bos_id}
        big = kind != "dummy" and progress and source.weights.nbytes() > (1 << 30)
        return cls(_make_engine(source, runtime, _stderr_line if big else None), tok, runtime, name=str(model),
                   end_ids=end_ids, notes=notes)

    def params(self, temperature=0.0, top_k=0, top_p=1.0, repetition_penalty=1.0, seed=None):
        from .sampling import SamplingParams
        return SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p,
                              repetition_penalty=repetition_penalty, seed=self.runtime.seed if seed is None else seed)

    def generate(self, prompt: str, max_new_tokens: int = 256, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int | None = None,
                 stop: Sequence[str] | str = (), stream: bool = False) -> str | Iterator[str]:
        """Complete `prompt` (BOS prepended). stream=True returns an iterator of text chunks.
        temperature 0 is greedy; seed None uses the load-time seed (same seed, same text).
        Raises ContextLimitError at once if the prompt does not fit the context."""
        params = self.params(temperature, top_k, top_p, repetition_penalty, seed)
        ids = self.tokenizer.encode(prompt, bos=True)
        self.engine.reset()  # a fresh cache: the text depends on the prompt and the seed only
        chunks = self._run(ids, params, max_new_tokens, stop)
        return chunks if stream else "".join(chunks)

    def chat(self, system: str | None = None) -> "ChatSession":
        return ChatSession(self, system)

    def _run(self, ids: list[int], params, max_new_tokens: int, stop, on_done=None, on_token=None) -> Iterator[str]:
        """Reuse the cached prefix of `ids`, start the engine (errors raise here), return the text iterator.
        on_token(id) is called as each token arrives; a true result ends the text there (finish: interrupted)."""
        from .sampling import StopChecker

        _check_max_new(max_new_tokens)
        stopper = StopChecker(() if stop is None else stop)
        if len(ids) > self.engine.max_seq_len:  # checked here too: an engine may raise only when iterated
            raise ContextLimitError(f"prompt of {len(ids)} tokens does not fit the context of "
                                    f"{self.engine.max_seq_len}")
        keep = min(_common_prefix(self.engine.tokens, ids), len(ids) - 1)  # prefill at least one token
        self.engine.truncate(keep)
        stats = GenerationStats(prompt_tokens=len(ids), context=self.engine.max_seq_len, cached_tokens=keep)
        tokens = self.engine.generate(ids[keep:], params, max_new_tokens)
        self.last = stats
        return self._texts(ids, tokens, stats, max_new_tokens, stopper, on_done, on_token)

    def _texts(self, ids, tokens, stats: GenerationStats, max_new_tokens: int, stopper, on_done,
               on_token=None) -> Iterator[str]:
        from .tokenizer import StreamDecoder

        decoder = StreamDecoder(self.tokenizer)
        decoder.prime(ids)  # the text is decode(ids + new) - decode(ids): the first word keeps its space
        reason, hit = "interrupted", False
        try:
            for token in tokens:
                if not stats.ids:
                    stats.first_token_s = time.perf_counter() - stats._t0
                stats.ids.append(token)
                if on_token is not None and on_token(token):
                    return  # the consumer is gone (a server's client): no more tokens
                if token in self.end_ids:
                    break
                text, hit = stopper.push(decoder.push(token))
                if text:
                    stats.text += text
                    yield text
                if hit or len(stats.ids) >= max_new_tokens:  # never ask the engine for a token past the budget
                    break
            reason = "stop" if hit else _end_reason(stats.ids, self.end_ids, max_new_tokens)
            if not hit:  # the decoder and the stopper may still hold the end of the text
                text, hit = stopper.push(decoder.flush())
                text += "" if hit else stopper.flush()
                reason = "stop" if hit else reason
                if text:
                    stats.text += text
                    yield text
        finally:
            _finish(tokens, stats, reason, on_done)

    def __repr__(self) -> str:
        return f"LLM({self.name!r}, backend={self.runtime.backend!r}, context={self.engine.max_seq_len})"


class ChatSession:
    """A LLaMA-2 chat: each send() formats the whole dialog, keeps the part already in the KV cache and prefills
    only the rest. An interrupted reply is kept as far as it was shown. When the dialog outgrows the context, the
    oldest exchanges are dropped (the system prompt stays), as chat front ends do; `dropped` counts them."""

    def __init__(self, llm: LLM, system: str | None = None):
        self.llm = llm
        self.system = system
        self.messages: list[dict] = []   # alternating user / assistant, system excluded
        self.dropped = 0                 # exchanges the last send() dropped to fit the context

    def reset(self) -> None:
        self.messages = []
        self.llm.engine.reset()

    def dialog(self, text: str, history: list[dict] | None = None) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + (self.messages if history is None else history) + [{"role": "user", "content": text}]

    def fit(self, text: str, max_new_tokens: int) -> tuple[list[int], int]:
        """(prompt ids, exchanges dropped): the oldest exchanges are left out while the prompt leaves less room
        than a reply of min(max_new_tokens, context / 4) tokens. A prompt too long even without history is
        returned whole (send refuses it with ContextLimitError)."""
        from .chat import dialog_tokens
        context = self.llm.engine.max_seq_len
        room = min(max_new_tokens, context // 4)
        drop = 0
        while True:
            ids = dialog_tokens(self.llm.tokenizer, self.dialog(text, self.messages[2 * drop:]))
            if len(ids) + room <= context or 2 * drop >= len(self.messages):
                return ids, drop
            drop += 1

    def send(self, text: str, stream: bool = True, max_new_tokens: int = 512, stop: Sequence[str] | str = (),
             **sampling) -> Iterator[str] | str:
        """Reply to `text`; sampling: temperature, top_k, top_p, repetition_penalty, seed."""
        ids, drop = self.fit(text, _check_max_new(max_new_tokens))
        engine = self.llm.engine

        def done(stats: GenerationStats) -> None:
            # keep only cache rows that match what was committed: the prompt and every yielded token but the
            # last (the protocol), whatever state an interrupt left the engine in
            committed = ids + stats.ids[:-1]
            engine.truncate(_common_prefix(engine.tokens, committed))
            if stats.text or stats.finish_reason != "interrupted":
                self.messages = self.messages[2 * drop:] + [{"role": "user", "content": text},
                                                            {"role": "assistant", "content": stats.text}]

        self.dropped = 0
        chunks = self.llm._run(ids, self.llm.params(**sampling), max_new_tokens, stop, on_done=done)
        self.dropped = drop  # once the prompt is accepted
        return chunks if stream else "".join(chunks)
