"""A client-neutral view of a Vertex TuningJob, and the request both clients send.

google-genai returns pydantic models, the GAPIC client proto-plus messages; each client module
turns its object into a `JobView`, so state mapping, handles and events are written once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class CreateRequest:
    base_model: str
    training_uri: str
    validation_uri: str | None
    labels: dict[str, str]
    display_name: str | None = None
    description: str | None = None
    epoch_count: int | None = None
    learning_rate_multiplier: float | None = None
    adapter_size: str | None = None  # enum name, e.g. "ADAPTER_SIZE_SIXTEEN"


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


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
