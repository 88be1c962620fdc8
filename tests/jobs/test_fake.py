"""FakeBackend behaviours beyond the conformance suite: modes, persistence, transient errors."""
from __future__ import annotations

import time

import pytest

from unitune.backends import SubmitContext
from unitune.errors import BackendUnavailable, NotFound, RateLimited
from unitune.job import JobStatus, RemoteRef
from unitune.registry import Registry
from unitune.spec import JobSpec
from unitune.testing.fake import FakeBackend

from .conftest import write_spec


def _spec(tmp_path, **fake) -> JobSpec:
    return JobSpec.load(write_spec(tmp_path, fake=fake))


def _ctx(tmp_path, key="k-1", uploads=None) -> SubmitContext:
    return SubmitContext(job_id=key, idempotency_key=key, work_dir=tmp_path, uploads=uploads)


def test_time_mode_advances_with_the_clock(tmp_path):
    fake = FakeBackend(advance="time", tick_seconds=0.05)
    ref = fake.submit(_spec(tmp_path, steps=3), _ctx(tmp_path))
    assert fake.get(ref).status is JobStatus.QUEUED
    assert fake.get(ref).status is JobStatus.QUEUED  # gets alone do not move it
    time.sleep(0.05 * 7)
    snap = fake.get(ref)
    assert snap.status is JobStatus.SUCCEEDED and snap.progress.step == 3


def test_time_mode_reports_an_eta_while_running(tmp_path):
    fake = FakeBackend(advance="manual", steps_per_tick=1)
    ref = fake.submit(_spec(tmp_path, steps=10, advance="time", tick_seconds=100), _ctx(tmp_path))
    fake.tick(ref, 4)
    snap = fake.get(ref)
    # 1 queue tick, 1 validation tick, then training: step 1 of 10, 9 steps x 100 s left
    assert snap.status is JobStatus.RUNNING and snap.progress.step == 1
    assert snap.progress.eta_seconds == 900


def test_spec_options_and_env_choose_the_scenario(tmp_path, monkeypatch):
    fake = FakeBackend(advance="manual")
    monkeypatch.setenv("UNITUNE_FAKE_SCENARIO", "failure")
    monkeypatch.setenv("UNITUNE_FAKE_FAILURE_MESSAGE", "from env")
    ref = fake.submit(_spec(tmp_path), _ctx(tmp_path))
    fake.tick(ref, 20)
    snap = fake.get(ref)
    assert snap.status is JobStatus.FAILED and snap.error.message == "from env"
    assert snap.error.code == "training_failed"


def test_cancelled_at_the_vendor_scenario(tmp_path):
    fake = FakeBackend(scenario="cancelled", advance="manual")
    ref = fake.submit(_spec(tmp_path, steps=6), _ctx(tmp_path))
    fake.tick(ref, 20)
    snap = fake.get(ref)
    assert snap.status is JobStatus.CANCELLED and snap.progress.step == 3


def test_slow_queue_stays_queued(tmp_path):
    fake = FakeBackend(scenario="slow")
    ref = fake.submit(_spec(tmp_path), _ctx(tmp_path))
    assert {fake.get(ref).status for _ in range(30)} == {JobStatus.QUEUED}


def test_transient_errors_for_the_first_n_calls(tmp_path):
    fake = FakeBackend(transient_errors=2, transient_kind="429", retry_after=3.0)
    with pytest.raises(RateLimited) as info:
        fake.find("x")
    assert info.value.retry_after == 3.0 and info.value.retryable
    fake.fail_next(1, kind="502")
    with pytest.raises(BackendUnavailable) as info:
        fake.find("x")
    assert info.value.status_code == 502
    assert fake.find("x") is None


def test_unknown_ref_is_not_found():
    with pytest.raises(NotFound):
        FakeBackend().get(RemoteRef(backend="fake", remote_id="fakejob-none"))


def test_uploads_are_reused_through_the_cache(tmp_path):
    fake, reg = FakeBackend(), Registry()
    spec = _spec(tmp_path)
    fake.submit(spec, _ctx(tmp_path, "k-1", reg))
    fake.submit(spec, _ctx(tmp_path, "k-2", reg))
    assert len(FakeBackend.files()) == 1 and len(FakeBackend.remote_jobs()) == 2


def test_state_file_is_shared_across_processes(tmp_path, monkeypatch):
    import subprocess
    import sys

    state = tmp_path / "fake-state.json"
    monkeypatch.setenv("UNITUNE_FAKE_STATE", str(state))
    spec_path = write_spec(tmp_path)
    code = ("import sys; from unitune.testing.fake import FakeBackend; "
            "from unitune.spec import JobSpec; from unitune.backends import SubmitContext; "
            "from pathlib import Path; "
            "r = FakeBackend().submit(JobSpec.load(sys.argv[1]), SubmitContext(job_id='a', "
            "idempotency_key='key-a', work_dir=Path('.'))); print(r.remote_id)")
    out = subprocess.run([sys.executable, "-c", code, str(spec_path)], capture_output=True,
                         text=True, check=True).stdout.strip()
    fake = FakeBackend()
    assert fake.find("key-a").remote_id == out
    assert [j["id"] for j in FakeBackend.remote_jobs()] == [out]
    assert "api_key" not in state.read_text()


def test_check_and_plan(tmp_path):
    fake = FakeBackend()
    spec = JobSpec.load(write_spec(tmp_path, hyperparameters={"learning_rate": 1e-4,
                                                              "epochs": 2}))
    problems = fake.check(spec)
    assert [p.code for p in problems] == ["not_applied"] and problems[0].severity == "warning"
    plan = fake.plan(spec)
    assert plan.ok and plan.uploads[0].examples == 20 and plan.uploads[0].sha256
    by_field = {r.field: r for r in plan.rows}
    assert by_field["hyperparameters.epochs"].vendor_param == "n_epochs"
    assert not by_field["hyperparameters.learning_rate"].applied
    assert "not applied" in by_field["hyperparameters.learning_rate"].note
    bad = JobSpec.load(write_spec(tmp_path, name="bad", fake={"scenario": "nope"}))
    assert [p.code for p in fake.check(bad)] == ["bad_option"]
