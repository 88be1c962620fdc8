"""Duplicate keys for examples: `exact_key` (byte-for-byte the same example) and `normalized_key`
(the same after collapsing whitespace and case), used by `unitune dedupe` and the validator.

Keys are 16-byte BLAKE2b digests, so a set of keys for a million examples stays small (~80 MB
of Python objects at worst), and are independent of the source format: the same conversation
written as ChatML or as ShareGPT has the same key. The source line number never takes part.
"""
from __future__ import annotations

from hashlib import blake2b

import orjson

from .example import Example, Message, PreferenceExample, has_non_text, text_of

_SEP = "\x1f"  # unit separator: cannot be confused with text in a sane dataset
_RS = "\x1e"


def _calls(msg: Message) -> list | None:
    calls = msg.tool_calls
    if not calls:
        return None
    return [(c.id, c.type, c.name, c.arguments) for c in calls]


def _exact_msgs(messages: list[Message]) -> list:
    return [(m.role, m.content, m.name, _calls(m), m.tool_call_id, m.weight) for m in messages]


def _dumps_any(value) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits
        return repr(value).encode("utf-8", "surrogatepass")


def _digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def exact_key(example: Example | PreferenceExample) -> bytes:
    """Digest of everything that makes an example what it is (not its line number)."""
    if isinstance(example, PreferenceExample):
        payload = ("P", _exact_msgs(example.prompt), _exact_msgs(example.chosen),
                   _exact_msgs(example.rejected), example.tools)
    else:
        payload = ("E", _exact_msgs(example.messages), example.tools,
                   example.parallel_tool_calls)
    return _digest(_dumps_any(payload))


_LONG = 1 << 16


def normalize_text(text: str) -> str:
    """Collapse every run of whitespace to one space, strip the ends and lower-case."""
    return " ".join(text.split()).lower()


def _normalized_long(text: str) -> str:
    """`normalize_text(text)` for a text longer than `_LONG`, in bounded memory: the same
    string when it is at most `_LONG` characters, else a digest of it (`\x00` + hex), computed
    chunk by chunk. (`split` on 20 MB of words makes a string object per word: ~200 MB.)"""
    h = blake2b(digest_size=16)
    kept: list[str] | None = []  # the normalized text while it is short
    size = 0
    started = space = False
    i, n = 0, len(text)
    while i < n:
        end = min(i + _LONG, n)
        if end < n:  # cut after a whitespace, so no word (and no case context) straddles chunks
            j = end
            while j > end - 4096 and not text[j - 1].isspace():
                j -= 1
            if j > end - 4096:
                end = j
        chunk = text[i:end]
        i = end
        words = chunk.split()
        if not words:
            space = True
            continue
        piece = " ".join(words).lower()
        if started and (space or chunk[0].isspace()):
            piece = " " + piece
        h.update(piece.encode("utf-8", "surrogatepass"))
        size += len(piece)
        if kept is not None:
            kept.append(piece)
            if size > _LONG:
                kept = None
        started = True
        space = chunk[-1].isspace()
    if kept is not None:
        return "".join(kept)
    return "\x00" + h.hexdigest()


def _norm_msgs(messages: list[Message], out: list[str]) -> None:
    for m in messages:
        content = m.content
        text = content if isinstance(content, str) else text_of(content)
        out.append(m.role)
        out.append(" ".join(text.split()).lower() if len(text) <= _LONG else
                   _normalized_long(text))
        if type(content) is list and has_non_text(content):
            # the same words about a different image are not a duplicate
            media = [p for p in content if isinstance(p, dict) and "text" not in p]
            out.append(_dumps_any(media).decode("utf-8", "replace"))
        if m.tool_calls:
            for c in m.tool_calls:
                out.append(c.name)
                args = c.arguments
                if isinstance(args, str):
                    out.append(" ".join(args.split()).lower() if len(args) <= _LONG else
                               _normalized_long(args))
                else:
                    out.append(str(args))
        out.append(_RS)


def normalized_parts(example: Example | PreferenceExample) -> list[str]:
    """The roles and whitespace/case-normalized texts that define a normalized duplicate (names,
    ids, weights ignored). `normalized_key` digests them; the validator hashes the same list."""
    parts: list[str] = []
    if type(example) is PreferenceExample:
        parts.append("P")
        _norm_msgs(example.prompt, parts)
        parts.append("C")
        _norm_msgs(example.chosen, parts)
        parts.append("R")
        _norm_msgs(example.rejected, parts)
    else:
        parts.append("E")
        _norm_msgs(example.messages, parts)
    return parts


def normalized_key(example: Example | PreferenceExample) -> bytes:
    """Digest of `normalized_parts`.

    Two examples with the same normalized key say the same thing to the model; training on both
    mostly over-weights that example.
    """
    return _digest(_SEP.join(normalized_parts(example)).encode("utf-8", "surrogatepass"))
