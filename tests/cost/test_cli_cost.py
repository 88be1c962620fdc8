"""`unitune compare`, `unitune plan` and `unitune models` through the real CLI app (in-process)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

from .conftest import QUICKSTART, write_chats

runner = CliRunner()
BACKENDS = {"openai", "azure", "bedrock", "vertex", "local"}


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_compare_quickstart_json_has_every_backend_sorted_by_cost(quickstart_copy):
    res = run("compare", str(quickstart_copy), "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert {r["backend"] for r in rows} == BACKENDS
    ranked = [r for r in rows if r["rank"] is not None]
    costs = [r["training_usd"] for r in ranked]
    assert costs == sorted(costs) and len(costs) == 4  # vertex gemini-3.5-flash: no dated price
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert all(r["runnable"] for r in rows)  # the quickstart names a tunable model everywhere
    by = {r["backend"]: r for r in rows}
    assert by["openai"]["epochs"] == 3 and by["openai"]["token_exact"] is True
    # 10 % validation split off 120 examples
    assert by["openai"]["examples"] == 108 and by["openai"]["validation_examples"] == 12
    assert by["openai"]["billable_tokens"] == 3 * by["openai"]["dataset_tokens"]
    assert by["azure"]["hosting_usd_per_month"] > 1000  # hourly deployment
    assert by["bedrock"]["hosting_usd_per_month"] == pytest.approx(1.95)
    assert by["local"]["training_usd_range"][0] < by["local"]["training_usd_range"][1]
    assert any("2027-01-06" in n for n in by["openai"]["notes"])


def test_compare_table_prints_one_row_per_backend(quickstart_copy):
    res = run("compare", str(quickstart_copy))
    assert res.exit_code == 0, res.output
    for name in ("gpt-4.1-mini-2025-04-14", "amazon.nova-micro-v1:0:128k", "gemini-3.5-flash",
                 "unitune/tiny-chat", "billable tokens", "hosting/month", "rough time"):
        assert name in res.output
    for backend in BACKENDS:
        assert f"│ {backend}" in res.output


def test_compare_data_override_and_backend_filter(quickstart_copy, tmp_path):
    other = write_chats(tmp_path / "other.jsonl", 40)
    res = run("compare", str(quickstart_copy), "--data", str(other), "-b", "openai", "--json")
    rows = json.loads(res.output)["rows"]
    assert [r["backend"] for r in rows] == ["openai"]
    assert rows[0]["examples"] + rows[0]["validation_examples"] == 40


def test_compare_default_set_when_spec_names_no_models(tmp_path):
    write_chats(tmp_path / "d.jsonl", 30)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ndata: {train: d.jsonl}\n", encoding="utf-8")
    rows = json.loads(run("compare", str(spec), "--json").output)["rows"]
    assert {r["backend"] for r in rows} == BACKENDS and len(rows) >= 8


def test_compare_sorts_rows_that_cannot_run_last(tmp_path):
    write_chats(tmp_path / "d.jsonl", 30)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmethod: dpo\nmodels: {openai: gpt-4.1, bedrock: nova-micro, "
                    "vertex: gemini-3.1-flash-lite}\ndata: {train: d.jsonl}\n", encoding="utf-8")
    rows = json.loads(run("compare", str(spec), "--json").output)["rows"]
    # gpt-4.1 costs most but is the only one that takes DPO
    assert [r["backend"] for r in rows][0] == "openai" and rows[0]["runnable"]
    assert rows[0]["rank"] == 1
    assert not any(r["runnable"] for r in rows[1:])
    assert all(r["rank"] is None for r in rows[1:])  # never ranked


def test_compare_missing_data_is_a_clean_error(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodels: {openai: gpt-4.1-mini}\ndata: {train: none.jsonl}\n")
    res = run("compare", str(spec))
    assert res.exit_code != 0
    assert "training data not found" in res.output and "Traceback" not in res.output


def _fake_spec(tmp_path, model="fake-model"):
    write_chats(tmp_path / "data" / "chats.jsonl", 30)
    spec = tmp_path / "fake.yaml"
    spec.write_text(f"name: f\nmodels: {{fake: {model}}}\ndata: {{train: data/chats.jsonl}}\n"
                    "hyperparameters: {epochs: 2, learning_rate: 0.001}\n", encoding="utf-8")
    return spec


def test_plan_with_fake_backend_shows_translation_and_uploads_nothing(tmp_path):
    from unitune.testing.fake import _MEMORY

    spec = _fake_spec(tmp_path)
    before = (len(_MEMORY["files"]), len(_MEMORY["jobs"]))
    res = run("plan", str(spec), "--backend", "fake", "--json")
    out = json.loads(res.output)
    assert out["backend"] == "fake" and out["uploaded"] is False
    fields = {r["field"]: r for r in out["translation"]}
    assert "hyperparameters.epochs" in fields and fields["hyperparameters.epochs"]["value"] == 2
    assert out["uploads"] and out["uploads"][0]["examples"] == 30
    assert (len(_MEMORY["files"]), len(_MEMORY["jobs"])) == before  # nothing reached the vendor
    text = run("plan", str(spec), "--backend", "fake").output
    assert "2. Translation" in text and "hyperparameters.epochs" in text
    assert "nothing is uploaded by plan" in text


def test_plan_local_on_quickstart(quickstart_copy):
    res = run("plan", str(quickstart_copy), "--backend", "local", "--json")
    out = json.loads(res.output)
    assert out["model"] == "unitune/tiny-chat"
    # validation ran (generic checks at least, even if the target's tokenizer is not on disk)
    assert out["validation"]["summary"]["examples"] == 120
    if out["missing"]:  # the local extra is not importable: plan still estimates and says why
        assert out["install_hint"] and "unitune[local]" in out["install_hint"]
    else:
        assert any(r["field"] == "hyperparameters.epochs" for r in out["translation"])
        assert all(r["applied"] or r["note"] for r in out["translation"])  # nothing silent
    assert out["estimate"]["billable_tokens"] > 0


def test_plan_missing_extra_still_estimates_and_names_the_extra(quickstart_copy, monkeypatch):
    from unitune import backends

    monkeypatch.setitem(backends.KNOWN_BACKENDS, "openai", backends.BackendEntry(
        "unitune_no_such_module_xyz:Backend", "openai", "test: extra missing"))
    res = run("plan", str(quickstart_copy), "--backend", "openai")
    assert "pip install 'unitune[openai]'" in res.output
    assert "3. Estimate" in res.output and "billable tokens" in res.output
    assert "Traceback" not in res.output


def test_plan_refuses_after_lifecycle_cutoff(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")  # without one: NOT READY
    write_chats(tmp_path / "d.jsonl", 30)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodels: {openai: gpt-4.1-nano}\ndata: {train: d.jsonl}\n")
    res = run("plan", str(spec), "--backend", "openai", "--json")
    out = json.loads(res.output)
    assert res.exit_code == 1 and out["ok"] is False
    assert out["estimate"]["lifecycle_level"] == "error"
    assert "unitune compare" in out["estimate"]["lifecycle"]
    # the documented override (same option the openai backend honours)
    spec.write_text("name: x\nmodels: {openai: gpt-4.1-nano}\ndata: {train: d.jsonl}\n"
                    "backend_options: {openai: {ignore_lifecycle: true}}\n")
    res = run("plan", str(spec), "--backend", "openai", "--json")
    out = json.loads(res.output)
    assert out["estimate"]["lifecycle_level"] == "error" and out["ignore_lifecycle"] is True
    assert not any(p.get("code") == "unsupported_lifecycle" for p in out["problems"])
    assert res.exit_code == 0 and out["ok"] is True, out["problems"]


def test_models_lists_prices_limits_and_lifecycle():
    res = run("models", "--backend", "openai")
    assert res.exit_code == 0
    assert "gpt-4.1-mini-2025-04-14" in res.output and "$5/1M tok" in res.output
    assert "new jobs stop 2027-01-06" in res.output and "65,536" in res.output
    data = json.loads(run("models", "--json").output)
    assert {m["backend"] for m in data["models"]} == BACKENDS
    assert data["gpus"] and all("usd_per_hour" in g for g in data["gpus"])
    res = run("models", "--backend", "local")
    assert "GPU price table" in res.output and "H100" in res.output


def test_compare_never_ranks_a_refused_model_and_marks_unverified_prices(tmp_path):
    write_chats(tmp_path / "d.jsonl", 30)
    spec = tmp_path / "s.yaml"
    # gemini-2.5-flash-lite ($1.50/1M) would be the cheapest, but its tuning is retired
    spec.write_text("name: x\nmodels: {vertex: gemini-2.5-flash-lite, openai: gpt-4.1-mini, "
                    "bedrock: nova-micro}\ndata: {train: d.jsonl}\n", encoding="utf-8")
    rows = json.loads(run("compare", str(spec), "--json").output)["rows"]
    by = {r["backend"]: r for r in rows}
    assert by["vertex"]["runnable"] is False and by["vertex"]["rank"] is None
    assert by["vertex"]["lifecycle_level"] == "error" and rows[-1]["backend"] == "vertex"
    assert {by["openai"]["rank"], by["bedrock"]["rank"]} == {1, 2}
    text = run("compare", str(spec)).output
    assert "Not ranked (refused or not runnable): vertex:gemini-2.5-flash-lite" in text
    assert "≈ <$0.01, unverified" in text  # Bedrock's price is unverified


def test_models_warns_when_the_catalog_is_older_than_90_days(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", "2027-03-05")  # 91 days after the files' as_of
    res = run("models", "--backend", "bedrock")
    assert "last checked on 2026-12-04 (91 days ago" in res.output.replace("\n", " ")
    monkeypatch.setenv("UNITUNE_TODAY", "2027-03-04")  # 90 days: not stale yet
    assert "days ago" not in run("models", "--backend", "bedrock").output
    data = json.loads(run("models", "--backend", "bedrock", "--json").output)
    assert data["stale"] is None


def test_models_unknown_backend():
    res = run("models", "--backend", "nope")
    assert res.exit_code != 0 and "no catalog entries" in res.output


def test_formatters():
    from unitune.cli.cost_cmds import fmt_hours, fmt_usd

    assert fmt_usd(None) == "n/a" and fmt_usd(0) == "$0" and fmt_usd(0.001) == "<$0.01"
    assert fmt_usd(3.0, (2.0, 4.0)) == "$2.00–$4.00" and fmt_usd(1241.0) == "$1,241"
    assert fmt_hours((0.001, 0.002)) == "<1 min" and fmt_hours((0.5, 2.0)) == "30 min – 2.0 h"
    assert fmt_hours((50, 100)) == "2.1 d – 4.2 d"


@pytest.mark.skipif(not (QUICKSTART.parent / "data" / "support_zh.jsonl").exists(),
                    reason="examples/data/support_zh.jsonl is written by the data-formats work")
def test_compare_on_the_bundled_quickstart_data():
    res = run("compare", str(QUICKSTART), "--data",
              str(QUICKSTART.parent / "data" / "support_zh.jsonl"), "--json")
    rows = json.loads(res.output)["rows"]
    assert {r["backend"] for r in rows} == BACKENDS
    assert all(r["examples"] >= 100 for r in rows)
