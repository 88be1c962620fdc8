"""check / plan: what OpenAI cannot run is refused before upload, with the reason; the translation
table says what maps where and what is not applied; lifecycle dates warn, then refuse. Also the
status table and the error mapping (no secrets in messages)."""
from __future__ import annotations

import uuid

import openai
import pytest

from unitune.backends import SubmitContext
from unitune.errors import AuthError, NotFound, Unsupported
from unitune.job import JobStatus, RemoteRef
from unitune.providers.openai import STATUS_MAP, AzureOpenAIBackend, OpenAIBackend
from unitune.testing.openai_server import FakeOpenAIServer

from openai_helpers import make_spec, no_sleep


def codes(problems, severity=None):
    return {p.code for p in problems if severity is None or p.severity == severity}


def test_qlora_is_refused_at_plan_with_reason(tmp_path):
    spec = make_spec(tmp_path, adapter={"type": "qlora", "r": 8, "bits": 4})
    plan = OpenAIBackend().plan(spec)
    assert not plan.ok
    (p,) = [p for p in plan.problems if p.code == "unsupported_adapter"]
    assert "qlora" in p.message and p.path == "adapter.type" and "local" in p.hint
    assert any(r.field == "adapter.type" and not r.applied and "refused" in r.note for r in plan.rows)


@pytest.mark.parametrize("adapter", ["prefix", "p_tuning", "prompt_tuning", "ia3"])
def test_prompt_style_adapters_refused(tmp_path, adapter):
    problems = OpenAIBackend().check(make_spec(tmp_path, adapter={"type": adapter}))
    assert "unsupported_adapter" in codes(problems, "error")


def test_dpo_on_model_without_it_is_refused(tmp_path):
    spec = make_spec(tmp_path, method="dpo", models={"openai": "gpt-3.5-turbo-0125"})
    plan = OpenAIBackend().plan(spec)
    (p,) = [p for p in plan.problems if p.code == "unsupported_method"]
    assert p.severity == "error" and "DPO" in p.message and "gpt-3.5-turbo-0125" in p.message
    assert p.hint


def test_refusal_happens_before_any_upload(openai_env, tmp_path):
    server = openai_env
    be = OpenAIBackend(sleep=no_sleep, log=lambda _m: None)
    key = f"ut-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Unsupported) as info:
        be.submit(make_spec(tmp_path, adapter={"type": "qlora"}),
                  SubmitContext(job_id=key, idempotency_key=key, work_dir=tmp_path))
    assert "qlora" in str(info.value)
    assert not server.files and not server.jobs and not server.requests


def test_plan_translation_table(tmp_path):
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2, "learning_rate": 2e-4,
                                                "learning_rate_multiplier": 1.5, "warmup_ratio": 0.1,
                                                "seed": 3},
                     adapter={"type": "lora", "r": 32})
    plan = OpenAIBackend().plan(spec)
    rows = {r.field: r for r in plan.rows}
    assert rows["hyperparameters.epochs"].vendor_param == "method.supervised.hyperparameters.n_epochs"
    assert rows["hyperparameters.learning_rate_multiplier"].vendor_value == 1.5
    lr = rows["hyperparameters.learning_rate"]
    assert not lr.applied and "learning_rate_multiplier" in lr.note
    assert not rows["hyperparameters.warmup_ratio"].applied
    assert rows["hyperparameters.seed"].vendor_param == "seed"
    assert not rows["adapter"].applied
    assert plan.ok  # warnings only
    assert "not_applied" in codes(plan.problems, "warning")
    assert [u.examples for u in plan.uploads] == [12, 4]
    assert all(u.destination.startswith("openai files") for u in plan.uploads)


def test_plan_for_the_quickstart_spec():
    from pathlib import Path

    from unitune.spec import JobSpec

    spec = JobSpec.load(Path(__file__).parents[2] / "examples" / "quickstart.yaml")
    plan = OpenAIBackend().plan(spec)
    assert plan.ok and plan.model == spec.models["openai"]
    assert any(r.field == "data.validation" and "split" in (r.note or "") for r in plan.rows)


