"""The OpenAI request and response shapes: validation of a body into a `GenRequest`, and the JSON answers.

Every field is checked for type and range; a field we do not implement (n > 1, logprobs, tools, ...) with
anything but its neutral value, and any field we do not know, is a 400 that names it, never silently ignored.
"""
from __future__ import annotations

import math
import os
import secrets
import time
from dataclasses import dataclass, field

from ..sampling import PENALTY_RANGE, TEMPERATURE_RANGE, TOP_K_MAX

MAX_STOP = 16           # stop strings per request (OpenAI allows 4; a few more cost nothing)
MAX_STOP_CHARS = 1000


class ApiError(Exception):
    """An OpenAI-style error: {"error": {"message", "type", "param", "code"}} with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict | None = None):
        message, param = _printable(message), None if param is None else _printable(param)
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _printable(text: str) -> str:
    """Lone surrogates (a JSON "\\ud800" in a field name) escaped, so that the error body encodes as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class GenRequest:
    """One validated generation request; `ids` are filled in by the app (it owns the tokenizer)."""
    kind: str                       # "completion" | "chat"
    model: str
    prompt: object = None           # str or list[int] (completion) or list of messages (chat)
    max_tokens: int | None = None   # None: up to the context
    sampling: dict = field(default_factory=dict)   # temperature, top_k, top_p, repetition_penalty, seed
    stop: tuple = ()
    stream: bool = False
    include_usage: bool = False
    ids: list = field(default_factory=list)
    id: str = ""
    created: int = 0


# neutral values of the fields we accept only when they ask for nothing
NEUTRAL = {"n": (1,), "echo": (False,), "logprobs": (None, False, 0), "top_logprobs": (None, 0), "best_of": (None, 1),
           "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "logit_bias": (None, {}),
           "suffix": (None, ""), "tools": (None, []), "tool_choice": (None, "none", "auto"), "functions": (None, []),
           "function_call": (None, "none"), "parallel_tool_calls": (None, False), "response_format": (None, {"type": "text"}),
           "service_tier": (None, "auto", "default"), "store": (None, False), "metadata": (None, {}),
           "prediction": (None,), "modalities": (None, ["text"]), "audio": (None,), "reasoning_effort": (None,),
           "web_search_options": (None,)}
COMMON = {"model", "max_tokens", "temperature", "top_p", "seed", "stop", "stream", "stream_options", "top_k",
          "repetition_penalty", "user"}
FIELDS = {"completion": COMMON | {"prompt"}, "chat": COMMON | {"messages", "max_completion_tokens"}}


def _bad(param: str, message: str, code: str | None = None) -> ApiError:
    return ApiError(400, f"{param}: {message}", param=param, code=code)


def _number(body, name, lo, hi, default, integer=False, zero_ok=False):
    v = body.get(name)
    if v is None:
        return default
    kind = "an integer" if integer else "a number"
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)) or not math.isfinite(v):
        raise _bad(name, f"expected {kind}, got {v!r:.80}", "invalid_type")
    if not (lo <= v <= hi or (zero_ok and v == 0)):
        raise _bad(name, f"must be {'0 or ' if zero_ok else ''}{kind} in [{lo}, {hi}], got {v!r}", "invalid_value")
    return v


def _stop(body) -> tuple:
    stop = body.get("stop")
    if stop is None:
        return ()
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > MAX_STOP or not all(
            isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop):
        raise _bad("stop", f"expected a non-empty string or a list of at most {MAX_STOP} of them "
                           f"(each at most {MAX_STOP_CHARS} characters)", "invalid_type")
    return tuple(stop)


