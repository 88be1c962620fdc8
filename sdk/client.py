"""unitune.Client: orchestration of a job's life — check → claim → submit → watch → collect.

The client is where durability lives (backends stay stateless):

* `train` computes the spec hash and the dataset content hash, runs `backend.check(spec)` (an
  unsupported feature or bad data is refused before anything is uploaded), then *claims* a job
  in the registry — the row and its idempotency key are committed before the vendor is called.
  Re-running `train` with the same spec + data + backend re-attaches to the existing job unless
  it failed or was cancelled (`new=True` forces a new one). A claimed row that never got the
  vendor's answer (`submitted` false: the process died inside submit) is reconciled with
  `backend.find(key)` first; only when the vendor has no such job is it submitted.
* `get` / `watch` poll the job itself (`backend.get(ref)`), never list calls. Polling backs off
  (`PollPolicy`: 2 s growing to 30 s by default, reset on a status change), honours
  `retry_after` on RateLimited, and survives transient RateLimited / BackendUnavailable errors
  with a bounded number of consecutive retries.

Poll settings can come from the environment: UNITUNE_POLL_INITIAL, UNITUNE_POLL_MAX,
UNITUNE_POLL_FACTOR, UNITUNE_RETRY_MAX (consecutive transient errors tolerated),
UNITUNE_RETRY_BASE (first back-off after an error without retry_after), UNITUNE_RETRY_CAP.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .backends import Backend, SubmitContext, get_backend
from .errors import BackendError, DataError, InvalidRequest, SpecError, Unsupported, UnituneError
from .job import Event, Job, JobStatus, Metrics, ModelHandle, merge_metrics
from .registry import RAW_CANCELLED_LOCALLY, JobRecord, Registry, redact_text
from .spec import JobSpec

T = TypeVar("T")


@dataclass
class PollPolicy:
    """How often to poll and how hard to retry."""

    initial: float = 2.0  # first interval between polls (s)
    maximum: float = 30.0  # cap of the interval (s)
    factor: float = 1.5  # growth while nothing changes
    max_retries: int = 8  # consecutive transient errors tolerated before giving up
    retry_base: float = 1.0  # first wait after a transient error without retry_after (s)
    retry_cap: float = 60.0  # longest wait between retries (s)
    submit_wait: float = 900.0  # how long to wait for another process submitting the same job

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "PollPolicy":
        env = os.environ if env is None else env
        p = cls()

        def num(name: str, default: float) -> float:
            value = env.get(name)
            return float(value) if value not in (None, "") else default

        p.initial = num("UNITUNE_POLL_INITIAL", p.initial)
        p.maximum = max(p.initial, num("UNITUNE_POLL_MAX", p.maximum))
        p.factor = num("UNITUNE_POLL_FACTOR", p.factor)
        p.max_retries = int(num("UNITUNE_RETRY_MAX", p.max_retries))
        p.retry_base = num("UNITUNE_RETRY_BASE", p.retry_base)
        p.retry_cap = num("UNITUNE_RETRY_CAP", p.retry_cap)
        return p

    def retry_wait(self, attempt: int, exc: BackendError) -> float:
        if exc.retry_after is not None:
            return max(0.0, float(exc.retry_after))
        return min(self.retry_cap, self.retry_base * (2 ** attempt))


def data_hash(spec: JobSpec) -> str | None:
    """Content hash of the dataset: the train file (+ the validation file when it is a path).
    None when the train file does not exist (the backend check reports that)."""
    try:
        from .data.hashing import file_sha256
    except ImportError:  # pragma: no cover - the data helper's module missing
        file_sha256 = _file_sha256
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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


_SPEC_ROOTS = {"name", "backend", "base_model", "models", "method", "adapter", "hyperparameters",
               "backend_options", "suffix", "metadata"}


def _is_spec_problem(p) -> bool:
    """A problem about the spec itself (a field or option), not about a data file's content."""
    root = (p.path or "").split(".")[0].split("[")[0]
    return p.line is None and root in _SPEC_ROOTS


