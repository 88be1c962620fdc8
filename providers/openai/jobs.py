"""The thin adapter over the `openai` SDK's `files` and `fine_tuning.jobs`, for both flavours.

`Session` is one (connection, SDK client, options) for the length of a provider call; every SDK
call goes through `Session.call`, which maps exceptions (`errors.py`). Nothing here retries:
the core's policy does, and `create` makes exactly one attempt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from unitune.errors import BackendError, BackendUnavailable, DataError, NotFound
from unitune.job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                         Snapshot, map_status, merge_metrics)
from unitune.provider import PreparedFile

from .errors import call
from .fields import field, plain, ts
from .metrics import metrics_from_event_data, num, parse_result_csv
from .naming import META_KEY
from .status import STATUS_MAP
from .translate import SDK_CREATE_FIELDS

MAX_PAGES = 50  # ≤ 5,000 jobs even when a server ignores the metadata filter


@dataclass
class Session:
    conn: Any
    client: Any
    options: Any
    log: Callable[[str], None]

    def call(self, action: str, fn: Callable[[], Any]) -> Any:
        return call(action, fn, self.conn.backend, self.conn.display, self.options)


def _pages(s: Session, action: str, fetch: Callable[..., Any], limit: int = 100,
           **kw: Any) -> list[Any]:
    """Every item of a cursor-paginated list (`after` = the last id, until `has_more` is false)."""
    out: list[Any] = []
    after = None
    for _ in range(MAX_PAGES if "metadata" in kw else 1000):
        args = {"limit": limit, **kw, **({"after": after} if after else {})}
        page = s.call(action, lambda: fetch(**args))
        data = list(page.data)
        out.extend(data)
        if not data or not page.has_more:
            break
        after = field(data[-1], "id")
    return out


def upload(s: Session, file: PreparedFile) -> str:
    """Upload one prepared file and wait until the API has processed it; its file id."""
    name = f"unitune-{file.which}-{file.sha256[:12]}.jsonl"
    with open(file.path, "rb") as fh:
        created = s.call(f"upload the {file.which} file",
                         lambda: s.client.files.create(file=(name, fh), purpose="fine-tune"))
    fid = field(created, "id")
    try:
        done = s.call(f"wait for the {file.which} file to be processed",
                      lambda: s.client.files.wait_for_processing(
                          fid, poll_interval=s.options.poll_interval,
                          max_wait_seconds=s.options.upload_wait_s))
    except RuntimeError as exc:  # the SDK gives up waiting
        raise BackendUnavailable(f"{s.conn.display}: the {file.which} file {fid} was not "
                                 f"processed within {s.options.upload_wait_s:.0f}s",
                                 backend=s.conn.backend,
                                 hint=f"raise backend_options.{s.conn.backend}.upload_wait_s"
                                 ) from exc
    if field(done, "status") == "error":
        raise DataError(f"{s.conn.display} rejected the {file.which} file {fid}: "
                        f"{field(done, 'status_details') or 'no details given'}",
                        hint=f"`unitune validate {file.source}` shows the local checks")
    return fid


def still_there(s: Session, fid: str) -> bool:
    """Whether an uploaded file id can still be used for a new job."""
    try:
        f = s.call("check the uploaded file", lambda: s.client.files.retrieve(fid))
    except NotFound:
        return False
    return field(f, "status") != "error" and field(f, "purpose") == "fine-tune"


def create(s: Session, request: dict[str, Any]) -> str:
    """ONE `jobs.create` with exactly `request` (vendor-only keys go as extra_body); the job id."""
    kw = {k: v for k, v in request.items() if k in SDK_CREATE_FIELDS}
    extra = {k: v for k, v in request.items() if k not in SDK_CREATE_FIELDS}
    if extra:
        kw["extra_body"] = extra
    job = s.call("create the fine-tuning job", lambda: s.client.fine_tuning.jobs.create(**kw))
    return field(job, "id")


def lookup(s: Session, key: str) -> str | None:
    """The id of the job carrying `key` in its metadata (the oldest if there were several)."""
    jobs = _pages(s, "look the job up", s.client.fine_tuning.jobs.list, metadata={META_KEY: key})
    found = [j for j in jobs if (field(j, "metadata") or {}).get(META_KEY) == key]
    if not found:
        return None
    found.sort(key=lambda j: (field(j, "created_at") or 0, field(j, "id")))
    if len(found) > 1:
        s.log(f"warning: {len(found)} {s.conn.display} jobs carry key {key}: "
              + ", ".join(field(j, "id") for j in found) + f"; using {field(found[0], 'id')}")
    return field(found[0], "id")


def _epochs(job: Any) -> int | None:
    method = field(job, "method") or {}
    inner = field(method, field(method, "type") or "supervised") or {}
    for src in (field(job, "hyperparameters"), field(inner, "hyperparameters")):
        n = field(src or {}, "n_epochs")
        if isinstance(n, int) and n > 0:  # Azure may say -1 for "auto"
            return n
    return None


def _progress(s: Session, job: Any) -> Progress | None:
    try:
        page = s.call("read events",
                      lambda: s.client.fine_tuning.jobs.list_events(field(job, "id"), limit=20))
    except BackendError:
        return None
    for ev in page.data:  # newest first
        data = plain(field(ev, "data"))
        if field(ev, "type") != "metrics" or not data:
            continue
        row = metrics_from_event_data(data, epochs=_epochs(job))
        if row is None:
            continue
        total, finish = num(data.get("total_steps")), field(job, "estimated_finish")
        return Progress(step=row.step, total_steps=int(total) if total else None,
                        epoch=row.epoch, latest_loss=row.train_loss,
                        eta_seconds=max(0.0, float(finish) - time.time()) if finish else None)
    return None


def snapshot(s: Session, ref: RemoteRef, job: Any) -> Snapshot:
    """The job object, normalized (all-null `error` = no error; unknown status → UNKNOWN)."""
    raw = field(job, "status")
    status = map_status(raw, STATUS_MAP)
    err, error = field(job, "error"), None
    if err is not None:
        msg, code, param = field(err, "message"), field(err, "code"), field(err, "param")
        if msg or code or param:
            error = JobError(message=msg or f"failed with code {code}", code=code, param=param)
    if status is JobStatus.FAILED and error is None:
        error = JobError(message=f"{s.conn.display} reported the job failed without a message")
    model, tuned = None, field(job, "fine_tuned_model")
    if tuned:
        ckpts: list[str] = []
        if status is JobStatus.SUCCEEDED:
            try:
                ckpts = [c["model"] for c in checkpoints(s, ref.remote_id)]
            except BackendError:
                pass
        model = ModelHandle(backend=s.conn.backend, model_id=tuned, base_model=field(job, "model"),
                            name=tuned, checkpoints=ckpts, invoke=s.conn.invoke_hint(tuned))
    tokens = field(job, "trained_tokens")
    return Snapshot(ref=ref, status=status, raw_status=raw, created_at=ts(field(job, "created_at")),
                    finished_at=ts(field(job, "finished_at")), trained_tokens=tokens,
                    billed_tokens=tokens, error=error, model=model,
                    progress=_progress(s, job) if status is JobStatus.RUNNING else None,
                    estimated_finish=ts(field(job, "estimated_finish")), raw=plain(job))


def on_job(s: Session, ref: RemoteRef, action: str, method: str) -> Snapshot:
    """`jobs.<method>(job id)` (retrieve, cancel, pause, resume), as a Snapshot."""
    job = s.call(action, lambda: getattr(s.client.fine_tuning.jobs, method)(ref.remote_id))
    return snapshot(s, ref, job)


def _raw_events(s: Session, job_id: str) -> list[Any]:
    out = _pages(s, "read events", lambda **kw: s.client.fine_tuning.jobs.list_events(job_id, **kw))
    out.reverse()  # the API lists newest first; reversed keeps the order within one second
    out.sort(key=lambda e: field(e, "created_at") or 0)  # stable: oldest first
    return out


def events(s: Session, job_id: str) -> list[Event]:
    level = {"warn": "warning"}
    return [Event(time=ts(field(e, "created_at")), message=field(e, "message") or "",
                  level=level.get(field(e, "level"), field(e, "level") or "info"),
                  data=plain(field(e, "data")) or None) for e in _raw_events(s, job_id)]


def metrics(s: Session, job_id: str) -> list[Metrics]:
    """Metrics events (while running) merged per step with the result CSV (at the end)."""
    job = s.call("read the job", lambda: s.client.fine_tuning.jobs.retrieve(job_id))
    epochs = _epochs(job)
    rows = [row for ev in _raw_events(s, job_id)
            if field(ev, "type") == "metrics" and field(ev, "data")
            for row in [metrics_from_event_data(plain(field(ev, "data")), epochs=epochs)]
            if row is not None]
    total = max((r.step for r in rows), default=None)
    for fid in (field(job, "result_files") or [])[:1]:  # Azure may send null
        content = s.call("download the result file", lambda: s.client.files.content(fid))
        csv_rows = parse_result_csv(content.read() if hasattr(content, "read") else content)
        total = total or max((r.step for r in csv_rows), default=None)
        if epochs and total:
            csv_rows = [r.model_copy(update={"epoch": round(r.step / (total / epochs), 4)})
                        for r in csv_rows]
        rows.extend(csv_rows)
    return merge_metrics(rows)


def checkpoints(s: Session, job_id: str) -> list[dict[str, Any]]:
    """Checkpoint models (newest first): model id, step and the metrics at that step."""
    page = s.call("list checkpoints",
                  lambda: s.client.fine_tuning.jobs.checkpoints.list(job_id, limit=100))
    return [{"model": field(c, "fine_tuned_model_checkpoint"), "step": field(c, "step_number"),
             "metrics": plain(field(c, "metrics")) or {}} for c in page.data]


def recent(s: Session, limit: int) -> list[Any]:
    """The account's most recent job objects (any creator), newest first."""
    page = s.call("list jobs", lambda: s.client.fine_tuning.jobs.list(limit=limit))
    return list(page.data)[:limit]
