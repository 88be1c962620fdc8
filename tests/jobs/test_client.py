"""Client orchestration against the FakeProvider: durable-before-remote, re-attach, retries, back-off."""
from __future__ import annotations

import pytest

from unitune.retry import RetryPolicy
from unitune.client import Client, PollPolicy
from unitune.errors import BackendUnavailable, DataError, RateLimited, Unsupported, UnituneError
from unitune.job import JobStatus
from unitune.paths import unitune_home
from unitune.registry import RAW_CANCELLED_LOCALLY
from unitune.retry import RetryPolicy
from unitune.spec import JobSpec
from unitune.testing.fake import FakeProvider

from .conftest import write_data, write_spec


def test_train_runs_to_success_and_caches_everything(client, registry, tmp_path):
    seen = []
    job = client.train(write_spec(tmp_path), on_update=seen.append)
    assert job.status is JobStatus.SUCCEEDED and job.raw_status == "COMPLETED"
    assert job.model and job.model.model_id.startswith("fake:fake-base:demo:")
    assert job.submitted and job.remote_id and job.idempotency_key.startswith(job.id)
    assert [j.status for j in seen][-1] is JobStatus.SUCCEEDED
    assert JobStatus.RUNNING in {j.status for j in seen}
    history = [h["status"] for h in registry.history(job.id)]
    assert history[0] == "queued" and history[-1] == "succeeded" and "running" in history
    rows = registry.metrics(job.id)  # cached at the end, without another call
    assert [r.step for r in rows] == [1, 2, 3, 4, 5]
    losses = [r.train_loss for r in rows]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == 5
    assert registry.events(job.id)
    assert (unitune_home() / "jobs" / job.id).is_dir()  # work_dir for every backend


def test_rerun_reattaches_instead_of_submitting_again(client, tmp_path):
    spec = write_spec(tmp_path)
    first = client.train(spec, detach=True)
    again = client.train(spec, detach=True)
    done = client.train(spec)
    assert first.id == again.id == done.id
    assert len(FakeProvider.remote_jobs()) == 1
    assert done.status is JobStatus.SUCCEEDED
    forced = client.train(spec, detach=True, new=True)
    assert forced.id != first.id and len(FakeProvider.remote_jobs()) == 2


def test_changed_data_or_spec_or_backend_is_a_new_job(client, tmp_path):
    spec = write_spec(tmp_path)
    a = client.train(spec, detach=True)
    write_data(tmp_path / "train.jsonl", n=21)
    b = client.train(spec, detach=True)
    spec2 = write_spec(tmp_path, name="other")
    c = client.train(spec2, detach=True)
    assert len({a.id, b.id, c.id}) == 3 and a.data_hash != b.data_hash


def test_failed_job_returns_vendor_message_and_is_not_reused(client, tmp_path):
    spec = write_spec(tmp_path, fake={"scenario": "failure", "failure_message": "row 7 is bad"})
    job = client.train(spec)
    assert job.status is JobStatus.FAILED
    assert job.error and "row 7 is bad" in job.error.message
    retry = client.train(spec, detach=True)
    assert retry.id != job.id and len(FakeProvider.remote_jobs()) == 2


def test_unsupported_spec_is_refused_before_anything_is_uploaded(client, registry, tmp_path):
    spec = write_spec(tmp_path, adapter={"type": "prefix"})
    with pytest.raises(Unsupported) as info:
        client.train(spec)
    assert "prefix" in str(info.value)
    assert FakeProvider.files() == {} and FakeProvider.remote_jobs() == []
    assert registry.list_jobs() == []


