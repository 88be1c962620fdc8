"""Lenient parsing of a generator's answer into samples.

Structured output (a JSON schema) makes the answer exact where the vendor has it; everywhere
else models wrap JSON in code fences, add a sentence before it, return a bare list or one object
per line, or use other key names. `parse_samples` accepts all of those; what it cannot read is
counted as `unparsable`, never guessed at.
"""
from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|jsonl)?\s*\n?(.*?)```", re.S | re.I)
ALIASES = {
    "instruction": ("instruction", "question", "prompt", "query", "task", "指令", "问题"),
    "input": ("input", "context", "输入"),
    "output": ("output", "answer", "response", "completion", "reply", "输出", "回答"),
}


def _sample(obj: Any) -> dict[str, str] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("messages"), list):  # a chat sample
        msgs = [m for m in obj["messages"] if isinstance(m, dict)]
        users = [m.get("content") for m in msgs if m.get("role") == "user"]
        bots = [m.get("content") for m in msgs if m.get("role") == "assistant"]
        if users and bots and isinstance(users[-1], str) and isinstance(bots[-1], str):
            return {"instruction": users[-1], "input": "", "output": bots[-1]}
        return None
    out: dict[str, str] = {}
    for key, names in ALIASES.items():
        for name in names:
            value = obj.get(name)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[key] = str(value)
                break
    if "instruction" not in out or "output" not in out:
        return None
    out.setdefault("input", "")
    return out


def _items(doc: Any) -> list[Any] | None:
    if isinstance(doc, dict):
        for key in ("samples", "data", "examples", "items"):
            if isinstance(doc.get(key), list):
                return doc[key]
        return [doc]
    if isinstance(doc, list):
        return doc
    return None


def _decode_anywhere(text: str) -> Any:
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "[{":
            try:
                obj, _end = dec.raw_decode(text, i)
            except ValueError:
                continue
            if _items(obj):
                return obj
    return None


def parse_samples(text: str) -> tuple[list[dict[str, str]], int]:
    """(samples, unparsable): the samples read from `text` and how many items were not samples
    (an answer with no JSON at all counts as one)."""
    text = (text or "").strip()
    if not text:
        return [], 1
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        chunk = chunk.strip()
        try:
            doc: Any = json.loads(chunk)
        except ValueError:
            doc = None
        items = _items(doc) if doc is not None else None
        if items is None:
            lines = [ln.strip().rstrip(",") for ln in chunk.splitlines() if ln.strip()]
            parsed = []
            for ln in lines:
                try:
                    parsed.append(json.loads(ln))
                except ValueError:
                    parsed = []
                    break
            items = parsed or None
        if items is None:
            doc = _decode_anywhere(chunk)
            items = _items(doc) if doc is not None else None
        if items:
            samples = [s for s in (_sample(x) for x in items) if s is not None]
            return samples, len(items) - len(samples)
    return [], 1
