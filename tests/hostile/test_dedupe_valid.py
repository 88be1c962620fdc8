"""Issue 12, item 10: `dedupe` kept an invalid line and dropped its valid duplicate. Now the line
kept for a group of duplicates is the first that passes validation's per-example checks."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.data.split import dedupe_file
from unitune.data.validate import validate_file

runner = CliRunner()


def chat(q, a, **extra):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a,
                                                         **extra}]}


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_the_valid_duplicate_is_kept(tmp_path):
    rows = [chat("Hi", "Hello", weight=5),  # invalid: weight not 0/1 (a normalized duplicate)
            chat("q", "a"),
            chat("hi", "hello"),  # valid, same up to case
            chat("HI", "HELLO")]  # valid too: a duplicate of line 3 now
    src = write(tmp_path / "d.jsonl", rows)
    out = tmp_path / "o.jsonl"
    res = dedupe_file(src, out)
    kept = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert kept == [rows[1], rows[2]]
    assert (res.kept, res.removed, res.preferred_valid) == (2, 2, 1)
    assert res.duplicates == [(1, 3), (4, 3)]
    assert validate_file(out).ok


def test_when_every_copy_is_invalid_the_first_is_kept(tmp_path):
    orphan = {"messages": [{"role": "user", "content": "w?"},
                           {"role": "tool", "tool_call_id": "c9", "content": "sunny"},
                           {"role": "assistant", "content": "Sunny."}]}
    src = write(tmp_path / "d.jsonl", [orphan, orphan])  # orphan_tool_message, twice
    res = dedupe_file(src, tmp_path / "o.jsonl", normalized=False)
    assert (res.kept, res.removed, res.preferred_valid) == (1, 1, 0)
    assert res.duplicates == [(2, 1)]


def test_invalid_first_then_valid_exact_duplicate_keeps_order(tmp_path):
    rows = [chat("a", "b"), chat("x", "y", weight=None), chat("c", "d"),
            chat("x", "y"), chat("e", "f")]
    src = write(tmp_path / "d.jsonl", rows)
    out = tmp_path / "o.jsonl"
    # `weight: null` is a structural error: that line is not an example and is kept untouched
    res = dedupe_file(src, out)
    assert res.unparsed == 1 and res.removed == 0
    rows2 = [chat("a", "b"), chat("x", "y", weight=2), chat("c", "d"), chat("x", "y"),
             chat("e", "f")]
    src2 = write(tmp_path / "d2.jsonl", rows2)
    out2 = tmp_path / "o2.jsonl"
    res2 = dedupe_file(src2, out2)
    kept = [json.loads(x) for x in out2.read_text("utf-8").splitlines()]
    assert kept == [rows2[0], rows2[2], rows2[3], rows2[4]]  # file order kept
    assert res2.preferred_valid == 1


def test_cli_says_so(tmp_path):
    src = write(tmp_path / "d.jsonl", [chat("Hi", "Hello", weight=5), chat("hi", "hello")])
    r = runner.invoke(app, ["dedupe", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 0, r.output
    assert "kept a later valid line" in r.output
    r = runner.invoke(app, ["dedupe", str(src), "-o", str(tmp_path / "o2.jsonl"), "--json"])
    assert json.loads(r.output)["duplicates"] == [{"line": 1, "duplicate_of": 2}]