def _flag(body, name) -> bool:
    v = body.get(name, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _bad(name, f"expected true or false, got {v!r:.80}", "invalid_type")
    return v


def _check_fields(body: dict, kind: str) -> None:
    for name, value in body.items():
        if name in NEUTRAL:
            if not any(value == n and type(value) is type(n) or value is n for n in NEUTRAL[name]):
                raise ApiError(400, f"{name}: not supported by this server (batch 1, one sequence, no log "
                                    f"probabilities or tools); got {value!r:.80}", param=name, code="unsupported")
        elif name not in FIELDS[kind]:
            raise ApiError(400, f"unrecognized request argument supplied: {name}", param=name,
                           code="unrecognized_argument")


def parse(body, kind: str, served_name: str, vocab_size: int) -> GenRequest:
    """Validate a decoded JSON body of /v1/completions (kind "completion") or /v1/chat/completions ("chat")."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    _check_fields(body, kind)
    model = body.get("model", served_name)
    if not isinstance(model, str):
        raise _bad("model", f"expected a string, got {model!r:.80}", "invalid_type")
    if model != served_name:
        raise ApiError(404, f"the model {model!r:.80} does not exist; this server serves {served_name!r}",
                       param="model", code="model_not_found")
    req = GenRequest(kind=kind, model=model, created=int(time.time()),
                     id=("cmpl-" if kind == "completion" else "chatcmpl-") + os.urandom(16).hex())   # uuid4's length
    req.prompt = _prompt(body, vocab_size) if kind == "completion" else _messages(body)
    names = ("max_tokens",) if kind == "completion" else ("max_completion_tokens", "max_tokens")
    for name in names:   # chat: max_completion_tokens wins over the deprecated max_tokens
        if body.get(name) is not None:
            req.max_tokens = _number(body, name, 1, 2 ** 31 - 1, None, integer=True)
            break
    if kind == "completion" and req.max_tokens is None:
        req.max_tokens = 16  # OpenAI's default for completions; chat runs to EOS or the context
    seed = _number(body, "seed", 0, 2 ** 64 - 1, None, integer=True)
    req.sampling = dict(
        temperature=float(_number(body, "temperature", *TEMPERATURE_RANGE, 1.0, zero_ok=True)),
        top_p=float(_number(body, "top_p", 1e-9, 1.0, 1.0)),
        top_k=_number(body, "top_k", 0, TOP_K_MAX, 0, integer=True),
        repetition_penalty=float(_number(body, "repetition_penalty", *PENALTY_RANGE, 1.0)),
        seed=secrets.randbits(63) if seed is None else seed)   # no seed: a fresh draw, as OpenAI
    req.stop, req.stream = _stop(body), _flag(body, "stream")
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict) or set(opts) - {"include_usage"}:
            raise _bad("stream_options", "expected an object with only include_usage", "invalid_type")
        if not req.stream:
            raise _bad("stream_options", "only allowed when stream is true", "invalid_value")
        req.include_usage = _flag(opts, "include_usage")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _bad("user", "expected a string", "invalid_type")
    return req


def _prompt(body, vocab_size: int):
    if "prompt" not in body:
        raise _bad("prompt", "required", "missing")
    p = body["prompt"]
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], (str, list)):
        p = p[0]  # a batch of one
    if isinstance(p, str):
        return p
    # set(map(type)), min and max run in C: ~10 us for a 4000-token prompt (a Python loop per id took ~0.3 ms)
    if isinstance(p, list) and p and set(map(type, p)) == {int}:   # type, not isinstance: no bools
        lo, hi = min(p), max(p)
        if lo < 0 or hi >= vocab_size:
            bad = next(i for i in p if not 0 <= i < vocab_size)
            raise _bad("prompt", f"token id {bad} is outside the vocabulary [0, {vocab_size})", "invalid_value")
        return p
    raise _bad("prompt", "expected a string, a non-empty list of token ids, or a list holding one of them "
                         "(batches of several prompts are not supported)", "invalid_type")


def _messages(body) -> list[dict]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages", "expected a non-empty list of messages", "invalid_type")
    out = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or set(m) - {"role", "content", "name"}:
            raise _bad(where, "expected an object with role and content (tool calls are not supported)",
                       "invalid_type")
        content = m.get("content")
        if isinstance(content, list):   # content parts: text only
            if not all(isinstance(c, dict) and c.get("type") == "text" and isinstance(c.get("text"), str)
                       for c in content):
                raise _bad(f"{where}.content", "only text content parts are supported", "invalid_type")
            content = "".join(c["text"] for c in content)
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(content, str):
            raise _bad(where, "role must be system, user or assistant and content a string", "invalid_type")
        out.append({"role": m["role"], "content": content})
    return out


# ---- answers ---------------------------------------------------------------------------------------------------
def usage(prompt_tokens: int, completion_tokens: int, cached: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "prompt_tokens_details": {"cached_tokens": cached}}


def finish_reason(reason: str) -> str:
    """The engine's eos/stop/length/context as OpenAI's stop/length."""
    return "stop" if reason in ("eos", "stop") else "length"


def choice(req: GenRequest, text: str | None, finish: str | None, first: bool = False) -> dict:
    """One choice: a whole answer (stream False) or one chunk's delta."""
    if req.kind == "completion":
        return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
    if not req.stream:
        return {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                "finish_reason": finish}
    delta = ({"role": "assistant", "content": ""} if first else {}) | ({"content": text} if text else {})
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def envelope(req: GenRequest, choices: list, usage_: dict | None) -> dict:
    chunk = req.stream
    obj = {"completion": "text_completion", "chat": "chat.completion.chunk" if chunk else "chat.completion"}
    out = {"id": req.id, "object": obj[req.kind], "created": req.created, "model": req.model, "choices": choices}
    if usage_ is not None or not chunk:
        out["usage"] = usage_
    return out
