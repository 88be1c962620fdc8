"""Azure OpenAI specifics against the fake in Azure mode: api-version, trainingType, Entra
tokens, Azure statuses (canceling is not terminal), null result_files, ARM deployments."""
from __future__ import annotations

import uuid

import pytest

from unitune.backends import SubmitContext
from unitune.errors import AuthError, InvalidRequest, SpecError
from unitune.job import JobStatus
from unitune.providers.openai import AzureOpenAIBackend
from unitune.testing.openai_server import FakeOpenAIServer

from openai_helpers import make_spec, no_sleep


def submit(be, tmp_path, spec=None):
    key = f"ut-{uuid.uuid4().hex[:8]}"
    return be.submit(spec or make_spec(tmp_path), SubmitContext(job_id=key, idempotency_key=key,
                                                                work_dir=tmp_path))


def run_to_end(be, ref):
    seen = []
    while not (snap := be.get(ref)).status.is_terminal:
        seen.append(snap.raw_status)
    return snap, seen


def test_supervised_job_sends_training_type_and_api_version(azure_backend, azure_env, tmp_path):
    server = azure_env
    ref = submit(azure_backend, tmp_path)
    body = server.jobs[ref.remote_id].body
    assert body["trainingType"] == 1
    assert all("api-version=" in r["query"] for r in server.requests)
    snap, seen = run_to_end(azure_backend, ref)
    assert snap.status is JobStatus.SUCCEEDED
    assert "notRunning" in seen  # Azure's queued state, mapped to QUEUED on the way
    assert snap.model.model_id.startswith("gpt-4o-mini-2024-07-18.ft-")
    rows = azure_backend.metrics(ref)  # Azure CSV columns (validation_mean_token_accuracy)
    assert len(rows) == 12 and any(r.valid_token_accuracy is not None for r in rows)


def test_dpo_job_has_no_training_type(azure_backend, azure_env, tmp_path):
    ref = submit(azure_backend, tmp_path, make_spec(tmp_path, method="dpo"))
    assert "trainingType" not in azure_env.jobs[ref.remote_id].body


def test_null_result_files_while_running(azure_backend, azure_env, tmp_path):
    ref = submit(azure_backend, tmp_path)
    snap = azure_backend.get(ref)
    assert snap.raw["result_files"] is None and snap.status in (JobStatus.QUEUED, JobStatus.VALIDATING)
    assert isinstance(azure_backend.metrics(ref), list)


def test_canceling_is_not_terminal(azure_backend, azure_env, tmp_path):
    azure_env.arrange("slow")
    ref = submit(azure_backend, tmp_path)
    snap = azure_backend.cancel(ref)
    assert snap.raw_status == "canceling" and snap.status is JobStatus.CANCELLING
    assert not snap.status.is_terminal
    snap = azure_backend.get(ref)
    assert snap.raw_status == "canceled" and snap.status is JobStatus.CANCELLED


def test_entra_token_provider(tmp_path, monkeypatch):
    with FakeOpenAIServer(azure=True, api_key="the-key", azure_ad_token="entra-token") as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)
        calls = []

        def provider():
            calls.append(1)
            return "entra-token"

        be = AzureOpenAIBackend(token_provider=provider, sleep=no_sleep, log=lambda _m: None)
        ref = submit(be, tmp_path)
        assert ref.remote_id in server.jobs and calls
        wrong = AzureOpenAIBackend(token_provider=lambda: "stale", sleep=no_sleep, log=lambda _m: None)
        with pytest.raises(AuthError) as info:
            wrong.find("ut-x")
        assert info.value.status_code == 401 and "stale" not in str(info.value)


def test_deploy_and_undeploy_through_arm(azure_backend, azure_env, tmp_path, capsys):
    server = azure_env
    ref = submit(azure_backend, tmp_path)
    run_to_end(azure_backend, ref)
    logs = []
    azure_backend._log = logs.append
    azure_backend._arm_token_provider = lambda: "arm-token"
    opts = {"subscription_id": "sub-1", "resource_group": "rg-1", "account": "acct-1",
            "arm_endpoint": server.endpoint, "sku": "standard"}
    text = azure_backend.deploy(ref, opts, dry_run=True)
    assert isinstance(text, str) and "/hour" in text and "would PUT" in text
    assert not server.deployments
    assert "$1.70/hour" in text and not logs
    handle = azure_backend.deploy(ref, opts)
    assert logs and "$1.70/hour" in logs[0]  # the catalog price, printed before the PUT
    (dep,) = server.deployments.values()
    assert dep["properties"]["model"]["name"] == handle.model_id
    assert dep["sku"] == {"name": "Standard", "capacity": 1}
    assert handle.name == dep["name"] and handle.endpoint.endswith(f"/openai/deployments/{dep['name']}")
    azure_backend.undeploy(ref, opts)
    assert not server.deployments


def test_deploy_needs_arm_coordinates(azure_backend, azure_env, tmp_path):
    ref = submit(azure_backend, tmp_path)
    run_to_end(azure_backend, ref)
    azure_backend._arm_token_provider = lambda: "t"
    with pytest.raises(SpecError) as info:
        azure_backend.deploy(ref, {"sku": "standard"})
    assert "subscription_id" in str(info.value)


def test_deploy_of_unfinished_job_is_refused(azure_backend, azure_env, tmp_path):
    azure_env.arrange("slow")
    ref = submit(azure_backend, tmp_path)
    with pytest.raises(InvalidRequest):
        azure_backend.deploy(ref, {"subscription_id": "s", "resource_group": "r", "account": "a"})


def test_azure_plan_mentions_training_type_and_hosting(tmp_path):
    plan = AzureOpenAIBackend().plan(make_spec(tmp_path))
    assert any(r.vendor_param == "trainingType" and r.vendor_value == 1 for r in plan.rows)
    assert any("deploy" in n and "/hour" in n for n in plan.notes)
