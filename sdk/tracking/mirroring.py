"""Mirroring a job's normalized metrics into MLflow / TensorBoard / W&B.

* `mirror(job_id, to=...)`: after the fact, any backend (`unitune track JOB --to mlflow`, and
  what `unitune metrics JOB --to …` calls). Safe to repeat: only missing points are logged.
* `LiveMirror`: an `on_update` callback for `Client.train` / `Client.watch` that mirrors a
  cloud job's rows as they are polled. A local job reports live from its own worker (through
  the trainer's integrations, see `unitune.tracking.trainer`), so for it the live mirror only
  fills gaps once the job is over.
* `follow(job_id, to=...)`: watch a job and mirror it live until it ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .settings import RunInfo
from .sinks import make_sink
from .spec import TrackingSpec, as_tracking


@dataclass
class Mirrored:
    """What one tracker got for one job."""

    tool: str
    job_id: str
    logged: int = 0
    where: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "job_id": self.job_id, "logged": self.logged, **self.where}


def _tools(to: str | Iterable[str] | None, tracking: TrackingSpec | None) -> list[str]:
    if to is None:
        return list(tracking.to) if tracking is not None else ["mlflow"]
    names = [to] if isinstance(to, str) else list(to)
    return list(TrackingSpec(to=names).to)  # validated: a typo is an error naming the choices


def _settings(tracking: Any, rec: Any) -> TrackingSpec | None:
    """Explicit settings, else the job's own `tracking:` (from its stored spec)."""
    found = as_tracking(tracking)
    if found is None and isinstance(getattr(rec, "spec", None), dict):
        stored = rec.spec.get("tracking")
        if stored is None:
            stored = ((rec.spec.get("backend_options") or {}).get("local") or {}).get("tracking")
        if stored is not None:
            try:
                found = as_tracking(stored)
            except ValueError:
                found = None
    return found


def mirror(job_id: str, to: str | Iterable[str] | None = None, *, client: Any = None,
           tracking: TrackingSpec | dict | str | None = None) -> list[Mirrored]:
    """Mirror a job's metrics (refreshed from its backend) into each tool in `to`."""
    from ..client import Client

    client = client or Client()
    job = client.get(job_id)
    rows = client.metrics(job.id)
    rec = client.registry.get_job(job.id)
    settings = _settings(tracking, rec)
    info = RunInfo.from_record(rec)
    out = []
    for tool in _tools(to, settings):
        sink = make_sink(tool, info, settings).open()
        try:
            logged = sink.log(rows)
        finally:
            sink.close(str(job.status) if job.status.is_terminal else None)
        out.append(Mirrored(tool, job.id, logged, sink.describe()))
    return out


class LiveMirror:
    """`on_update` callback: mirror a job's rows into the trackers as it is polled.

    `client.train(spec, on_update=LiveMirror(client, to=["mlflow"]))`; the sinks stay open
    between polls and are closed (run status set) when the job ends."""

    def __init__(self, client: Any, to: str | Iterable[str] | None = None, *,
                 tracking: TrackingSpec | dict | str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.tracking = as_tracking(tracking)
        self.to = _tools(to, self.tracking)
        self.log = log or (lambda _m: None)
        self.sinks: dict[str, Any] = {}
        self.results: dict[str, Mirrored] = {}
        self._last: tuple | None = None
        self._closed = False

    def _open(self, job: Any) -> None:
        if self.sinks:
            return
        rec = self.client.registry.get_job(job.id)
        settings = _settings(self.tracking, rec)
        info = RunInfo.from_record(rec)
        for tool in self.to:
            self.sinks[tool] = make_sink(tool, info, settings).open()
            self.results[tool] = Mirrored(tool, job.id)

    def __call__(self, job: Any) -> None:
        if self._closed or not getattr(job, "submitted", True):
            return
        terminal = job.status.is_terminal
        key = (str(job.status), job.progress.step if job.progress else None)
        if key == self._last:
            return
        self._last = key
        if job.backend == "local" and not terminal:
            return  # the worker reports live itself
        try:
            self._open(job)
            rows = self.client.metrics(job.id)
            for tool, sink in self.sinks.items():
                self.results[tool].logged += sink.log(rows)
        except Exception as exc:  # noqa: BLE001 - tracking must never stop a training job
            from ..redact import redact_text

            self.log(f"tracking: {redact_text(str(getattr(exc, 'message', exc)))}")
        if terminal:
            self.close(str(job.status))

    def close(self, status: str | None = None) -> list[Mirrored]:
        if not self._closed:
            self._closed = True
            for tool, sink in self.sinks.items():
                sink.close(status)
                self.results[tool].where = sink.describe()
        return list(self.results.values())


def follow(job_id: str, to: str | Iterable[str] | None = None, *, client: Any = None,
           tracking: TrackingSpec | dict | str | None = None,
           on_update: Callable[[Any], None] | None = None) -> list[Mirrored]:
    """Watch a job until it ends, mirroring its rows live; returns what each tool got."""
    from ..client import Client

    client = client or Client()
    live = LiveMirror(client, to, tracking=tracking, log=client.log)
    last = None
    try:
        for last in client.watch(job_id):
            if on_update is not None:
                on_update(last)
            live(last)
    finally:
        results = live.close(str(last.status) if last is not None and
                             last.status.is_terminal else None)
    return results
