"""Issue 12, item 8: content that used to pass `validate` silently, and what `convert` then wrote.

Each case is a problem with its line, code, JSON path and a hint; a line that fails is not
written by `convert`, and nothing `convert` writes fails `validate`."""
from __future__ import annotations

import json

import pytest

from unitune.data.convert import TARGETS, convert_file
from unitune.data.validate import validate_file

OK_USER = {"role": "user", "content": "What is in the picture?"}
OK_ASSISTANT = {"role": "assistant", "content": "A cat."}


def _write(path, *rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _chat(user_content, **assistant):
    return {"messages": [{"role": "user", "content": user_content},
                         {**OK_ASSISTANT, **assistant}]}


def _problems(report, line):
    return [(p.code, p.path) for p in report.problems if p.line == line and p.severity == "error"]


CASES = [
    # (line, code, path)
    (_chat([{"type": "banana", "banana": {"x": 1}}]), "unknown_part_type",
     "messages[0].content[0].type"),
    (_chat([{"type": "image_url", "image_url": 5}]), "wrong_type",
     "messages[0].content[0].image_url"),
    (_chat([{"type": "image_url", "image_url": {"url": 7}}]), "wrong_type",
     "messages[0].content[0].image_url.url"),
    (_chat([{"type": "image_url"}]), "missing_field", "messages[0].content[0].image_url"),
    (_chat([{"type": "input_audio", "input_audio": "abc"}]), "wrong_type",
     "messages[0].content[0].input_audio"),
    (_chat("   \n\t "), "empty_field", "messages[0].content"),
    (_chat("Hi"), None, None),  # control: fine
    ({"messages": [{"role": "system", "content": "  "}, OK_USER, OK_ASSISTANT]}, "empty_field",
     "messages[0].content"),
    (_chat("Hi", content=" "), "empty_field", "messages[1].content"),
    (_chat([{"type": "text", "text": "  "}]), "empty_field", "messages[0].content"),
    (_chat("Hi", weight=None), "bad_weight", "messages[1].weight"),
    ({"messages": [OK_USER, {"role": "assistant", "content": "A cat.", "wieght": 0}]},
     "misspelled_field", "messages[1].wieght"),
]


@pytest.mark.parametrize("row,code,path", CASES)
def test_validate_reports_it_with_line_path_and_hint(tmp_path, row, code, path):
    src = _write(tmp_path / "d.jsonl", _chat("Hello"), row)
    report = validate_file(src)
    if code is None:
        assert report.ok, report.problems
        return
    found = [p for p in report.problems if p.line == 2 and p.code == code]
    assert found, report.problems
    assert found[0].path == path and found[0].hint and found[0].severity == "error"
    assert not report.ok


@pytest.mark.parametrize("target", ["openai", "messages", "bedrock-converse", "vertex",
                                    "bedrock-claude"])
def test_convert_does_not_write_what_validate_rejects(tmp_path, target):
    rows = [row for row, code, _ in CASES]
    src = _write(tmp_path / "d.jsonl", *rows)
    out = tmp_path / "out.jsonl"
    result = convert_file(src, target, out)
    bad = {i + 1 for i, (_, code, _) in enumerate(CASES) if code is not None}
    assert {p.line for p in result.errors} == bad
    assert result.written == len(CASES) - len(bad)
    text = out.read_text("utf-8")
    assert "null" not in text
    report = validate_file(out)
    assert report.ok, report.problems


def test_alpaca_misspelled_optional_key_is_an_error(tmp_path):
    src = _write(tmp_path / "a.jsonl",
                 {"instruction": "Translate", "input": "thank you", "output": "谢谢"},
                 {"instruction": "Translate", "inpqt": "good night", "output": "晚安"})
    report = validate_file(src)
    probs = [p for p in report.problems if p.line == 2]
    assert [(p.code, p.path, p.severity) for p in probs] == [
        ("misspelled_field", "inpqt", "error")]
    assert "input" in probs[0].message and "input" in probs[0].hint
    result = convert_file(src, "openai", tmp_path / "o.jsonl")
    assert [p.line for p in result.errors] == [2] and result.written == 1


def test_alpaca_unrelated_extra_key_stays_a_warning(tmp_path):
    src = _write(tmp_path / "a.jsonl",
                 {"instruction": "Translate", "output": "谢谢", "category": "translation"})
    report = validate_file(src)
    assert report.ok
    assert [(p.code, p.severity) for p in report.problems] == [("unknown_field", "warning")]


@pytest.mark.parametrize("row,path", [
    ({"instruction": "  ", "output": "x"}, "instruction"),
    ({"instruction": "Say hi", "output": " \n"}, "output"),
    ({"prompt": "hi", "completion": "  "}, "completion"),
    ({"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "x"}]},
     "conversations[0].value"),
    ({"prompt": "q", "chosen": " ", "rejected": "no"}, "chosen"),
    ({"schemaVersion": "bedrock-conversation-2024",
      "messages": [{"role": "user", "content": [{"text": "  "}]},
                   {"role": "assistant", "content": [{"text": "x"}]}]},
     "messages[0].content[0].text"),
    ({"contents": [{"role": "user", "parts": [{"text": "\t"}]},
                   {"role": "model", "parts": [{"text": "x"}]}]}, "contents[0].parts[0].text"),
])
def test_whitespace_only_text_is_reported_in_every_format(tmp_path, row, path):
    src = _write(tmp_path / "w.jsonl", row)
    report = validate_file(src)
    assert ("empty_field", path) in _problems(report, 1), report.problems


def test_sharegpt_null_weight_is_bad_weight(tmp_path):
    src = _write(tmp_path / "s.jsonl", {"conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo", "weight": None}]})
    assert ("bad_weight", "conversations[1].weight") in _problems(validate_file(src), 1)


