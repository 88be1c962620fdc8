"""`unitune validate` / `unitune stats`: exit codes, the human view, the JSON contract and a golden
report for a small broken file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

DATA = Path(__file__).parent / "data"
OPENAI = "openai:gpt-4.1-mini-2025-04-14"
NOVA = "bedrock:amazon.nova-lite-v1:0:300k"


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def good_file(tmp_path: Path, n: int = 12, gz: bool = False) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"问题 {i}: where is my order?"},
                          {"role": "assistant", "content": f"Order {i} 已发货。"}]}
            for i in range(n)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    p = tmp_path / ("good.jsonl.gz" if gz else "good.jsonl")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def _normalize(report: dict) -> dict:
    for p in report["problems"]:
        if p["code"] == "invalid_json":  # the parser's wording may change between versions
            p["message"] = p["message"].split(":")[0]
    return report


def test_golden_json_report(cli, monkeypatch):
    monkeypatch.chdir(DATA)
    r = cli("validate", "broken.jsonl", "--target", OPENAI, "--target", NOVA, "--json")
    assert r.exit_code == 1
    got = _normalize(json.loads(r.stdout))
    want = _normalize(json.loads((DATA / "broken.report.json").read_text(encoding="utf-8")))
    assert got == want


def test_json_contract(cli, tmp_path):
    r = cli("validate", DATA / "broken.jsonl", "--json")
    d = json.loads(r.stdout)
    assert r.exit_code == 1
    assert {"problems", "summary"} <= set(d)
    assert {"examples", "errors", "warnings"} <= set(d["summary"])
    for p in d["problems"]:
        assert {"line", "severity", "code", "message"} <= set(p) or p["code"] == "empty_file"
        assert p["severity"] in ("error", "warning")
    assert d["summary"]["errors"] == sum(p["severity"] == "error" for p in d["problems"])


def test_exit_codes(cli, tmp_path):
    assert cli("validate", good_file(tmp_path)).exit_code == 0
    assert cli("validate", good_file(tmp_path, gz=True), "-t", OPENAI).exit_code == 0
    # warnings only (a duplicate) still exit 0
    p = good_file(tmp_path)
    p.write_text(p.read_text(encoding="utf-8") * 2, encoding="utf-8")
    r = cli("validate", p)
    assert r.exit_code == 0 and "duplicate_example" in r.stdout
    assert cli("validate", DATA / "broken.jsonl").exit_code == 1
    assert cli("validate", good_file(tmp_path, n=3), "-t", OPENAI).exit_code == 1  # too few
    assert cli("validate", tmp_path / "missing.jsonl").exit_code == 2
    assert cli("validate", tmp_path).exit_code == 2  # a directory
    bad_gz = tmp_path / "trunc.jsonl.gz"
    bad_gz.write_bytes(gzip.compress(b'{"messages": []}\n' * 100)[:40])
    assert cli("validate", bad_gz).exit_code == 2
    r = cli("validate", good_file(tmp_path), "-t", "openai:gpt-9")
    assert r.exit_code == 2 and "gpt-4.1-mini-2025-04-14" in r.stderr
    assert cli("validate", good_file(tmp_path), "-t", "nocolon").exit_code == 2


def test_human_view_groups_and_caps(cli, tmp_path):
    rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                   for i in range(80))
    p = tmp_path / "noassist.jsonl"
    p.write_text(rows, encoding="utf-8")
    r = cli("validate", p)
    assert r.exit_code == 1
    out = r.stdout
    assert "80 error(s)" in out and "no_assistant" in out
    assert f"{p}:1 " in out and f"{p}:50 " in out and f"{p}:51 " not in out
    assert "and 30 more" in out and "hint:" in out
    r = cli("validate", p, "--max-errors", "5", "--json")
    d = json.loads(r.stdout)
    assert len(d["problems"]) == 5 and d["summary"]["errors"] == 80
    assert d["summary"]["omitted"] == 75 and r.exit_code == 1


def test_stats_command(cli, tmp_path):
    p = good_file(tmp_path)
    r = cli("stats", p, "-t", OPENAI)
    assert r.exit_code == 0
    out = r.stdout
    for needle in ("examples", "12", "assistant turns", "duplicates", "p50", "p90", "p99",
                   "assistant share", "exact (o200k_base", "█"):
        assert needle in out, needle
    d = json.loads(cli("stats", p, "-t", OPENAI, "-t", NOVA, "--json").stdout)
    assert d["stats"]["examples"] == 12
    assert d["stats"]["roles"] == {"user": 12, "assistant": 12}
    assert d["stats"]["tokens"][NOVA]["exact"] is False
    t = d["stats"]["tokens"][OPENAI]
    assert t["exact"] and t["p50"] <= t["p90"] <= t["p99"] <= t["max"]
    assert 0 < t["assistant_share"] < 1
    assert cli("stats", tmp_path / "missing.jsonl").exit_code == 2


def test_target_alias_spelling_is_kept(cli, tmp_path):
    r = cli("validate", good_file(tmp_path), "-t", "openai:gpt-4.1-mini", "--json")
    d = json.loads(r.stdout)
    assert d["targets"] == ["openai:gpt-4.1-mini"]
    assert list(d["stats"]["tokens"]) == ["openai:gpt-4.1-mini"]
