"""FakeProvider behaviours beyond the conformance suite: modes, persistence, transient errors."""
from __future__ import annotations

import time

import pytest

from unitune.errors import BackendUnavailable, NotFound, RateLimited
from unitune.job import JobStatus, RemoteRef
from unitune.pipeline import Pipeline
from unitune.provider import Ids, Location
from unitune.registry import Registry
from unitune.spec import JobSpec
from unitune.testing.fake import FakeOptions, FakeProvider

from .conftest import write_spec

HERE = Location(backend="fake", region="fake-region-1")


def _spec(tmp_path, **fake) -> JobSpec:
    return JobSpec.load(write_spec(tmp_path, fake=fake))


def _submit(fake, spec, key="k-1", uploads=None) -> RemoteRef:
    pipe = Pipeline(fake)
    return pipe.submit(pipe.prepare_submission(spec), Ids(job_id=key, key=key), uploads=uploads)


def test_time_mode_advances_with_the_clock(tmp_path):
    fake = FakeProvider(advance="time", tick_seconds=0.05)
    ref = _submit(fake, _spec(tmp_path, steps=3))
    assert fake.read(ref).status is JobStatus.QUEUED
    assert fake.read(ref).status is JobStatus.QUEUED  # gets alone do not move it
    time.sleep(0.05 * 7)
    snap = fake.read(ref)
    assert snap.status is JobStatus.SUCCEEDED and snap.progress.step == 3


def test_time_mode_reports_an_eta_while_running(tmp_path):
    fake = FakeProvider(advance="manual", steps_per_tick=1)
    ref = _submit(fake, _spec(tmp_path, steps=10, advance="time", tick_seconds=100))
    fake.tick(ref, 4)
    snap = fake.read(ref)
    # 1 queue tick, 1 validation tick, then training: step 1 of 10, 9 steps x 100 s left
    assert snap.status is JobStatus.RUNNING and snap.progress.step == 1
    assert snap.progress.eta_seconds == 900


def test_spec_options_and_env_choose_the_scenario(tmp_path, monkeypatch):
    fake = FakeProvider(advance="manual")
    monkeypatch.setenv("UNITUNE_FAKE_SCENARIO", "failure")
    monkeypatch.setenv("UNITUNE_FAKE_FAILURE_MESSAGE", "from env")
    ref = _submit(fake, _spec(tmp_path))
    fake.tick(ref, 20)
    snap = fake.read(ref)
    assert snap.status is JobStatus.FAILED and snap.error.message == "from env"
    assert snap.error.code == "training_failed"


def test_cancelled_at_the_vendor_scenario(tmp_path):
    fake = FakeProvider(scenario="cancelled", advance="manual")
    ref = _submit(fake, _spec(tmp_path, steps=6))
    fake.tick(ref, 20)
    snap = fake.read(ref)
    assert snap.status is JobStatus.CANCELLED and snap.progress.step == 3


def test_slow_queue_stays_queued(tmp_path):
    fake = FakeProvider(scenario="slow")
    ref = _submit(fake, _spec(tmp_path))
    assert {fake.read(ref).status for _ in range(30)} == {JobStatus.QUEUED}


def test_transient_errors_for_the_first_n_calls(tmp_path):
    fake = FakeProvider(transient_errors=2, transient_kind="429", retry_after=3.0)
    with pytest.raises(RateLimited) as info:
        fake.lookup("x", HERE, FakeOptions())
    assert info.value.retry_after == 3.0 and info.value.retryable
    fake.fail_next(1, kind="502")
    with pytest.raises(BackendUnavailable) as info:
        fake.lookup("x", HERE, FakeOptions())
    assert info.value.status_code == 502
    assert fake.lookup("x", HERE, FakeOptions()) is None


def test_unknown_ref_is_not_found():
    with pytest.raises(NotFound):
        FakeProvider().read(RemoteRef(backend="fake", remote_id="fakejob-none"))


def test_uploads_are_reused_through_the_cache(tmp_path):
    fake, reg = FakeProvider(), Registry()
    spec = _spec(tmp_path)
    _submit(fake, spec, "k-1", reg)
    _submit(fake, spec, "k-2", reg)
    assert len(FakeProvider.files()) == 1 and len(FakeProvider.remote_jobs()) == 2


def test_state_file_is_shared_across_processes(tmp_path, monkeypatch):
    import subprocess
    import sys

    state = tmp_path / "fake-state.json"
    monkeypatch.setenv("UNITUNE_FAKE_STATE", str(state))
    spec_path = write_spec(tmp_path)
    code = ("import sys; from unitune.testing.fake import FakeProvider; "
            "from unitune.spec import JobSpec; from unitune.pipeline import Pipeline; "
            "from unitune.provider import Ids; p = Pipeline(FakeProvider()); "
            "r = p.submit(p.prepare_submission(JobSpec.load(sys.argv[1])), "
            "Ids(job_id='a', key='key-a')); print(r.remote_id)")
    proc = subprocess.run([sys.executable, "-c", code, str(spec_path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.strip()
    fake = FakeProvider()
    assert fake.lookup("key-a", HERE, FakeOptions()).remote_id == out
    assert [j["id"] for j in FakeProvider.remote_jobs()] == [out]
    assert "api_key" not in state.read_text()


def test_plan_table_request_and_refusals(tmp_path):
    pipe = Pipeline(FakeProvider())
    spec = JobSpec.load(write_spec(tmp_path, hyperparameters={"learning_rate": 1e-4,
                                                              "epochs": 2}))
    plan = pipe.plan(spec)
    assert [p.code for p in plan.problems] == ["not_applied"]
    assert plan.problems[0].severity == "warning"
    assert plan.ready and plan.uploads[0].examples == 20 and plan.uploads[0].sha256
    assert plan.request["n_epochs"] == 2 and plan.request["training_file"] == "<upload:train>"
    assert plan.request["metadata"] == {"unitune_job_id": "<job-id>",
                                        "unitune_key": "<idempotency-key>"}
    by_field = {r.field: r for r in plan.rows}
    assert by_field["hyperparameters.epochs"].vendor_param == "n_epochs"
    assert not by_field["hyperparameters.learning_rate"].applied
    assert "not applied" in by_field["hyperparameters.learning_rate"].note
    bad = JobSpec.load(write_spec(tmp_path, name="bad", fake={"scenario": "nope"}))
    bad_plan = pipe.plan(bad)
    assert not bad_plan.ready and [p.code for p in bad_plan.problems] == ["bad_option"]
    assert "backend_options.fake.scenario" in bad_plan.problems[0].message


def test_typo_names_the_nearest_option(tmp_path):
    spec = JobSpec.load(write_spec(tmp_path, fake={"scenaro": "failure"}))
    plan = Pipeline(FakeProvider()).plan(spec)
    assert not plan.ready
    assert "'scenaro'" in plan.problems[0].message and "'scenario'" in plan.problems[0].message
