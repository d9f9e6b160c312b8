"""Issue 14 on the cuda backend (gpu-marked: skipped without a GPU): a llama2.c text ends at BOS, a chat drops its
oldest exchanges and reports the reused prefix, as on numpy. The CPU
counterparts are in test_ux.py."""
import pytest

from cugraphllm.api import LLM

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def stories(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", backend="cuda", max_seq_len=120, progress=False)


def test_llama2c_text_never_runs_past_bos(stories):
    for prompt in ("The cat", "Once upon a time", "Tom"):
        stories.generate(prompt, max_new_tokens=110)
        ids = stories.last.ids
        assert 1 not in ids[:-1]                                  # at most one BOS, and it ends the text
        assert (stories.last.finish_reason == "eos") == (ids[-1] == 1 or ids[-1] == 2)


def test_chat_drops_the_oldest_exchanges_on_cuda(stories):
    stories.engine.reset()  # the module's engine still caches an earlier test's tokens (their BOS would be reused)
    chat = stories.chat(system="Be kind.")
    sent, reused = [], []
    for text in ["Tell me a story.", "What next?", "And then?", "Why?", "The end?"]:
        chat.send(text, stream=False, max_new_tokens=24, temperature=0)
        sent.append(text)
        reused.append(stories.last.cached_tokens)
        kept = [m["content"] for m in chat.messages if m["role"] == "user"]
        assert kept == sent[len(sent) - len(kept):]
    assert len(kept) < len(sent) and reused[0] == 0 and reused[1] > 0
    fresh = stories.chat(system="Be kind.")
    fresh.messages = chat.messages[:-2]                           # the same dialog on an emptied cache
    stories.engine.reset()
    assert fresh.send(sent[-1], stream=False, max_new_tokens=24, temperature=0) == chat.messages[-1]["content"]


def test_huge_max_position_embeddings_on_cuda(tmp_path, stories_dir):
    from test_ux import SMALL, hf_model
    folder = hf_model(tmp_path / "huge", stories_dir, max_positions=1e12)
    llm = LLM.load(folder, backend="cuda", progress=False)
    assert llm.engine.max_seq_len < 10 ** 12 and len(llm.notes) == 1 and "--max-seq-len" in llm.notes[0]
    want = LLM.load(hf_model(tmp_path / "small", stories_dir, max_positions=SMALL.max_seq_len), backend="cuda",
                    progress=False).generate("Once upon a time", max_new_tokens=12)
    assert llm.generate("Once upon a time", max_new_tokens=12) == want