def test_out_of_range_hyperparameters(tmp_path):
    problems = OpenAIBackend().check(make_spec(tmp_path, hyperparameters={"epochs": 60,
                                                                          "batch_size": 512}))
    errs = [p for p in problems if p.code == "out_of_range"]
    assert {p.path for p in errs} == {"hyperparameters.epochs", "hyperparameters.batch_size"}


def test_lifecycle_warns_before_and_refuses_after(tmp_path):
    be = OpenAIBackend()
    before = make_spec(tmp_path, backend_options={"openai": {"today": "2026-12-01"}})
    (warn,) = [p for p in be.check(before) if p.code.startswith("lifecycle")]
    assert warn.severity == "warning" and "2027-01-06" in warn.message
    assert "unitune compare" in warn.message + (warn.hint or "")
    assert any("2027-01-06" in p.message for p in be.plan(before).problems)

    after = make_spec(tmp_path, backend_options={"openai": {"today": "2027-01-07"}})
    (err,) = [p for p in be.check(after) if p.code.startswith("unsupported_lifecycle")]
    assert err.severity == "error" and "unitune compare" in err.message + err.hint
    assert "ignore_lifecycle" in err.hint
    assert not be.plan(after).ok

    forced = make_spec(tmp_path, backend_options={"openai": {"today": "2027-01-07",
                                                             "ignore_lifecycle": True}})
    assert not any(p.severity == "error" for p in be.check(forced))