@pytest.mark.parametrize("block,code", [({"banana": {"x": 1}}, "unknown_part_type"),
                                        ({"image": 5}, "wrong_type")])
def test_converse_unknown_or_mistyped_blocks(tmp_path, block, code):
    src = _write(tmp_path / "c.jsonl", {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [{"role": "user", "content": [{"text": "look"}, block]},
                     {"role": "assistant", "content": [{"text": "ok"}]}]})
    assert code in [c for c, _ in _problems(validate_file(src), 1)]


@pytest.mark.parametrize("target", ["bedrock-converse", "vertex", "openai"])
def test_a_turn_with_only_foreign_media_refuses_the_example(tmp_path, target):
    """An image-only user turn the target cannot carry used to vanish (Bedrock/Vertex), leaving an
    example that starts with the assistant, or became `content: null` (OpenAI)."""
    media = ({"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
             if target != "openai" else
             {"type": "image", "image": {"format": "png", "source": {"bytes": "AAAA"}}})
    src = _write(tmp_path / "m.jsonl", _chat([media]), _chat("Hi"))
    out = tmp_path / "o.jsonl"
    result = convert_file(src, target, out)
    assert [(p.line, p.code) for p in result.errors] == [(1, "dropped_content")]
    assert result.errors[0].hint
    assert result.written == 1
    assert validate_file(out).ok


@pytest.mark.parametrize("target", TARGETS)
def test_nothing_invalid_is_written_for_any_target(tmp_path, target):
    rows = [row for row, _, _ in CASES] + [
        {"messages": [OK_USER, {"role": "assistant", "content": "x", "weight": 3}]},
        {"messages": [{"role": "bot", "content": "x"}, OK_ASSISTANT]},
        {"messages": [OK_USER]},
    ]
    src = _write(tmp_path / "d.jsonl", *rows)
    out = tmp_path / "o.jsonl"
    result = convert_file(src, target, out)
    assert all(p.line for p in result.errors + result.warnings)
    if result.written:
        report = validate_file(out)
        assert report.ok, (target, report.problems)
