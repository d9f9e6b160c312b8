"""Tokenizer: golden encodings of both shared tokenizers, clear load errors, and streaming detokenization that
prints exactly what a whole decode prints."""
import functools
import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from cugraphllm.errors import CugraphError, TokenizerError
from cugraphllm.tokenizer import StreamDecoder, Tokenizer

TOKENIZERS = ["llama2", "tok512"]


@pytest.fixture(params=TOKENIZERS)
def tok(request):
    return request.getfixturevalue(request.param)


def _stream(tok, ids, max_window=8):
    dec = StreamDecoder(tok, max_window=max_window)
    chunks = [dec.push(t) for t in ids]
    chunks.append(dec.flush())
    return chunks


# ---- encode / decode -------------------------------------------------------------------------------------------

def test_llama2_golden_encodings(llama2, llama2_tokenizer_dir):
    cases = json.loads((llama2_tokenizer_dir / "golden_encode.json").read_text())["cases"]
    assert len(cases) >= 8
    for case in cases:
        assert llama2.encode(case["text"]) == case["ids_with_bos"], case["text"]
        assert llama2.encode(case["text"], bos=False) == case["ids_with_bos"][1:]
        # LLaMA-2 keeps every space (remove_extra_whitespaces false), so decoding gives the text back
        assert llama2.decode(case["ids_with_bos"]) == case["text"]


def test_tok512_golden_encodings(tok512, shared_stories_dir):
    # tok512 normalizes whitespace (remove_extra_whitespaces true): we reproduce sentencepiece, not llama2.c's
    # encoder, which differs exactly on the cases marked "same": false.
    cases = json.loads((shared_stories_dir / "golden_encode.json").read_text())["cases"]
    assert any(not c["same"] for c in cases)
    for case in cases:
        assert tok512.encode(case["text"]) == case["sentencepiece_ids_with_bos"], case["text"]


def test_special_ids_and_sizes(llama2, tok512):
    assert (llama2.vocab_size, llama2.bos_id, llama2.eos_id) == (32000, 1, 2)
    assert (tok512.vocab_size, tok512.bos_id, tok512.eos_id) == (512, 1, 2)
    for tok in (llama2, tok512):  # byte fallback: ids 3..258 are <0x00>..<0xFF>
        assert tok.byte_of == {3 + b: b for b in range(256)}


def test_encode_eos_and_decode_skips_specials(llama2):
    ids = llama2.encode("Once upon a time", eos=True)
    assert ids == [1, 9038, 2501, 263, 931, 2]
    assert llama2.decode(ids) == "Once upon a time"
    assert llama2.decode([1, 9038, 2, 1, 2501]) == "Once upon"


def test_byte_fallback_roundtrip(tok):
    text = "naïve 日本語 😀 \u0394x \t tab"
    ids = tok.encode(text, bos=False)
    assert any(i in tok.byte_of for i in ids)  # something falls back to bytes in both vocabularies
    assert tok.decode(ids).split() == text.split()


def test_decode_rejects_out_of_range(tok):
    for bad in (tok.vocab_size, -1):
        with pytest.raises(TokenizerError, match="outside the vocabulary"):
            tok.decode([5, bad])


def test_encode_rejects_non_text(llama2):
    with pytest.raises(TokenizerError):
        llama2.encode(b"bytes")


# ---- load errors -----------------------------------------------------------------------------------------------

def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(tmp_path / "nope.model")
    assert "nope.model" in _one_line(err) and "not found" in _one_line(err)


@pytest.mark.parametrize("content", [b"", b"this is not a protobuf \x00\xff\x13" * 7])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "tokenizer.model"
    path.write_bytes(content)
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(path)
    assert str(path) in _one_line(err)
    assert isinstance(err.value, CugraphError)


def test_truncated_model(tmp_path, llama2_tokenizer_dir):
    data = (llama2_tokenizer_dir / "tokenizer.model").read_bytes()
    path = tmp_path / "tokenizer.model"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(path)
    assert "not a sentencepiece model" in _one_line(err)


def test_llama2c_bin_gets_a_hint(shared_stories_dir):
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(shared_stories_dir / "tok512.bin")
    assert "tokenizer.model" in _one_line(err)


def test_load_from_folder(llama2_tokenizer_dir, tmp_path):
    assert Tokenizer.load(llama2_tokenizer_dir).vocab_size == 32000
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer.load(tmp_path)  # a folder without tokenizer.model


# ---- streaming -------------------------------------------------------------------------------------------------

def test_stream_plain_text(tok):
    text = "Once upon a time, there was a little girl named Lily.\nShe  liked cats."
    ids = tok.encode(text)
    chunks = _stream(tok, ids)
    assert "".join(chunks) == tok.decode(ids)
    assert chunks[0] == "" and chunks[1] == "Once"  # BOS prints nothing; no space before the first word
    assert sum(1 for c in chunks if c) >= len(ids) // 2  # streamed as it comes, not all at the end


def test_stream_leading_space_pieces(llama2):
    # " leading" is [BOS, "▁", "▁leading"]: only the first piece loses its dummy-prefix space
    ids = llama2.encode(" leading")
    assert "".join(_stream(llama2, ids)) == " leading"
    assert "".join(_stream(llama2, [29871, 29871, 8236])) == "  leading"


