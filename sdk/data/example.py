"""The canonical example types every input format is normalized into, and every converter reads.

Plain dataclasses (not pydantic): the dataset engine builds hundreds of thousands of them.
`content` is a string, or a list of parts (`{"type": "text", "text": ...}`,
`{"type": "image_url", ...}`) when the source held multimodal content, or None (e.g. an assistant
turn that only calls tools).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

Content = Union[str, list, None]

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class ToolCall:
    id: str | None
    name: str
    arguments: str  # JSON text, as OpenAI sends it
    type: str = "function"


@dataclass
class Message:
    role: str
    content: Content = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    weight: int | None = None  # 0/1 on assistant turns (OpenAI); None = trained


@dataclass
class Example:
    """A supervised chat example (every SFT format ends up here)."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    parallel_tool_calls: bool | None = None
    line: int = 0  # 1-based line in the source file


@dataclass
class PreferenceExample:
    """A preference pair for DPO: a shared prompt and a chosen / rejected assistant reply."""

    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tools: list[dict[str, Any]] | None = None
    line: int = 0


AnyExample = Union[Example, PreferenceExample]


def text_of(content: Content) -> str:
    """The text of a message's content (text parts joined); '' for None."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        if isinstance(part, dict):
            if isinstance(part.get("text"), str):
                out.append(part["text"])
        elif isinstance(part, str):
            out.append(part)
    return "".join(out)


def has_non_text(content: Content) -> bool:
    """True when content holds parts other than text (images, files, audio)."""
    if not isinstance(content, list):
        return False
    return any(isinstance(p, dict) and p.get("type", "text") != "text" and "text" not in p
               for p in content)