def test_bad_data_is_refused_with_file_and_line(client, registry, tmp_path):
    spec = write_spec(tmp_path)
    with open(tmp_path / "train.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DataError) as info:
        client.train(spec)
    assert "train.jsonl:21" in str(info.value)
    assert info.value.report is not None and not info.value.report.ok
    assert FakeProvider.files() == {} and registry.list_jobs() == []


def test_missing_data_file_is_a_data_error(client, tmp_path):
    spec = write_spec(tmp_path)
    (tmp_path / "train.jsonl").unlink()
    with pytest.raises(DataError, match="does not exist"):
        client.train(spec)


def test_watch_survives_transient_errors_and_honours_retry_after(client, fake, sleeps, tmp_path):
    job = client.train(write_spec(tmp_path), detach=True)
    fake.fail_next(3, kind="429", methods=("read",), retry_after=0.123)
    final = list(client.watch(job.id))[-1]
    assert final.status is JobStatus.SUCCEEDED
    assert sleeps.count(0.123) == 3


def test_5xx_without_retry_after_backs_off_exponentially(client, fake, sleeps, tmp_path):
    job = client.train(write_spec(tmp_path), detach=True)
    fake.fail_next(3, kind="503", methods=("read",))
    client.get(job.id)
    assert sleeps[:3] == [0.5, 1.0, 2.0]  # retry_base doubling


def test_too_many_transient_errors_give_up(client, fake, tmp_path):
    job = client.train(write_spec(tmp_path), detach=True)
    fake.fail_next(50, kind="503", methods=("read",))
    with pytest.raises(BackendUnavailable):
        client.get(job.id)
    fake.fail_next(0)
    assert client.get(job.id).status is not JobStatus.UNKNOWN  # the registry is still usable


def test_transient_error_during_submit_is_retried_into_one_job(client, fake, sleeps, tmp_path):
    fake.fail_next(2, kind="429", methods=("create",), retry_after=0.2)
    job = client.train(write_spec(tmp_path), detach=True)
    assert job.submitted and len(FakeProvider.remote_jobs()) == 1
    assert sleeps[:2] == [0.2, 0.2]


def test_per_job_transient_gets_from_the_spec(client, fake, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"transient_get": 2}))
    assert job.status is JobStatus.SUCCEEDED
    assert fake.calls.count("read") >= 3


def test_polling_backs_off_to_the_cap_and_polls_the_job_itself(client, fake, sleeps, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"scenario": "unknown_status"}), detach=True)
    watcher = client.watch(job.id)
    for _ in range(8):
        seen = next(watcher)
        if seen.raw_status == "MIGRATING_SHARDS":
            break
    assert seen.status is JobStatus.UNKNOWN
    fake.calls.clear()
    sleeps.clear()
    # nothing changes any more: the interval grows by `factor` up to `maximum`
    gen = client.watch(job.id)
    next(gen)  # first snapshot is always yielded
    client._sleep = _StopAfter(sleeps, 6)
    with pytest.raises(_Stop):
        next(gen)
    assert sleeps == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04]
    assert set(fake.calls) == {"read"}  # never a list call


class _Stop(Exception):
    pass


class _StopAfter:
    def __init__(self, record, n):
        self.record, self.n = record, n

    def __call__(self, seconds):
        self.record.append(seconds)
        if len(self.record) >= self.n:
            raise _Stop


def test_crash_between_claim_and_submit_is_resubmitted_once(client, registry, fake, tmp_path):
    spec_path = write_spec(tmp_path)
    spec = JobSpec.load(spec_path)
    from unitune.client import data_hash, stored_spec

    rec, created = registry.claim(backend="fake", spec=stored_spec(spec),
                                  spec_hash=spec.spec_hash(), data_hash=data_hash(spec),
                                  name=spec.name, base_model="fake-base")
    assert created and not rec.submitted  # "process died" here
    job = client.train(spec_path, detach=True)
    assert job.id == rec.id and job.submitted
    assert len(FakeProvider.remote_jobs()) == 1


