"""Issue 12: property test over mutated chat, Alpaca and DPO lines (and the mistakes people make:
blank text, unknown part types, mistyped values, misspelled keys, null weights, broken bytes).

For any file of such lines: no exception escapes `validate_file` or `convert_file`, every problem
names its line, and whatever `convert` writes — for every target — passes `validate`."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitune.data.convert import TARGETS, convert_file
from unitune.data.report import Report
from unitune.data.validate import validate_file

BASE = [
    {"messages": [{"role": "system", "content": "你是客服。"},
                  {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "Hello! 您好", "weight": 1}]},
    {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                  {"role": "assistant", "content": "A cat.", "name": "bot"}]},
    {"messages": [{"role": "user", "content": "weather?"},
                  {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                   "function": {"name": "w", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                  {"role": "assistant", "content": "Sunny."}],
     "tools": [{"type": "function", "function": {"name": "w"}}]},
    {"instruction": "Translate", "input": "thank you", "output": "谢谢", "system": "Be brief.",
     "history": [["hi", "hello"]]},
    {"instruction": "Say hi", "output": "Hello"},
    {"input": {"messages": [{"role": "user", "content": "q"}]},
     "preferred_output": [{"role": "assistant", "content": "good"}],
     "non_preferred_output": [{"role": "assistant", "content": "bad"}]},
    {"prompt": "q", "chosen": "good", "rejected": "bad"},
    {"prompt": [{"role": "user", "content": "q"}],
     "chosen": [{"role": "assistant", "content": "good"}],
     "rejected": [{"role": "assistant", "content": "bad", "weight": 0}]},
]
# other input formats, mutated the same way
OTHER = [
    {"conversations": [{"from": "system", "value": "Be nice."}, {"from": "human", "value": "hi"},
                       {"from": "gpt", "value": "hello"}]},
    {"prompt": "Say hi", "completion": "Hi!"},
    {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Be brief."}],
     "messages": [{"role": "user", "content": [{"text": "look"},
                                               {"image": {"format": "png",
                                                          "source": {"bytes": "AAAA"}}}]},
                  {"role": "assistant", "content": [{"text": "A cat."}]}]},
    {"systemInstruction": {"parts": [{"text": "Be brief."}]},
     "contents": [{"role": "user", "parts": [{"text": "hi"}, {"fileData": {
         "mimeType": "image/png", "fileUri": "gs://b/c.png"}}]},
                  {"role": "model", "parts": [{"text": "hello"}]}]},
]

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["", " ", " \n\t", "user", "assistant", "tool", "system", "bot", "\u0000",
                     "<|endoftext|>", "图片", "text", "image_url", "banana", "image"]),
    st.sampled_from([{"type": "banana", "banana": 1}, {"type": "image_url", "image_url": 5},
                     {"type": "text", "text": "  "}, {"type": "text"}, {"text": "untyped"},
                     {"type": "image", "image": {"format": "png"}}, {"url": 3},
                     [{"type": "image_url", "image_url": {"url": "https://x/z.png"}}],
                     [{"type": "fileData", "fileData": {"fileUri": "gs://b/f.png"}}]]))
value = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                               st.dictionaries(st.text(max_size=6), c,
                                                               max_size=3)),
                     max_leaves=5)
TYPOS = ["inpqt", "wieght", "contnet", "instructon", "chosne", "Role", "system_prompt", "id"]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw, base) -> bytes:
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "rename"]))
        if action == "replace":
            parent[path[-1]] = json.loads(json.dumps(draw(value)))  # no shared objects
        elif action == "delete":
            del parent[path[-1]]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(TYPOS))] = parent.pop(path[-1])
        elif isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[path[-1]])))
    line = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    kind = draw(st.sampled_from(["json"] * 6 + ["truncate", "bytes"]))
    if kind == "truncate":
        line = line[:draw(st.integers(0, len(line)))]
    elif kind == "bytes":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at:]
    return line.replace(b"\n", b" ").replace(b"\r", b" ")


@st.composite
def files(draw) -> list[bytes]:
    # one family per file (a file holds one format): chat, alpaca or preference lines
    family = draw(st.sampled_from([BASE[0:3], BASE[3:5], BASE[5:8], BASE[0:3], BASE[3:5],
                                   BASE[5:8], OTHER[0:1], OTHER[1:2], OTHER[2:3], OTHER[3:4]]))
    return draw(st.lists(st.sampled_from(family).flatmap(mutated), min_size=1, max_size=5))


FILE_LEVEL = {"empty_file"}


def _lines_ok(problems) -> None:
    for p in problems:
        assert p.line is not None or p.code in FILE_LEVEL, p


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files())
def test_validate_and_convert_never_escape_and_outputs_validate(lines):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_bytes(b"\n".join(lines) + b"\n")
        report = validate_file(src)
        assert isinstance(report, Report)
        _lines_ok(report.problems)
        for target in TARGETS:
            out = Path(tmp) / f"out.{target}.jsonl"
            result = convert_file(src, target, out)
            _lines_ok(result.errors + result.warnings)
            assert result.written + len({p.line for p in result.errors}) >= result.examples
            if result.written:
                back = validate_file(out)
                assert back.ok, (target, [p.to_dict() for p in back.errors],
                                 out.read_text("utf-8"))
                assert back.examples == result.written
