"""Azure OpenAI specifics against the fake in Azure mode: api-version, trainingType, Entra
tokens, Azure statuses (canceling is not terminal), null result_files, pause/resume, ARM
deployments with the hourly cost said first."""
from __future__ import annotations

import pytest

from unitune.errors import AuthError, InvalidRequest, SpecError
from unitune.job import JobStatus
from unitune.pipeline import Pipeline
from unitune.provider import Deployable, Pausable
from unitune.providers.openai import AzureOpenAIProvider, OpenAIProvider
from unitune.testing.openai_server import FakeOpenAIServer

from openai_helpers import make_spec, pipe, submit

ARM = {"subscription_id": "sub-1", "resource_group": "rg-1", "account": "acct-1"}


def run_to_end(provider, ref):
    seen = []
    while not (snap := provider.read(ref)).status.is_terminal:
        seen.append(snap.raw_status)
    return snap, seen


def test_supervised_job_sends_training_type_and_api_version(azure_provider, azure_env, tmp_path):
    server = azure_env
    ref = submit(azure_provider, make_spec(tmp_path))
    body = server.jobs[ref.remote_id].body
    assert body["trainingType"] == 1
    assert all("api-version=2025-04-01-preview" in r["query"] for r in server.requests)
    snap, seen = run_to_end(azure_provider, ref)
    assert snap.status is JobStatus.SUCCEEDED
    assert "notRunning" in seen  # Azure's queued state, mapped to QUEUED on the way
    assert snap.model.model_id.startswith("gpt-4o-mini-2024-07-18.ft-")
    rows = azure_provider.metrics(ref)  # Azure CSV columns (validation_mean_token_accuracy)
    assert len(rows) == 12 and any(r.valid_token_accuracy is not None for r in rows)


def test_training_type_option_and_api_version_option(azure_provider, azure_env, tmp_path):
    spec = make_spec(tmp_path, backend_options={"azure": {"training_type": "globalstandard",
                                                          "api_version": "2024-10-21",
                                                          "poll_interval": 0.01}})
    ref = submit(azure_provider, spec)
    assert azure_env.jobs[ref.remote_id].body["trainingType"] == "globalstandard"
    assert all("api-version=2024-10-21" in r["query"] for r in azure_env.requests)
    assert azure_provider.read(ref).status is not JobStatus.UNKNOWN  # the ref keeps the version


def test_the_fake_refuses_training_type_from_openai(openai_env, tmp_path):
    """trainingType is Azure's extension: OpenAI's published request body has no such field."""
    import openai

    client = openai.OpenAI(api_key="x", base_url=openai_env.base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file="file-x",
                                       extra_body={"trainingType": 1})
    assert "Unrecognized request argument supplied: trainingType" in str(info.value)


def test_dpo_job_sends_training_type_too(azure_provider, azure_env, tmp_path):
    """Microsoft's DPO how-to (2026-10-07) sends trainingType with method dpo; the string form
    selects Global training. gpt-4o-mini is SFT-only on Azure, so DPO uses gpt-4.1-mini."""
    spec = make_spec(tmp_path, method="dpo", models={"azure": "gpt-4.1-mini-2025-04-14"},
                     backend_options={"azure": {"training_type": "globalstandard",
                                                "poll_interval": 0.01}})
    ref = submit(azure_provider, spec)
    body = azure_env.jobs[ref.remote_id].body
    assert body["trainingType"] == "globalstandard" and body["method"]["type"] == "dpo"


def test_dpo_on_an_sft_only_azure_model_is_refused_before_upload(azure_provider, tmp_path):
    from unitune.errors import Unsupported

    with pytest.raises(Unsupported, match="does not train on preference pairs"):
        submit(azure_provider, make_spec(tmp_path, method="dpo"))  # gpt-4o-mini: SFT only


