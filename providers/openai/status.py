"""The status strings OpenAI and Azure OpenAI send for a fine-tuning job, as unitune statuses."""
from __future__ import annotations

from unitune.job import JobStatus

# Every status string either API is known to send. Azure-only: pending, notRunning, canceling
# (NOT terminal: the job may still finish), canceled. Anything else → UNKNOWN with the raw kept.
STATUS_MAP: dict[str, JobStatus] = {
    "validating_files": JobStatus.VALIDATING,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "paused": JobStatus.PAUSED,  # after jobs.pause (not in the published enum; the SDK accepts it)
    "pending": JobStatus.QUEUED,  # Azure
    "notRunning": JobStatus.QUEUED,  # Azure
    "canceling": JobStatus.CANCELLING,  # Azure
    "canceled": JobStatus.CANCELLED,  # Azure
}
