"""Issue 14, the library side: memory checked before allocating, the context bounded and clamped with a note,
padded vocabularies, tokenizer folders, sampling bounds, stop=None, BOS ends a llama2.c text, chat drops the oldest
exchanges, per-turn cache reuse. The CLI side is test_cli_ux.py."""
import json
import shutil

import numpy as np
import pytest

import cugraphllm.reference as R
from cugraphllm.api import LLM
from cugraphllm.config import ModelConfig
from cugraphllm.convert import write_hf
from cugraphllm.errors import BackendError, ContextLimitError, CugraphError, TokenizerError
from cugraphllm.loader import dummy_weights, load_checkpoint
from cugraphllm.sampling import SamplingParams
from cugraphllm.tokenizer import MAX_PADDING, StreamDecoder, Tokenizer

# awkward small sizes: head_dim 12, GQA 6 -> 2
SMALL = ModelConfig(dim=72, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=512, hidden_dim=100, max_seq_len=96)


def hf_model(folder, stories_dir, cfg=SMALL, seed=3, max_positions=None, output_scale=None):
    """A Hugging Face folder of seeded random weights with tok512 beside it; config.json's max_position_embeddings
    may be overridden with any JSON value (1e12 as a float, as some exports write it)."""
    w = dummy_weights(cfg, seed=seed, dtype="float32")
    if output_scale is not None:  # a near-uniform next-token distribution
        w.output = np.random.default_rng(seed).standard_normal(w.output.shape).astype(np.float32) * output_scale
    write_hf(folder, cfg, w, tokenizer=stories_dir / "tok512.model")
    if max_positions is not None:
        c = json.loads((folder / "config.json").read_text())
        c["max_position_embeddings"] = max_positions
        (folder / "config.json").write_text(json.dumps(c))
    return folder


def one_line(err) -> str:
    text = str(err)
    assert text and "\n" not in text
    return text


# ---- item 2: memory ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("positions", [1e8, 1e12])
def test_huge_context_is_bounded_by_memory_with_a_note(tmp_path, stories_dir, monkeypatch, positions):
    folder = hf_model(tmp_path / "m", stories_dir, max_positions=positions)
    per_token = R.kv_bytes_per_token(SMALL)
    weights = SMALL.with_(max_seq_len=int(positions)).n_params() * 4
    monkeypatch.setattr(R, "available_memory", lambda: weights + R._RESERVE + 3000 * per_token)
    llm = LLM.load(folder, backend="numpy")
    assert llm.engine.max_seq_len == 1280                       # half of the 3000 rows that fit, rounded to 256
    assert llm.engine.kv.shape[2] == 1280 and len(llm.notes) == 1
    assert f"the model's {int(positions)}" in llm.notes[0] and "--max-seq-len" in llm.notes[0]
    # the text is the one of the same weights with an ordinary context
    small = LLM.load(hf_model(tmp_path / "s", stories_dir, max_positions=96), backend="numpy")
    assert llm.generate("Once upon a time", max_new_tokens=12) == small.generate("Once upon a time",
                                                                                 max_new_tokens=12)
    with pytest.raises(BackendError, match="--max-seq-len 3000 or less") as e:    # asked for: refused, not lowered
        LLM.load(folder, backend="numpy", max_seq_len=10 ** 7)
    one_line(e.value)


def test_model_that_cannot_fit_is_refused_before_any_allocation(monkeypatch):
    import cugraphllm.loader as L
    monkeypatch.setattr(R, "available_memory", lambda: 8 << 30)
    monkeypatch.setattr(L, "dummy_checkpoint", lambda *a, **k: pytest.fail("allocated the weights"))
    monkeypatch.setattr(L, "load_checkpoint", lambda *a, **k: pytest.fail("loaded the weights"))
    with pytest.raises(BackendError) as e:
        LLM.load("dummy:llama-2-7b", backend="numpy")
    msg = one_line(e.value)
    need = ModelConfig.from_preset("llama-2-7b").n_params() * 4 / 2 ** 30
    assert f"needs {need + R.kv_bytes_per_token(ModelConfig.from_preset('llama-2-7b')) * 4096 / 2 ** 30:.2f} GiB" \
        in msg and "8.00 GiB are available" in msg