def test_crash_inside_submit_is_found_not_resubmitted(client, registry, fake, tmp_path):
    spec_path = write_spec(tmp_path)
    spec = JobSpec.load(spec_path)
    from unitune.client import data_hash, stored_spec
    from unitune.pipeline import Pipeline
    from unitune.provider import Ids

    rec, _ = registry.claim(backend="fake", spec=stored_spec(spec), spec_hash=spec.spec_hash(),
                            data_hash=data_hash(spec), name=spec.name, base_model="fake-base")
    # the vendor created the job, but the answer never reached the registry
    pipe = Pipeline(fake)
    ref = pipe.submit(pipe.prepare_submission(spec), Ids(job_id=rec.id, key=rec.idempotency_key))
    fake.calls.clear()
    job = client.train(spec_path)
    assert job.id == rec.id and job.remote_id == ref.remote_id
    assert fake.calls[0] == "lookup" and "create" not in fake.calls
    assert len(FakeProvider.remote_jobs()) == 1 and job.status is JobStatus.SUCCEEDED


def test_resume_finishes_an_interrupted_submission(client, registry, tmp_path):
    spec_path = write_spec(tmp_path)
    spec = JobSpec.load(spec_path)
    from unitune.client import data_hash, stored_spec

    rec, _ = registry.claim(backend="fake", spec=stored_spec(spec), spec_hash=spec.spec_hash(),
                            data_hash=data_hash(spec), name=spec.name, base_model="fake-base",
                            spec_path=None)
    job = client.resume(rec.id[:14])
    assert job.submitted and len(FakeProvider.remote_jobs()) == 1


def test_resume_refuses_when_the_data_changed(client, registry, tmp_path):
    spec_path = write_spec(tmp_path)
    spec = JobSpec.load(spec_path)
    from unitune.client import data_hash, stored_spec

    rec, _ = registry.claim(backend="fake", spec=stored_spec(spec), spec_hash=spec.spec_hash(),
                            data_hash=data_hash(spec), name=spec.name)
    write_data(tmp_path / "train.jsonl", n=3)
    with pytest.raises(DataError, match="changed"):
        client.resume(rec.id)
    assert FakeProvider.remote_jobs() == []


def test_pause_and_resume_a_running_job(client, fake, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"steps": 50}), detach=True)
    while client.get(job.id).status is not JobStatus.RUNNING:
        pass
    fake.pause(client.registry.get_job(job.id).ref)
    assert client.get(job.id).status is JobStatus.PAUSED
    assert client.resume(job.id).status is JobStatus.RUNNING


def test_cancel_running_and_unsubmitted_jobs(client, registry, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"scenario": "slow"}), detach=True)
    assert client.cancel(job.id).status is JobStatus.CANCELLING
    final = list(client.watch(job.id))[-1]
    assert final.status is JobStatus.CANCELLED
    with pytest.raises(UnituneError, match="already cancelled"):
        client.cancel(job.id)
    spec = JobSpec.load(write_spec(tmp_path, name="never"))
    from unitune.client import data_hash, stored_spec

    rec, _ = registry.claim(backend="fake", spec=stored_spec(spec), spec_hash=spec.spec_hash(),
                            data_hash=data_hash(spec), name=spec.name)
    local = client.cancel(rec.id)
    assert local.status is JobStatus.CANCELLED and local.raw_status == RAW_CANCELLED_LOCALLY
    assert len(FakeProvider.remote_jobs()) == 1


def test_list_filters_and_metrics_of_a_running_job(client, tmp_path):
    ok = client.train(write_spec(tmp_path))
    running = client.train(write_spec(tmp_path, name="long", fake={"steps": 40}), detach=True)
    for _ in range(6):
        client.get(running.id)
    assert [j.id for j in client.list(status="succeeded")] == [ok.id]
    assert {j.id for j in client.list(backend="fake")} == {ok.id, running.id}
    assert client.list(backend="openai") == []
    rows = client.metrics(running.id)
    assert 0 < len(rows) < 40
    assert client.events(running.id)


def test_deploy_and_undeploy(client, tmp_path):
    job = client.train(write_spec(tmp_path))
    plan = client.deploy(job.id, {"units": "2"}, dry_run=True)
    assert "2 unit" in plan
    handle = client.deploy(job.id, {"units": "2"})
    assert handle.endpoint and client.get(job.id).model.endpoint == handle.endpoint
    client.undeploy(job.id)
    assert client.get(job.id).model.endpoint is None


