"""Bedrock job objects → unitune Snapshot: status mapping, failure, model handle, events.

`InProgress` is refined by `statusDetails` (validation → data processing → training) into
queued / validating / running; anything undocumented maps to UNKNOWN with the raw string kept.
`failureMessage` is read only when the job failed (moto sets it on every job).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from unitune.job import (Event, JobError, JobStatus, ModelHandle, Progress, RemoteRef, Snapshot,
                         map_status)

BEDROCK_STATE_MAP: dict[str, JobStatus] = {
    "InProgress": JobStatus.RUNNING,
    "Completed": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Stopping": JobStatus.CANCELLING,
    "Stopped": JobStatus.CANCELLED,
}

_STAGES = (("validationDetails", "validation"), ("dataProcessingDetails", "data processing"),
           ("trainingDetails", "training"))


def refine_in_progress(details: dict[str, Any] | None) -> JobStatus:
    """InProgress + statusDetails → queued / validating / running."""
    if not details:
        return JobStatus.RUNNING
    stage = {key: (details.get(key) or {}).get("status") for key, _ in _STAGES}
    if stage["trainingDetails"] in ("InProgress", "Completed"):
        return JobStatus.RUNNING
    if stage["validationDetails"] == "InProgress" or stage["dataProcessingDetails"] == "InProgress":
        return JobStatus.VALIDATING
    if stage["validationDetails"] == "Completed":
        return JobStatus.VALIDATING  # between validation and training: data processing next
    if all(s in (None, "NotStarted") for s in stage.values()):
        return JobStatus.QUEUED
    return JobStatus.RUNNING


def map_job_status(raw: str | None, details: dict[str, Any] | None) -> JobStatus:
    status = map_status(raw, BEDROCK_STATE_MAP)
    if raw == "InProgress":
        return refine_in_progress(details)
    return status


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def base_model_id(job: dict[str, Any]) -> str | None:
    arn = job.get("baseModelArn")
    if not arn:
        return None
    return arn.split("foundation-model/", 1)[-1] if "foundation-model/" in arn else arn


def invoke_hint(model_arn: str) -> str:
    return ("a custom model is not invocable by itself: run `unitune deploy <job id>` (on-demand "
            "deployment or provisioned throughput), then call bedrock-runtime "
            "converse(modelId=<deployment or provisioned model ARN>); custom model: " + model_arn)


def snapshot(ref: RemoteRef, job: dict[str, Any]) -> Snapshot:
    raw = job.get("status")
    status = map_job_status(raw, job.get("statusDetails"))
    error = None
    if status is JobStatus.FAILED:
        error = JobError(message=job.get("failureMessage") or "the job failed without a message",
                         code="Failed")
    model = None
    if status is JobStatus.SUCCEEDED and job.get("outputModelArn"):
        model = ModelHandle(backend="bedrock", model_id=job["outputModelArn"],
                            name=job.get("outputModelName"), base_model=base_model_id(job),
                            invoke=invoke_hint(job["outputModelArn"]),
                            artifacts={"output": (job.get("outputDataConfig") or {}).get("s3Uri", "")})
    progress = None
    loss = (job.get("trainingMetrics") or {}).get("trainingLoss")
    # a cross-entropy loss of exactly 0 is a placeholder (moto, and a job with no metrics yet),
    # not a measurement: showing "latest loss 0.0000" would mislead
    if loss and status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
        progress = Progress(latest_loss=float(loss))
    started = None
    training = (job.get("statusDetails") or {}).get("trainingDetails") or {}
    if isinstance(training.get("creationTime"), datetime):
        started = training["creationTime"]
    finished = job.get("endTime") if status.is_terminal else None
    return Snapshot(ref=ref, status=status, raw_status=raw, created_at=job.get("creationTime"),
                    started_at=started, finished_at=finished, error=error, model=model,
                    progress=progress, raw=_json_safe(job))


def events(job: dict[str, Any]) -> list[Event]:
    """Bedrock has no event log: synthesize one from the job's timestamps and stage details."""
    out: list[Event] = []
    if job.get("creationTime"):
        out.append(Event(time=job["creationTime"], message=f"job {job.get('jobName')} created "
                         f"(base model {base_model_id(job)})"))
    details = job.get("statusDetails") or {}
    for key, label in _STAGES:
        d = details.get(key) or {}
        if d.get("status") and d["status"] != "NotStarted":
            out.append(Event(time=d.get("lastModifiedTime") or d.get("creationTime"),
                             message=f"{label}: {d['status']}"))
    raw = job.get("status")
    if raw in ("Completed", "Failed", "Stopped"):
        level = "error" if raw == "Failed" else "info"
        msg = f"job {raw.lower()}"
        if raw == "Failed" and job.get("failureMessage"):
            msg += f": {job['failureMessage']}"
        if raw == "Completed" and job.get("outputModelArn"):
            msg += f": custom model {job['outputModelArn']}"
        out.append(Event(time=job.get("endTime") or job.get("lastModifiedTime"), level=level,
                         message=msg))
    return out
