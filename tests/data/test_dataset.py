"""load_examples: streaming reads, encodings, format detection per file, mixed formats, errors."""
import gzip
import json

import pytest

from unitune.data.dataset import load_examples
from unitune.data.example import Example, PreferenceExample
from unitune.data.report import Report
from unitune.errors import DataError


def chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(path, lines, raw=False):
    data = b"".join((l if raw else json.dumps(l, ensure_ascii=False).encode()) + b"\n"
                    for l in lines)
    path.write_bytes(data)
    return path


def test_bom_crlf_blank_lines(tmp_path):
    f = tmp_path / "a.jsonl"
    body = (b"\xef\xbb\xbf" + json.dumps(chat("q1", "a1")).encode() + b"\r\n\r\n   \r\n"
            + json.dumps(chat("问", "答"), ensure_ascii=False).encode() + b"\r\n\n")
    f.write_bytes(body)
    rep = Report()
    exs = list(load_examples(f, report=rep))
    assert [e.line for e in exs] == [1, 4]
    assert exs[1].messages[0].content == "问"
    assert rep.problems == [] and rep.format == "messages" and rep.examples == 2


def test_gzip(tmp_path):
    f = tmp_path / "a.jsonl.gz"
    f.write_bytes(gzip.compress(b"\n".join(json.dumps(chat(f"q{i}", "a")).encode()
                                           for i in range(5))))
    assert [e.messages[0].content for e in load_examples(f)] == [f"q{i}" for i in range(5)]


def test_truncated_gzip_is_a_data_error(tmp_path):
    f = tmp_path / "a.jsonl.gz"
    f.write_bytes(gzip.compress(json.dumps(chat("q", "a")).encode() * 1000)[:200])
    with pytest.raises(DataError, match="cannot read"):
        list(load_examples(f, report=Report()))


def test_bad_bytes_reported_with_line_and_offset(tmp_path):
    good = json.dumps(chat("q", "a")).encode()
    bad = '{"messages": [{"role": "user", "content": "发票"}]}'.encode("gbk")
    f = tmp_path / "a.jsonl"
    write(f, [good, bad, good], raw=True)
    rep = Report()
    exs = list(load_examples(f, report=rep))
    assert [e.line for e in exs] == [1, 3]
    (p,) = rep.problems
    assert p.code == "bad_encoding" and p.line == 2
    assert p.byte_offset == len(good) + 1 + bad.index(b'"content": "') + len(b'"content": "')
    assert "iconv" in p.hint


def test_invalid_json_and_non_objects(tmp_path):
    f = write(tmp_path / "a.jsonl", [json.dumps(chat("q", "a")).encode(), b'{"messages": [},',
                                     b"[1, 2]", b'"text"'], raw=True)
    rep = Report()
    assert len(list(load_examples(f, report=rep))) == 1
    assert [(p.line, p.code) for p in rep.problems] == [
        (2, "invalid_json"), (3, "not_an_object"), (4, "not_an_object")]
    assert rep.examples == 4


def test_strict_mode_raises_with_file_line_and_field(tmp_path):
    f = write(tmp_path / "a.jsonl", [chat("q", "a"), {"messages": [{"role": "user"}]}])
    with pytest.raises(DataError) as exc:
        list(load_examples(f))
    assert f"{f}:2 (messages[0].content)" in exc.value.message and exc.value.hint


def test_mixed_formats_name_the_first_differing_line(tmp_path):
    f = write(tmp_path / "a.jsonl", [chat("q", "a"), chat("q2", "a2"),
                                     {"prompt": "p", "completion": "c"}, chat("q3", "a3"),
                                     {"instruction": "i", "output": "o"}])
    rep = Report()
    exs = list(load_examples(f, report=rep))
    assert [e.line for e in exs] == [1, 2, 4]
    assert [(p.line, p.code) for p in rep.problems] == [(3, "mixed_formats"),
                                                       (5, "mixed_formats")]
    assert "line 3 is in 'prompt-completion' format but the file is 'messages'" in \
        rep.problems[0].message
    with pytest.raises(DataError, match="line 3"):
        list(load_examples(f))


def test_claude_lines_with_and_without_system_share_a_file(tmp_path):
    f = write(tmp_path / "a.jsonl", [chat("q", "a"), {"system": "s", **chat("q2", "a2")}])
    rep = Report()
    exs = list(load_examples(f, report=rep))
    assert rep.problems == [] and [m.role for m in exs[1].messages] == ["system", "user",
                                                                        "assistant"]


def test_undetectable_lines_before_the_first_real_one(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"foo": 1}, chat("q", "a")])
    rep = Report()
    exs = list(load_examples(f, report=rep))
    assert [e.line for e in exs] == [2] and rep.format == "messages"
    assert [(p.line, p.code, p.path) for p in rep.problems] == [
        (1, "missing_field", "messages"), (1, "unknown_field", "foo")]


def test_unknown_format(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"foo": 1}, {"bar": 2}])
    rep = Report()
    assert list(load_examples(f, report=rep)) == []
    assert [(p.line, p.code) for p in rep.problems] == [(1, "unknown_format")]
    with pytest.raises(DataError, match="cannot tell the data format"):
        list(load_examples(f))


def test_explicit_format_skips_detection(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "c"}])
    rep = Report()
    assert list(load_examples(f, fmt="openai", report=rep)) == []
    assert [(p.code, p.path) for p in rep.problems][0] == ("missing_field", "messages")
    (ex,) = load_examples(f, fmt="bedrock-prompt-completion")
    assert isinstance(ex, Example)
    with pytest.raises(DataError, match="unknown data format"):
        load_examples(f, fmt="csv")


def test_preference_file(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"prompt": "q", "chosen": "g", "rejected": "b"}] * 3)
    exs = list(load_examples(f))
    assert len(exs) == 3 and all(isinstance(e, PreferenceExample) for e in exs)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="directory"):
        load_examples(tmp_path)


def test_empty_file(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"\n\n")
    rep = Report()
    assert list(load_examples(f, report=rep)) == [] and rep.examples == 0 and not rep.problems


def test_report_limit_is_respected(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"messages": [{"role": "user", "content": ""}]}] * 50)
    rep = Report(max_problems=5)
    list(load_examples(f, report=rep))
    assert len(rep.problems) == 5 and rep.summary()["errors"] == 50


def test_streams_without_reading_everything(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(json.dumps(chat(f"q{i}", "a")).encode() + b"\n" for i in range(1000))
                  + b"{broken\n")
    it = load_examples(f)
    assert next(it).line == 1  # the broken last line has not been reached yet
    with pytest.raises(DataError):
        list(it)


def test_a_line_with_only_the_files_keys_reports_what_is_missing(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"prompt": "q", "chosen": "g", "rejected": "b"},
                                     {"prompt": "q2"}])
    rep = Report()
    assert len(list(load_examples(f, report=rep))) == 1
    assert [(p.line, p.code, p.path) for p in rep.problems] == [
        (2, "missing_field", "chosen"), (2, "missing_field", "rejected")]
    conv = {"schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": "user", "content": [{"text": "q"}]},
                         {"role": "assistant", "content": [{"text": "a"}]}]}
    f = write(tmp_path / "b.jsonl", [conv, {"messages": [{"role": "user", "content": "q"}]}])
    rep = Report()
    list(load_examples(f, report=rep))
    assert [(p.line, p.code, p.path) for p in rep.problems] == [
        (2, "wrong_type", "messages[0].content")]
