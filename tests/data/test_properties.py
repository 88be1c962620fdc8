"""Property tests: round trips through every format that can hold an example, and random
mutations of valid lines always give a report, never an exception."""
import json
import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitune.data.convert import TARGETS, from_format, to_format
from unitune.data.dataset import load_examples
from unitune.data.example import Example, Message, PreferenceExample, ToolCall
from unitune.data.formats import detect_format, normalize
from unitune.data.keys import exact_key, normalized_key
from unitune.data.report import Report

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

text = st.text(min_size=1, max_size=40).filter(lambda t: not t.isspace())  # blank text is invalid


@st.composite
def plain_chats(draw, max_pairs=4, system=True):
    """System (optional) + strictly alternating user/assistant turns of plain strings."""
    msgs = []
    if system and draw(st.booleans()):
        msgs.append(Message("system", draw(text)))
    for _ in range(draw(st.integers(1, max_pairs))):
        msgs.append(Message("user", draw(text)))
        msgs.append(Message("assistant", draw(text)))
    return Example(msgs)


@st.composite
def rich_chats(draw):
    """Everything OpenAI chat data can hold: tools, tool calls, names, weights, parts."""
    ex = draw(plain_chats())
    msgs = ex.messages
    i = draw(st.integers(0, len(msgs) - 1))
    if msgs[i].role == "assistant" and draw(st.booleans()):
        msgs[i].weight = draw(st.sampled_from([0, 1]))
    if msgs[i].role == "user" and draw(st.booleans()):
        msgs[i].name = draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True))
        msgs[i].content = [{"type": "text", "text": draw(text)},
                           {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    tools = None
    if draw(st.booleans()):
        call = ToolCall(draw(st.from_regex(r"call_[a-z0-9]{1,6}", fullmatch=True)), "lookup",
                        json.dumps({"q": draw(text)}))
        at = draw(st.integers(0, len(msgs)))
        if at < len(msgs) and msgs[at].role == "system":
            at += 1
        msgs[at:at] = [Message("assistant", None, tool_calls=[call]),
                       Message("tool", draw(text), tool_call_id=call.id)]
        tools = [{"type": "function", "function": {"name": "lookup"}}]
    return Example(msgs, tools, draw(st.sampled_from([None, True, False])))


def roundtrip(example, target):
    data, warnings = to_format(example, target)
    assert data is not None, warnings
    obj = orjson.loads(orjson.dumps(data))
    problems = []
    back = normalize(obj, detect_format(obj), 0, problems)
    assert [p for p in problems if p.severity == "error"] == [], problems
    # the same through the public inverse, told the target's name
    again, _ = from_format(obj, target)
    assert again == back
    return back, warnings


@SETTINGS
@given(rich_chats(), st.sampled_from(["messages", "openai"]))
def test_openai_formats_round_trip_everything(example, target):
    back, warnings = roundtrip(example, target)
    assert warnings == []
    assert back == example


@SETTINGS
@given(plain_chats(), st.sampled_from(["bedrock-converse", "bedrock-claude", "vertex", "alpaca"]))
def test_vendor_formats_round_trip_plain_chats(example, target):
    back, warnings = roundtrip(example, target)
    assert back.messages == example.messages
    assert [w.code for w in warnings if w.code != "multi_turn_history"] == []


@SETTINGS
@given(plain_chats(max_pairs=1, system=False))
def test_prompt_completion_round_trips_single_turns(example):
    back, warnings = roundtrip(example, "bedrock-prompt-completion")
    assert back.messages == example.messages and warnings == []


@SETTINGS
@given(plain_chats(), st.sampled_from(["bedrock-converse", "vertex", "alpaca",
                                       "bedrock-prompt-completion", "bedrock-claude"]))
def test_lossy_conversions_always_warn(example, target):
    example.messages[-1].weight = 0
    _, warnings = to_format(example, target)
    assert "lossy_weight" in {w.code for w in warnings}


@SETTINGS
@given(plain_chats(max_pairs=2), text, text,
       st.sampled_from(["openai", "openai-dpo", "trl-dpo"]))
def test_preference_round_trip(chat, good, bad, target):
    prompt = chat.messages[:-1]
    pref = PreferenceExample(prompt, [Message("assistant", good)], [Message("assistant", bad)])
    back, warnings = roundtrip(pref, target)
    assert warnings == [] and back == pref


# ---------------------------------------------------------------------------------------------
# random mutations never raise

VALID_LINES = [
    {"messages": [{"role": "system", "content": "你是客服。"}, {"role": "user", "content": "退款？"},
                  {"role": "assistant", "content": "已退回。", "weight": 1}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"},
        {"role": "assistant", "content": "done"}], "tools": [{"type": "function"}]},
    {"instruction": "Translate", "input": "你好", "output": "Hello", "history": [["a", "b"]]},
    {"prompt": "p", "completion": "c"},
    {"conversations": [{"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]},
    {"input": {"messages": [{"role": "user", "content": "q"}]},
     "preferred_output": [{"role": "assistant", "content": "g"}],
     "non_preferred_output": [{"role": "assistant", "content": "b"}]},
    {"prompt": "q", "chosen": "g", "rejected": "b"},
    {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}],
     "messages": [{"role": "user", "content": [{"text": "u"}]},
                  {"role": "assistant", "content": [{"text": "a"}]}]},
    {"system": "s", "messages": [{"role": "user", "content": "u"},
                                 {"role": "assistant", "content": "a"}]},
    {"systemInstruction": {"parts": [{"text": "s"}]},
     "contents": [{"role": "user", "parts": [{"text": "u"}]},
                  {"role": "model", "parts": [{"text": "a"}]}]},
]

JUNK = [None, 0, -1, 1.5, True, "", "x", "user", [], {}, [None], [{}], {"text": 3},
        {"role": None}, [{"role": "user"}], "\u0000", 10 ** 30]


def mutate(obj, rnd: random.Random, depth=0):
    """Change one random place in a JSON value: drop a key, replace a value, retype it."""
    if isinstance(obj, dict) and obj:
        key = rnd.choice(list(obj))
        op = rnd.random()
        out = dict(obj)
        if op < 0.25:
            del out[key]
        elif op < 0.5 or depth > 4:
            out[key] = rnd.choice(JUNK)
        elif op < 0.55:
            out[rnd.choice(["extra", "weight", "role", "content", "messages"])] = rnd.choice(JUNK)
        else:
            out[key] = mutate(obj[key], rnd, depth + 1)
        return out
    if isinstance(obj, list) and obj:
        i = rnd.randrange(len(obj))
        out = list(obj)
        op = rnd.random()
        if op < 0.2:
            del out[i]
        elif op < 0.35:
            out.insert(i, rnd.choice(JUNK))
        elif op < 0.45:
            out = rnd.choice(JUNK)
        else:
            out[i] = mutate(obj[i], rnd, depth + 1)
        return out
    return rnd.choice(JUNK)


def _to_bytes(obj, rnd):
    raw = json.dumps(obj, ensure_ascii=False).encode()
    op = rnd.random()
    if op < 0.1:
        return raw[: rnd.randrange(len(raw))]  # truncated line
    if op < 0.2:
        at = rnd.randrange(len(raw))
        return raw[:at] + rnd.choice([b"\xff", b"\xc3", b"\xe4\xb8", b"\x00"]) + raw[at:]
    return raw


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_random_mutations_never_raise(tmp_path, rnd, n_mutations):
    base = rnd.choice(VALID_LINES)
    lines = [json.dumps(base, ensure_ascii=False).encode()]
    for _ in range(3):
        obj = base
        for _ in range(n_mutations):
            obj = mutate(obj, rnd)
        lines.append(_to_bytes(obj, rnd))
    f = tmp_path / "m.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    report = Report()
    examples = list(load_examples(f, report=report))  # must not raise
    assert report.examples == sum(1 for line in lines if line.strip())
    assert len(examples) >= 1  # the untouched first line always survives
    bad_lines = {p.line for p in report.problems if p.severity == "error"}
    assert all(e.line not in bad_lines for e in examples)
    for p in report.problems:
        assert p.code and p.message and p.line and p.severity in ("error", "warning")
    for ex in examples:  # whatever normalizes can be keyed and converted without raising
        exact_key(ex), normalized_key(ex)
        for target in TARGETS:
            to_format(ex, target)