def test_kv_cache_too_big_for_numpy_is_one_line():
    with pytest.raises(BackendError) as e:
        R.NumpyEngine(SMALL.with_(max_seq_len=10 ** 15), dummy_weights(SMALL, dtype="float32"))
    assert "--max-seq-len" in one_line(e.value)


def test_max_seq_len_above_the_model_is_clamped_with_a_note(stories_dir):
    llm = LLM.load(stories_dir / "stories260K.bin", backend="numpy", max_seq_len=5000)
    assert llm.engine.max_seq_len == 512
    assert llm.notes == ["max_seq_len 5000 is above the model's context of 512 tokens; using 512"]
    assert LLM.load(stories_dir / "stories260K.bin", backend="numpy", max_seq_len=100).notes == []


# ---- item 3: tokenizer, sampling, stop ---------------------------------------------------------------------------
def test_padded_vocabulary_ids_print_nothing(tmp_path, stories_dir):
    cfg = SMALL.with_(vocab_size=600)                           # 88 ids beyond tok512's pieces
    llm = LLM.load(hf_model(tmp_path, stories_dir, cfg, output_scale=1e-3), backend="numpy")
    chunks = list(llm.generate("Once upon a time", max_new_tokens=60, temperature=1.0, seed=5, stream=True))
    ids = llm.last.ids
    assert sum(i >= 512 for i in ids) >= 3 and sum(i < 512 for i in ids) >= 20   # both kinds were sampled
    tok = Tokenizer.load(stories_dir / "tok512.model")
    assert "".join(chunks) == tok.decode([i for i in ids if i < 512 and i not in llm.end_ids])


def test_stream_decoder_skips_padding_ids(tok512):
    rng = np.random.default_rng(11)
    tok512.pad_to(700)
    try:
        for _ in range(20):
            ids = rng.integers(3, 700, size=int(rng.integers(1, 40))).tolist()
            dec = StreamDecoder(tok512)
            got = "".join(dec.push(i) for i in ids) + dec.flush()
            assert got == tok512.sp.decode([i for i in ids if i < 512]) == tok512.decode(ids)
        with pytest.raises(TokenizerError, match=r"outside the vocabulary \[0, 700\)"):
            tok512.decode([700])
    finally:
        tok512.pad_to(0)
    with pytest.raises(TokenizerError, match=r"\[0, 512\)"):
        tok512.decode([600])


def test_tokenizer_far_smaller_than_the_vocabulary_is_refused_at_load(tmp_path, stories_dir):
    cfg = SMALL.with_(vocab_size=512 + MAX_PADDING + 1)
    with pytest.raises(TokenizerError, match="wrong tokenizer") as e:
        LLM.load(hf_model(tmp_path, stories_dir, cfg), backend="numpy")
    assert "512 pieces" in one_line(e.value)


def test_tokenizer_folder_with_a_single_model_file(tmp_path, stories_dir):
    shutil.copy(stories_dir / "tok512.model", tmp_path / "tok512.model")   # not named tokenizer.model
    assert Tokenizer.load(tmp_path).path == tmp_path / "tok512.model"
    ck = load_checkpoint(stories_dir / "stories260K.bin", tokenizer=tmp_path)
    assert ck.tokenizer_path == tmp_path / "tok512.model"
    shutil.copy(stories_dir / "tok512.model", tmp_path / "other.model")     # two: ambiguous
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="not found"):
        load_checkpoint(stories_dir / "stories260K.bin", tokenizer=tmp_path)


def test_top_k_error_states_its_real_bound():
    with pytest.raises(CugraphError) as e:
        SamplingParams(top_k=2 ** 31)
    assert "2147483647" in str(e.value) and "2**64" not in str(e.value)
    assert SamplingParams(top_k=2 ** 31 - 1).top_k == 2 ** 31 - 1
    with pytest.raises(CugraphError, match=r"2\*\*64"):
        SamplingParams(seed=2 ** 64)


@pytest.fixture(scope="module")
def stories(stories_dir):
    return LLM.load(stories_dir / "stories260K.bin", backend="numpy")


def test_stop_none_is_no_stop(stories):
    want = stories.generate("Once upon a time", max_new_tokens=20, stop=())
    assert stories.generate("Once upon a time", max_new_tokens=20, stop=None) == want and want
    assert "".join(stories.chat().send("Hi", max_new_tokens=8, stop=None, temperature=0))