def test_lifecycle_refusal_blocks_submit(openai_env, tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_OPENAI_TODAY", "2027-02-01")  # options come from the env too
    be = OpenAIBackend(sleep=no_sleep, log=lambda _m: None)
    with pytest.raises(Unsupported) as info:
        be.submit(make_spec(tmp_path), SubmitContext(job_id="ut-x", idempotency_key="ut-x",
                                                     work_dir=tmp_path))
    assert "no longer" in str(info.value) or "stopped accepting" in str(info.value)
    assert not openai_env.jobs and not openai_env.files


def test_status_table_covers_every_documented_value():
    documented = {"validating_files": JobStatus.VALIDATING, "queued": JobStatus.QUEUED,
                  "running": JobStatus.RUNNING, "succeeded": JobStatus.SUCCEEDED,
                  "failed": JobStatus.FAILED, "cancelled": JobStatus.CANCELLED,
                  "paused": JobStatus.PAUSED, "pending": JobStatus.QUEUED,
                  "notRunning": JobStatus.QUEUED, "canceling": JobStatus.CANCELLING,
                  "canceled": JobStatus.CANCELLED}
    assert STATUS_MAP == documented
    assert not JobStatus.CANCELLING.is_terminal  # Azure "canceling" may still finish


def _snap(be, job):
    return be._snapshot(job, RemoteRef(backend="openai", remote_id=job["id"]), None, {})


def test_snapshot_from_raw_objects():
    be = OpenAIBackend()
    base = {"id": "ftjob-1", "created_at": 1, "model": "gpt-4o-mini-2024-07-18",
            "fine_tuned_model": None, "trained_tokens": None}
    s = _snap(be, {**base, "status": "queued", "error": {"code": None, "message": None, "param": None}})
    assert s.status is JobStatus.QUEUED and s.error is None
    s = _snap(be, {**base, "status": "mystery_state", "error": None})
    assert s.status is JobStatus.UNKNOWN and s.raw_status == "mystery_state"
    s = _snap(be, {**base, "status": "failed", "error": {"code": "invalid_training_file",
                                                        "message": "Line 3 broken", "param": "training_file"}})
    assert s.error.message == "Line 3 broken" and s.error.param == "training_file"
    s = _snap(be, {**base, "status": "failed", "error": {"code": None, "message": None, "param": None}})
    assert s.status is JobStatus.FAILED and s.error is not None  # failed, but nothing said


def test_too_few_examples_refused_before_upload(openai_env, tmp_path):
    problems = OpenAIBackend().check(make_spec(tmp_path, n_train=5))
    (p,) = [p for p in problems if p.code == "too_few_examples"]
    assert p.severity == "error" and "10" in p.message
    assert not openai_env.files


def test_broken_line_is_named_with_file_and_line(tmp_path):
    spec = make_spec(tmp_path)
    with open(spec.data_path("train"), "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    (p,) = [p for p in OpenAIBackend().check(spec) if p.severity == "error"]
    assert p.line == 13 and p.file.endswith("train.jsonl") and p.code == "invalid_json"


def test_data_error_fails_job_with_vendor_message(tmp_path, monkeypatch):
    # the vendor may still reject data that passes local checks: its message must come through
    with FakeOpenAIServer(min_examples=20) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        be = OpenAIBackend(sleep=no_sleep, log=lambda _m: None)
        key = f"ut-{uuid.uuid4().hex[:8]}"
        ref = be.submit(make_spec(tmp_path, n_train=12),
                        SubmitContext(job_id=key, idempotency_key=key, work_dir=tmp_path))
        while not (snap := be.get(ref)).status.is_terminal:
            pass
        assert snap.status is JobStatus.FAILED
        assert "at least 20 examples" in snap.error.message
        assert snap.error.code == "invalid_training_file" and snap.error.param == "training_file"


def test_pause_and_resume(openai_backend, openai_env, tmp_path):
    openai_env.arrange("slow")
    key = f"ut-{uuid.uuid4().hex[:8]}"
    ref = openai_backend.submit(make_spec(tmp_path), SubmitContext(job_id=key, idempotency_key=key,
                                                                   work_dir=tmp_path))
    while openai_backend.get(ref).status is not JobStatus.RUNNING:
        pass
    assert openai_backend.pause(ref).status is JobStatus.PAUSED
    assert openai_backend.get(ref).status is JobStatus.PAUSED
    assert openai_backend.resume(ref).status is JobStatus.RUNNING
    assert openai_backend.cancel(ref).status is JobStatus.CANCELLED


def test_secrets_never_in_errors(tmp_path, monkeypatch):
    secret = "sk-proj-SUPERSECRET0123456789abcdef"
    with FakeOpenAIServer(api_key="sk-the-right-one") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        be = OpenAIBackend(sleep=no_sleep, log=lambda _m: None)
        with pytest.raises(AuthError) as info:
            be.find("ut-anything")
        err = info.value
        assert err.status_code == 401 and "Incorrect API key" in err.message
        assert secret not in str(err) and "SUPERSECRET" not in str(err)
        assert isinstance(err.__cause__, openai.AuthenticationError)
        assert "SUPERSECRET" not in str(err.__cause__)  # the chained original is scrubbed too
        with pytest.raises(NotFound):
            monkeypatch.setenv("OPENAI_API_KEY", "sk-the-right-one")
            OpenAIBackend().get(RemoteRef(backend="openai", remote_id="ftjob-nope",
                                          extra={"conn": {"base_url": server.base_url}}))


def test_missing_credentials_is_a_clear_error(tmp_path):
    with pytest.raises(AuthError) as info:
        OpenAIBackend().find("ut-x")
    assert "OPENAI_API_KEY" in str(info.value)
    with pytest.raises(AuthError) as info:
        AzureOpenAIBackend().find("ut-x")
    assert "AZURE_OPENAI_ENDPOINT" in str(info.value)


def test_capabilities_give_reasons():
    caps = OpenAIBackend().capabilities()
    assert not caps.get("learning_rate") and "multiplier" in caps.get("learning_rate").reason
    assert not caps.get("adapter:qlora") and caps.get("method:dpo")
    az = AzureOpenAIBackend().capabilities()
    assert az.get("deploy") and not OpenAIBackend().capabilities().get("deploy")
