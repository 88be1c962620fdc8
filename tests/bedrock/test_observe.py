"""Observe against moto: status mapping driven through moto's in-process backend, statusDetails
refinement on real response shapes (botocore Stubber), failure message only when failed,
metrics CSVs in both documented layouts, events, model handle, cancel."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

from unitune.job import JobStatus, RemoteRef
from unitune.provider import Location
from unitune.providers.bedrock import BedrockProvider, BedrockOptions
from unitune.providers.bedrock.aws import client
from unitune.providers.bedrock.status import BEDROCK_STATE_MAP, map_job_status

from unitune.providers.bedrock.naming import TAG_JOB_ID, job_name_for, model_name_for, token_for
from .harness import put_metrics


@pytest.fixture
def submitted(aws):
    """A job as unitune names and tags it, created straight through boto3 (faster than a full
    submit, which test_submit covers), looked up by its key."""
    key = "ut-observe"
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for(key), customModelName=model_name_for("obs", key), roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{aws.bucket}/unitune/data/x.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{aws.bucket}/unitune/output/{job_name_for(key)}/"},
        hyperParameters={"epochCount": "2"}, clientRequestToken=token_for(key),
        jobTags=[{"key": TAG_JOB_ID, "value": key}])
    backend = BedrockProvider()
    ref = backend.lookup(key, Location(backend="bedrock", region="us-east-1"), BedrockOptions())
    assert ref is not None
    return backend, ref, aws.job(job_name_for(key))


@pytest.mark.parametrize("raw,expected", [
    ("InProgress", JobStatus.RUNNING), ("Completed", JobStatus.SUCCEEDED),
    ("Failed", JobStatus.FAILED), ("Stopping", JobStatus.CANCELLING),
    ("Stopped", JobStatus.CANCELLED), ("Paused", JobStatus.UNKNOWN), ("", JobStatus.UNKNOWN),
])
def test_status_transitions_through_moto(submitted, raw, expected):
    backend, ref, job = submitted
    job.status = raw
    snap = backend.read(ref)
    assert snap.status is expected
    assert snap.raw_status == (raw or None) or snap.raw_status == raw
    assert (snap.error is not None) == (expected is JobStatus.FAILED)
    assert (snap.model is not None) == (expected is JobStatus.SUCCEEDED)
    assert (snap.finished_at is not None) == expected.is_terminal


def test_moto_failure_message_on_a_running_job_is_not_a_failure(submitted):
    backend, ref, job = submitted
    assert job.failure_message  # moto sets one on every job
    snap = backend.read(ref)
    assert snap.status is JobStatus.RUNNING and snap.error is None


def test_failed_job_carries_the_vendor_message(submitted):
    backend, ref, job = submitted
    job.status, job.failure_message = "Failed", "Training data line 3: roles must alternate"
    snap = backend.read(ref)
    assert snap.error.message == "Training data line 3: roles must alternate"
    assert any(e.level == "error" and "roles must alternate" in e.message
               for e in backend.events(ref))


def test_completed_job_has_a_model_handle(submitted):
    backend, ref, job = submitted
    job.status = "Completed"
    model = backend.read(ref).model
    assert model.model_id == job.output_model_arn
    assert model.name == job.output_model_name
    assert model.base_model == "amazon.nova-micro-v1:0:128k"
    assert "unitune deploy" in model.invoke and "converse" in model.invoke


def test_cancel_stops_and_is_terminal(submitted, aws):
    backend, ref, job = submitted
    snap = backend.cancel(ref)
    assert snap.status is JobStatus.CANCELLED and aws.job("ut-observe").status == "Stopped"
    assert backend.cancel(ref).status is JobStatus.CANCELLED  # no second stop on a stopped job


def test_stopping_is_cancelling_and_cancel_does_not_stop_again(submitted):
    backend, ref, job = submitted
    job.status = "Stopping"
    assert backend.cancel(ref).status is JobStatus.CANCELLING
    assert job.status == "Stopping"


@pytest.mark.parametrize("nested", [False, True])
def test_metrics_from_both_documented_paths(submitted, aws, nested):
    backend, ref, job = submitted
    assert backend.metrics(ref) == []  # nothing written yet
    put_metrics(aws, job, nested_validation=nested)
    rows = backend.metrics(ref)
    assert [r.step for r in rows] == [1, 2, 3, 4]
    assert [r.train_loss for r in rows] == [2.5, 1.9, 1.4, 1.1]
    assert rows[1].valid_loss == 2.0 and rows[3].valid_loss == 1.3
    assert rows[0].valid_loss is None
    assert rows[0].train_perplexity == pytest.approx(12.18)
    assert rows[3].valid_perplexity == pytest.approx(3.67)
    assert rows[2].epoch == 1


def test_metrics_step_counter_restarting_per_epoch_is_made_global():
    from unitune.providers.bedrock.metrics import parse_csv

    text = ("step_number,epoch_number,training_loss,perplexity\n"
            "1,1,2.0,7.4\n2,1,1.5,4.5\n1,2,1.2,3.3\n2,2,1.0,2.7\n")
    rows = parse_csv(text, "train")
    assert [r.step for r in rows] == [1, 2, 3, 4]


def test_unknown_metric_values_are_none():
    from unitune.providers.bedrock.metrics import parse_csv

    rows = parse_csv("step_number,epoch_number,validation_loss,perplexity\n5,0,nan,\n", "valid")
    assert rows[0].step == 5 and rows[0].valid_loss is None


# -- statusDetails refinement on real response shapes (moto never returns statusDetails) --------
def _job_response(status: str, details: dict | None) -> dict:
    now = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/a1b2c3d4e5f6"
    out = {"jobArn": arn, "jobName": "ut-details", "outputModelName": "m-ut-details",
           "roleArn": "arn:aws:iam::123456789012:role/r", "status": status,
           "creationTime": now, "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/"
           "amazon.nova-micro-v1:0:128k", "hyperParameters": {"epochCount": "2"},
           "trainingDataConfig": {"s3Uri": "s3://b/t.jsonl"},
           "validationDataConfig": {"validators": [{"s3Uri": "s3://b/v.jsonl"}]},
           "outputDataConfig": {"s3Uri": "s3://b/out/"}, "customizationType": "FINE_TUNING"}
    if details is not None:
        out["statusDetails"] = {k: {"status": v, "creationTime": now, "lastModifiedTime": now}
                                for k, v in details.items()}
    return out


@pytest.mark.parametrize("details,expected", [
    ({"validationDetails": "NotStarted", "dataProcessingDetails": "NotStarted",
      "trainingDetails": "NotStarted"}, JobStatus.QUEUED),
    ({"validationDetails": "InProgress", "dataProcessingDetails": "NotStarted",
      "trainingDetails": "NotStarted"}, JobStatus.VALIDATING),
    ({"validationDetails": "Completed", "dataProcessingDetails": "InProgress",
      "trainingDetails": "NotStarted"}, JobStatus.VALIDATING),
    ({"validationDetails": "Completed", "dataProcessingDetails": "Completed",
      "trainingDetails": "InProgress"}, JobStatus.RUNNING),
    (None, JobStatus.RUNNING),
])
def test_in_progress_refined_by_status_details(aws, details, expected):
    backend = BedrockProvider()
    bedrock = client("bedrock", "us-east-1")
    ref = RemoteRef(backend="bedrock", remote_id=_job_response("InProgress", None)["jobArn"],
                    extra={"job_name": "ut-details", "region": "us-east-1"})
    with Stubber(bedrock) as stub:
        stub.add_response("get_model_customization_job", _job_response("InProgress", details),
                          {"jobIdentifier": "ut-details"})
        snap = backend.read(ref)
        stub.assert_no_pending_responses()
    assert snap.status is expected and snap.raw_status == "InProgress"
    if details and details.get("trainingDetails") == "InProgress":
        assert snap.started_at is not None


def test_events_follow_the_stages(aws):
    backend = BedrockProvider()
    bedrock = client("bedrock", "us-east-1")
    ref = RemoteRef(backend="bedrock", remote_id="x", extra={"job_name": "ut-details",
                                                             "region": "us-east-1"})
    resp = _job_response("Completed", {"validationDetails": "Completed",
                                       "dataProcessingDetails": "Completed",
                                       "trainingDetails": "Completed"})
    resp["outputModelArn"] = ("arn:aws:bedrock:us-east-1:123456789012:custom-model/"
                              "amazon.nova-micro-v1:0:128k/abcdefabcdef")
    with Stubber(bedrock) as stub:
        stub.add_response("get_model_customization_job", resp)
        events = backend.events(ref)
    messages = [e.message for e in events]
    assert messages[0].startswith("job ut-details created")
    assert "validation: Completed" in messages and "training: Completed" in messages
    assert messages[-1].startswith("job completed: custom model arn:aws:bedrock")


def test_every_documented_status_is_mapped():
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock")
    enum = model.operation_model("GetModelCustomizationJob").output_shape.members["status"].enum
    assert set(enum) == set(BEDROCK_STATE_MAP)
    assert map_job_status("SomethingNew", None) is JobStatus.UNKNOWN


def test_a_zero_placeholder_loss_is_not_shown_as_a_measurement():
    """Bedrock (and moto) send trainingLoss 0.0 before any metric exists: status must show no
    loss rather than 'latest loss 0.0000' (issue 12 item 14)."""
    from datetime import datetime, timezone

    from unitune.job import RemoteRef
    from unitune.providers.bedrock.status import snapshot

    ref = RemoteRef(backend="bedrock", remote_id="arn:aws:bedrock:us-east-1:1:model-customization-job/x")
    job = {"status": "InProgress", "jobName": "x", "creationTime": datetime.now(timezone.utc),
           "trainingMetrics": {"trainingLoss": 0.0}}
    assert snapshot(ref, job).progress is None
    job["trainingMetrics"] = {"trainingLoss": 1.25}
    assert snapshot(ref, job).progress.latest_loss == 1.25
