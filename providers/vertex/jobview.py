"""A client-neutral view of a Vertex TuningJob, and what unitune makes of it.

google-genai returns pydantic models, the GAPIC client proto-plus messages; each client module
turns its object into a `JobView`, so the snapshot (status, error, model handle, billed tokens,
progress) and the events are written once, here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unitune.job import Event, JobError, JobStatus, ModelHandle, Progress, RemoteRef, Snapshot

from .states import RPC_CODES, normalize_state


@dataclass
class JobView:
    name: str
    state: str | None  # "JOB_STATE_RUNNING"; a state the client does not know, as sent
    labels: dict[str, str] = field(default_factory=dict)
    base_model: str | None = None
    display_name: str | None = None
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error_message: str | None = None
    error_code: int | None = None
    tuned_model: str | None = None
    endpoint: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    example_count: int | None = None
    billable_tokens: int | None = None  # per pass over the dataset
    step_count: int | None = None
    truncated_examples: int | None = None
    dropped_reasons: list[str] = field(default_factory=list)
    completed_steps: int | None = None
    epoch_count: int | None = None
    adapter_size: str | None = None
    gcs_metrics_uri: str | None = None
    experiment: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> JobStatus:
        return normalize_state(self.state, has_model=bool(self.tuned_model))


def as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _error(view: JobView, status: JobStatus) -> JobError | None:
    if view.error_message and status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN):
        code = view.error_code
        return JobError(message=view.error_message,
                        code=RPC_CODES.get(code, str(code)) if code is not None else None)
    if status is JobStatus.FAILED:
        why = {"JOB_STATE_EXPIRED": "the job expired before it finished (JOB_STATE_EXPIRED)",
               "JOB_STATE_PARTIALLY_SUCCEEDED": "Vertex reported PARTIALLY_SUCCEEDED without a "
                                                "tuned model"}.get(view.state or "", "the job failed")
        return JobError(message=f"Vertex AI: {why}", code=view.state)
    return None


def snapshot(ref: RemoteRef, view: JobView) -> Snapshot:
    status = view.status
    tokens = None  # Vertex reports one pass over the data; billing is that × epochs
    if view.billable_tokens is not None and view.epoch_count:
        tokens = view.billable_tokens * view.epoch_count
    model = None
    if view.tuned_model:
        project, location = _project_location(view.name)
        model = ModelHandle(
            backend="vertex", model_id=view.tuned_model, base_model=view.base_model,
            name=view.display_name, endpoint=view.endpoint, checkpoints=view.checkpoints,
            invoke=(f"genai.Client(vertexai=True, project={project!r}, location={location!r})"
                    f".models.generate_content(model={(view.endpoint or view.tuned_model)!r}, "
                    "contents=...)"))
    progress = None
    if view.completed_steps is not None or view.step_count is not None:
        progress = Progress(step=view.completed_steps, total_steps=view.step_count)
    return Snapshot(ref=ref, status=status, raw_status=view.state, created_at=view.create_time,
                    started_at=view.start_time, finished_at=view.end_time, trained_tokens=tokens,
                    billed_tokens=tokens, error=_error(view, status), model=model,
                    progress=progress, raw=view.raw)


def _project_location(name: str) -> tuple[str | None, str | None]:
    parts = name.split("/")
    return (parts[1], parts[3]) if len(parts) >= 4 else (None, None)


def events(view: JobView) -> list[Event]:
    status, error = view.status, _error(view, view.status)
    out: list[Event] = []
    if view.create_time:
        out.append(Event(time=view.create_time, message=f"tuning job created (base model "
                         f"{view.base_model}, adapter {view.adapter_size or '-'}, epochs "
                         f"{view.epoch_count or 'Vertex default'})"))
    if view.example_count is not None:
        out.append(Event(message=f"dataset: {view.example_count} examples, {view.billable_tokens} "
                         f"billable tokens per epoch, {view.step_count} steps"))
    if view.truncated_examples:
        out.append(Event(level="warning", message=f"{view.truncated_examples} examples were "
                         "dropped or truncated by Vertex: " + "; ".join(view.dropped_reasons[:5])))
    if view.start_time:
        out.append(Event(time=view.start_time, message="training started"))
    if view.completed_steps is not None:
        out.append(Event(message=f"{view.completed_steps}/{view.step_count or '?'} steps done"))
    if view.state == "JOB_STATE_PARTIALLY_SUCCEEDED":
        out.append(Event(level="warning", message="Vertex reported PARTIALLY_SUCCEEDED"
                         + (f": {view.error_message}" if view.error_message else "")))
    if status is JobStatus.UNKNOWN:
        out.append(Event(level="warning", message=f"Vertex reports state {view.state!r}, which "
                         "unitune does not know; treated as not finished"))
    if error:
        out.append(Event(time=view.end_time, level="error", message=error.message))
    if status.is_terminal:
        text = f"job ended: {view.state}"
        if view.tuned_model:
            text += f"; tuned model {view.tuned_model}, endpoint {view.endpoint}"
        out.append(Event(time=view.end_time, message=text))
    if view.gcs_metrics_uri is None and view.experiment and status.is_terminal:
        out.append(Event(message=f"training curves: Vertex AI Experiments {view.experiment}"))
    if not out:
        out.append(Event(message=f"tuning job {view.name}: {view.state}"))
    return out
