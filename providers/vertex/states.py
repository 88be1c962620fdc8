"""Vertex AI's JobState and AdapterSize vocabularies, and how unitune maps them.

Every one of the twelve `JobState` values is mapped on purpose (none falls into "queued"):

    JOB_STATE_UNSPECIFIED          unknown     the service has not said; not terminal, keep polling
    JOB_STATE_QUEUED               queued
    JOB_STATE_PENDING              validating  Vertex prepares the job (dataset checks, resources)
    JOB_STATE_RUNNING              running
    JOB_STATE_SUCCEEDED            succeeded
    JOB_STATE_FAILED               failed
    JOB_STATE_CANCELLING           cancelling
    JOB_STATE_CANCELLED            cancelled
    JOB_STATE_PAUSED               paused
    JOB_STATE_EXPIRED              failed      terminal and no model will come: the job ran out of
                                               its time allowance; unitune reports it as a failure
                                               with the vendor's message (or "job expired")
    JOB_STATE_UPDATING             running     Vertex only updates RUNNING jobs and returns them to
                                               RUNNING; training continues meanwhile
    JOB_STATE_PARTIALLY_SUCCEEDED  succeeded   when the job reports a tuned model (usable; the
                                   / failed    vendor's note is kept as a warning event), failed
                                               when it reports none (nothing to use)

Any other value (a new state, or an enum number the client does not know) maps to UNKNOWN.
"""
from __future__ import annotations

import math

from unitune.job import JobStatus

STATE_MAP: dict[str, JobStatus] = {
    "JOB_STATE_UNSPECIFIED": JobStatus.UNKNOWN,
    "JOB_STATE_QUEUED": JobStatus.QUEUED,
    "JOB_STATE_PENDING": JobStatus.VALIDATING,
    "JOB_STATE_RUNNING": JobStatus.RUNNING,
    "JOB_STATE_SUCCEEDED": JobStatus.SUCCEEDED,
    "JOB_STATE_FAILED": JobStatus.FAILED,
    "JOB_STATE_CANCELLING": JobStatus.CANCELLING,
    "JOB_STATE_CANCELLED": JobStatus.CANCELLED,
    "JOB_STATE_PAUSED": JobStatus.PAUSED,
    "JOB_STATE_EXPIRED": JobStatus.FAILED,
    "JOB_STATE_UPDATING": JobStatus.RUNNING,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobStatus.SUCCEEDED,  # see normalize_state
}

# google.rpc.Code numbers → names, for the job's `error.code`
RPC_CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
             5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
             9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
             13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}


def normalize_state(raw: str | None, *, has_model: bool) -> JobStatus:
    """The unitune status for a raw Vertex state (see the module docstring for the choices)."""
    if raw == "JOB_STATE_PARTIALLY_SUCCEEDED":
        return JobStatus.SUCCEEDED if has_model else JobStatus.FAILED
    if raw is None:
        return JobStatus.UNKNOWN
    return STATE_MAP.get(raw, JobStatus.UNKNOWN)


# Adapter sizes: the enum names both clients know, by size (GAPIC's REST transport sends their
# numbers instead, which are NOT in size order: ONE=1, FOUR=2, EIGHT=3, SIXTEEN=4, THIRTY_TWO=5,
# TWO=6; the request is always built by name).
ADAPTER_SIZE_NAMES: dict[int, str] = {1: "ADAPTER_SIZE_ONE", 2: "ADAPTER_SIZE_TWO",
                                      4: "ADAPTER_SIZE_FOUR", 8: "ADAPTER_SIZE_EIGHT",
                                      16: "ADAPTER_SIZE_SIXTEEN", 32: "ADAPTER_SIZE_THIRTY_TWO"}
ALL_ADAPTER_SIZES = tuple(sorted(ADAPTER_SIZE_NAMES))


def nearest_adapter_size(rank: int, allowed: list[int] | tuple[int, ...]) -> int:
    """The allowed size closest to a LoRA rank on a log2 scale (ranks grow by doubling); a tie
    goes to the smaller, cheaper size. Ranks above the largest allowed size get the largest."""
    sizes = sorted(allowed) or list(ALL_ADAPTER_SIZES)
    return min(sizes, key=lambda s: (abs(math.log2(s) - math.log2(rank)), s))
