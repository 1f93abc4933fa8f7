"""Completion text as the reward terms see it (TRL passes strings or lists of chat messages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _content(message: Any) -> str:
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def completion_text(completion: Any) -> str:
    """A plain string as is; a conversation: the last assistant message's content (else the last message's)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion)
    if isinstance(completion, Sequence) and completion:
        assistant = [m for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
        return _content(assistant[-1] if assistant else completion[-1])
    return ""


def completion_texts(completions: Sequence[Any] | None) -> list[str]:
    if completions is None:
        raise ValueError("reward functions need `completions`")
    return [completion_text(c) for c in completions]
