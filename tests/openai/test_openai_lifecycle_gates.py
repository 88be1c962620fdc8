"""Issue 11 on OpenAI / Azure: the staged closure of self-serve fine-tuning (gates warn at
check/plan; the vendor's refusal on create maps to a clear error), models past their shut-down
date are refused before any upload, the shared UNITUNE_TODAY, and `models --refresh` against
the fake's model listing (real `openai` SDK)."""
from __future__ import annotations

import json

import pytest

from unitune.catalog import discovery, find_model
from unitune.errors import PermissionDenied, Unsupported
from unitune.pipeline import Pipeline
from unitune.providers.openai import AzureOpenAIProvider, OpenAIProvider
from unitune.providers.openai.errors import FineTuningGated
from unitune.testing.openai_models import refuse_creates, set_models

from openai_helpers import make_spec, submit


def _codes(plan):
    return {p.code: p for p in plan.problems}


@pytest.mark.parametrize("today, gates_passed", [("2026-05-06", 0), ("2026-05-07", 1),
                                                 ("2026-07-01", 1), ("2026-07-02", 2)])
def test_plan_warns_naming_each_gate_and_date(openai_env, tmp_path, monkeypatch, today,
                                              gates_passed):
    monkeypatch.setenv("UNITUNE_TODAY", today)
    plan = Pipeline(OpenAIProvider()).plan(make_spec(tmp_path))  # gpt-4o-mini
    p = _codes(plan)["lifecycle_closing"]
    assert p.severity == "warning" and plan.ready
    assert p.message.count("since 20") == gates_passed
    assert "2026-05-07" in p.message and "2026-07-02" in p.message and "2027-01-06" in p.message
    assert "had never run a fine-tuning job" in p.message and "60 days" in p.message
    assert "developers.openai.com/api/docs/deprecations" in p.message  # the source, dated
    assert "unitune compare" in p.message


@pytest.mark.parametrize("today, refused", [("2026-10-21", False), ("2026-10-22", False),
                                            ("2026-10-23", True), ("2026-10-24", True)])
def test_gpt_4_1_nano_one_day_before_on_and_after_its_shutdown(openai_env, tmp_path,
                                                               monkeypatch, today, refused):
    monkeypatch.setenv("UNITUNE_TODAY", today)
    spec = make_spec(tmp_path, models={"openai": "gpt-4.1-nano-2025-04-14"})
    plan = Pipeline(OpenAIProvider()).plan(spec)
    codes = _codes(plan)
    assert plan.ready is (not refused)
    if refused:
        p = codes["unsupported_lifecycle"]
        assert p.severity == "error" and "2026-10-23" in p.message and "unverified" in p.message
        assert "source:" in p.message and "ignore_lifecycle" in p.hint
    else:
        assert "unsupported_lifecycle" not in codes and "lifecycle_closing" in codes


