"""Throttling: botocore makes ONE attempt (its retries are off) and the 429 becomes RateLimited
carrying the Retry-After the wire said; the core's one policy retries. Every botocore error
becomes a unitune error with the original chained and no secret in its text."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from unitune import errors as ue
from unitune.job import JobStatus, RemoteRef
from unitune.pipeline import Pipeline
from unitune.providers.bedrock import BedrockProvider
from unitune.providers.bedrock.aws import client
from unitune.providers.bedrock.naming import TAG_JOB_ID, job_name_for
from unitune.retry import RetryPolicy

KEY = "ut-throttle"


def ref_for(name: str = "ut-x") -> RemoteRef:
    return RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": name,
                                                             "region": "us-east-1"})


@pytest.fixture
def job(aws):
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for(KEY), customModelName="m", roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{aws.bucket}/t.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{aws.bucket}/out/"}, hyperParameters={},
        jobTags=[{"key": TAG_JOB_ID, "value": KEY}])
    aws.front.reset()
    return ref_for(job_name_for(KEY))


def test_one_attempt_then_rate_limited_with_retry_after(aws, job):
    aws.front.throttle_next(3.5, n=2)
    with pytest.raises(ue.RateLimited) as err:
        BedrockProvider().read(job)
    assert aws.front.bedrock_calls == 1  # botocore did not retry on its own
    assert err.value.retryable and err.value.retry_after == pytest.approx(3.5)
    assert err.value.vendor_code == "ThrottlingException" and err.value.status_code == 429
    assert isinstance(err.value.__cause__, ClientError)
    waits: list[float] = []
    snap = Pipeline(BedrockProvider(), policy=RetryPolicy(max_retries=3, cap=60),
                    sleep=waits.append).get(job)
    assert snap.status is JobStatus.RUNNING
    assert waits == [3.5] and aws.front.bedrock_calls == 3  # the policy honoured Retry-After


def test_throttling_beyond_the_policy_is_rate_limited(aws, job):
    aws.front.throttle_next(0.01, n=5)
    with pytest.raises(ue.RateLimited):
        Pipeline(BedrockProvider(), policy=RetryPolicy(max_retries=2, cap=0.01)).get(job)
    assert aws.front.bedrock_calls == 3
    aws.front.reset()


@pytest.mark.parametrize("code,status,cls", [
    ("ThrottlingException", 429, ue.RateLimited),
    ("AccessDeniedException", 403, ue.PermissionDenied),
    ("ValidationException", 400, ue.InvalidRequest),
    ("ResourceNotFoundException", 404, ue.NotFound),
    ("ServiceQuotaExceededException", 400, ue.QuotaExceeded),
    ("UnrecognizedClientException", 403, ue.AuthError),
    ("InternalServerException", 500, ue.BackendUnavailable),
    ("SomethingNobodyDocumented", 503, ue.BackendUnavailable),
    ("SomethingElse", 409, ue.InvalidRequest),
])
def test_client_errors_are_mapped_with_the_original_chained(aws, code, status, cls):
    with Stubber(client("bedrock", "us-east-1")) as stub:
        stub.add_client_error("get_model_customization_job", service_error_code=code,
                              service_message=f"planted {code}", http_status_code=status)
        with pytest.raises(cls) as err:
            BedrockProvider().read(ref_for())
    assert type(err.value) is cls
    assert f"planted {code}" in str(err.value) and err.value.vendor_code == code
    assert isinstance(err.value.__cause__, ClientError)
    assert err.value.retryable == (cls in (ue.RateLimited, ue.BackendUnavailable))
    assert err.value.hint or cls is not ue.PermissionDenied


def test_missing_job_is_not_found_naming_the_region(aws):
    with pytest.raises(ue.NotFound) as err:
        BedrockProvider().read(ref_for("ut-missing"))
    assert "region" in err.value.hint


def test_no_credentials_is_an_auth_error_without_secrets(aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ue.AuthError) as err:
        BedrockProvider().read(ref_for())
    assert "AWS_PROFILE" in err.value.hint


def test_secret_key_never_appears_in_errors(aws, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-do-not-print")
    with pytest.raises(ue.UnituneError) as err:
        BedrockProvider().read(ref_for("ut-none"))
    assert "planted-secret" not in str(err.value) and "planted-secret" not in repr(err.value)


def test_s3_403_on_the_upload_check_names_list_bucket(aws, tmp_path):
    from unitune.providers.bedrock.s3 import upload

    s3 = client("s3", "us-east-1")
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(ue.PermissionDenied) as err:
            upload(s3, aws.bucket, "unitune/data/x.jsonl", path, None)
    assert "s3:ListBucket" in err.value.hint and isinstance(err.value.__cause__, ClientError)


def test_a_new_credential_gets_a_new_client(aws, monkeypatch):
    first = client("bedrock", "us-east-1")
    assert client("bedrock", "us-east-1") is first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "another")
    assert client("bedrock", "us-east-1") is not first
    assert first.meta.config.retries["total_max_attempts"] == 1
