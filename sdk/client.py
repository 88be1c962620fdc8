"""unitune.Client: orchestration of a job's life — prepare → claim → submit → watch → collect.

The client is where durability lives (providers stay stateless; the submit pipeline is
`unitune.pipeline`):

* `train` computes the spec hash and the dataset content hash, then asks the backend's Pipeline
  to prepare the submission (typed options, location, data validated/split/converted, the
  translation): any problem refuses the job here, before a registry row or an upload exists.
  Then it *claims* a job in the registry — the row, its idempotency key and the job's Location
  are committed before the vendor is called. Re-running `train` with the same spec + data +
  backend re-attaches to the existing job unless it failed or was cancelled (`new=True` forces a
  new one). A claimed row that never got the vendor's answer (`submitted` false: the process died
  inside submit) is reconciled with a lookup by its key at its stored Location first; only when
  the vendor has no such job is it submitted.
* `get` / `watch` poll the job itself, never list calls. Polling backs off (`PollPolicy`: 2 s
  growing to 30 s by default, reset on a status change); transient errors are retried by the one
  `RetryPolicy` (jitter, Retry-After honoured, bounded in attempts and time).

Poll settings can come from the environment: UNITUNE_POLL_INITIAL, UNITUNE_POLL_MAX,
UNITUNE_POLL_FACTOR; retry settings: see `unitune.retry`.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .backends import get_backend
from .errors import DataError, InvalidRequest, Unsupported, UnituneError
from .job import Event, Job, JobStatus, Metrics, ModelHandle, merge_metrics
from .pipeline import Pipeline, Submission
from .provider import Ids, Location
from .registry import RAW_CANCELLED_LOCALLY, JobRecord, Registry, redact_text
from .retry import RetryPolicy
from .spec import JobSpec


@dataclass
class PollPolicy:
    """How often to poll a running job, and how long to wait for another submitting process."""

    initial: float = 2.0  # first interval between polls (s)
    maximum: float = 30.0  # cap of the interval (s)
    factor: float = 1.5  # growth while nothing changes
    submit_wait: float = 900.0  # how long to wait for another process submitting the same job

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "PollPolicy":
        from .options import env_number

        p = cls()
        p.initial = env_number("UNITUNE_POLL_INITIAL", p.initial, env)
        p.maximum = max(p.initial, env_number("UNITUNE_POLL_MAX", p.maximum, env))
        p.factor = env_number("UNITUNE_POLL_FACTOR", p.factor, env)
        return p


def data_hash(spec: JobSpec) -> str | None:
    """Content hash of the dataset: the train file (+ the validation file when it is a path).
    None when the train file does not exist (preparation reports that)."""
    from .data.hashing import file_sha256

    train = spec.data_path("train")
    if train is None or not train.is_file():
        return None
    parts = [file_sha256(train)]
    val = spec.data_path("validation")
    if val is not None and val.is_file():
        parts.append(file_sha256(val))
    elif isinstance(spec.data.validation, float):
        parts.append(f"fraction={spec.data.validation}")
    if len(parts) == 1:
        return parts[0]
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


def stored_spec(spec: JobSpec) -> dict[str, Any]:
    """The spec as the registry keeps it: data paths made absolute (so `resume` can use it
    without the spec file); secrets are redacted by the registry."""
    payload = spec.model_dump(mode="json", exclude={"source_dir"})
    train = spec.data_path("train")
    if train is not None:
        payload["data"]["train"] = str(train.resolve())
    val = spec.data_path("validation")
    if val is not None:
        payload["data"]["validation"] = str(val.resolve())
    return payload


class Client:
    """Train, watch, cancel and inspect jobs on any backend, with a durable local registry.

    `backends` maps names to ready providers (or Pipelines) for tests and custom setups; other
    names are created with `get_backend(name)`. `sleep` is injectable so tests can observe
    back-off.
    """

    def __init__(self, registry: Registry | None = None, *,
                 backends: dict[str, Any] | None = None, poll: PollPolicy | None = None,
                 retry: RetryPolicy | None = None, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.registry = registry or Registry()
        self.poll = poll or PollPolicy.from_env()
        self.retry = retry or RetryPolicy.from_env()
        self.log = log or (lambda _msg: None)
        self._sleep = sleep
        self._backends: dict[str, Pipeline] = {}
        for name, be in (backends or {}).items():
            self._backends[name] = be if isinstance(be, Pipeline) else self._pipeline(be)

    # -- plumbing --------------------------------------------------------------------------------
    def _pipeline(self, provider: Any) -> Pipeline:
        return Pipeline(provider, policy=self.retry, log=lambda m: self.log(m),
                        sleep=lambda s: self._sleep(s))

    def backend(self, name: str) -> Pipeline:
        if name not in self._backends:
            self._backends[name] = self._pipeline(get_backend(name))
        return self._backends[name]

    @staticmethod
    def _load(spec: JobSpec | str | os.PathLike) -> tuple[JobSpec, str | None]:
        if isinstance(spec, JobSpec):
            return spec, None
        return JobSpec.load(spec), str(Path(spec).resolve())

    def _prepare(self, pipe: Pipeline, spec: JobSpec) -> Submission:
        sub = pipe.prepare_submission(spec)
        for p in sub.warnings:
            self.log(f"warning: {p.message}")
        return sub

    def _location(self, pipe: Pipeline, rec: JobRecord, spec: JobSpec | None = None) -> Location:
        """Where the job lives: stored at claim time (rows from before that: derived again)."""
        if rec.location is not None:
            return rec.location
        spec = spec or self._spec_of(rec)
        return pipe.provider.locate(spec, pipe.options(spec))

    # -- train / submit --------------------------------------------------------------------------
    def submit(self, spec: JobSpec | str | os.PathLike, backend: str | None = None, *,
               new: bool = False) -> Job:
        """Submit (or re-attach to) the job and return once the vendor accepted it."""
        return self.train(spec, backend, detach=True, new=new)

    def train(self, spec: JobSpec | str | os.PathLike, backend: str | None = None, *,
              detach: bool = False, new: bool = False,
              on_update: Callable[[Job], None] | None = None) -> Job:
        """Run a job to its end (or, with detach, until the vendor accepted it).

        Durable before remote: see the module docstring. Returns the final Job; a failed or
        cancelled job is returned too (check `job.status`), it does not raise.
        """
        spec, spec_path = self._load(spec)
        name = spec.resolve_backend(backend)
        pipe = self.backend(name)
        base_model = spec.model_for(name)
        s_hash, d_hash = spec.spec_hash(), data_hash(spec)

        if not new:
            self._continue_interrupted(pipe, name, s_hash, d_hash)
        existing = None if new else self.registry.find_reusable(name, s_hash, d_hash)
        if existing is not None and existing.submitted:
            self.log(f"re-attaching to {existing.id} ({existing.status}); use --new for a new job")
            rec = existing
        else:
            sub = self._prepare(pipe, spec)
            rec, created = self.registry.claim(
                backend=name, spec=stored_spec(spec), spec_hash=s_hash, data_hash=d_hash,
                name=spec.name, base_model=base_model, spec_path=spec_path, new=new,
                location=sub.location)
            if not created:
                self.log(f"re-attaching to {rec.id} ({rec.status})")
            if not rec.submitted:
                rec = self._submit(pipe, sub, rec, reconcile=not created)
        if on_update is not None:
            on_update(rec.to_job())
        if detach or rec.is_terminal:
            job = self.get(rec.id) if not rec.is_terminal else rec.to_job()
            if job.status.is_terminal:
                self._collect(rec.id)
            return job
        last = rec.to_job()
        for last in self.watch(rec.id):
            if on_update is not None:
                on_update(last)
        return last

    def _continue_interrupted(self, pipe: Pipeline, name: str, s_hash: str,
                              d_hash: str | None) -> None:
        """Re-running a spec whose newest job was interrupted (its worker killed) continues that
        job from its last checkpoint where the backend can restart one (local)."""
        if not pipe.restartable:
            return
        latest = self.registry.find_latest(name, s_hash, d_hash)
        if latest is None or not latest.submitted:
            return
        if not latest.is_terminal:  # the registry may still say running: ask the backend
            try:
                self.get(latest.id)
            except UnituneError:
                return
            latest = self.registry.get_job(latest.id)
        if latest.error is not None and latest.error.interrupted:
            self.log(f"{latest.id} was interrupted ({latest.error.message}); continuing it from "
                     "its last checkpoint (use --new for a fresh job)")
            self.resume(latest.id)

    def _submit(self, pipe: Pipeline, sub: Submission, rec: JobRecord, *,
                reconcile: bool) -> JobRecord:
        """Submit a claimed job under the registry's submit lease (so two processes never both
        talk to the vendor for one job); with `reconcile`, ask the vendor for the key first."""
        waited = 0.0
        while True:
            holder = self.registry.acquire_submit(rec.id)
            if holder is None:
                break
            rec = self.registry.get_job(rec.id)
            if rec.submitted or rec.is_terminal:
                return rec
            if waited == 0.0:
                self.log(f"{rec.id}: another unitune process ({holder}) is submitting it; waiting")
            if waited > self.poll.submit_wait:
                raise UnituneError(f"job {rec.id} is being submitted by another unitune process "
                                   f"({holder})", hint=f"wait for it, then `unitune watch {rec.id}`")
            wait = min(self.poll.maximum, max(self.poll.initial, 0.05))
            self._sleep(wait)
            waited += wait
        try:
            return self._submit_locked(pipe, sub, rec, reconcile=reconcile or bool(waited))
        finally:
            self.registry.release_submit(rec.id)

    def _submit_locked(self, pipe: Pipeline, sub: Submission, rec: JobRecord, *,
                       reconcile: bool) -> JobRecord:
        location = self._location(pipe, rec, sub.spec)
        if reconcile:
            ref = pipe.lookup(rec.idempotency_key, location, sub.options)
            if ref is not None:
                self.log(f"{rec.id}: the vendor already has it ({ref.remote_id})")
                return self.registry.mark_submitted(rec.id, ref)
        work_dir = Path(rec.work_dir) if rec.work_dir else None
        ids = Ids(job_id=rec.id, key=rec.idempotency_key, spec_hash=rec.spec_hash)
        try:
            ref = pipe.submit(sub, ids, location=location, uploads=self.registry,
                              work_dir=work_dir)
        except UnituneError as exc:
            if not getattr(exc, "retryable", False):
                # the vendor refused (or the data was rejected on upload): no job exists there,
                # so no row stays behind to be listed as one; the error says why
                self.registry.discard(rec.id)
            raise
        self.log(f"{rec.id}: submitted as {ref.remote_id}")
        return self.registry.mark_submitted(rec.id, ref)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job, refreshed from its backend unless it is terminal. A row the vendor never
        confirmed (the process died inside submit) is looked up by its key first, so `status`
        and `watch` show what the vendor says rather than `queued`."""
        rec = self.registry.get_job(job_id)
        if not rec.submitted and not rec.is_terminal:
            rec = self.reconcile(rec)
        if not rec.submitted or rec.is_terminal or rec.ref is None:
            return rec.to_job()
        snap = self.backend(rec.backend).get(rec.ref)
        rec = self.registry.record_snapshot(rec.id, snap)
        if rec.is_terminal:
            self._collect(rec.id)
        return rec.to_job()

    def reconcile(self, rec: JobRecord) -> JobRecord:
        """Ask the vendor whether it has an unconfirmed job (by its key, at its stored location),
        under the submit lease; a row another live process is submitting is left alone."""
        holder = self.registry.acquire_submit(rec.id)
        if holder is not None:
            return self.registry.get_job(rec.id)
        try:
            return self._lookup_locked(rec)
        finally:
            self.registry.release_submit(rec.id)

    def _lookup_locked(self, rec: JobRecord) -> JobRecord:
        """With the submit lease held: the row marked submitted when the vendor has the job."""
        pipe = self.backend(rec.backend)
        found = pipe.lookup(rec.idempotency_key, self._location(pipe, rec))
        if found is None:
            return rec
        self.log(f"{rec.id}: the vendor has it ({found.remote_id})")
        return self.registry.mark_submitted(rec.id, found)

    def _collect(self, job_id: str) -> None:
        """Cache the final metrics and events of a terminal job (best effort)."""
        rec = self.registry.get_job(job_id)
        if rec.ref is None:
            return
        pipe = self.backend(rec.backend)
        try:
            self.registry.set_metrics(rec.id, merge_metrics(pipe.metrics(rec.ref)))
        except UnituneError as exc:  # e.g. MetricsUnavailable: curves live elsewhere
            self.log(f"{rec.id}: metrics not cached: {redact_text(exc.message)}")
        try:
            self.registry.set_events(rec.id, pipe.events(rec.ref))
        except UnituneError as exc:
            self.log(f"{rec.id}: events not cached: {redact_text(exc.message)}")

    def watch(self, job_id: str) -> Iterator[Job]:
        """Yield the job whenever it changes (first snapshot always), until it is terminal."""
        rec = self.registry.get_job(job_id)
        job_id = rec.id
        interval = self.poll.initial
        last_key = None
        while True:
            job = self.get(job_id)
            key = (job.status, job.raw_status, job.progress.step if job.progress else None)
            if key != last_key:
                if last_key is not None and key[:2] != last_key[:2]:
                    interval = self.poll.initial  # something happened: look again soon
                last_key = key
                yield job
            if job.status.is_terminal:
                return
            if not job.submitted:
                raise UnituneError(f"job {job_id} was never accepted by {job.backend}",
                                   hint=f"`unitune resume {job_id}` finishes the submission")
            self._sleep(interval)
            interval = min(self.poll.maximum, interval * self.poll.factor)

    def list(self, backend: str | None = None, status: str | JobStatus | None = None,
             limit: int | None = None) -> list[Job]:
        """Jobs from the local registry, newest first (no vendor calls)."""
        return [r.to_job() for r in self.registry.list_jobs(backend, status, limit)]

    def metrics(self, job_id: str) -> list[Metrics]:
        """One wide row per step; refreshed from the vendor unless the job is terminal and cached."""
        rec = self.registry.get_job(job_id)
        cached = self.registry.metrics(rec.id)
        if rec.ref is None or (rec.is_terminal and cached):
            return cached
        rows = merge_metrics(self.backend(rec.backend).metrics(rec.ref))
        self.registry.set_metrics(rec.id, rows)
        return self.registry.metrics(rec.id)

    def events(self, job_id: str) -> list[Event]:
        rec = self.registry.get_job(job_id)
        cached = self.registry.events(rec.id)
        if rec.ref is None or (rec.is_terminal and cached):
            return cached
        self.registry.set_events(rec.id, self.backend(rec.backend).events(rec.ref))
        return self.registry.events(rec.id)

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return self.registry.history(self.registry.get_job(job_id).id)

    # -- control ---------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Ask the vendor to cancel; a job the vendor never got (looked up by its key at its
        stored location) is cancelled locally."""
        rec = self.registry.get_job(job_id)
        if rec.is_terminal:
            raise UnituneError(f"job {rec.id} already {rec.status}; nothing to cancel")
        pipe = self.backend(rec.backend)
        ref = rec.ref
        if not rec.submitted:
            holder = self.registry.acquire_submit(rec.id)
            if holder == "submitted":
                rec = self.registry.get_job(rec.id)
                ref = rec.ref
            elif holder is not None:
                raise UnituneError(f"job {rec.id} is being submitted by another unitune process "
                                   f"({holder})", hint=f"cancel it once it is accepted: "
                                                       f"`unitune cancel {rec.id}`")
            else:
                try:
                    rec = self._lookup_locked(rec)
                    if not rec.submitted:
                        return self.registry.mark_failed(
                            rec.id, "cancelled before the vendor got it",
                            status=JobStatus.CANCELLED, raw=RAW_CANCELLED_LOCALLY).to_job()
                    ref = rec.ref
                finally:
                    self.registry.release_submit(rec.id)
        assert ref is not None
        return self.registry.record_snapshot(rec.id, pipe.cancel(ref)).to_job()

    def resume(self, job_id: str) -> Job:
        """Finish an interrupted submission; resume a paused job; or, where the backend can
        (capability `restart`, e.g. local: from the last checkpoint), continue a job that failed
        or was cancelled. A running or succeeded job is returned as it is."""
        rec = self.registry.get_job(job_id)
        pipe = self.backend(rec.backend)
        if not rec.submitted:
            if rec.is_terminal:
                raise UnituneError(f"job {rec.id} is {rec.status} and was never submitted",
                                   hint="run `unitune train` again for a new job")
            sub = self._prepare(pipe, self._spec_of(rec))
            rec = self._submit(pipe, sub, rec, reconcile=True)
            return self.get(rec.id)
        job = self.get(rec.id)
        assert rec.ref is not None
        if job.status is JobStatus.PAUSED:
            return self.registry.record_snapshot(rec.id, pipe.resume(rec.ref)).to_job()
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            if pipe.restartable:
                return self.registry.record_snapshot(rec.id, pipe.restart(rec.ref)).to_job()
            reason = pipe.capabilities().get("restart").reason
            raise Unsupported(f"job {rec.id} {job.status}; {rec.backend} cannot resume it"
                              + (f" ({reason})" if reason else ""), backend=rec.backend,
                              feature="resume", hint="run `unitune train --new` for a new job")
        return job

    def pause(self, job_id: str) -> Job:
        rec = self.registry.get_job(job_id)
        if rec.ref is None:
            raise UnituneError(f"job {rec.id} was never accepted by {rec.backend}; nothing to pause")
        return self.registry.record_snapshot(rec.id, self.backend(rec.backend).pause(rec.ref)).to_job()

    def _spec_of(self, rec: JobRecord) -> JobSpec:
        """The job's spec: the original file when it still hashes the same, else the stored copy
        (whose secret-looking options are redacted — supply them through the environment)."""
        if rec.spec_path and Path(rec.spec_path).is_file():
            try:
                spec = JobSpec.load(rec.spec_path)
                if spec.spec_hash() == rec.spec_hash:
                    return spec
            except UnituneError:
                pass
        spec = JobSpec.from_dict(rec.spec, source=f"registry:{rec.id}")
        if data_hash(spec) != rec.data_hash:
            raise DataError(f"the data of job {rec.id} changed since it was created",
                            hint="run `unitune train` again for a new job")
        return spec

    def deploy(self, job_id: str, options: dict[str, Any] | None = None, *,
               dry_run: bool = False) -> Any:
        """Deploy the tuned model where the backend can; dry_run says what would be created."""
        rec = self.registry.get_job(job_id)
        pipe = self.backend(rec.backend)
        if not pipe.deployable:
            raise Unsupported(f"{rec.backend} has no deploy step in unitune", backend=rec.backend,
                              feature="deploy")
        if rec.status is not JobStatus.SUCCEEDED or rec.ref is None:
            raise InvalidRequest(f"job {rec.id} is {rec.status}; only a succeeded job can be "
                                 "deployed", backend=rec.backend)
        result = pipe.deploy(rec.ref, options or {}, dry_run)
        if isinstance(result, ModelHandle):
            self.registry.set_model(rec.id, result)
        return result

    def undeploy(self, job_id: str, options: dict[str, Any] | None = None) -> Any:
        rec = self.registry.get_job(job_id)
        pipe = self.backend(rec.backend)
        if not pipe.deployable or rec.ref is None:
            raise Unsupported(f"{rec.backend} has no undeploy step in unitune",
                              backend=rec.backend, feature="deploy")
        result = pipe.undeploy(rec.ref, options or {})
        if isinstance(result, ModelHandle):
            self.registry.set_model(rec.id, result)
        return result
