"""Every Vertex JobState the installed SDK knows maps to a deliberate unitune status, through both
clients' real SDKs. The states come from the SDK's own JobState enum (google-genai, else GAPIC's),
never from a copy of the map under test."""
from __future__ import annotations

import pytest

from unitune.job import JobStatus
from unitune.providers.vertex.states import STATE_MAP, normalize_state

from .conftest import FAILURE, Harness, make_spec, submit


def sdk_states() -> list[str]:
    """JobState names as the installed SDK defines them."""
    try:
        from google.genai import types

        return [s.value for s in types.JobState]
    except ImportError:
        pass
    try:
        from google.cloud import aiplatform_v1

        return [s.name for s in aiplatform_v1.JobState]
    except ImportError:
        return []


STATES = sdk_states()


def test_the_sdk_is_installed_and_the_map_covers_its_states():
    assert STATES, "neither client is installed"
    assert set(STATES) <= set(STATE_MAP), set(STATES) - set(STATE_MAP)
    # only UNSPECIFIED is "unknown"; nothing else is folded into queued or unknown
    assert [s for s, v in STATE_MAP.items() if v is JobStatus.QUEUED] == ["JOB_STATE_QUEUED"]
    assert [s for s in STATES if STATE_MAP[s] is JobStatus.UNKNOWN] == ["JOB_STATE_UNSPECIFIED"]
    assert normalize_state("JOB_STATE_SOMETHING_NEW", has_model=False) is JobStatus.UNKNOWN
    assert normalize_state(None, has_model=False) is JobStatus.UNKNOWN
    assert normalize_state("JOB_STATE_PARTIALLY_SUCCEEDED", has_model=False) is JobStatus.FAILED


def test_the_deliberate_choices():
    """The mappings that are a decision, not a rename (see states.py)."""
    assert STATE_MAP["JOB_STATE_PENDING"] is JobStatus.VALIDATING
    assert STATE_MAP["JOB_STATE_EXPIRED"] is JobStatus.FAILED
    assert STATE_MAP["JOB_STATE_UPDATING"] is JobStatus.RUNNING
    assert STATE_MAP["JOB_STATE_PARTIALLY_SUCCEEDED"] is JobStatus.SUCCEEDED


def _submit(tmp_path, kind: str, h: Harness, scenario: str):
    h.arrange(scenario)
    return submit(make_spec(tmp_path, kind))


@pytest.mark.parametrize("state", STATES)
def test_state_maps_through_the_sdk(harness, tmp_path, state):
    ref = _submit(tmp_path, harness.kind, harness, f"state:{state.removeprefix('JOB_STATE_')}")
    snap = harness.provider.read(ref)  # the first poll moves the fake job into `state`
    assert snap.raw_status == state
    assert snap.status is normalize_state(state, has_model=snap.model is not None)
    if snap.status is JobStatus.FAILED:
        assert snap.error is not None and snap.error.message
    if state == "JOB_STATE_FAILED":
        assert snap.error.message == FAILURE and snap.error.code == "INVALID_ARGUMENT"
    if state == "JOB_STATE_EXPIRED":
        assert snap.status.is_terminal and "expired" in snap.error.message
        assert snap.model is None
    if snap.status is JobStatus.SUCCEEDED:
        assert snap.model is not None and snap.model.model_id.endswith("@1")
        assert snap.model.endpoint and "/endpoints/" in snap.model.endpoint
    if state == "JOB_STATE_PARTIALLY_SUCCEEDED":
        events = harness.provider.events(ref)
        assert any(e.level == "warning" and "PARTIALLY_SUCCEEDED" in e.message for e in events)
    if state == "JOB_STATE_UNSPECIFIED":
        assert not snap.status.is_terminal


def test_partial_success_without_a_model_is_a_failure(harness, tmp_path):
    ref = _submit(tmp_path, harness.kind, harness, "state:PARTIALLY_SUCCEEDED:nomodel")
    snap = harness.provider.read(ref)
    assert snap.status is JobStatus.FAILED
    assert snap.model is None
    assert snap.error and "Some checkpoints could not be exported." in snap.error.message


def test_failure_message_and_progress_are_surfaced(harness, tmp_path):
    ref = _submit(tmp_path, harness.kind, harness, "failure")
    seen = []
    for _ in range(10):
        snap = harness.provider.read(ref)
        seen.append(snap.status)
        if snap.status.is_terminal:
            break
    assert seen[:3] == [JobStatus.VALIDATING, JobStatus.RUNNING, JobStatus.RUNNING]
    assert snap.status is JobStatus.FAILED and snap.error.message == FAILURE
    if harness.kind == "genai":  # tuning_job_metadata only exists in google-genai's model
        assert snap.progress is not None and snap.progress.step == 2
    assert snap.progress is not None and snap.progress.total_steps == 4
    events = harness.provider.events(ref)
    assert any(e.level == "error" and e.message == FAILURE for e in events)
