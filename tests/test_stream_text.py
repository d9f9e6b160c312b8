"""The streamed text is decode(prompt + new) - decode(prompt) (issue 14): the first generated word keeps its space.
Prompts whose continuation starts with a word ("Once" -> " upon a time"), through LLM.generate, ChatSession.send,
the CLI, and StreamDecoder.prime on random ids of both tokenizers."""
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from cugraphllm.api import LLM
from cugraphllm.chat import dialog_tokens
from cugraphllm.tokenizer import StreamDecoder

WORD_PROMPTS = ["Once", "The cat", "One day, Lily", "Tom and"]


@pytest.fixture(scope="module")
def llm(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", backend="numpy")


def expected(tok, prompt_ids, new_ids) -> str:
    head = tok.decode(prompt_ids)
    full = tok.decode(list(prompt_ids) + list(new_ids))
    assert full.startswith(head)
    return full[len(head):]


@pytest.mark.parametrize("prompt", WORD_PROMPTS)
def test_generate_keeps_the_first_space(llm, prompt):
    chunks = list(llm.generate(prompt, max_new_tokens=12, stream=True))
    ids = llm.tokenizer.encode(prompt, bos=True)
    want = expected(llm.tokenizer, ids, llm.last.ids)
    assert "".join(chunks) == want and want[:1] == " " and want[1:2].isalpha()   # a word, after its space
    assert llm.generate(prompt, max_new_tokens=12) == want


def test_once_upon_a_time(llm):
    assert llm.generate("Once", max_new_tokens=3) == " upon a time"


def test_sampled_text_too(llm):
    for seed in range(4):
        text = llm.generate("The cat", max_new_tokens=20, temperature=1.0, seed=seed)
        assert text == expected(llm.tokenizer, llm.tokenizer.encode("The cat"), llm.last.ids)


def test_chat_send(llm):
    chat = llm.chat(system="Tell stories.")
    for text in ("Hello", "And then?"):
        ids = dialog_tokens(llm.tokenizer, chat.dialog(text))
        reply = chat.send(text, stream=False, max_new_tokens=10, temperature=0)
        assert reply == expected(llm.tokenizer, ids, llm.last.ids) and reply


def test_cli_generate(llm):
    ids = llm.tokenizer.encode("Once", bos=True)
    want = llm.generate("Once", max_new_tokens=5)
    r = subprocess.run([sys.executable, "-m", "cugraphllm", "generate", "--prompt", "Once", "--max-new-tokens", "5",
                        "--backend", "numpy"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    # no --model: the packaged stories260K, said in one status line
    assert [ln for ln in r.stderr.splitlines() if "packaged stories260K" in ln][0].startswith("no --model given")
    assert sum("stories260K" in ln for ln in r.stderr.splitlines()) == 1
    assert r.stdout == "Once" + want + "\n" == "Once" + expected(llm.tokenizer, ids, llm.last.ids) + "\n"
    assert r.stdout.startswith("Once upon")


def _check_prime(tok, prompt, new, window):
    dec = StreamDecoder(tok, max_window=window)
    dec.prime(prompt)
    out = "".join(dec.push(t) for t in new) + dec.flush()
    head, full = tok.decode(prompt), tok.decode(prompt + new)
    if full.startswith(head) and not head.endswith("\ufffd"):  # else a prompt's unfinished character completes
        assert out == full[len(head):], (prompt, new)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), window=st.integers(2, 10))
def test_prime_random_ids_tok512(tok512, data, window):
    ids = st.lists(st.integers(0, tok512.vocab_size - 1), max_size=20)
    _check_prime(tok512, [1] + data.draw(ids), data.draw(ids), window)


def test_prime_random_ids_llama2(llama2):
    rng = random.Random(5)
    for _ in range(300):
        prompt = [1] + [rng.randrange(llama2.vocab_size) for _ in range(rng.randrange(0, 25))]
        new = [rng.randrange(3, 300) if rng.random() < 0.3 else rng.randrange(llama2.vocab_size)
               for _ in range(rng.randrange(1, 20))]   # byte pieces often: multi-byte characters across chunks
        _check_prime(llama2, prompt, new, rng.randrange(2, 10))


def test_prime_never_splits_a_character(tok512):
    """A prompt whose last bytes form one character (0xC2 0x80 = U+0080) primed with a window shorter than the
    prompt: the cut must not fall inside the character (it printed U+FFFD). Then byte-heavy random prompts."""
    dec = StreamDecoder(tok512, max_window=2)
    dec.prime([1, 197, 131])
    assert dec.flush() == ""
    rng = random.Random(11)
    byte_ids = sorted(tok512.byte_of)
    pick = lambda: rng.choice(byte_ids) if rng.random() < 0.6 else rng.randrange(tok512.vocab_size)  # noqa: E731
    for _ in range(3000):
        prompt = [1] + [pick() for _ in range(rng.randrange(0, 12))]
        _check_prime(tok512, prompt, [pick() for _ in range(rng.randrange(0, 8))], rng.randrange(2, 11))
