"""Every check: proven to fire on the broken case and to stay quiet on valid data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.catalog import DataRules, Limits, ModelInfo
from unitune.data.validate import validate_file
from unitune.errors import SpecError

OPENAI = "openai:gpt-4.1-mini-2025-04-14"
NOVA = "bedrock:amazon.nova-lite-v1:0:300k"
CLAUDE = "bedrock:anthropic.claude-3-haiku-20240307-v1:0:200k"
LLAMA31 = "bedrock:meta.llama3-1-8b-instruct-v1:0:128k"
GEMINI = "vertex:gemini-2.5-flash"


def chat(i: int = 0, system: bool = True, **extra) -> dict:
    msgs = [{"role": "system", "content": "You are a support agent."}] if system else []
    msgs += [{"role": "user", "content": f"Where is order {i}?"},
             {"role": "assistant", "content": f"Order {i} ships tomorrow. 订单{i}明天发货。"}]
    return {"messages": msgs, **extra}


def write(tmp_path: Path, rows: list, name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    with open(p, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return p


def valid(n: int = 12) -> list:
    return [chat(i) for i in range(n)]


def codes(report, target: str | None = "any") -> list[str]:
    return [p.code for p in report.problems if target == "any" or p.target == target]


def run(tmp_path, rows, targets=(), **kw):
    return validate_file(write(tmp_path, rows), list(targets), **kw)


def model(**kw) -> ModelInfo:
    rules = kw.pop("rules", {})
    limits = kw.pop("limits", {})
    base = dict(backend="openai", model="test-model", family="test", tokenizer="o200k_base")
    base.update(kw)
    return ModelInfo(**base, rules=DataRules(format="openai", **rules), limits=Limits(**limits))


def test_valid_data_is_clean_for_generic_and_targets(tmp_path):
    r = run(tmp_path, valid(), [OPENAI, NOVA, GEMINI])
    assert r.problems == [] and r.ok
    assert r.stats["examples"] == 12 and r.stats["roles"] == {"system": 12, "user": 12,
                                                               "assistant": 12}
    assert set(r.stats["tokens"]) == {OPENAI, NOVA, GEMINI}


def test_empty_file(tmp_path):
    r = run(tmp_path, [])
    assert codes(r) == ["empty_file"] and not r.ok
    r = run(tmp_path, ["", "   "])  # blank lines only
    assert codes(r) == ["empty_file"]


def test_unknown_role(tmp_path):
    bad = chat(1)
    bad["messages"][1]["role"] = "robot"
    r = run(tmp_path, [chat(0), bad])
    p = [p for p in r.problems if p.code == "unknown_role"]
    assert len(p) == 1 and p[0].line == 2 and p[0].path == "messages[1].role"
    assert "robot" in p[0].message and p[0].hint


def test_no_assistant(tmp_path):
    r = run(tmp_path, [{"messages": [{"role": "user", "content": "hi"}]}, chat(1)])
    assert [(p.code, p.line) for p in r.problems] == [("no_assistant", 1)]


def test_bad_weight(tmp_path):
    on_user = chat(1)
    on_user["messages"][1]["weight"] = 1
    two = chat(2)
    two["messages"][2]["weight"] = 2
    ok = chat(3)
    ok["messages"][2]["weight"] = 0
    r = run(tmp_path, [on_user, two, ok])
    assert [(p.code, p.line, p.path) for p in r.problems] == [
        ("bad_weight", 1, "messages[1].weight"), ("bad_weight", 2, "messages[2].weight")]


def _tool_example(call_id="c1", answer_id="c1"):
    msgs = [{"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function", "function": {
                "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "content": "18C", **({"tool_call_id": answer_id} if answer_id else {})},
            {"role": "assistant", "content": "It is 18C."}]
    return {"messages": msgs,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]}


def test_orphan_tool_message(tmp_path):
    r = run(tmp_path, [_tool_example(), _tool_example(answer_id="zz"),
                       _tool_example(answer_id=None)])
    orphans = [p for p in r.problems if p.code == "orphan_tool_message"]
    assert [p.line for p in orphans] == [2, 3]
    assert orphans[0].path == "messages[2].tool_call_id" and "'zz'" in orphans[0].message
    assert {p.code for p in r.problems} == {"orphan_tool_message", "near_duplicate"}


def test_control_characters(tmp_path):
    bad = chat(1)
    bad["messages"][2]["content"] = "fine\u0007bell"
    tab = chat(2)
    tab["messages"][2]["content"] = "tab\tand\nnewline\r\n"
    r = run(tmp_path, [bad, tab])
    assert [(p.code, p.severity, p.line) for p in r.problems] == [
        ("control_characters", "warning", 1)]
    assert "U+0007" in r.problems[0].message


def test_exact_and_normalized_duplicates(tmp_path):
    near = chat(0)
    near["messages"][1]["content"] = "  WHERE is   order 0? "
    r = run(tmp_path, [chat(0), chat(1), chat(0), near])
    assert [(p.code, p.line, p.message) for p in r.problems] == [
        ("duplicate_example", 3, "exact duplicate of line 1"),
        ("near_duplicate", 4, "same as line 1 up to whitespace and case")]
    assert r.stats["duplicates"] == {"exact": 1, "normalized": 1}
    assert r.ok  # duplicates are warnings


def test_structural_problems_come_from_the_loader(tmp_path):
    r = run(tmp_path, [chat(0), "{not json", '["a list"]', {"messages": [{"role": "user"}]}])
    assert codes(r) == ["invalid_json", "not_an_object", "missing_field"]
    assert [p.line for p in r.problems] == [2, 3, 4]


# --- target checks ---------------------------------------------------------------------------


def test_min_and_max_examples(tmp_path):
    r = run(tmp_path, valid(5), [OPENAI, NOVA])
    assert sorted(codes(r)) == ["too_few_examples", "too_few_examples"]
    assert all(p.line is None and p.target for p in r.problems)
    m = model(limits={"max_examples": 3})
    r = run(tmp_path, valid(5), [m])
    assert codes(r) == ["too_many_examples"]
    assert codes(run(tmp_path, valid(3), [m])) == []


def test_tokens_per_example_truncated_or_rejected(tmp_path):
    long = chat(99)
    long["messages"][2]["content"] = "word " * 200
    trunc = model(limits={"tokens_per_example": 100, "truncates": True})
    rej = model(model="rejecting", limits={"tokens_per_example": 100, "truncates": False})
    r = run(tmp_path, [chat(0), long], [trunc, rej])
    got = [(p.code, p.severity, p.line, p.target) for p in r.problems]
    assert got == [("too_many_tokens", "warning", 2, "openai:test-model"),
                   ("too_many_tokens", "error", 2, "openai:rejecting")]
    assert "truncates" in r.problems[0].message and "rejects" in r.problems[1].message
    assert r.stats["tokens"]["openai:test-model"]["over_limit"] == 1


@pytest.mark.parametrize("roles,fires", [
    (["system", "user", "assistant"], False),
    (["user", "assistant", "user", "assistant"], False),
    (["assistant", "user", "assistant"], True),
    (["user", "user", "assistant"], True),
    (["user", "assistant", "user"], True),
    (["user", "system", "assistant"], True),
    (["user"], True),
])
def test_strict_alternation(tmp_path, roles, fires):
    msgs = [{"role": r, "content": f"{r} {i}"} for i, r in enumerate(roles)]
    rows = [{"messages": msgs}] + valid(9)
    strict = model(model="strict", rules={"strict_alternation": True})
    r = run(tmp_path, rows, [NOVA, strict, OPENAI, GEMINI])
    order = [p for p in r.problems if p.code == "role_order"]
    from unitune.catalog import find_model

    expect = {NOVA, "openai:strict"} | (
        {GEMINI} if find_model("vertex", "gemini-2.5-flash").rules.strict_alternation else set())
    assert ({p.target for p in order} == expect) if fires else not order
    assert all(p.line == 1 for p in order)


def test_nova_reserved_strings(tmp_path):
    bad = chat(1)
    bad["messages"][2]["content"] = "Sure. Assistant: here you go"
    r = run(tmp_path, [bad] + valid(9), [NOVA, OPENAI])
    rs = [p for p in r.problems if p.code == "reserved_string"]
    assert len(rs) == 1 and rs[0].target == NOVA and "'Assistant:'" in rs[0].message
    in_system = chat(1)
    in_system["messages"][0]["content"] = "You are a bot. [EOS]"
    r = run(tmp_path, [in_system] + valid(9), [NOVA])
    assert [(p.code, p.line) for p in r.problems] == [("reserved_string", 1)]


def test_features_a_target_cannot_take(tmp_path):
    weight0 = chat(2)
    weight0["messages"][2]["weight"] = 0
    image = chat(3)
    image["messages"][1]["content"] = [{"type": "text", "text": "what is this?"},
                                      {"type": "image_url", "image_url": {"url": "data:x"}}]
    r = run(tmp_path, [_tool_example(), weight0, image] + valid(9), [NOVA, OPENAI])
    feats = [(p.line, p.target) for p in r.problems if p.code == "unsupported_feature"]
    assert feats == [(1, NOVA), (2, NOVA), (3, NOVA), (3, OPENAI)]  # gpt-4.1-mini: no images
    msgs = [p.message for p in r.problems if p.code == "unsupported_feature"]
    assert "tool" in msgs[0] and "weight" in msgs[1] and "image" in msgs[2]


def test_dpo_needs_a_dpo_target(tmp_path):
    pair = {"input": {"messages": [{"role": "user", "content": "hi"}]},
            "preferred_output": [{"role": "assistant", "content": "Hello!"}],
            "non_preferred_output": [{"role": "assistant", "content": "what"}]}
    rows = [json.loads(json.dumps(pair).replace("hi", f"hi {i}")) for i in range(10)]
    r = run(tmp_path, rows, [OPENAI, NOVA])
    assert [p.target for p in r.problems if p.code == "unsupported_feature"] == [NOVA] * 10
    assert r.stats["preference_examples"] == 10


def test_claude_plain_string_content_and_extra_keys(tmp_path):
    parts = chat(1)
    parts["messages"][1]["content"] = [{"type": "text", "text": "Where is my order?"}]
    named = chat(2)
    named["messages"][1]["name"] = "alice"
    rows = [parts, named] + [chat(i) for i in range(3, 35)]
    r = run(tmp_path, rows, [CLAUDE, OPENAI])
    got = [(p.code, p.line, p.target) for p in r.problems]
    assert got == [("plain_string_content", 1, CLAUDE), ("dropped_field", 2, CLAUDE)]


def test_prompt_completion_targets_single_exchange_and_system(tmp_path):
    two = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    rows = [two] + [chat(i, system=(i == 1)) for i in range(1, 100)]
    r = run(tmp_path, rows, [LLAMA31])
    got = [(p.code, p.line) for p in r.problems]
    assert got == [("multi_turn", 1), ("unsupported_system", 2)]


def test_unknown_target_lists_known_models(tmp_path):
    with pytest.raises(SpecError) as exc:
        run(tmp_path, valid(), ["openai:gpt-9"])
    assert "gpt-9" in exc.value.message and "gpt-4.1-mini-2025-04-14" in exc.value.hint
    with pytest.raises(SpecError) as exc:
        run(tmp_path, valid(), ["nosuch:model"])
    assert "openai" in exc.value.hint
    with pytest.raises(SpecError):
        run(tmp_path, valid(), ["no-colon"])


def test_max_problems_caps_the_list_but_counts_everything(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(30)]
    r = run(tmp_path, rows, max_problems=5)
    assert len(r.problems) == 5
    s = r.summary()
    assert s["errors"] == 30 and s["by_code"]["no_assistant"] == 30 and s["omitted"] == 25
    assert not r.ok


def test_stats_are_exact_for_openai(tmp_path):
    from unitune import tokens as T

    rows = valid(12)
    r = run(tmp_path, rows, [OPENAI])
    c = T.counter_for("o200k_base")
    per = [3 + 3 * 4 + sum(c.count(m["content"]) for m in row["messages"]) for row in rows]
    t = r.stats["tokens"][OPENAI]
    assert t["total"] == sum(per) and t["max"] == max(per) and t["exact"]
    assistant = sum(c.count(row["messages"][2]["content"]) for row in rows)
    assert t["assistant_share"] == round(assistant / sum(per), 4)
    assert sum(t["histogram"]["counts"]) == 12


def test_many_chunks_in_threads_match_single_counts(tmp_path):
    """Small chunks force many worker submissions; results stay in file order."""
    from unitune.data import validate as V
    from unitune.data.report import Report

    rows = [chat(i) for i in range(300)]
    p = write(tmp_path, rows)
    big = validate_file(p, [OPENAI])
    small = V.Validator(p, V.resolve_targets([OPENAI]), Report(file=str(p)), workers=2,
                        chunk_chars=200).run()
    a, b = big.stats["tokens"][OPENAI], small.stats["tokens"][OPENAI]
    assert a == b


def test_digest_table_grows_and_remembers_first_lines():
    from hashlib import blake2b

    from unitune.data.validate import DigestTable

    t = DigestTable(capacity=8)
    digests = [blake2b(str(i).encode(), digest_size=16).digest() for i in range(5000)]
    assert all(t.first_line(d, i + 1) == 0 for i, d in enumerate(digests))
    assert t.n == 5000 and t.mask + 1 >= 5000 * 4 // 3
    assert [t.first_line(d, 99999) for d in digests[::997]] == [i + 1 for i in range(0, 5000, 997)]
    assert t.n == 5000


def test_distinct_system_prompts_turn_the_cache_off_and_stay_exact(tmp_path):
    from unitune import tokens as T
    from unitune.catalog import find_model
    from unitune.data import validate as V
    from unitune.data.dataset import load_examples
    from unitune.data.report import Report

    rows = []
    for i in range(600):
        row = chat(i)
        row["messages"][0]["content"] = f"System prompt number {i}: 系统提示 {i}"
        rows.append(row)
    p = write(tmp_path, rows)
    v = V.Validator(p, V.resolve_targets([OPENAI]), Report(file=str(p)), chunk_chars=5000)
    report = v.run()
    assert v.groups[0].system_cache is None  # mostly distinct: counted in the workers
    info = find_model("openai", "gpt-4.1-mini-2025-04-14")
    expect = [T.count_example(ex, info) for ex in load_examples(p, report=Report())]
    t = report.stats["tokens"][OPENAI]
    assert t["total"] == sum(expect) and t["max"] == max(expect)


def test_plain_fast_key_agrees_with_keys_exact_key(tmp_path):
    """Plain examples take a cheaper exact key; it must split duplicates exactly as
    keys.exact_key does, also against non-plain twins."""
    from unitune.data.dataset import load_examples
    from unitune.data.keys import exact_key
    from unitune.data.report import Report

    weighted = chat(0)
    weighted["messages"][2]["weight"] = 1
    named = chat(0)
    named["messages"][1]["name"] = "bob"
    swapped = chat(0)
    swapped["messages"][1]["role"], swapped["messages"][2]["role"] = "assistant", "user"
    rows = [chat(0), chat(0), weighted, weighted, named, swapped, chat(1), chat(0)]
    p = write(tmp_path, rows)
    r = validate_file(p)
    got = {p.line for p in r.problems if p.code == "duplicate_example"}
    keys = [exact_key(ex) for ex in load_examples(p, report=Report())]
    expect = {i + 1 for i, k in enumerate(keys) if k in keys[:i]}
    assert got == expect == {2, 4, 8}


def test_lone_surrogates_are_counted_like_tiktoken(tmp_path, monkeypatch):
    """orjson rejects lone surrogates, but another reader might not: counting must not crash
    and must match tiktoken's own replacement."""
    from unitune import tokens as T
    from unitune.data import dataset
    from unitune.data.example import Example, Message

    weird = "bad \ud800 text"
    exs = [Example([Message("user", weird), Message("assistant", f"ok {i}")], line=i + 1)
           for i in range(3)]
    monkeypatch.setattr(dataset, "load_examples", lambda path, report=None: iter(exs))
    p = write(tmp_path, [chat(0)])
    r = validate_file(p, [OPENAI])
    enc = T.load_encoding("o200k_base")
    expect = sum(3 + 2 * 4 + len(enc.encode_ordinary(weird)) + len(enc.encode_ordinary(f"ok {i}"))
                 for i in range(3))
    assert r.stats["tokens"][OPENAI]["total"] == expect