class Client:
    """Train, watch, cancel and inspect jobs on any backend, with a durable local registry.

    `backends` maps names to ready backend instances (tests, custom setups); other names are
    created with `get_backend(name)`. `sleep` is injectable so tests can observe back-off.
    """

    def __init__(self, registry: Registry | None = None, *,
                 backends: dict[str, Backend] | None = None, poll: PollPolicy | None = None,
                 log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.registry = registry or Registry()
        self._backends: dict[str, Backend] = dict(backends or {})
        self.poll = poll or PollPolicy.from_env()
        self.log = log or (lambda _msg: None)
        self._sleep = sleep

    # -- plumbing --------------------------------------------------------------------------------
    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = get_backend(name)
        return self._backends[name]

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        """Call fn, retrying transient backend errors (bounded, honouring retry_after)."""
        attempt = 0
        while True:
            try:
                return fn()
            except BackendError as exc:
                if not exc.retryable or attempt >= self.poll.max_retries:
                    raise
                wait = self.poll.retry_wait(attempt, exc)
                self.log(f"{what}: {exc.message} — retrying in {wait:.2f}s")
                attempt += 1
                self._sleep(wait)

    @staticmethod
    def _load(spec: JobSpec | str | os.PathLike) -> tuple[JobSpec, str | None]:
        if isinstance(spec, JobSpec):
            return spec, None
        return JobSpec.load(spec), str(Path(spec).resolve())

    def _refuse_if_bad(self, backend: Backend, spec: JobSpec, name: str) -> None:
        problems = backend.check(spec)
        errors = [p for p in problems if p.severity == "error"]
        for p in problems:
            if p.severity != "error":
                self.log(f"warning: {p.message}")
        if not errors:
            return
        unsupported = [p for p in errors if p.code.startswith("unsupported")]
        if unsupported and len(unsupported) == len(errors):
            first = unsupported[0]
            raise Unsupported(f"{name} cannot run this spec: "
                              + "; ".join(p.message for p in unsupported),
                              feature=first.path, backend=name,
                              hint=first.hint or "run `unitune compare` to see which backends can")
        from .data.report import Report

        report = Report(file=str(spec.data_path("train")), problems=list(problems))
        lines = []
        for p in errors[:10]:
            where = ":".join(str(x) for x in (p.file, p.line) if x)
            lines.append(f"  {where + ': ' if where else ''}{p.message}"
                         + (f" [{p.path}]" if p.path else "") + (f" ({p.hint})" if p.hint else ""))
        more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
        message = (f"{name} refused the job before upload ({len(errors)} problem(s)):\n"
                   + "\n".join(lines) + more)
        if all(_is_spec_problem(p) for p in errors):
            raise SpecError(message, field=errors[0].path,
                            hint="fix the spec (or the UNITUNE_<BACKEND>_<OPTION> variables); "
                                 f"`unitune plan SPEC --backend {name}` shows every rule")
        raise DataError(message, report=report,
                        hint="fix the problems above; `unitune validate` shows every one")

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
        be = self.backend(name)
        base_model = spec.model_for(name)
        s_hash, d_hash = spec.spec_hash(), data_hash(spec)

        if not new:
            self._continue_interrupted(be, name, s_hash, d_hash)
        existing = None if new else self.registry.find_reusable(name, s_hash, d_hash)
        if existing is not None and existing.submitted:
            self.log(f"re-attaching to {existing.id} ({existing.status}); use --new for a new job")
            rec = existing
        else:
            self._refuse_if_bad(be, spec, name)
            rec, created = self.registry.claim(
                backend=name, spec=stored_spec(spec), spec_hash=s_hash, data_hash=d_hash,
                name=spec.name, base_model=base_model, spec_path=spec_path, new=new)
            if not created:
                self.log(f"re-attaching to {rec.id} ({rec.status})")
            if not rec.submitted:
                rec = self._submit(be, spec, rec, reconcile=not created)
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

    def _continue_interrupted(self, be: Backend, name: str, s_hash: str, d_hash: str | None) -> None:
        """Re-running a spec whose newest job was interrupted (its worker killed) continues that
        job from its last checkpoint where the backend can restart one (local)."""
        if not be.capabilities().get("restart"):
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

    def _submit(self, be: Backend, spec: JobSpec, rec: JobRecord, *, reconcile: bool) -> JobRecord:
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
            return self._submit_locked(be, spec, rec, reconcile=reconcile or bool(waited))
        finally:
            self.registry.release_submit(rec.id)

    def _submit_locked(self, be: Backend, spec: JobSpec, rec: JobRecord, *,
                       reconcile: bool) -> JobRecord:
        if reconcile:
            ref = self._retrying("find", lambda: be.find(rec.idempotency_key))
            if ref is not None:
                self.log(f"{rec.id}: the vendor already has it ({ref.remote_id})")
                return self.registry.mark_submitted(rec.id, ref)
        work_dir = Path(rec.work_dir) if rec.work_dir else None
        assert work_dir is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        ctx = SubmitContext(job_id=rec.id, idempotency_key=rec.idempotency_key, work_dir=work_dir,
                            uploads=self.registry, log=self.log)
        try:
            ref = self._retrying("submit", lambda: be.submit(spec, ctx))
        except BackendError as exc:
            if not exc.retryable:  # the vendor refused: the job does not exist there
                self.registry.mark_failed(rec.id, exc.message, code=exc.vendor_code
                                          or type(exc).__name__)
            raise
        self.log(f"{rec.id}: submitted as {ref.remote_id}")
        return self.registry.mark_submitted(rec.id, ref)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job, refreshed from its backend unless it is terminal or not yet submitted."""
        rec = self.registry.get_job(job_id)
        if not rec.submitted or rec.is_terminal or rec.ref is None:
            return rec.to_job()
        be = self.backend(rec.backend)
        ref = rec.ref
        snap = self._retrying("get", lambda: be.get(ref))
        rec = self.registry.record_snapshot(rec.id, snap)
        if rec.is_terminal:
            self._collect(rec.id)
        return rec.to_job()

    def _collect(self, job_id: str) -> None:
        """Cache the final metrics and events of a terminal job (best effort)."""
        rec = self.registry.get_job(job_id)
        if rec.ref is None:
            return
        be = self.backend(rec.backend)
        ref = rec.ref
        try:
            self.registry.set_metrics(rec.id, merge_metrics(
                self._retrying("metrics", lambda: be.metrics(ref))))
        except BackendError as exc:  # e.g. MetricsUnavailable: curves live elsewhere
            self.log(f"{rec.id}: metrics not cached: {redact_text(exc.message)}")
        try:
            self.registry.set_events(rec.id, self._retrying("events", lambda: be.events(ref)))
        except BackendError as exc:
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
        be = self.backend(rec.backend)
        ref = rec.ref
        rows = merge_metrics(self._retrying("metrics", lambda: be.metrics(ref)))
        self.registry.set_metrics(rec.id, rows)
        return self.registry.metrics(rec.id)

    def events(self, job_id: str) -> list[Event]:
        rec = self.registry.get_job(job_id)
        cached = self.registry.events(rec.id)
        if rec.ref is None or (rec.is_terminal and cached):
            return cached
        be = self.backend(rec.backend)
        ref = rec.ref
        self.registry.set_events(rec.id, self._retrying("events", lambda: be.events(ref)))
        return self.registry.events(rec.id)

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return self.registry.history(self.registry.get_job(job_id).id)

    # -- control ---------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Ask the vendor to cancel; a job the vendor never got is cancelled locally."""
        rec = self.registry.get_job(job_id)
        if rec.is_terminal:
            raise UnituneError(f"job {rec.id} already {rec.status}; nothing to cancel")
        be = self.backend(rec.backend)
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
                    found = self._retrying("find", lambda: be.find(rec.idempotency_key))
                    if found is None:
                        return self.registry.mark_failed(
                            rec.id, "cancelled before the vendor got it",
                            status=JobStatus.CANCELLED, raw=RAW_CANCELLED_LOCALLY).to_job()
                    rec = self.registry.mark_submitted(rec.id, found)
                    ref = found
                finally:
                    self.registry.release_submit(rec.id)
        assert ref is not None
        snap = self._retrying("cancel", lambda: be.cancel(ref))
        return self.registry.record_snapshot(rec.id, snap).to_job()

    def resume(self, job_id: str) -> Job:
        """Finish an interrupted submission; resume a paused job; or, where the backend can
        (capability `resume`, e.g. local: restart from the last checkpoint), continue a job that
        failed or was cancelled. A running or succeeded job is returned as it is."""
        rec = self.registry.get_job(job_id)
        be = self.backend(rec.backend)
        if not rec.submitted:
            if rec.is_terminal:
                raise UnituneError(f"job {rec.id} is {rec.status} and was never submitted",
                                   hint="run `unitune train` again for a new job")
            spec = self._spec_of(rec)
            self._refuse_if_bad(be, spec, rec.backend)
            rec = self._submit(be, spec, rec, reconcile=True)
            return self.get(rec.id)
        job = self.get(rec.id)
        restartable = job.status in (JobStatus.FAILED, JobStatus.CANCELLED) and \
            bool(be.capabilities().get("restart"))
        if job.status is JobStatus.PAUSED or restartable:
            if not hasattr(be, "resume"):
                raise Unsupported(f"{rec.backend} cannot resume a job", backend=rec.backend,
                                  feature="resume")
            ref = rec.ref
            snap = self._retrying("resume", lambda: be.resume(ref))  # type: ignore[attr-defined]
            return self.registry.record_snapshot(rec.id, snap).to_job()
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            reason = be.capabilities().get("restart").reason
            raise Unsupported(f"job {rec.id} {job.status}; {rec.backend} cannot resume it"
                              + (f" ({reason})" if reason else ""), backend=rec.backend,
                              feature="resume", hint="run `unitune train --new` for a new job")
        return job

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
        be = self.backend(rec.backend)
        if not hasattr(be, "deploy"):
            raise Unsupported(f"{rec.backend} has no deploy step in unitune", backend=rec.backend,
                              feature="deploy")
        if rec.status is not JobStatus.SUCCEEDED or rec.ref is None:
            raise InvalidRequest(f"job {rec.id} is {rec.status}; only a succeeded job can be "
                                 "deployed", backend=rec.backend)
        ref = rec.ref
        result = self._retrying("deploy", lambda: be.deploy(ref, options or {}, dry_run))  # type: ignore[attr-defined]
        if isinstance(result, ModelHandle):
            self.registry.set_model(rec.id, result)
        return result

    def undeploy(self, job_id: str, options: dict[str, Any] | None = None) -> Any:
        rec = self.registry.get_job(job_id)
        be = self.backend(rec.backend)
        if not hasattr(be, "undeploy") or rec.ref is None:
            raise Unsupported(f"{rec.backend} has no undeploy step in unitune",
                              backend=rec.backend, feature="deploy")
        ref = rec.ref
        result = self._retrying("undeploy", lambda: be.undeploy(ref, options or {}))  # type: ignore[attr-defined]
        if isinstance(result, ModelHandle):
            self.registry.set_model(rec.id, result)
        return result