def test_null_result_files_while_running(azure_provider, azure_env, tmp_path):
    ref = submit(azure_provider, make_spec(tmp_path))
    snap = azure_provider.read(ref)
    assert snap.raw["result_files"] is None and snap.status in (JobStatus.QUEUED, JobStatus.VALIDATING)
    assert isinstance(azure_provider.metrics(ref), list)


def test_canceling_is_not_terminal(azure_provider, azure_env, tmp_path):
    azure_env.arrange("slow")
    ref = submit(azure_provider, make_spec(tmp_path))
    snap = azure_provider.cancel(ref)
    assert snap.raw_status == "canceling" and snap.status is JobStatus.CANCELLING
    assert not snap.status.is_terminal
    snap = azure_provider.read(ref)
    assert snap.raw_status == "canceled" and snap.status is JobStatus.CANCELLED


def test_pause_and_resume(azure_provider, azure_env, tmp_path):
    azure_env.arrange("slow")
    ref = submit(azure_provider, make_spec(tmp_path))
    while azure_provider.read(ref).status is not JobStatus.RUNNING:
        pass
    assert pipe(azure_provider).pause(ref).status is JobStatus.PAUSED
    assert pipe(azure_provider).resume(ref).status is JobStatus.RUNNING
    azure_provider.cancel(ref)


def test_protocols_and_capabilities():
    az, oa = AzureOpenAIProvider(), OpenAIProvider()
    assert isinstance(az, Deployable) and not isinstance(oa, Deployable)
    assert isinstance(az, Pausable) and isinstance(oa, Pausable)
    assert az.capabilities().get("deploy") and not oa.capabilities().get("deploy")
    assert "per token" in oa.capabilities().get("deploy").reason


def test_entra_token_provider(tmp_path, monkeypatch):
    with FakeOpenAIServer(azure=True, api_key="the-key", azure_ad_token="entra-token") as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)
        calls = []

        def provider():
            calls.append(1)
            return "entra-token"

        be = AzureOpenAIProvider(token_provider=provider, log=lambda _m: None)
        ref = submit(be, make_spec(tmp_path))
        assert ref.remote_id in server.jobs and calls
        wrong = AzureOpenAIProvider(token_provider=lambda: "stale", log=lambda _m: None)
        p = Pipeline(wrong)
        location = wrong.locate(None, p.options())
        with pytest.raises(AuthError) as info:
            p.lookup("ut-x", location)
        assert info.value.status_code == 401 and "stale" not in str(info.value)


