"""The library API on the NumPy backend: LLM.load/generate (golden text, streaming, stops, context limit, seeds),
backend choice, ChatSession's KV-cache reuse and its state after an interrupted reply."""
import contextlib
import json
import shutil
import sys
import types

import pytest
from conftest import stories_golden

from cugraphllm import api
from cugraphllm.api import LLM
from cugraphllm.config import RuntimeConfig
from cugraphllm.errors import BackendError, ContextLimitError, TokenizerError


@pytest.fixture(scope="module")
def golden(stories_dir):
    return stories_golden()


@pytest.fixture()
def llm(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", tokenizer=stories_dir / "tok512.model", backend="numpy")


def test_generate_golden(llm, golden):
    text = llm.generate(golden["prompt"], max_new_tokens=60)
    assert text == golden["continuation_text"]
    assert llm.last.ids == golden["generated_ids"]
    assert llm.last.prompt_tokens == len(golden["prompt_ids"]) and llm.last.finish_reason == "length"
    chunks = list(llm.generate(golden["prompt"], max_new_tokens=60, stream=True))
    assert len(chunks) > 10 and "".join(chunks) == golden["continuation_text"]


@pytest.mark.parametrize("stop", ["Lily", "was a little", "e park. One"])
def test_stop_strings(llm, golden, stop):
    text = llm.generate(golden["prompt"], max_new_tokens=60, stop=[stop, "never appears"])
    assert text == golden["continuation_text"].split(stop)[0]
    assert llm.last.finish_reason == "stop"


def test_context_limit(stories_dir, golden):
    small = LLM.load(stories_dir / "stories260K.bin", tokenizer=stories_dir / "tok512.model", backend="numpy",
                     max_seq_len=20)
    small.generate(golden["prompt"], max_new_tokens=100)
    assert small.last.new_tokens == 20 - 5 + 1 and small.last.ids == golden["generated_ids"][:16]
    assert small.last.finish_reason == "context" and "context limit of 20" in small.last.message
    with pytest.raises(ContextLimitError):
        small.generate("Once upon a time " * 10, stream=True)          # raised at the call, not at iteration


def test_seed_determinism(llm):
    kw = dict(max_new_tokens=40, temperature=0.9, top_p=0.95)
    a = llm.generate("Once upon a time", seed=7, **kw)
    assert a == llm.generate("Once upon a time", seed=7, **kw)
    others = {llm.generate("Once upon a time", seed=s, **kw) for s in (1, 2, 3)}
    assert len(others | {a}) > 1


def test_model_without_tokenizer(stories_dir, tmp_path):
    shutil.copy(stories_dir / "stories260K.bin", tmp_path / "model.bin")
    with pytest.raises(TokenizerError) as err:
        LLM.load(tmp_path / "model.bin", backend="numpy")
    assert "\n" not in str(err.value) and "--tokenizer" in str(err.value)


def _fake_cupy(monkeypatch, available: bool):
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(is_available=lambda: available)
    monkeypatch.setitem(sys.modules, "cupy", cupy)


def test_backend_choice(monkeypatch):
    assert api.resolve_backend("numpy") == "numpy"
    _fake_cupy(monkeypatch, True)
    assert api.resolve_backend("auto") == "cuda" and api.resolve_backend("cuda") == "cuda"
    _fake_cupy(monkeypatch, False)
    assert api.resolve_backend("auto") == "numpy"
    with pytest.raises(BackendError):
        api.resolve_backend("cuda")
    monkeypatch.setitem(sys.modules, "cupy", None)                    # import cupy raises ImportError
    assert api.resolve_backend("auto") == "numpy"


class Recorder:
    """Wraps an engine: records each prefill, optionally raises KeyboardInterrupt at the n-th token request."""

    def __init__(self, inner, interrupt_at=None):
        self.inner, self.interrupt_at, self.prefills = inner, interrupt_at, []
        self.config, self.max_seq_len = inner.config, inner.max_seq_len

    tokens = property(lambda self: self.inner.tokens)
    reset = property(lambda self: self.inner.reset)
    truncate = property(lambda self: self.inner.truncate)

    def generate(self, new_tokens, params, max_new_tokens):
        self.prefills.append(list(new_tokens))
        return self._wrap(self.inner.generate(new_tokens, params, max_new_tokens))

    def _wrap(self, gen):
        with contextlib.closing(gen):  # as the protocol's consumer does
            for i, token in enumerate(gen):
                if i == self.interrupt_at:
                    raise KeyboardInterrupt
                yield token


def test_chat_reuses_the_cache(llm):
    from cugraphllm.chat import dialog_tokens
    rec = llm.engine = Recorder(llm.engine)
    chat = llm.chat(system="Be brief.")
    ids1 = dialog_tokens(llm.tokenizer, chat.dialog("Tell me a story."))
    first = chat.send("Tell me a story.", stream=False, max_new_tokens=20, temperature=0)
    assert rec.prefills == [ids1] and chat.messages[-1] == {"role": "assistant", "content": first}
    ids2 = dialog_tokens(llm.tokenizer, chat.dialog("And then?"))
    second = "".join(chat.send("And then?", max_new_tokens=20, temperature=0))
    reused = len(ids2) - len(rec.prefills[1])
    assert rec.prefills[1] == ids2[reused:] and reused >= len(ids1)      # only the new part is prefilled
    assert llm.engine.tokens == ids2 + llm.last.ids[:-1]
    assert len(chat.messages) == 4 and chat.messages[-1]["content"] == second
    chat.reset()
    assert chat.messages == [] and llm.engine.tokens == []


def test_chat_interrupted_reply_keeps_state_consistent(llm):
    from cugraphllm.chat import dialog_tokens
    rec = llm.engine = Recorder(llm.engine, interrupt_at=6)
    chat = llm.chat()
    ids = dialog_tokens(llm.tokenizer, chat.dialog("Tell me a story."))
    shown = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in chat.send("Tell me a story.", max_new_tokens=50, temperature=0):
            shown.append(chunk)
    assert shown and chat.messages[-1] == {"role": "assistant", "content": "".join(shown)}
    assert llm.last.finish_reason == "interrupted" and llm.last.new_tokens == 6
    assert llm.engine.tokens == ids + llm.last.ids[:-1]
    rec.interrupt_at = None
    assert chat.send("Go on.", stream=False, max_new_tokens=10, temperature=0)
    # a consumer that stops reading early leaves the protocol's state: prompt + yielded tokens but the last
    ids3 = dialog_tokens(llm.tokenizer, chat.dialog("More."))
    it = chat.send("More.", max_new_tokens=30, temperature=0)
    next(it)
    it.close()
    assert llm.engine.tokens == ids3 + llm.last.ids[:-1] and len(chat.messages) == 6


class Scripted:
    """An engine that yields a fixed token script (for EOS handling without a model that emits it)."""

    def __init__(self, config, script):
        self.config, self.max_seq_len, self.script, self.tokens = config, 100, script, []

    def reset(self):
        self.tokens = []

    def truncate(self, n):
        self.tokens = self.tokens[:n]

    def generate(self, new_tokens, params, max_new_tokens):
        self.tokens += list(new_tokens)
        return iter(self.script[:max_new_tokens])


def test_eos_ends_generation(llm):
    tok = llm.tokenizer
    script = tok.encode("Hello there", bos=False) + [tok.eos_id] + tok.encode(" never", bos=False)
    fake = LLM(Scripted(llm.config, script), tok, RuntimeConfig(backend="numpy"))
    assert fake.generate("Hi", max_new_tokens=50) == " Hello there"  # the first word keeps its space
    assert fake.last.finish_reason == "eos" and fake.last.ids[-1] == tok.eos_id
