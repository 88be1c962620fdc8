"""Metrics, billed tokens, events and the model handle of a Vertex job."""
from __future__ import annotations

import pytest

from unitune.errors import MetricsUnavailable
from unitune.job import JobStatus

from .conftest import Harness, make_spec, submit


def _run(h: Harness, tmp_path, scenario: str, **over):
    h.arrange(scenario)
    ref = submit(make_spec(tmp_path, h.kind, **over))
    for _ in range(20):
        snap = h.provider.read(ref)
        if snap.status.is_terminal:
            return ref, snap
    raise AssertionError(f"still {snap.status}")


def test_metrics_come_from_the_gcs_metrics_file(harness, tmp_path):
    ref, snap = _run(harness, tmp_path, "success")
    assert snap.status is JobStatus.SUCCEEDED
    rows = harness.provider.metrics(ref)
    assert [r.step for r in rows] == [1, 2, 3, 4]
    assert all(r.train_loss is not None for r in rows)
    assert rows[0].train_loss > rows[-1].train_loss
    assert rows[2].valid_loss is not None and rows[2].valid_token_accuracy is not None
    assert rows[0].valid_loss is None
    assert rows[0].train_token_accuracy == pytest.approx(0.48)


def test_billed_tokens_are_the_dataset_tokens_times_epochs(harness, tmp_path):
    ref, snap = _run(harness, tmp_path, "success")
    job = harness.fake.jobs[ref.remote_id]
    assert job.billable_tokens and job.example_count == 12
    assert snap.billed_tokens == job.billable_tokens * 2  # spec: epochs 2
    assert snap.trained_tokens == snap.billed_tokens


def test_curves_only_in_experiments_say_so_instead_of_an_empty_table(harness, tmp_path):
    ref, snap = _run(harness, tmp_path, "experiments_only")
    assert snap.status is JobStatus.SUCCEEDED
    with pytest.raises(MetricsUnavailable) as info:
        harness.provider.metrics(ref)
    assert "Vertex AI Experiments" in info.value.message
    assert "tuning-experiment-" in info.value.message
    assert not info.value.retryable
    events = harness.provider.events(ref)
    assert any("Vertex AI Experiments" in e.message for e in events)


def test_no_metrics_before_the_job_runs(harness, tmp_path):
    harness.arrange("slow")
    ref = submit(make_spec(tmp_path, harness.kind))
    assert harness.provider.metrics(ref) == []  # the first GET only moves it to PENDING
    harness.provider.cancel(ref)


def test_model_handle_and_events(harness, tmp_path):
    ref, snap = _run(harness, tmp_path, "success")
    m = snap.model
    assert m.backend == "vertex" and m.base_model == "gemini-2.5-flash"
    assert m.model_id.startswith("projects/unitune-test/locations/us-central1/models/")
    assert m.endpoint.startswith("projects/unitune-test/locations/us-central1/endpoints/")
    assert m.name == "vertex-test" and "generate_content" in m.invoke
    messages = [e.message for e in harness.provider.events(ref)]
    assert any(t.startswith("tuning job created (base model gemini-2.5-flash") for t in messages)
    assert any("12 examples" in t for t in messages)
    assert any(t.startswith("job ended: JOB_STATE_SUCCEEDED") for t in messages)
    assert snap.raw and snap.raw.get("name") == ref.remote_id


def test_epochs_auto_sends_no_epoch_count_and_guesses_no_bill(harness, tmp_path):
    harness.arrange("state:SUCCEEDED")
    ref = submit(make_spec(tmp_path, harness.kind, hyperparameters={"epochs": "auto"}))
    (create,) = harness.fake.creates()
    assert "epochCount" not in create["supervisedTuningSpec"].get("hyperParameters", {})
    snap = harness.provider.read(ref)
    assert snap.status is JobStatus.SUCCEEDED and snap.billed_tokens is None
