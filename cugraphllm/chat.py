"""The LLaMA-2 chat template, as Meta's reference `chat_completion` formats a dialog.

A dialog is an optional system message, then user and assistant messages alternating, ending with a user one.
The system text is merged into the first user message between `<<SYS>>` tags. Each finished exchange becomes
    BOS + encode("[INST] {user} [/INST] {answer} ") + EOS
and the last user message becomes
    BOS + encode("[INST] {user} [/INST]")
with every message `strip()`ped. Each exchange is encoded on its own, so the ids differ from encoding the
concatenated string: use `dialog_tokens`, not `encode(dialog_text)`.
"""
from __future__ import annotations

from typing import Sequence

from .errors import ConfigError

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
SPECIAL_TAGS = (B_INST, E_INST, "<<SYS>>", "<</SYS>>")
ROLES = ("system", "user", "assistant")


def dialog_segments(messages: Sequence[dict]) -> list[tuple[str, bool]]:
    """The text of each exchange and whether it ends with EOS (every one but the last). Each gets a BOS."""
    turns = _validated(messages)
    if turns[0]["role"] == "system":
        system, first = turns[0]["content"], turns[1]["content"]
        turns = [{"role": "user", "content": B_SYS + system + E_SYS + first}] + turns[2:]
    users, answers = turns[0::2], turns[1::2]
    segments = [(f"{B_INST} {u['content'].strip()} {E_INST} {a['content'].strip()} ", True)
                for u, a in zip(users, answers)]
    segments.append((f"{B_INST} {users[-1]['content'].strip()} {E_INST}", False))
    return segments


def dialog_tokens(tokenizer, messages: Sequence[dict]) -> list[int]:
    """Prompt ids of a dialog (see the module doc); the model's reply follows them."""
    ids: list[int] = []
    for text, eos in dialog_segments(messages):
        ids += tokenizer.encode(text, bos=True, eos=eos)
    return ids


format_dialog = dialog_tokens  # the name DESIGN.md's module map uses


def has_special_tags(messages: Sequence[dict]) -> bool:
    """True when a message contains a template tag (Meta's reference refuses such dialogs; we only report it)."""
    return any(tag in m.get("content", "") for m in messages for tag in SPECIAL_TAGS)


def _validated(messages: Sequence[dict]) -> list[dict]:
    """Check shape and role order: [system], user, (assistant, user)*."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ConfigError("chat: a dialog is a non-empty list of {'role', 'content'} messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ConfigError(f"chat: message {i} must be a dict with role in {ROLES} and str content, got {m!r:.80}")
    turns = list(messages)
    start = 1 if turns[0]["role"] == "system" else 0
    for i, m in enumerate(turns[start:], start):
        want = "user" if (i - start) % 2 == 0 else "assistant"
        if m["role"] != want:
            raise ConfigError(f"chat: message {i} has role {m['role']!r}, expected {want!r} "
                              "(order: optional system, then user and assistant alternating)")
    if turns[-1]["role"] != "user":
        raise ConfigError(f"chat: the dialog must end with a user message, not {turns[-1]['role']!r}")
    return turns
