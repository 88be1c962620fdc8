"""The status strings OpenAI and Azure OpenAI send for a fine-tuning job, as unitune statuses."""
from __future__ import annotations

from unitune.job import JobStatus

# Every status string either API is known to send. The OpenAI ones are the published enum of
# `FineTuningJob.status` (tests check the table against the committed OpenAPI subset).
# Azure-only: created, pending, notRunning, canceling (NOT terminal: the job may still finish),
# canceled. Anything else → UNKNOWN with the raw string kept.
STATUS_MAP: dict[str, JobStatus] = {
    "validating_files": JobStatus.VALIDATING,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "paused": JobStatus.PAUSED,  # after jobs.pause (a relaxation the schema subset records)
    "created": JobStatus.QUEUED,  # Azure (2025-04-01-preview data plane)
    "pending": JobStatus.QUEUED,  # Azure
    "notRunning": JobStatus.QUEUED,  # Azure
    "canceling": JobStatus.CANCELLING,  # Azure
    "canceled": JobStatus.CANCELLED,  # Azure
}
