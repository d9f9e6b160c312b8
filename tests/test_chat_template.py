"""LLaMA-2 chat template: Meta's chat_completion strings and ids, with the real LLaMA-2 tokenizer."""
import pytest

from cugraphllm.chat import (B_INST, B_SYS, E_INST, E_SYS, dialog_segments, dialog_tokens, format_dialog,
                             has_special_tags)
from cugraphllm.errors import ConfigError, CugraphError
from cugraphllm.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok(llama2_tokenizer_dir):
    return Tokenizer.load(llama2_tokenizer_dir / "tokenizer.model")


def msg(role, content):
    return {"role": role, "content": content}


def test_constants():
    assert (B_INST, E_INST) == ("[INST]", "[/INST]")
    assert (B_SYS, E_SYS) == ("<<SYS>>\n", "\n<</SYS>>\n\n")


def test_single_user_ids(tok):
    # "▁[" "INST" "]" "▁Hello" "▁[" "/" "INST" "]": the ids every LLaMA-2 chat prompt starts with
    assert dialog_tokens(tok, [msg("user", "  Hello \n")]) == [1, 518, 25580, 29962, 15043, 518, 29914, 25580, 29962]


def test_system_merged_into_first_user(tok):
    dialog = [msg("system", "You are a pirate."), msg("user", "Hi")]
    assert dialog_segments(dialog) == [("[INST] <<SYS>>\nYou are a pirate.\n<</SYS>>\n\nHi [/INST]", False)]
    assert dialog_tokens(tok, dialog) == [
        1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 3492, 526, 263, 21625, 403, 29889, 13,
        29966, 829, 14816, 29903, 6778, 13, 13, 18567, 518, 29914, 25580, 29962]


def test_multi_turn_strings_and_ids(tok):
    dialog = [msg("system", " Be brief. "), msg("user", "Hi "), msg("assistant", " Arr! "),
              msg("user", "Where is the gold?"), msg("assistant", "Buried.\n"), msg("user", "\nWhere?")]
    first = "[INST] <<SYS>>\n Be brief. \n<</SYS>>\n\nHi [/INST] Arr! "  # the merged text is stripped as a whole
    second = "[INST] Where is the gold? [/INST] Buried. "
    last = "[INST] Where? [/INST]"
    assert dialog_segments(dialog) == [(first, True), (second, True), (last, False)]
    want = [1] + tok.encode(first, bos=False) + [2] + [1] + tok.encode(second, bos=False) + [2] + \
        [1] + tok.encode(last, bos=False)
    got = dialog_tokens(tok, dialog)
    assert got == want
    assert got.count(1) == 3 and got.count(2) == 2 and got[-4:] == [518, 29914, 25580, 29962]
    # each exchange is encoded on its own: not the same as encoding the joined text
    assert got != tok.encode(first + second + last)
    assert format_dialog(tok, dialog) == got


def test_exchange_ends_with_answer_then_space(tok):
    ids = dialog_tokens(tok, [msg("user", "a"), msg("assistant", "b"), msg("user", "c")])
    first = ids[:ids.index(2) + 1]
    assert tok.decode(first) == "[INST] a [/INST] b " and first[-2:] == [29871, 2]  # "▁" then EOS


def test_without_system_no_sys_tags():
    segs = dialog_segments([msg("user", "x"), msg("assistant", "y"), msg("user", "z")])
    assert all("<<SYS>>" not in s for s, _ in segs) and [e for _, e in segs] == [True, False]


@pytest.mark.parametrize("dialog, words", [
    ([], "non-empty"),
    ("hello", "non-empty"),
    ([msg("assistant", "hi")], "expected 'user'"),
    ([msg("user", "a"), msg("user", "b")], "expected 'assistant'"),
    ([msg("user", "a"), msg("assistant", "b")], "end with a user"),
    ([msg("system", "s")], "end with a user"),
    ([msg("user", "a"), msg("system", "s"), msg("user", "b")], "expected 'assistant'"),
    ([msg("system", "s"), msg("system", "t"), msg("user", "b")], "expected 'user'"),
    ([msg("user", "a"), msg("assistant", "b"), msg("assistant", "c")], "expected 'user'"),
    ([{"role": "user"}], "str content"),
    ([{"role": "bot", "content": "x"}], "role in"),
    ([msg("user", 3)], "str content"),
    (["user: hi"], "dict"),
])
def test_bad_dialogs(tok, dialog, words):
    with pytest.raises(ConfigError) as err:
        dialog_tokens(tok, dialog)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, CugraphError)


def test_special_tags_reported():
    assert has_special_tags([msg("user", "please [INST] obey")])
    assert has_special_tags([msg("system", "<</SYS>>"), msg("user", "x")])
    assert not has_special_tags([msg("user", "plain [text]")])
