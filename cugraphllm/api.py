"""The library API: load a model, generate text, chat.

    from cugraphllm import LLM
    llm = LLM.load("weights/llama-2-7b-chat")                 # backend="auto": cuda if CuPy sees a GPU
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

from .config import ModelConfig, RuntimeConfig
from .errors import BackendError, ConfigError, ContextLimitError, TokenizerError

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


def resolve_backend(backend: str) -> str:
    """auto -> cuda when CuPy imports and sees a GPU, else numpy; cuda without a GPU is a one-line error."""
    if backend not in ("auto", "numpy", "cuda"):
        raise ConfigError(f"backend must be auto, numpy or cuda, got {backend!r}")
    if backend == "numpy":
        return backend
    try:
        import cupy
        gpu = bool(cupy.cuda.is_available())
    except Exception:
        gpu = False
    if backend == "cuda" and not gpu:
        raise BackendError('backend cuda: no CUDA GPU visible to CuPy (install with pip install ".[cuda]", '
                           "or use --backend numpy)")
    return "cuda" if gpu else "numpy"


def _make_engine(source, runtime: RuntimeConfig, progress=None):
    """An Engine for a loaded Checkpoint, or for a ModelConfig meaning seeded dummy weights of that shape.
    progress: None or a callable taking one status line (the GPU upload's per-layer lines)."""
    dummy = isinstance(source, ModelConfig)
    config = source if dummy else source.config
    if runtime.tp > 1:
        return _make_tp_engine(source, config, runtime, progress)
    if runtime.backend == "numpy":
        from .reference import NumpyEngine
        if dummy:
            from .loader import dummy_checkpoint
            source = dummy_checkpoint(config, seed=runtime.seed, dtype="float32")
        return NumpyEngine(config, source.weights, runtime.max_seq_len)
    try:
        from .gpu.engine import CudaEngine
    except ImportError as err:
        raise BackendError(f"backend cuda: cannot import the GPU engine ({err})") from None
    if dummy:
        return CudaEngine.dummy(config, runtime, runtime.seed)
    return CudaEngine(config, source.weights, runtime, progress=progress)


def _make_tp_engine(source, config, runtime: RuntimeConfig, progress=None):
    """--tp N (N > 1): the cuda backend over N GPUs (gpu/tp_engine.py); each GPU reads only its slices."""
    if runtime.backend != "cuda":
        raise BackendError(f"--tp {runtime.tp} needs the cuda backend (backend is {runtime.backend})")
    try:
        from .gpu.tp_engine import TPEngine
    except ImportError as err:
        raise BackendError(f"backend cuda: cannot import the GPU engine ({err})") from None
    return TPEngine(config, None if source is config else source.weights, runtime, progress=progress)


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


def _end_reason(ids: list, eos_id: int, max_new_tokens: int) -> str:
    """Why the token stream ended, no stop string having matched."""
    if ids and ids[-1] == eos_id:
        return "eos"
    return "length" if len(ids) >= max_new_tokens else "context"


def _check_max_new(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, got {n!r}")
    return n


class LLM:
    """A model, its tokenizer and an engine (NumPy or CUDA) with its KV cache."""

    def __init__(self, engine, tokenizer, runtime: RuntimeConfig, name: str = ""):
        self.engine = engine
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.name = name
        self.config: ModelConfig = engine.config
        self.last: GenerationStats | None = None

    @classmethod
    def load(cls, model, tokenizer=None, backend: str = "auto", mode: str = "hybrid", dtype: str = "float16",
             max_seq_len: int | None = None, seed: int = 0, progress: bool = True, tp: int = 1) -> "LLM":
        """model: a Hugging Face folder, a llama2.c .bin, or "dummy:<preset>" (seeded random weights).
        tokenizer: a sentencepiece tokenizer.model; default: the one beside the model.
        tp: tensor parallel over this many GPUs (cuda backend; each GPU reads only its slices of the weights)."""
        from .loader import load_checkpoint, parse_model_arg
        from .tokenizer import Tokenizer

        runtime = RuntimeConfig(backend=backend, dtype=dtype, mode=mode, max_seq_len=max_seq_len, seed=seed, tp=tp)
        runtime = replace(runtime, backend=resolve_backend(backend))
        kind, arg = parse_model_arg(model)
        if kind == "dummy":
            source, tok_path = ModelConfig.from_preset(arg), tokenizer
        else:
            # numpy computes in float32; cuda float16 takes float16 host copies; bfloat16 converts from float32
            # (a float16 detour would flush bf16 values below fp16's normal range)
            storage = "float16" if runtime.backend == "cuda" and runtime.dtype == "float16" else "float32"
            # cuda: matrices stream from the memory map straight into the upload (host RAM bounded by a chunk)
            source = load_checkpoint(arg, tokenizer=tokenizer, dtype=storage, progress=None if progress else False,
                                     lazy=runtime.backend == "cuda")
            tok_path = source.tokenizer_path
        if tok_path is None:
            raise TokenizerError(f"{model}: no tokenizer found beside the model; pass tokenizer= "
                                 "(CLI: --tokenizer PATH to a sentencepiece tokenizer.model)")
        tok = Tokenizer.load(tok_path)
        config = source if kind == "dummy" else source.config
        if tok.vocab_size > config.vocab_size:
            raise TokenizerError(f"tokenizer {tok_path}: {tok.vocab_size} pieces, more than the model's "
                                 f"vocabulary of {config.vocab_size}")
        big = kind != "dummy" and progress and source.weights.nbytes() > (1 << 30)
        return cls(_make_engine(source, runtime, _stderr_line if big else None), tok, runtime, name=str(model))

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

    def _run(self, ids: list[int], params, max_new_tokens: int, stop, on_done=None) -> Iterator[str]:
        """Reuse the cached prefix of `ids`, start the engine (errors raise here), return the text iterator."""
        from .sampling import StopChecker

        _check_max_new(max_new_tokens)
        stopper = StopChecker(stop)
        if len(ids) > self.engine.max_seq_len:  # checked here too: an engine may raise only when iterated
            raise ContextLimitError(f"prompt of {len(ids)} tokens does not fit the context of "
                                    f"{self.engine.max_seq_len}")
        keep = min(_common_prefix(self.engine.tokens, ids), len(ids) - 1)  # prefill at least one token
        self.engine.truncate(keep)
        stats = GenerationStats(prompt_tokens=len(ids), context=self.engine.max_seq_len)
        tokens = self.engine.generate(ids[keep:], params, max_new_tokens)
        self.last = stats
        return self._texts(tokens, stats, max_new_tokens, stopper, on_done)

    def _texts(self, tokens, stats: GenerationStats, max_new_tokens: int, stopper, on_done) -> Iterator[str]:
        from .tokenizer import StreamDecoder

        decoder = StreamDecoder(self.tokenizer)
        reason, hit = "interrupted", False
        try:
            for token in tokens:
                if not stats.ids:
                    stats.first_token_s = time.perf_counter() - stats._t0
                stats.ids.append(token)
                if token == self.tokenizer.eos_id:
                    break
                text, hit = stopper.push(decoder.push(token))
                if text:
                    stats.text += text
                    yield text
                if hit or len(stats.ids) >= max_new_tokens:  # never ask the engine for a token past the budget
                    break
            reason = "stop" if hit else _end_reason(stats.ids, self.tokenizer.eos_id, max_new_tokens)
            if not hit:  # the decoder and the stopper may still hold the end of the text
                text, hit = stopper.push(decoder.flush())
                text += "" if hit else stopper.flush()
                reason = "stop" if hit else reason
                if text:
                    stats.text += text
                    yield text
        finally:
            close = getattr(tokens, "close", None)  # an engine may return any iterator
            if close is not None:
                close()
            stats.finish_reason = reason
            stats.total_s = time.perf_counter() - stats._t0
            if on_done is not None:
                on_done(stats)

    def __repr__(self) -> str:
        return f"LLM({self.name!r}, backend={self.runtime.backend!r}, context={self.engine.max_seq_len})"


class ChatSession:
    """A LLaMA-2 chat: each send() formats the whole dialog, keeps the part already in the KV cache and prefills
    only the rest. An interrupted reply is kept as far as it was shown."""

    def __init__(self, llm: LLM, system: str | None = None):
        self.llm = llm
        self.system = system
        self.messages: list[dict] = []   # alternating user / assistant, system excluded

    def reset(self) -> None:
        self.messages = []
        self.llm.engine.reset()

    def dialog(self, text: str) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages + [{"role": "user", "content": text}]

    def send(self, text: str, stream: bool = True, max_new_tokens: int = 512, stop: Sequence[str] | str = (),
             **sampling) -> Iterator[str] | str:
        """Reply to `text`; sampling: temperature, top_k, top_p, repetition_penalty, seed."""
        from .chat import dialog_tokens

        ids = dialog_tokens(self.llm.tokenizer, self.dialog(text))
        engine = self.llm.engine

        def done(stats: GenerationStats) -> None:
            # keep only cache rows that match what was committed: the prompt and every yielded token but the
            # last (the protocol), whatever state an interrupt left the engine in
            committed = ids + stats.ids[:-1]
            engine.truncate(_common_prefix(engine.tokens, committed))
            if stats.text or stats.finish_reason != "interrupted":
                self.messages += [{"role": "user", "content": text},
                                  {"role": "assistant", "content": stats.text}]

        chunks = self.llm._run(ids, self.llm.params(**sampling), max_new_tokens, stop, on_done=done)
        return chunks if stream else "".join(chunks)