def test_missing_settings_are_all_reported_at_plan(tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    plan = Pipeline(AzureOpenAIProvider()).plan(make_spec(tmp_path))
    assert not plan.ready
    (p,) = [p for p in plan.problems if p.code == "option_missing"]
    assert p.path == "backend_options.azure.endpoint" and "AZURE_OPENAI_ENDPOINT" in p.hint
    creds = [p for p in plan.problems if p.code == "credentials_missing"]
    assert creds and creds[0].severity == "error" and "AZURE_OPENAI_API_KEY" in creds[0].message
    assert creds[0].path == "backend_options.azure.api_key_env" and "AZURE_OPENAI_API_KEY" in creds[0].hint


def _succeeded(provider, tmp_path):
    ref = submit(provider, make_spec(tmp_path))
    run_to_end(provider, ref)
    return ref


def test_deploy_and_undeploy_through_arm(azure_env, tmp_path):
    server, logs = azure_env, []
    be = AzureOpenAIProvider(arm_token_provider=lambda: "arm-token", log=logs.append)
    ref = _succeeded(be, tmp_path)
    opts = {**ARM, "arm_endpoint": server.endpoint, "sku": "standard"}
    text = pipe(be).deploy(ref, opts, dry_run=True)
    assert isinstance(text, str) and "/hour" in text and "would PUT" in text
    assert not server.deployments
    assert "$1.70/hour" in text and not logs
    handle = pipe(be).deploy(ref, opts, dry_run=False)
    assert logs and "$1.70/hour" in logs[0]  # the catalog price, said before the PUT
    (dep,) = server.deployments.values()
    assert dep["properties"]["model"]["name"] == handle.model_id
    assert dep["sku"] == {"name": "Standard", "capacity": 1}
    assert handle.name == dep["name"] and handle.endpoint.endswith(f"/openai/deployments/{dep['name']}")
    pipe(be).undeploy(ref, opts)
    assert not server.deployments


def test_deploy_token_and_coordinates_from_the_environment(azure_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_ARM_TOKEN", "arm-secret-token-123")
    monkeypatch.setenv("UNITUNE_AZURE_SUBSCRIPTION_ID", "sub-env")
    be = AzureOpenAIProvider(log=lambda _m: None)
    ref = _succeeded(be, tmp_path)
    handle = be.deploy(ref, {"resource_group": "rg", "account": "a",
                             "arm_endpoint": azure_env.endpoint, "sku": "developer"})
    (rid,) = azure_env.deployments
    assert rid.startswith("/subscriptions/sub-env/") and handle.artifacts["deployment"]
    # Microsoft's Developer-tier example: SKU "developertier" with ARM api-version 2025-07-01-preview
    assert azure_env.deployments[rid]["sku"]["name"] == "developertier"
    puts = [r for r in azure_env.requests if r["method"] == "PUT"]
    assert puts and "api-version=2025-07-01-preview" in puts[-1]["query"]


def test_undeploy_reuses_the_options_deploy_used(azure_env, tmp_path):
    """`undeploy` from a fresh provider (a new process) finds the deployment with no options:
    what deploy used is stored with the job under UNITUNE_HOME."""
    be = AzureOpenAIProvider(arm_token_provider=lambda: "arm-token", log=lambda _m: None)
    ref = _succeeded(be, tmp_path)
    handle = be.deploy(ref, {**ARM, "arm_endpoint": azure_env.endpoint, "sku": "developer",
                             "deployment_name": "my-dep"})
    assert set(azure_env.deployments) == {
        "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/"
        "accounts/acct-1/deployments/my-dep"}
    assert '"deployment_name": "my-dep"' in handle.artifacts["deploy_options"]
    fresh = AzureOpenAIProvider(arm_token_provider=lambda: "arm-token", log=lambda _m: None)
    fresh.undeploy(ref)  # no options given
    assert not azure_env.deployments
    deletes = [r for r in azure_env.requests if r["method"] == "DELETE"]
    assert "api-version=2025-07-01-preview" in deletes[-1]["query"]
    with pytest.raises(SpecError, match="subscription_id"):  # forgotten once removed
        fresh.undeploy(ref)


def test_deploy_needs_arm_coordinates(azure_provider, azure_env, tmp_path):
    ref = _succeeded(azure_provider, tmp_path)
    with pytest.raises(SpecError) as info:
        azure_provider.deploy(ref, {"sku": "standard"})
    assert "subscription_id" in str(info.value)
    with pytest.raises(SpecError, match="subscriptionid"):  # a typo in -o is named
        azure_provider.deploy(ref, {"subscriptionid": "s"})


def test_deploy_of_unfinished_job_is_refused(azure_provider, azure_env, tmp_path):
    azure_env.arrange("slow")
    ref = submit(azure_provider, make_spec(tmp_path))
    with pytest.raises(InvalidRequest):
        azure_provider.deploy(ref, ARM)


def test_azure_plan_mentions_training_type_and_hosting(tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "entra-token-for-plan")
    plan = Pipeline(AzureOpenAIProvider()).plan(make_spec(tmp_path))
    assert any(r.vendor_param == "trainingType" and r.vendor_value == 1 for r in plan.rows)
    assert plan.request["trainingType"] == 1
    assert any("deploy" in n and "/hour" in n for n in plan.notes)
    assert plan.location.endpoint == "https://example.openai.azure.com"
    assert plan.location.extra["api_version"] == "2025-04-01-preview"
