"""Property tests: random mutations of valid lines always give a report, never an exception,
and the validator's token totals agree with `tokens.count_example` on whatever survives."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitune.data.report import Report
from unitune.data.validate import validate_file

TARGETS = ["openai:gpt-4.1-mini-2025-04-14", "bedrock:amazon.nova-lite-v1:0:300k",
           "bedrock:anthropic.claude-3-haiku-20240307-v1:0:200k", "vertex:gemini-2.5-flash",
           "bedrock:meta.llama3-1-8b-instruct-v1:0:128k"]

BASE = [
    {"messages": [{"role": "system", "content": "你是客服。"}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "Hello! 您好", "weight": 1}]},
    {"messages": [{"role": "user", "content": "weather?"},
                  {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                   "function": {"name": "w", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                  {"role": "assistant", "content": "Sunny."}],
     "tools": [{"type": "function", "function": {"name": "w"}}]},
    {"input": {"messages": [{"role": "user", "content": "q"}]},
     "preferred_output": [{"role": "assistant", "content": "good"}],
     "non_preferred_output": [{"role": "assistant", "content": "bad"}]},
]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                      st.text(max_size=12),
                      st.sampled_from(["user", "assistant", "tool", "system", "Assistant:",
                                       "\u0000", "<|endoftext|>", "图片"]))
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), c,
                                                                         max_size=3)),
                          max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_line(draw) -> bytes:
    obj = json.loads(json.dumps(draw(st.sampled_from(BASE))))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "replace":
            parent[path[-1]] = draw(json_value)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(parent[path[-1]])
    line = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    kind = draw(st.sampled_from(["json", "json", "json", "truncate", "bytes"]))
    if kind == "truncate":
        line = line[:draw(st.integers(0, len(line)))]
    elif kind == "bytes":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(min_size=1, max_size=4)) + line[at:]
    return line.replace(b"\n", b" ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_line(), min_size=1, max_size=6), st.sampled_from([None, 3]))
def test_mutations_always_produce_a_report(lines, cap):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.jsonl"
        p.write_bytes(b"\n".join(lines) + b"\n")
        report = validate_file(p, TARGETS, max_problems=cap)
    assert isinstance(report, Report)
    d = report.to_dict()
    json.dumps(d)  # serializable
    s = d["summary"]
    assert s["errors"] + s["warnings"] == sum(s["by_code"].values())
    if cap is not None:
        assert len(report.problems) <= cap
    for t in report.stats["tokens"].values():
        assert t["total"] >= 0 and t["max"] >= t["p50"] >= 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_line(), min_size=1, max_size=5))
def test_validator_totals_equal_count_example(lines):
    from unitune.catalog import find_model
    from unitune.data.dataset import load_examples
    from unitune.tokens import count_example

    info = find_model("openai", "gpt-4.1-mini-2025-04-14")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.jsonl"
        p.write_bytes(b"\n".join(lines) + b"\n")
        report = validate_file(p, [info])
        expect = sum(count_example(ex, info) for ex in load_examples(p, report=Report()))
    assert report.stats["tokens"][f"openai:{info.model}"]["total"] == expect


_TEXTS = ["Hello there", "hello  there", " HELLO there\n", "你好 世界", "你好　世界", "bye", "Bye"]


@st.composite
def variant(draw) -> dict:
    """Small examples that often repeat, exactly or up to whitespace/case/names/weights."""
    kind = draw(st.sampled_from(["chat", "chat", "chat", "pref"]))
    if kind == "pref":
        return {"input": {"messages": [{"role": "user", "content": draw(st.sampled_from(_TEXTS))}]},
                "preferred_output": [{"role": "assistant", "content": draw(st.sampled_from(_TEXTS))}],
                "non_preferred_output": [{"role": "assistant", "content": "no"}]}
    msgs = []
    for role in draw(st.sampled_from([["user", "assistant"], ["system", "user", "assistant"]])):
        m = {"role": role, "content": draw(st.sampled_from(_TEXTS))}
        if role == "assistant" and draw(st.integers(0, 3)) == 0:
            m["weight"] = draw(st.sampled_from([0, 1]))
        if role == "user" and draw(st.integers(0, 5)) == 0:
            m["name"] = "bob"
        if role == "user" and draw(st.integers(0, 5)) == 0:
            m["content"] = [{"type": "text", "text": m["content"]}]
        msgs.append(m)
    if draw(st.integers(0, 5)) == 0:
        msgs[-1] = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{ }"}}]}
    return {"messages": msgs}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(variant(), min_size=2, max_size=16))
def test_duplicates_agree_with_keys_module(rows):
    """The validator's cheaper keys split duplicates exactly as unitune.data.keys does."""
    from unitune.data.dataset import load_examples
    from unitune.data.keys import exact_key, normalized_key

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.jsonl"
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                     encoding="utf-8")
        report = validate_file(p)
        exs = list(load_examples(p, report=Report()))
    exact_seen, norm_seen, want_dup, want_near = {}, {}, {}, {}
    for ex in exs:
        e, n = exact_key(ex), normalized_key(ex)
        if e in exact_seen:
            want_dup[ex.line] = exact_seen[e]
            continue
        exact_seen[e] = ex.line
        if n in norm_seen:
            want_near[ex.line] = norm_seen[n]
        else:
            norm_seen[n] = ex.line
    got_dup = {p.line: int(p.message.rsplit(" ", 1)[1]) for p in report.problems
               if p.code == "duplicate_example"}
    got_near = {p.line: int(p.message.split("line ")[1].split()[0]) for p in report.problems
                if p.code == "near_duplicate"}
    assert got_dup == want_dup and got_near == want_near
