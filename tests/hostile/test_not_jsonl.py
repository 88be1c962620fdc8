"""Issue 12, item 9: CSV, TSV, a JSON array or pretty-printed JSON used to give one `invalid_json`
per line. Now the shape is recognised from the first line and reported ONCE, naming a command
that really converts the file; that command is run here and its output validates."""
from __future__ import annotations

import csv
import json
import shlex

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.data.split import dedupe_file, split_file
from unitune.data.validate import validate_file
from unitune.errors import DataError

runner = CliRunner()

ROWS = [{"instruction": "Translate to Chinese", "input": "thank you", "output": "谢谢"},
        {"instruction": "Translate to Chinese", "input": "good night, \"friend\"",
         "output": "晚安，朋友"},
        {"instruction": "Say hello", "input": "", "output": "Hello!\nHow can I help?"}]
CHATS = [{"messages": [{"role": "user", "content": f"q{i}"},
                       {"role": "assistant", "content": f"a{i}"}]} for i in range(4)]


def _csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


def make(kind, tmp_path):
    if kind == "csv":
        return _csv(tmp_path / "data.csv", ROWS), len(ROWS)
    if kind == "tsv":
        return _csv(tmp_path / "data.tsv", ROWS, "\t"), len(ROWS)
    if kind == "json-array":
        p = tmp_path / "data.json"
        p.write_text(json.dumps(CHATS, indent=2, ensure_ascii=False), "utf-8")
        return p, len(CHATS)
    if kind == "json-array-one-line":
        p = tmp_path / "data.json"
        p.write_text(json.dumps(CHATS, ensure_ascii=False) + "\n", "utf-8")
        return p, len(CHATS)
    if kind == "json-objects":  # "JSONL" written with indent=2
        p = tmp_path / "data.jsonl"
        p.write_text("".join(json.dumps(c, indent=2) + "\n" for c in CHATS), "utf-8")
        return p, len(CHATS)
    raise AssertionError(kind)


KINDS = ["csv", "tsv", "json-array", "json-array-one-line", "json-objects"]


@pytest.mark.parametrize("kind", KINDS)
def test_reported_once_with_a_command_that_works(tmp_path, kind, monkeypatch):
    src, n = make(kind, tmp_path)
    report = validate_file(src)
    assert [p.code for p in report.problems] == ["not_jsonl"], report.problems
    p = report.problems[0]
    assert p.line == 1 and p.severity == "error" and p.hint
    assert "unitune reads" in p.message and "JSONL" in p.message
    # the named command exists with those flags, converts the file, and the result validates
    cmd = p.message.split("`")[1]
    argv = shlex.split(cmd)
    assert argv[:2] == ["unitune", "convert"]
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, argv[1:])
    assert r.exit_code == 0, r.output
    out = argv[argv.index("-o") + 1]
    after = validate_file(out)
    assert after.ok and after.examples == n, after.problems


def test_csv_rows_keep_their_text_and_line_numbers(tmp_path):
    src, _ = make("csv", tmp_path)
    from unitune.data.convert import convert_file

    out = tmp_path / "out.jsonl"
    result = convert_file(src, "messages", out)
    assert result.written == 3 and result.format == "alpaca" and not result.errors
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert rows[1]["messages"][0]["content"] == 'Translate to Chinese\n\ngood night, "friend"'
    assert rows[2]["messages"][1]["content"] == "Hello!\nHow can I help?"
    # a broken row is reported on its own line of the CSV (the multi-line cell counts)
    bad = tmp_path / "bad.csv"
    bad.write_text(src.read_text("utf-8") + "Explain,,\n", "utf-8")
    res = convert_file(bad, "messages", tmp_path / "out2.jsonl")
    assert [(p.line, p.code) for p in res.errors] == [(6, "empty_field")]


def test_broken_jsonl_is_still_one_problem_per_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"messages": [\n{"messages": "x", \n' + json.dumps(CHATS[0]) + "\n")
    report = validate_file(p)
    assert [x.code for x in report.problems if x.severity == "error"][:2] == [
        "invalid_json", "invalid_json"]
    assert "not_jsonl" not in report.by_code()


def test_jsonl_of_arrays_is_not_taken_for_a_json_array(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(c["messages"]) + "\n" for c in CHATS))
    report = validate_file(p)
    assert report.by_code() == {"not_an_object": len(CHATS)}


@pytest.mark.parametrize("kind", ["csv", "json-array"])
def test_split_and_dedupe_refuse_with_the_same_advice(tmp_path, kind):
    src, _ = make(kind, tmp_path)
    for call in (lambda: split_file(src, 0.5, 0, tmp_path / "t.jsonl", tmp_path / "v.jsonl"),
                 lambda: dedupe_file(src, tmp_path / "d.jsonl")):
        with pytest.raises(DataError, match="unitune convert"):
            call()


def test_cli_validate_prints_it_once(tmp_path):
    src, _ = make("csv", tmp_path)
    r = runner.invoke(app, ["validate", str(src)])
    assert r.exit_code == 1
    assert r.output.count("not_jsonl") == 2  # the count table and the problem line
    assert "invalid_json" not in r.output


def test_csv_edge_rows_are_problems_on_their_own_lines(tmp_path):
    from unitune.data.convert import convert_file

    p = tmp_path / "edge.csv"
    p.write_bytes("\n\ninstruction,input,output\n"      # blank lines before the header (3)
                  "Say hi,,Hello\n"                      # 4: fine
                  "short row,x\n"                        # 5: no output cell -> missing_field
                  '"two\nlines",,ok\n'                   # 6-7: fine
                  .encode() + b"bad,\xff\xfe,x\n" + b"never read,,x\n")  # 8: not UTF-8
    res = convert_file(p, "messages", tmp_path / "edge.jsonl")
    assert res.written == 2
    assert [(e.line, e.code) for e in res.errors] == [(5, "missing_field"), (8, "bad_encoding")]


def test_csv_column_holding_messages_is_decoded(tmp_path):
    from unitune.data.convert import convert_file

    p = tmp_path / "chats.csv"
    _csv(p, [{"messages": json.dumps(c["messages"]), "id": str(i)} for i, c in enumerate(CHATS)])
    assert [x.code for x in validate_file(p).problems] == ["not_jsonl"]
    res = convert_file(p, "openai", tmp_path / "chats.jsonl")
    assert res.written == len(CHATS) and not res.errors
    assert validate_file(tmp_path / "chats.jsonl").ok