# ---- item 4 ------------------------------------------------------------------------------------------------------
def test_llama2c_text_ends_at_bos_as_run_c(stories, stories_dir):
    text = stories.generate("The cat", max_new_tokens=400)
    ids = stories.last.ids
    assert stories.last.finish_reason == "eos" and ids[-1] == 1 and 1 not in ids[:-1] and len(ids) < 400
    tok = stories.tokenizer
    # (lstrip: whether the first word keeps its space is issue 14 item 1, fixed in the streaming text)
    assert text.lstrip() == tok.decode(tok.encode("The cat") + ids[:-1])[len("The cat"):].lstrip() and text
    # an engine driven past BOS would continue into the next story: the same greedy ids up to BOS
    eng = R.NumpyEngine(stories.config, stories.engine.weights)
    assert list(eng.generate(tok.encode("The cat"), SamplingParams(), len(ids) + 5))[:len(ids)] == ids


def test_chat_drops_the_oldest_exchanges_and_keeps_the_system_prompt(stories_dir):
    llm = LLM.load(stories_dir / "stories260K.bin", backend="numpy", max_seq_len=120)
    chat = llm.chat(system="Be kind.")
    sent = []
    for text in ["Tell me a story.", "What next?", "And then?", "Why?", "The end?"]:
        reply = chat.send(text, stream=False, max_new_tokens=24, temperature=0)
        sent.append(text)
        assert reply and (llm.last.prompt_tokens + 24 <= 120 or len(chat.messages) == 2)   # room for a reply
        kept = [m["content"] for m in chat.messages if m["role"] == "user"]
        assert kept == sent[len(sent) - len(kept):] and kept[-1] == text   # a suffix: the oldest went first
        assert chat.dialog("x")[0] == {"role": "system", "content": "Be kind."}
    assert len(kept) < len(sent)                                 # something was dropped
    # the reply after a drop is the one of a fresh chat holding only the kept exchanges
    fresh = llm.chat(system="Be kind.")
    fresh.messages = chat.messages[:-2]
    assert fresh.send(sent[-1], stream=False, max_new_tokens=24, temperature=0) == chat.messages[-1]["content"]


def test_chat_reports_the_reused_prefix(stories):
    stories.engine.reset()
    chat = stories.chat()
    chat.send("Tell me a story.", stream=False, max_new_tokens=10, temperature=0)
    assert stories.last.cached_tokens == 0
    first_prompt = stories.last.prompt_tokens
    chat.send("What next?", stream=False, max_new_tokens=10, temperature=0)
    assert first_prompt <= stories.last.cached_tokens < stories.last.prompt_tokens   # turn 1's prompt was reused
    with pytest.raises(ContextLimitError):
        chat.send("story " * 600, max_new_tokens=4)


def test_cuda_default_context_is_bounded_by_gpu_memory(monkeypatch):
    """The planning step only (no GPU here): free GPU memory is what the engine would ask CuPy for."""
    import cugraphllm.engines as A
    from cugraphllm.config import RuntimeConfig
    cfg = SMALL.with_(max_seq_len=10 ** 12)
    per_token = 2 * cfg.n_layers * cfg.kv_dim * 2 + cfg.head_dim * 4 + 4      # KV, RoPE row, history slot
    free = cfg.n_params() * 2 + (256 << 20) + 5000 * per_token
    monkeypatch.setattr(A, "_gpu_free_bytes", lambda: free)
    runtime, notes = A._plan_context(cfg, RuntimeConfig(backend="cuda"))
    assert runtime.max_seq_len == 2304 and len(notes) == 1 and "--max-seq-len" in notes[0]  # 2500 -> multiple of 256
    free = 10 ** 15                                                 # a vast GPU: still a sane default
    assert A._plan_context(cfg, RuntimeConfig(backend="cuda"))[0].max_seq_len == 1 << 18
    runtime, notes = A._plan_context(SMALL, RuntimeConfig(backend="cuda"))          # fits: untouched
    assert runtime.max_seq_len is None and notes == []
    runtime, notes = A._plan_context(cfg, RuntimeConfig(backend="cuda", max_seq_len=10 ** 6))
    assert runtime.max_seq_len == 10 ** 6 and notes == []         # asked for: the engine says if it fits