def test_deploy_needs_a_succeeded_job(client, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"scenario": "slow"}), detach=True)
    with pytest.raises(UnituneError, match="only a succeeded job"):
        client.deploy(job.id, dry_run=True)


def test_switch_backend_with_one_argument(tmp_path):
    """Two fake instances registered under two names: the same spec goes to either."""

    class OtherFake(FakeProvider):
        name = "fake2"

    client = Client(backends={"fake": FakeProvider(), "fake2": OtherFake()},
                    poll=PollPolicy(initial=0.001, maximum=0.001))
    spec = write_spec(tmp_path, models={"fake2": "other-base"})
    a = client.train(spec, "fake")
    b = client.train(spec, "fake2")
    assert (a.backend, b.backend) == ("fake", "fake2")
    assert b.base_model == "other-base" and a.base_model == "fake-base"
    assert a.status is b.status is JobStatus.SUCCEEDED


def test_poll_and_retry_policies_from_env():
    p = PollPolicy.from_env({"UNITUNE_POLL_INITIAL": "0.5", "UNITUNE_POLL_MAX": "4"})
    assert (p.initial, p.maximum) == (0.5, 4.0)
    assert PollPolicy.from_env({}).initial == 2.0 and PollPolicy.from_env({}).maximum == 30.0
    r = RetryPolicy.from_env({"UNITUNE_RETRY_MAX": "3", "UNITUNE_RETRY_BASE": "2",
                              "UNITUNE_RETRY_DEADLINE": "9"})
    assert (r.max_retries, r.base, r.deadline) == (3, 2.0, 9.0)
    assert r.wait(0, RateLimited("slow down", retry_after=7)) == 7


def test_retry_waits_have_jitter_within_the_exponential_envelope():
    r = RetryPolicy(base=1.0, cap=60.0)
    for attempt in range(6):
        waits = {r.wait(attempt) for _ in range(50)}
        ceiling = min(60.0, 2.0 ** attempt)
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered: two clients that failed together do not retry together
    assert RetryPolicy(base=1.0, jitter=False).wait(3) == 8.0


def test_retrying_stops_at_the_deadline(fake, sleeps, tmp_path):
    from unitune.client import Client

    client = Client(backends={"fake": fake}, retry=RetryPolicy(max_retries=100, base=5,
                                                               deadline=12, jitter=False),
                    sleep=sleeps)
    job = client.train(write_spec(tmp_path), detach=True)
    fake.fail_next(100, kind="503", methods=("read",))
    with pytest.raises(BackendUnavailable, match="gave up after"):
        client.get(job.id)
    assert sleeps == [5]  # the next wait (10 s) would pass the 12 s deadline


def test_resume_restarts_a_failed_job_where_the_backend_can(client, registry, tmp_path):
    job = client.train(write_spec(tmp_path, fake={"scenario": "failure", "steps": 6}))
    assert job.status is JobStatus.FAILED and job.finished_at is not None
    resumed = client.resume(job.id)
    assert resumed.status is JobStatus.RUNNING and resumed.error is None
    assert resumed.finished_at is None
    final = list(client.watch(job.id))[-1]
    assert final.status is JobStatus.SUCCEEDED and final.id == job.id
    assert len(FakeProvider.remote_jobs()) == 1
    statuses = [h["status"] for h in registry.history(job.id)]
    assert statuses.index("failed") < statuses.index("succeeded")


def test_resume_of_a_succeeded_job_changes_nothing(client, tmp_path):
    job = client.train(write_spec(tmp_path))
    assert client.resume(job.id).status is JobStatus.SUCCEEDED


def test_spec_problems_are_spec_errors_naming_the_field(client, registry, tmp_path):
    from unitune.errors import SpecError

    spec = write_spec(tmp_path, fake={"advance": "sideways"})
    with pytest.raises(SpecError) as info:
        client.train(spec)
    assert info.value.field == "backend_options.fake.advance" and "sideways" in str(info.value)
    assert registry.list_jobs() == [] and FakeProvider.files() == {}