def test_stream_leading_spaces_tok512(tok512):
    # tok512 (remove_extra_whitespaces) drops every space piece at the start of the text, LLaMA-2 only the first
    sp = tok512.sp.piece_to_id("\u2581")
    nam = tok512.sp.piece_to_id("\u2581nam")
    for ids in ([1, sp, nam], [sp, sp, sp, nam, sp, nam], [1, sp, 1, sp, nam] + [sp] * 12 + [nam]):
        for w in (2, 3, 8):
            assert "".join(_stream(tok512, ids, w)) == tok512.decode(ids)
    assert tok512.decode([sp, sp, nam]) == "nam"


def test_stream_holds_split_characters(tok):
    ids = [3 + b for b in "😀é".encode()]  # 4 + 2 byte pieces
    chunks = _stream(tok, [1] + ids + [2])
    assert chunks == ["", "", "", "", "😀", "", "é", "", ""]


def test_stream_emits_bad_bytes_as_decode_does(tok):
    ids = [3 + 0xE6, 3 + 0x97, 3 + 0x41, 3 + 0xF0]  # incomplete sequence, 'A', dangling lead byte
    chunks = _stream(tok, ids)
    assert "".join(chunks) == tok.decode(ids) == "\ufffd\ufffdA\ufffd"
    assert chunks[-1] == "\ufffd"  # the dangling lead byte is only known to be bad at the end


def test_stream_never_changes_printed_text(tok):
    # every prefix printed so far must be a prefix of the whole decode of the ids seen so far plus any future
    rng = random.Random(7)
    ids = [rng.randrange(tok.vocab_size) for _ in range(300)]
    dec, printed = StreamDecoder(tok), ""
    full = tok.decode(ids)
    for t in ids:
        printed += dec.push(t)
        assert full.startswith(printed)
    assert printed + dec.flush() == full


@functools.lru_cache(maxsize=None)
def _space_pieces(tok):
    return [i for i in range(tok.vocab_size) if set(tok.sp.id_to_piece(i)) == {"\u2581"}]  # "▁", "▁▁", ...


def _random_ids(rng, tok, n):
    """Ids biased to the hard cases: byte pieces (UTF-8 leads/continuations), BOS/EOS/unk, space-only pieces
    (start-of-text rules), and any piece."""
    leads = [0xC3, 0xE6, 0xF0, 0xED, 0xC0, 0xFF, 0x9F, 0x97, 0x80, 0xA9, 0x41, 0x20, 0x0A]
    spaces = _space_pieces(tok)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            out.append(3 + rng.choice(leads))
        elif r < 0.45:
            out.append(3 + rng.randrange(256))
        elif r < 0.55:
            out.append(rng.choice([0, 1, 2]))
        elif r < 0.65:
            out.append(rng.choice(spaces))
        else:
            out.append(rng.randrange(tok.vocab_size))
    return out


@pytest.mark.parametrize("max_window", [2, 3, 8, 32])
def test_stream_random_seeded(tok, max_window):
    rng = random.Random(1234 + max_window)
    for _ in range(400):
        ids = _random_ids(rng, tok, rng.randrange(0, 70))
        assert "".join(_stream(tok, ids, max_window)) == tok.decode(ids), ids


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_stream_random_hypothesis(llama2, tok512, data):
    tok = data.draw(st.sampled_from([llama2, tok512]))
    special = st.sampled_from([0, 1, 2] + _space_pieces(tok))
    ids = data.draw(st.lists(st.one_of(st.integers(3, 258), st.integers(0, tok.vocab_size - 1), special),
                             max_size=60))
    assert "".join(_stream(tok, ids, data.draw(st.integers(2, 12)))) == tok.decode(ids)


def test_stream_window_stays_bounded(tok):
    # long generations must not re-decode everything: pathological byte runs included
    runs = [[3 + 0xE6, 3 + 0x97] * 300, [3 + 0xF0] * 600, [1] * 600, tok.encode("ab 日本 " * 200)]
    for ids in runs:
        dec, printed, widest = StreamDecoder(tok), "", 0
        for t in ids:
            printed += dec.push(t)
            widest = max(widest, len(dec._window))
        assert printed + dec.flush() == tok.decode(ids)
        assert widest <= dec.max_window


def test_stream_restarts_after_flush(tok):
    dec = StreamDecoder(tok)
    a, b = tok.encode("Hello there"), tok.encode("General Kenobi")
    first = "".join(dec.push(t) for t in a) + dec.flush()
    second = "".join(dec.push(t) for t in b) + dec.flush()
    assert (first, second) == (tok.decode(a), tok.decode(b))


def test_stream_rejects_bad_id(tok):
    with pytest.raises(TokenizerError):
        StreamDecoder(tok).push(tok.vocab_size)


def test_safe_boundaries_inside_byte_runs(llama2):
    # the window may restart only where no UTF-8 sequence of byte pieces spans the cut
    dec = StreamDecoder(llama2)
    b = [3 + x for x in "😀".encode()] + [3 + 0xE6, 3 + 0x41, 3 + 0xF0, 3 + 0xF0, 9038, 3 + 0xC3]
    dec._window = b
    safe = [dec._safe_boundary(i) for i in range(1, len(b) + 1)]
    # cut after:  F0     9F     98     80    E6 (then 'A': an error anyway)  A  F0 (then F0)  F0  Once  C3 (open)
    assert safe == [False, False, False, True, True, True, True, True, True, False]
