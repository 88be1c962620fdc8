"""plan / translate: what OpenAI cannot run is refused before upload, with the reason; the
translation table says what maps where and what is not applied; lifecycle dates warn, then
refuse; options are typed (typos named, env options, secrets never shown). Also the snapshot
rules and the error mapping (no secrets in messages)."""
from __future__ import annotations

from pathlib import Path

import openai
import pytest

from unitune.errors import AuthError, NotFound, SpecError, Unsupported
from unitune.job import JobStatus
from unitune.pipeline import Pipeline
from unitune.provider import Location
from unitune.providers.openai import (AzureOpenAIProvider, OpenAIOptions, OpenAIProvider,
                                      location_of, remote_ref)
from unitune.providers.openai.jobs import Session, snapshot
from unitune.testing.openai_server import FakeOpenAIServer

from openai_helpers import make_spec, submit


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-plan-only-000")


def plan(spec):
    return Pipeline(OpenAIProvider()).plan(spec)


def codes(problems, severity=None):
    return {p.code for p in problems if severity is None or p.severity == severity}


def test_qlora_is_refused_at_plan_with_reason(tmp_path):
    p = plan(make_spec(tmp_path, adapter={"type": "qlora", "r": 8, "bits": 4}))
    assert not p.ready
    (prob,) = [x for x in p.problems if x.code == "unsupported_adapter"]
    assert "qlora" in prob.message and prob.path == "adapter.type" and "local" in prob.hint
    assert any(r.field == "adapter.type" and not r.applied and "refused" in r.note for r in p.rows)


@pytest.mark.parametrize("adapter", ["prefix", "p_tuning", "prompt_tuning", "ia3"])
def test_prompt_style_adapters_refused(tmp_path, adapter):
    assert "unsupported_adapter" in codes(plan(make_spec(tmp_path, adapter={"type": adapter})).problems,
                                          "error")


def test_dpo_on_model_without_it_is_refused(tmp_path):
    p = plan(make_spec(tmp_path, method="dpo", models={"openai": "gpt-3.5-turbo-0125"}))
    (prob,) = [x for x in p.problems if x.code == "unsupported_method"]
    assert prob.severity == "error" and "DPO" in prob.message and "gpt-3.5-turbo-0125" in prob.message
    assert prob.hint


def test_refusal_happens_before_any_upload(openai_env, tmp_path):
    server = openai_env
    with pytest.raises(Unsupported) as info:
        submit(OpenAIProvider(), make_spec(tmp_path, adapter={"type": "qlora"}))
    assert "qlora" in str(info.value)
    assert not server.files and not server.jobs and not server.requests


def test_plan_translation_table(tmp_path):
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2, "learning_rate": 2e-4,
                                                "learning_rate_multiplier": 1.5, "warmup_ratio": 0.1,
                                                "seed": 3},
                     adapter={"type": "lora", "r": 32})
    p = plan(spec)
    rows = {r.field: r for r in p.rows}
    assert rows["hyperparameters.epochs"].vendor_param == "method.supervised.hyperparameters.n_epochs"
    assert rows["hyperparameters.learning_rate_multiplier"].vendor_value == 1.5
    lr = rows["hyperparameters.learning_rate"]
    assert not lr.applied and "learning_rate_multiplier" in lr.note
    assert not rows["hyperparameters.warmup_ratio"].applied
    assert rows["hyperparameters.seed"].vendor_param == "seed"
    assert not rows["adapter"].applied
    assert p.ready  # warnings only
    assert "not_applied" in codes(p.problems, "warning")
    assert [u.examples for u in p.uploads] == [12, 4]
    assert all(u.destination == f"<upload:{w}>" for u, w in zip(p.uploads, ("train", "validation")))
    assert p.request["training_file"] == "<upload:train>"
    assert p.location.endpoint == "https://api.openai.com/v1"


def test_plan_for_the_quickstart_spec():
    from unitune.spec import JobSpec

    spec = JobSpec.load(Path(__file__).parents[2] / "examples" / "quickstart.yaml")
    p = plan(spec)
    assert p.ready and p.model == spec.models["openai"]
    assert any(r.field == "data.validation" and "split" in (r.note or "") for r in p.rows)


def test_out_of_range_hyperparameters(tmp_path):
    p = plan(make_spec(tmp_path, hyperparameters={"epochs": 60, "batch_size": 512}))
    errs = [x for x in p.problems if x.code == "out_of_range"]
    assert {x.path for x in errs} == {"hyperparameters.epochs", "hyperparameters.batch_size"}
    assert not p.ready


def test_lifecycle_warns_before_and_refuses_after(tmp_path):
    before = make_spec(tmp_path, backend_options={"openai": {"today": "2026-12-01"}})
    (warn,) = [x for x in plan(before).problems if x.code.startswith("lifecycle")]
    assert warn.severity == "warning" and "2027-01-06" in warn.message
    assert "unitune compare" in warn.message + (warn.hint or "")

    after = make_spec(tmp_path, backend_options={"openai": {"today": "2027-01-07"}})
    p = plan(after)
    (err,) = [x for x in p.problems if x.code == "unsupported_lifecycle"]
    assert err.severity == "error" and "unitune compare" in err.message + err.hint
    assert "ignore_lifecycle" in err.hint and not p.ready

    forced = make_spec(tmp_path, backend_options={"openai": {"today": "2027-01-07",
                                                             "ignore_lifecycle": True}})
    assert plan(forced).ready


