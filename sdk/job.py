"""What the user gets back from every backend: Job, JobStatus, Metrics, ModelHandle, Snapshot.

Backends translate their vendor's objects into these shapes; nothing above the provider layer
ever sees a vendor type. The vendor's raw status string is always kept beside the normalized one.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(str, Enum):
    """Normalized lifecycle of a tuning job. Unknown vendor states map to UNKNOWN, never a crash."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:  # so f-strings print "running", not "JobStatus.RUNNING"
        return self.value


def map_status(raw: str | None, table: dict[str, JobStatus]) -> JobStatus:
    """Map a vendor status string through `table`; anything unlisted is UNKNOWN."""
    if raw is None:
        return JobStatus.UNKNOWN
    return table.get(raw, JobStatus.UNKNOWN)


class JobError(BaseModel):
    """Why a job failed, as the vendor said it."""

    message: str
    code: str | None = None
    param: str | None = None

    @property
    def interrupted(self) -> bool:
        """The job was interrupted (its process killed), not failed on its own account."""
        return self.code in INTERRUPTION_CODES


# Error codes meaning "interrupted, not failed": re-running `unitune train` on the same spec
# continues such a job from its last checkpoint where the backend can restart (local).
WORKER_DIED = "worker_died"
INTERRUPTION_CODES = frozenset({WORKER_DIED})


class ModelHandle(BaseModel):
    """How to reach the tuned model: an ft:… id, a custom-model ARN, a Vertex model, an adapter dir."""

    backend: str
    model_id: str
    base_model: str | None = None
    name: str | None = None
    endpoint: str | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    checkpoints: list[str] = Field(default_factory=list)
    invoke: str | None = None  # a one-line hint: how to call this model


class Metrics(BaseModel):
    """One wide row per training step; values a backend does not report are None."""

    step: int
    epoch: float | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    train_token_accuracy: float | None = None
    valid_token_accuracy: float | None = None
    learning_rate: float | None = None
    tokens_seen: int | None = None
    train_perplexity: float | None = None  # Bedrock reports perplexity beside the loss
    valid_perplexity: float | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = ("step", "epoch", "train_loss", "valid_loss", "train_token_accuracy",
               "valid_token_accuracy", "learning_rate", "tokens_seen", "train_perplexity",
               "valid_perplexity")


def merge_metrics(rows: list[Metrics]) -> list[Metrics]:
    """Merge rows by step (later non-None values win) and sort by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for row in rows:
        cur = by_step.setdefault(row.step, {"step": row.step})
        for key, value in row.model_dump().items():
            if value is not None:
                cur[key] = value
    return [Metrics(**by_step[s]) for s in sorted(by_step)]


class Event(BaseModel):
    """A log line from the vendor or the local worker."""

    time: datetime | None = None
    level: str = "info"
    message: str
    data: dict[str, Any] | None = None


class Progress(BaseModel):
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    latest_loss: float | None = None
    eta_seconds: float | None = None


class RemoteRef(BaseModel):
    """Enough to find a job at its backend again (the vendor's job id plus whatever else it needs)."""

    backend: str
    remote_id: str
    extra: dict[str, Any] = Field(default_factory=dict)


class JobState(BaseModel):
    """The fields every view of a job shares (vendor snapshot, user-facing Job, registry record):
    declared once, so adding a field is one line here."""

    model_config = ConfigDict(protected_namespaces=())

    status: JobStatus = JobStatus.QUEUED
    raw_status: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trained_tokens: int | None = None
    billed_tokens: int | None = None
    error: JobError | None = None
    model: ModelHandle | None = None
    progress: Progress | None = None


class Snapshot(JobState):
    """A backend's answer to `get`: the job's state at the vendor, normalized."""

    ref: RemoteRef
    status: JobStatus  # required: a vendor always says something (UNKNOWN at worst)
    estimated_finish: datetime | None = None
    raw: dict[str, Any] | None = None  # the vendor's object, secrets never included


class Job(JobState):
    """A job as unitune knows it: the registry's record merged with the latest snapshot."""

    id: str
    name: str | None = None
    backend: str
    base_model: str | None = None
    remote_id: str | None = None
    cost_usd: float | None = None
    spec_hash: str | None = None
    data_hash: str | None = None
    idempotency_key: str | None = None
    submitted: bool = False  # False until the vendor has accepted the job
