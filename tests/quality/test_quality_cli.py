"""`unitune stats` / `unitune validate` with the data-quality checks: warnings (never errors,
exit 0 stays 0), line pairs, leakage against --validation, the guide's volume for --task."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.data.validate import validate_file

from test_quality import chat, en_rows, write, zh_rows


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args, code=0):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == code, (res.exit_code, res.output)
        return res

    return invoke


def test_validate_warns_with_line_pairs_and_still_exits_zero(cli, tmp_path):
    rows = zh_rows() + [chat("你好，请问怎么修改收货地址？", zh_rows()[0]["messages"][2]["content"])]
    path = write(tmp_path / "d.jsonl", rows)
    doc = json.loads(cli("validate", path, "--json").stdout)
    similar = [p for p in doc["problems"] if p["code"] == "similar_examples"]
    assert len(similar) == 1 and similar[0]["line"] == 21 and "line 1" in similar[0]["message"]
    assert similar[0]["severity"] == "warning" and doc["summary"]["errors"] == 0
    assert "quality" not in doc.get("stats", {})  # the validate report keeps its shape
    res = cli("validate", path)
    assert "similar_examples" in res.stdout and "ok" in res.stdout
    quiet = json.loads(cli("validate", path, "--no-quality", "--json").stdout)
    assert not [p for p in quiet["problems"] if p["code"] == "similar_examples"]


def test_stats_quality_section_leakage_and_volume(cli, tmp_path):
    rows = en_rows()
    train = write(tmp_path / "train.jsonl", rows[:15])
    valid = write(tmp_path / "valid.jsonl", rows[14:])  # line 1 repeats training line 15
    doc = json.loads(cli("stats", train, "--validation", valid, "--task", "qa",
                         "--json").stdout)
    q = doc["stats"]["quality"]
    assert q["leakage"]["count"] == 1
    assert q["leakage"]["pairs"][0] == {"line": 1, "other_line": 15, "similarity": 1.0,
                                        "file": str(valid), "other_file": str(train)}
    assert q["volume"]["enough"] is False and q["volume"]["recommended"] == [500, 2000]
    text = cli("stats", train, "--validation", valid, "--task", "qa").stdout
    assert "leakage           1 of 6" in text and "below the guide's range" in text
    res = cli("validate", train, "--validation", valid, "--task", "qa", "--json")
    found = {p["code"] for p in json.loads(res.stdout)["problems"]}
    assert {"validation_leakage", "low_volume"} <= found


def test_bad_options_are_usage_errors(cli, tmp_path):
    path = write(tmp_path / "d.jsonl", en_rows())
    res = cli("stats", path, "--task", "astrology", code=2)
    assert "unknown task" in res.stderr
    res = cli("validate", path, "--validation", tmp_path / "missing.jsonl", code=2)
    assert "missing.jsonl" in res.stderr


def test_library_validate_file_quality_flag(tmp_path):
    path = write(tmp_path / "d.jsonl", en_rows())
    plain = validate_file(path)
    assert "quality" not in plain.stats  # off by default for library callers
    rep = validate_file(path, quality=True, task="style")
    assert rep.stats["quality"]["volume"]["task"] == "style"
    assert any(p.code == "low_volume" for p in rep.warnings) and rep.ok
