"""deploy/undeploy: moto implements neither custom model deployments nor provisioned
throughput, so these run through botocore's Stubber, which checks every request against the
real service model and every canned response against the real response shape."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

from unitune.errors import InvalidRequest, SpecError
from unitune.job import ModelHandle, RemoteRef
from unitune.provider import Deployable
from unitune.providers.bedrock import BedrockProvider
from unitune.providers.bedrock.aws import client
from unitune.providers.bedrock.deploy import DeployPlan
from unitune.providers.bedrock.naming import TAG_JOB_ID, deployment_name_for, token_for

KEY = "ut-20261128-dep123"
ACCOUNT = "123456789012"


def job_response(base: str, status: str = "Completed") -> dict:
    now = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
    return {
        "jobArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-customization-job/{base}/a1b2c3d4e5f6",
        "jobName": KEY, "outputModelName": f"demo-{KEY}",
        "outputModelArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model/{base}/f6e5d4c3b2a1",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "status": status, "creationTime": now,
        "endTime": now, "baseModelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{base}",
        "hyperParameters": {"epochCount": "2"}, "trainingDataConfig": {"s3Uri": "s3://b/t.jsonl"},
        "validationDataConfig": {"validators": []}, "outputDataConfig": {"s3Uri": "s3://b/out/"},
        "customizationType": "FINE_TUNING"}


@pytest.fixture
def stubbed(aws):
    backend = BedrockProvider()
    assert isinstance(backend, Deployable)
    with Stubber(client("bedrock", "us-east-1")) as stub:
        yield backend, stub
        stub.assert_no_pending_responses()


def ref_for() -> RemoteRef:
    return RemoteRef(backend="bedrock", remote_id="arn", extra={
        "job_name": KEY, "region": "us-east-1", "idempotency_key": KEY})


def test_nova_dry_run_then_on_demand_deployment(stubbed):
    backend, stub = stubbed
    job = job_response("amazon.nova-micro-v1:0:128k")
    stub.add_response("get_model_customization_job", job, {"jobIdentifier": KEY})
    plan = backend.deploy(ref_for(), {}, dry_run=True)  # no create call is stubbed: none may happen
    assert isinstance(plan, DeployPlan) and plan.mode == "on-demand" and plan.dry_run
    text = str(plan)
    assert "would create on-demand custom model deployment" in text
    assert "no hourly fee" in text and "--yes" in text and "$1.95/month" in text

    name = deployment_name_for(f"demo-{KEY}", "od")
    deployment_arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model-deployment/abcdef123456"
    stub.add_response("get_model_customization_job", job, {"jobIdentifier": KEY})
    stub.add_response("create_custom_model_deployment", {"customModelDeploymentArn": deployment_arn}, {
        "modelDeploymentName": name, "modelArn": job["outputModelArn"],
        "tags": [{"key": TAG_JOB_ID, "value": KEY}],
        "clientRequestToken": token_for(f"{KEY}:deploy:on-demand:{name}"),
        "description": f"unitune job {KEY}"})
    handle = backend.deploy(ref_for(), {}, dry_run=False)
    assert isinstance(handle, ModelHandle)
    assert handle.endpoint == deployment_arn and handle.model_id == job["outputModelArn"]
    assert handle.base_model == "amazon.nova-micro-v1:0:128k"
    assert deployment_arn in handle.invoke and "Active" in handle.invoke


def test_titan_provisioned_throughput_with_cost_and_commitment(stubbed):
    backend, stub = stubbed
    job = job_response("amazon.titan-text-express-v1:0:8k")
    stub.add_response("get_model_customization_job", job)
    plan = backend.deploy(ref_for(), {"units": "2", "commitment": "1month"}, dry_run=True)
    assert plan.mode == "provisioned" and plan.model_units == 2 and plan.commitment == "OneMonth"
    assert plan.hourly_usd == pytest.approx(41.0) and plan.monthly_usd == pytest.approx(29930.0)
    text = str(plan)
    assert "$41.00/hour ≈ $29,930.00/month" in text and "unverified" in text
    assert "OneMonth commitment bills the whole term" in text

    name = deployment_name_for(f"demo-{KEY}", "pt")
    pt_arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abcdef123456"
    stub.add_response("get_model_customization_job", job)
    stub.add_response("create_provisioned_model_throughput", {"provisionedModelArn": pt_arn}, {
        "modelUnits": 2, "provisionedModelName": name, "modelId": job["outputModelArn"],
        "commitmentDuration": "OneMonth", "tags": [{"key": TAG_JOB_ID, "value": KEY}],
        "clientRequestToken": token_for(f"{KEY}:deploy:provisioned:{name}")})
    handle = backend.deploy(ref_for(), {"units": "2", "commitment": "1month"}, dry_run=False)
    assert handle.endpoint == pt_arn and "InService" in handle.invoke and "$41.00/hour" in handle.invoke


def test_hourly_provisioned_throughput_sends_no_commitment(stubbed):
    backend, stub = stubbed
    job = job_response("meta.llama3-1-8b-instruct-v1:0:128k")
    stub.add_response("get_model_customization_job", job)
    plan = backend.deploy(ref_for(), {}, dry_run=True)
    assert plan.mode == "provisioned" and plan.hourly_usd is None
    assert "not in the catalog" in str(plan)
    name = deployment_name_for(f"demo-{KEY}", "pt")
    stub.add_response("get_model_customization_job", job)
    stub.add_response("create_provisioned_model_throughput", {
        "provisionedModelArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/aaaaaaaaaaaa"}, {
        "modelUnits": 1, "provisionedModelName": name, "modelId": job["outputModelArn"],
        "tags": [{"key": TAG_JOB_ID, "value": KEY}],
        "clientRequestToken": token_for(f"{KEY}:deploy:provisioned:{name}")})
    backend.deploy(ref_for(), {}, dry_run=False)


def test_on_demand_is_refused_where_the_family_lacks_it(stubbed):
    backend, stub = stubbed
    stub.add_response("get_model_customization_job", job_response("meta.llama3-1-8b-instruct-v1:0:128k"))
    with pytest.raises(InvalidRequest, match="no on-demand"):
        backend.deploy(ref_for(), {"mode": "on-demand"}, dry_run=True)


def test_bad_units_and_unfinished_jobs_are_refused(stubbed):
    backend, stub = stubbed
    stub.add_response("get_model_customization_job", job_response("amazon.titan-text-express-v1:0:8k"))
    with pytest.raises(SpecError, match="model_units"):
        backend.deploy(ref_for(), {"units": "0"}, dry_run=True)
    stub.add_response("get_model_customization_job",
                      job_response("amazon.nova-micro-v1:0:128k", status="InProgress"))
    with pytest.raises(InvalidRequest, match="only a completed job"):
        backend.deploy(ref_for(), {}, dry_run=True)


def test_undeploy_finds_whichever_kind_exists(stubbed):
    backend, stub = stubbed
    stub.add_response("get_model_customization_job", job_response("amazon.nova-micro-v1:0:128k"))
    stub.add_client_error("delete_custom_model_deployment", "ResourceNotFoundException",
                          "no such deployment", 404, expected_params={
                              "customModelDeploymentIdentifier": deployment_name_for(f"demo-{KEY}", "od")})
    stub.add_response("delete_provisioned_model_throughput", {}, {
        "provisionedModelId": deployment_name_for(f"demo-{KEY}", "pt")})
    assert "deleted provisioned throughput" in backend.undeploy(ref_for(), {})


def test_deploy_against_moto_fails_cleanly(aws, tmp_path):
    """moto has no custom model deployments: the real call comes back as a unitune error."""
    from unitune.errors import BackendError
    from unitune.pipeline import Pipeline
    from unitune.provider import Ids
    from unitune.retry import RetryPolicy

    from .conftest import make_spec

    spec = make_spec(tmp_path)
    pipe = Pipeline(BedrockProvider(), policy=RetryPolicy(max_retries=0))
    ref = pipe.submit(pipe.prepare_submission(spec), Ids(KEY, KEY, spec.spec_hash()))
    aws.job(ref.extra["job_name"]).status = "Completed"
    assert "would create" in str(pipe.deploy(ref, {}, dry_run=True))
    with pytest.raises(BackendError) as err:
        pipe.deploy(ref, {}, dry_run=False)
    assert "create_custom_model_deployment" in str(err.value)
    assert "<html" not in str(err.value).lower() and "AWS_ENDPOINT_URL" in str(err.value)
