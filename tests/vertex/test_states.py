"""Every Vertex JobState maps to a deliberate unitune status, through both clients' real SDKs."""
from __future__ import annotations

import uuid

import pytest

from unitune.backends import SubmitContext
from unitune.job import JobStatus
from unitune.providers.vertex.states import STATE_MAP, normalize_state

from .conftest import FAILURE, Harness, make_spec

EXPECTED = {
    "UNSPECIFIED": JobStatus.UNKNOWN,
    "QUEUED": JobStatus.QUEUED,
    "PENDING": JobStatus.VALIDATING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCEEDED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "CANCELLING": JobStatus.CANCELLING,
    "CANCELLED": JobStatus.CANCELLED,
    "PAUSED": JobStatus.PAUSED,
    "EXPIRED": JobStatus.FAILED,
    "UPDATING": JobStatus.RUNNING,
    "PARTIALLY_SUCCEEDED": JobStatus.SUCCEEDED,
}


def test_the_table_covers_all_twelve_states_and_folds_none_into_queued():
    assert set(STATE_MAP) == {f"JOB_STATE_{s}" for s in EXPECTED}
    assert [s for s, v in STATE_MAP.items() if v is JobStatus.QUEUED] == ["JOB_STATE_QUEUED"]
    assert normalize_state("JOB_STATE_SOMETHING_NEW", has_model=False) is JobStatus.UNKNOWN
    assert normalize_state(None, has_model=False) is JobStatus.UNKNOWN
    assert normalize_state("JOB_STATE_PARTIALLY_SUCCEEDED", has_model=False) is JobStatus.FAILED


def test_every_state_the_installed_sdk_knows_is_mapped():
    names = set()
    try:
        from google.genai import types

        names |= {s.value for s in types.JobState}
    except ImportError:
        pass
    try:
        from google.cloud import aiplatform_v1

        names |= {s.name for s in aiplatform_v1.JobState}
    except ImportError:
        pass
    assert names, "neither client is installed"
    assert names <= set(STATE_MAP), names - set(STATE_MAP)


def _submit(h: Harness, tmp_path, scenario: str):
    h.arrange(scenario)
    key = f"ut-state-{uuid.uuid4().hex[:8]}"
    work = tmp_path / key
    work.mkdir()
    return h.backend.submit(make_spec(tmp_path, h.kind),
                            SubmitContext(job_id=key, idempotency_key=key, work_dir=work))


@pytest.mark.parametrize("state", list(EXPECTED))
def test_state_maps_through_the_sdk(harness, tmp_path, state):
    ref = _submit(harness, tmp_path, f"state:{state}")
    snap = harness.backend.get(ref)  # the first poll moves the fake job into `state`
    assert snap.raw_status == f"JOB_STATE_{state}"
    assert snap.status is EXPECTED[state]
    if state == "FAILED":
        assert snap.error is not None and snap.error.message == FAILURE
        assert snap.error.code == "INVALID_ARGUMENT"
    if state == "EXPIRED":
        assert snap.status.is_terminal and "expired" in snap.error.message
        assert snap.model is None
    if state in ("SUCCEEDED", "PARTIALLY_SUCCEEDED"):
        assert snap.model is not None and snap.model.model_id.endswith("@1")
        assert snap.model.endpoint and "/endpoints/" in snap.model.endpoint
    if state == "PARTIALLY_SUCCEEDED":
        events = harness.backend.events(ref)
        assert any(e.level == "warning" and "PARTIALLY_SUCCEEDED" in e.message for e in events)
    if state == "UNSPECIFIED":
        assert not snap.status.is_terminal


def test_partial_success_without_a_model_is_a_failure(harness, tmp_path):
    ref = _submit(harness, tmp_path, "state:PARTIALLY_SUCCEEDED:nomodel")
    snap = harness.backend.get(ref)
    assert snap.status is JobStatus.FAILED
    assert snap.model is None
    assert snap.error and "Some checkpoints could not be exported." in snap.error.message


def test_failure_message_and_progress_are_surfaced(harness, tmp_path):
    ref = _submit(harness, tmp_path, "failure")
    seen = []
    for _ in range(10):
        snap = harness.backend.get(ref)
        seen.append(snap.status)
        if snap.status.is_terminal:
            break
    assert seen[:3] == [JobStatus.VALIDATING, JobStatus.RUNNING, JobStatus.RUNNING]
    assert snap.status is JobStatus.FAILED and snap.error.message == FAILURE
    if harness.kind == "genai":  # tuning_job_metadata only exists in google-genai's model
        assert snap.progress is not None and snap.progress.step == 2
    assert snap.progress is not None and snap.progress.total_steps == 4
    events = harness.backend.events(ref)
    assert any(e.level == "error" and e.message == FAILURE for e in events)