def test_lifecycle_refusal_blocks_submit(openai_env, tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_OPENAI_TODAY", "2027-02-01")  # options come from the env too
    with pytest.raises(Unsupported) as info:
        submit(OpenAIProvider(), make_spec(tmp_path))
    assert "no longer" in str(info.value) or "stopped accepting" in str(info.value)
    assert not openai_env.jobs and not openai_env.files


def test_typo_in_options_names_the_nearest(tmp_path, monkeypatch):
    p = plan(make_spec(tmp_path, backend_options={"openai": {"poll_intervall": 1}}))
    assert not p.ready and any("poll_interval" in x.message for x in p.problems)
    monkeypatch.setenv("UNITUNE_OPENAI_BASEURL", "http://x")
    with pytest.raises(SpecError, match="base_url"):
        Pipeline(OpenAIProvider()).prepare_submission(make_spec(tmp_path))


def test_every_documented_option_is_typed():
    documented = {"base_url", "organization", "project", "api_key_env", "timeout", "max_retries",
                  "create_attempts", "poll_interval", "upload_wait_s", "wandb", "integrations",
                  "ignore_lifecycle", "today", "api_key"}
    assert documented <= set(OpenAIOptions.model_fields)
    azure = {"endpoint", "api_version", "auth", "training_type", "subscription_id",
             "resource_group", "account", "sku", "capacity", "deployment_name", "arm_endpoint",
             "arm_api_version", "arm_token_env", "arm_token"}
    assert azure | (documented - {"base_url", "organization", "project"}) <= set(
        AzureOpenAIProvider.options_model.model_fields)


def test_env_options_reach_the_request(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_OPENAI_WANDB", '{"project": "from-env"}')
    monkeypatch.setenv("UNITUNE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    p = plan(make_spec(tmp_path))
    assert p.request["integrations"] == [{"type": "wandb", "wandb": {"project": "from-env"}}]
    assert p.location.endpoint == "http://127.0.0.1:9/v1"
    assert p.location.extra == {"organization": "org-1"}


def test_deprecated_retry_options_are_warned_not_applied(tmp_path):
    p = plan(make_spec(tmp_path, backend_options={"openai": {"max_retries": 5,
                                                             "create_attempts": 2}}))
    warned = [x for x in p.problems if x.code == "not_applied" and "deprecated" in x.message]
    assert len(warned) == 2 and p.ready


def test_missing_key_makes_plan_not_ready_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    p = plan(make_spec(tmp_path, backend_options={"openai": {"api_key_env": "MY_KEY"}}))
    (w,) = [x for x in p.problems if x.code == "credentials_missing"]
    assert w.severity == "error" and "MY_KEY" in w.message and not p.ready
    assert w.path == "backend_options.openai.api_key_env" and "MY_KEY" in w.hint
    assert p.location.extra["key_variable"] == "MY_KEY"  # a later process reads the same one


def test_refs_survive_the_registry_redaction(tmp_path, monkeypatch):
    """The registry stores ref.extra through `redact` (by key name): nothing in it may look like
    a secret, or a fresh process would read back "***redacted***"."""
    from unitune.redact import redact

    monkeypatch.setenv("UNITUNE_AZURE_AUTH", "entra")
    for provider, env in ((OpenAIProvider(), {"OPENAI_ORG_ID": "org-1"}),
                          (AzureOpenAIProvider(), {"AZURE_OPENAI_ENDPOINT": "https://x"})):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        pipe_ = Pipeline(provider, base_options={"api_key_env": "MY_KEY"})
        location = provider.locate(None, pipe_.options())
        ref = remote_ref(location, "ftjob-1")
        assert redact(ref.extra) == ref.extra
        assert location_of(ref) == location and location.extra["key_variable"] == "MY_KEY"
    assert location.extra["identity"] == "entra"


def test_status_table_has_azure_extras():
    from unitune.providers.openai import STATUS_MAP

    azure = {"created": JobStatus.QUEUED, "pending": JobStatus.QUEUED,
             "notRunning": JobStatus.QUEUED, "canceling": JobStatus.CANCELLING,
             "canceled": JobStatus.CANCELLED}
    assert {k: STATUS_MAP[k] for k in azure} == azure
    assert not JobStatus.CANCELLING.is_terminal  # Azure "canceling" may still finish


def _snap(job):
    session = Session(OpenAIProvider().conn, None, None, lambda _m: None)
    return snapshot(session, remote_ref(Location(backend="openai"), job["id"]), job)


def test_snapshot_from_raw_objects():
    base = {"id": "ftjob-1", "created_at": 1, "model": "gpt-4o-mini-2024-07-18",
            "fine_tuned_model": None, "trained_tokens": None}
    s = _snap({**base, "status": "queued", "error": {"code": None, "message": None, "param": None}})
    assert s.status is JobStatus.QUEUED and s.error is None
    s = _snap({**base, "status": "mystery_state", "error": None})
    assert s.status is JobStatus.UNKNOWN and s.raw_status == "mystery_state"
    s = _snap({**base, "status": "failed", "error": {"code": "invalid_training_file",
                                                    "message": "Line 3 broken", "param": "training_file"}})
    assert s.error.message == "Line 3 broken" and s.error.param == "training_file"
    s = _snap({**base, "status": "failed", "error": {"code": None, "message": None, "param": None}})
    assert s.status is JobStatus.FAILED and s.error is not None  # failed, but nothing said


def test_too_few_examples_refused_before_upload(openai_env, tmp_path):
    p = plan(make_spec(tmp_path, n_train=5))
    (prob,) = [x for x in p.problems if x.code == "too_few_examples"]
    assert prob.severity == "error" and "10" in prob.message
    assert not openai_env.files


def test_broken_line_is_named_with_file_and_line(tmp_path):
    spec = make_spec(tmp_path)
    with open(spec.data_path("train"), "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    (prob,) = [x for x in plan(spec).problems if x.severity == "error"]
    assert prob.line == 13 and prob.file.endswith("train.jsonl") and prob.code == "invalid_json"


def test_data_error_fails_job_with_vendor_message(tmp_path, monkeypatch):
    # the vendor may still reject data that passes local checks: its message must come through
    with FakeOpenAIServer(min_examples=20) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        be = OpenAIProvider()
        ref = submit(be, make_spec(tmp_path, n_train=12))
        while not (snap := be.read(ref)).status.is_terminal:
            pass
        assert snap.status is JobStatus.FAILED
        assert "at least 20 examples" in snap.error.message
        assert snap.error.code == "invalid_training_file" and snap.error.param == "training_file"


def test_pause_and_resume(openai_provider, openai_env, tmp_path):
    openai_env.arrange("slow")
    ref = submit(openai_provider, make_spec(tmp_path))
    while openai_provider.read(ref).status is not JobStatus.RUNNING:
        pass
    assert openai_provider.pause(ref).status is JobStatus.PAUSED
    assert openai_provider.read(ref).status is JobStatus.PAUSED
    assert openai_provider.resume(ref).status is JobStatus.RUNNING
    assert openai_provider.cancel(ref).status is JobStatus.CANCELLED


def test_secrets_never_in_errors(tmp_path, monkeypatch):
    secret = "sk-proj-SUPERSECRET0123456789abcdef"
    with FakeOpenAIServer(api_key="sk-the-right-one") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        p = Pipeline(OpenAIProvider())
        location = OpenAIProvider().locate(None, p.options())
        with pytest.raises(AuthError) as info:
            p.lookup("ut-anything", location)
        err = info.value
        assert err.status_code == 401 and "Incorrect API key" in err.message
        assert secret not in str(err) and "SUPERSECRET" not in str(err)
        assert isinstance(err.__cause__, openai.AuthenticationError)
        assert "SUPERSECRET" not in str(err.__cause__)  # the chained original is redacted too
        monkeypatch.setenv("OPENAI_API_KEY", "sk-the-right-one")
        with pytest.raises(NotFound):
            OpenAIProvider().read(remote_ref(location, "ftjob-nope"))


def test_secret_option_is_never_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("UNITUNE_OPENAI_API_KEY", "sk-from-unitune-env-99999")
    p = Pipeline(OpenAIProvider())
    opts = p.options()
    assert "sk-from-unitune-env" not in repr(opts) and opts.api_key.get_secret_value()
    assert not [x for x in p.plan(make_spec(tmp_path)).problems if x.code == "credentials_missing"]


def test_refs_written_before_the_rewrite_still_work(openai_env, openai_provider, tmp_path):
    from unitune.job import RemoteRef

    ref = submit(openai_provider, make_spec(tmp_path))
    old = RemoteRef(backend="openai", remote_id=ref.remote_id,
                    extra={"conn": {"base_url": openai_env.base_url}})
    assert openai_provider.read(old).ref.remote_id == ref.remote_id


def test_missing_credentials_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    p = Pipeline(OpenAIProvider())
    with pytest.raises(AuthError) as info:
        p.lookup("ut-x", OpenAIProvider().locate(None, p.options()))
    assert "OPENAI_API_KEY" in str(info.value)
    az = Pipeline(AzureOpenAIProvider())
    with pytest.raises(AuthError) as info:
        az.lookup("ut-x", AzureOpenAIProvider().locate(None, az.options()))
    assert "AZURE_OPENAI_ENDPOINT" in str(info.value)


def test_capabilities_give_reasons():
    caps = OpenAIProvider().capabilities()
    assert not caps.get("learning_rate") and "multiplier" in caps.get("learning_rate").reason
    assert not caps.get("adapter:qlora") and caps.get("method:dpo")
    for feature, support in caps.features.items():
        assert support.supported or support.reason, feature