def test_gpt_3_5_turbo_is_refused_before_anything_is_uploaded(openai_env, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", "2026-12-04")
    spec = make_spec(tmp_path, models={"openai": "gpt-3.5-turbo-0125"})
    with pytest.raises(Unsupported) as info:
        submit(OpenAIProvider(log=lambda _m: None), spec)
    text = str(info.value)
    assert "retired on 2026-10-23" in text and "Legacy GPT model snapshots" in text
    assert not openai_env.files and not openai_env.jobs  # refused before the first row


def test_the_option_today_and_the_shared_variable_agree(openai_env, tmp_path, monkeypatch):
    spec = make_spec(tmp_path, models={"openai": "gpt-4.1-nano-2025-04-14"},
                     backend_options={"openai": {"today": "2026-10-01", "poll_interval": 0.01}})
    monkeypatch.setenv("UNITUNE_TODAY", "2026-12-01")
    assert Pipeline(OpenAIProvider()).plan(spec).ready  # the explicit option wins
    monkeypatch.setenv("UNITUNE_TODAY", "not-a-date")
    from unitune.errors import SpecError

    with pytest.raises(SpecError, match="UNITUNE_TODAY"):
        Pipeline(OpenAIProvider()).plan(make_spec(tmp_path))


def test_the_vendors_gate_refusal_maps_to_a_clear_error(openai_env, tmp_path):
    refuse_creates(openai_env, status=403)
    with pytest.raises(FineTuningGated) as info:
        submit(OpenAIProvider(log=lambda _m: None), make_spec(tmp_path))
    err = info.value
    assert isinstance(err, PermissionDenied) and err.status_code == 403 and not err.retryable
    text = str(err)
    assert "gated out of fine-tuning" in text and "2026-05-07" in text and "2026-07-02" in text
    assert "2027-01-06" in text and "unitune compare" in err.hint
    assert "lacks access" not in text
    assert not openai_env.jobs and openai_env.create_attempts == 1


def test_a_gate_message_under_another_status_is_recognised(openai_env, tmp_path):
    refuse_creates(openai_env, status=400, code="fine_tuning_unavailable",
                   message="Self-serve fine-tuning is no longer available to your organization.")
    with pytest.raises(FineTuningGated):
        submit(OpenAIProvider(log=lambda _m: None), make_spec(tmp_path))


def test_an_ordinary_403_elsewhere_is_not_called_a_gate(azure_env, tmp_path):
    refuse_creates(azure_env, status=403, message="Principal does not have access.")
    with pytest.raises(PermissionDenied) as info:
        submit(AzureOpenAIProvider(log=lambda _m: None), make_spec(tmp_path))
    assert not isinstance(info.value, FineTuningGated)


def test_models_refresh_openai_caches_the_listing_and_changes_no_lifecycle(openai_env):
    set_models(openai_env, ["gpt-4.1-mini-2025-04-14", "gpt-5.5"])
    found = discovery.refresh("openai")
    assert set(found.models) == {"gpt-4.1-mini-2025-04-14", "gpt-5.5"}
    cached = json.loads(discovery.cache_path("openai").read_text())
    assert cached["fetched_at"] and cached["source"].startswith("OpenAI GET /v1/models")
    assert "does not say which models can be fine-tuned" in cached["note"]
    mini = find_model("openai", "gpt-4.1-mini")
    assert "deprecations" in mini.lifecycle.source  # still the bundled catalog's


def test_models_refresh_azure_refuses_what_azure_no_longer_tunes(azure_env, monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", "2026-12-04")
    found = discovery.refresh("azure")
    assert found.models["gpt-35-turbo-0125"]["capabilities"]["fine_tune"] is False
    old = find_model("azure", "gpt-35-turbo-0125")
    assert old.lifecycle.status == "not_tunable" and old.lifecycle.verified
    assert "capabilities.fine_tune false" in old.lifecycle.vendor_words
    assert old.lifecycle.source.startswith("Azure OpenAI GET /openai/models")
    assert old.lifecycle.disputed  # the bundled account is kept beside the vendor's
    mini = find_model("azure", "gpt-4o-mini-2024-07-18")
    assert str(mini.lifecycle.new_jobs_until) == "2027-03-31"  # deprecation.fine_tune
    assert find_model("azure", "gpt-4.1-mini").lifecycle is None  # nothing to say


def test_cli_models_refresh(azure_env, monkeypatch):
    from typer.testing import CliRunner

    from unitune.cli.app import app

    monkeypatch.setenv("COLUMNS", "250")
    res = CliRunner().invoke(app, ["models", "--refresh", "--backend", "azure"])
    assert res.exit_code == 0, res.output
    assert "refresh azure:" in res.output and "gpt-35-turbo-0125" in res.output
    assert "not tunable" in res.output
    res = CliRunner().invoke(app, ["models", "--refresh", "--backend", "vertex", "--json"])
    (vertex,) = json.loads(res.output)["refreshed"]  # said, not an error: the catalog stays
    assert res.exit_code == 0 and vertex["ok"] is False and "no documented API" in vertex["message"]
