"""Throttling is retried by botocore's retry modes (a throttling front on moto's server speaks
Bedrock's real 429 ThrottlingException), and every botocore error becomes a unitune error with
the original chained."""
from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from unitune import errors as ue
from unitune.job import RemoteRef, JobStatus
from unitune.providers.bedrock import BedrockBackend
from unitune.providers.bedrock.naming import TAG_JOB_ID, job_name_for

from .conftest import set_aws_env


class Throttle:
    """WSGI front for moto's app: the next `n` GetModelCustomizationJob calls get a 429."""

    def __init__(self, app) -> None:
        self.app = app
        self.pending = 0
        self.attempts = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        is_get = (environ["REQUEST_METHOD"] == "GET"
                  and environ.get("PATH_INFO", "").startswith("/model-customization-jobs/"))
        if is_get:
            with self.lock:
                self.attempts += 1
                throttle = self.pending > 0
                self.pending -= 1 if throttle else 0
            if throttle:
                body = json.dumps({"message": "Too many requests, please wait before trying "
                                              "again."}).encode()
                start_response("429 Too Many Requests", [
                    ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    ("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/"),
                    ("x-amzn-RequestId", "throttled")])
                return [body]
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def throttle_front():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    front = Throttle(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, front, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    front.url = f"http://127.0.0.1:{server.server_port}"
    yield front
    server.shutdown()
    thread.join()


@pytest.fixture
def throttled(aws, throttle_front, monkeypatch):
    """A unitune-named job in moto, with the backend talking through the throttling front."""
    key = "ut-throttle"
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for(key), customModelName="m", roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{aws.bucket}/t.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{aws.bucket}/out/"}, hyperParameters={},
        jobTags=[{"key": TAG_JOB_ID, "value": key}])
    set_aws_env(monkeypatch, throttle_front.url)  # same in-process moto state, throttling front
    throttle_front.attempts = 0
    ref = RemoteRef(backend="bedrock", remote_id="arn", extra={"job_name": job_name_for(key),
                                                               "region": "us-east-1"})
    return throttle_front, ref


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_throttling_is_retried(throttled, mode):
    front, ref = throttled
    front.pending = 2
    snap = BedrockBackend(retry_mode=mode).get(ref)
    assert snap.status is JobStatus.RUNNING
    assert front.attempts == 3  # two 429s, then the answer


def test_throttling_beyond_the_attempts_is_rate_limited(throttled, monkeypatch):
    front, ref = throttled
    front.pending = 5
    monkeypatch.setenv("UNITUNE_BEDROCK_MAX_ATTEMPTS", "2")
    with pytest.raises(ue.RateLimited) as err:
        BedrockBackend().get(ref)
    assert front.attempts == 2
    assert err.value.retryable and err.value.vendor_code == "ThrottlingException"
    assert isinstance(err.value.__cause__, ClientError)
    front.pending = 0


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
    backend = BedrockBackend()
    client = backend.client("bedrock")
    ref = RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": "ut-x",
                                                             "region": "us-east-1"})
    with Stubber(client) as stub:
        stub.add_client_error("get_model_customization_job", service_error_code=code,
                              service_message=f"planted {code}", http_status_code=status)
        with pytest.raises(cls) as err:
            backend.get(ref)
    assert type(err.value) is cls
    assert f"planted {code}" in str(err.value) and err.value.vendor_code == code
    assert isinstance(err.value.__cause__, ClientError)
    assert err.value.hint or cls is not ue.PermissionDenied


def test_missing_job_is_not_found_naming_the_region(aws):
    ref = RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": "ut-missing",
                                                             "region": "us-east-1"})
    with pytest.raises(ue.NotFound) as err:
        BedrockBackend().get(ref)
    assert "region" in err.value.hint


def test_no_credentials_is_an_auth_error_without_secrets(aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ref = RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": "ut-x",
                                                             "region": "us-east-1"})
    with pytest.raises(ue.AuthError) as err:
        BedrockBackend().get(ref)
    assert "AWS_PROFILE" in err.value.hint


def test_secret_key_never_appears_in_errors(aws, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-do-not-print")
    backend = BedrockBackend()
    ref = RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": "ut-none",
                                                             "region": "us-east-1"})
    with pytest.raises(ue.UnituneError) as err:
        backend.get(ref)
    assert "planted-secret" not in str(err.value) and "planted-secret" not in repr(err.value)


def test_s3_403_on_the_upload_check_names_list_bucket(aws, tmp_path):
    from unitune.providers.bedrock.data import upload

    backend = BedrockBackend()
    s3 = backend.client("s3")
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(ue.PermissionDenied) as err:
            upload(s3, aws.bucket, "unitune/data/x.jsonl", path, None)
    assert "s3:ListBucket" in err.value.hint and isinstance(err.value.__cause__, ClientError)
