"""The durable local job registry: every job unitune ever created, in SQLite (WAL mode).

One file, `unitune_home()/registry.sqlite3`, shared by every unitune process on the machine.
Rules that make it safe for several CLI processes at once and crash-safe:

* WAL journal + `busy_timeout`, autocommit connections and short transactions; the one
  read-then-write step that must not race (claiming a job for a spec + data + backend) runs
  under `BEGIN IMMEDIATE`, so two `unitune train` runs of the same spec end with one job.
* Durable before remote: `claim` commits the job row and its idempotency key before any vendor
  is called; `mark_submitted` records the vendor's id once it answered. A row with
  `submitted = 0` means "the vendor may or may not have it": the client asks `backend.find(key)`
  before it ever submits again.
* Secrets never land here: the stored spec is redacted by key name (`api_key`, `token`,
  `secret`, `password`, `credentials`, …) and error texts / events are scrubbed of secret values
  found in the environment (`redact_text`).

Tables: `jobs` (one row per job), `status_history` (every status / raw status change),
`metrics` (cached wide rows per step), `events` (cached vendor log lines) and `uploads` (the
`UploadCache` protocol: content hash → remote file id per backend).
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import Field

from .errors import JobNotFound, RegistryError, UnituneError
from .job import (Event, Job, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                  Snapshot)
from .paths import unitune_home
from .procs import pid_running
from .provider import Location
from .redact import REDACTED, is_secret_key, redact, redact_text  # noqa: F401 (re-exported)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    backend TEXT NOT NULL,
    base_model TEXT,
    spec_json TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    data_hash TEXT,
    spec_path TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    remote_id TEXT,
    remote_extra TEXT,
    submitted INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    raw_status TEXT,
    error_json TEXT,
    model_json TEXT,
    progress_json TEXT,
    trained_tokens INTEGER,
    billed_tokens INTEGER,
    cost_usd REAL,
    work_dir TEXT,
    lease_owner TEXT,
    lease_at TEXT,
    location_json TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    submitted_at TEXT,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_reuse ON jobs (backend, spec_hash, data_hash);
CREATE INDEX IF NOT EXISTS jobs_remote ON jobs (backend, remote_id);
CREATE TABLE IF NOT EXISTS status_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    status TEXT NOT NULL,
    raw_status TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_job ON status_history (job_id, seq);
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    step INTEGER NOT NULL,
    row_json TEXT NOT NULL,
    PRIMARY KEY (job_id, step)
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS uploads (
    backend TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (backend, key)
);
"""

# Raw statuses unitune sets itself before / instead of a vendor answer.
RAW_PENDING_SUBMIT = "unitune:pending-submit"
RAW_SUBMIT_FAILED = "unitune:submit-failed"
RAW_CANCELLED_LOCALLY = "unitune:cancelled-before-submit"

# A job in one of these states is not re-attached to by `train`: the user gets a new job.
NOT_REUSABLE = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def new_job_id(now: datetime | None = None) -> str:
    """`ut-YYYYMMDD-xxxxxx` (UTC date + 6 random hex digits)."""
    now = now or datetime.now(timezone.utc)
    return f"ut-{now:%Y%m%d}-{secrets.token_hex(3)}"


def new_idempotency_key(job_id: str) -> str:
    """A key unique beyond this machine, valid as an OpenAI metadata value, a Bedrock
    clientRequestToken and a Vertex label value (lowercase, digits, dashes, ≤ 63 chars)."""
    return f"{job_id}-{secrets.token_hex(6)}"


SUBMIT_LEASE_S = 900.0  # a lease held from another host expires after this long


def _owner() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _holder_alive(holder: str, lease_at: str | None) -> bool:
    import socket

    host, _, rest = holder.partition(":")
    pid_text, _, _tid = rest.partition(":")
    if host != socket.gethostname():
        age = (datetime.now(timezone.utc) - _ts(lease_at)).total_seconds() if lease_at else 1e9
        return age < SUBMIT_LEASE_S
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True  # another thread of this process
    return pid_running(pid)


# columns stored as JSON text -> the JobRecord field they decode into
_JSON_COLUMNS = {"spec_json": "spec", "error_json": "error", "model_json": "model",
                 "progress_json": "progress", "remote_extra": "remote_extra",
                 "location_json": "location"}
_PRIVATE_COLUMNS = {"lease_owner", "lease_at"}


class JobRecord(Job):
    """One row of `jobs`, decoded: the user-facing Job plus what only the registry keeps."""

    spec: dict[str, Any] = Field(default_factory=dict)
    spec_path: str | None = None
    remote_extra: dict[str, Any] = Field(default_factory=dict)
    location: Location | None = None  # where the job lives at its vendor (stored at claim)
    work_dir: str | None = None
    updated_at: datetime | None = None
    submitted_at: datetime | None = None

    @property
    def ref(self) -> RemoteRef | None:
        if not self.remote_id:
            return None
        return RemoteRef(backend=self.backend, remote_id=self.remote_id, extra=self.remote_extra)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def to_job(self) -> Job:
        return Job.model_validate(self.model_dump(include=set(Job.model_fields)))

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobRecord":
        data: dict[str, Any] = {}
        for key in row.keys():
            if key in _PRIVATE_COLUMNS:
                continue
            value = row[key]
            if key in _JSON_COLUMNS:
                data[_JSON_COLUMNS[key]] = json.loads(value) if value else None
            else:
                data[key] = value
        data["remote_extra"] = data.get("remote_extra") or {}
        data["spec"] = data.get("spec") or {}
        data["submitted"] = bool(data.get("submitted"))
        if data.get("status") not in JobStatus._value2member_map_:
            data["status"] = JobStatus.UNKNOWN
        return cls.model_validate(data)


class Registry:
    """The job store. Cheap to create; one SQLite connection per instance (thread-safe via a lock).

    Also implements the `UploadCache` protocol (`get(backend, key)` / `put(backend, key, value)`)
    so backends can skip re-uploading a file whose content hash they have seen before.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout_s: float = 30.0,
                 work_root: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else unitune_home() / "registry.sqlite3"
        self.work_root = Path(work_root) if work_root else unitune_home() / "jobs"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._open(timeout_s)
        except sqlite3.DatabaseError as exc:
            from .recovery import is_corrupt

            if not is_corrupt(exc):
                raise UnituneError(f"cannot open the job registry {self.path}: {exc}",
                                   hint="another process may hold it; try again") from None
            raise RegistryError(
                f"the job registry {self.path} is corrupt ({exc})",
                hint="`unitune registry recover` keeps the file under a .corrupt-<date> name, "
                     "makes a new registry and rebuilds every job from its folder and its "
                     "vendor") from None

    def _open(self, timeout_s: float) -> None:
        self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:  # job records are the user's business only
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        with self._tx():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            cols = {r["name"] for r in self._conn.execute("PRAGMA table_info(jobs)")}
            for col in ("lease_owner", "lease_at", "location_json"):  # older registries
                if col not in cols:
                    self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {col} TEXT")
            self._conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                               (str(SCHEMA_VERSION),))

    def integrity(self) -> str:
        rows = self._query("PRAGMA integrity_check")
        return "; ".join(str(r[0]) for r in rows) or "ok"

    def known_ids(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = self._query(f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(chunk))})",
                               tuple(chunk))
            out.update(r["id"] for r in rows)
        return out

    def insert_recovered(self, row: dict[str, Any]) -> JobRecord:
        """A lost row rebuilt from its manifest: not confirmed with the vendor yet."""
        from .recovery import MANIFEST_COLUMNS

        now = _now()
        values = {k: row.get(k) for k in MANIFEST_COLUMNS}
        values["created_at"] = values.get("created_at") or now
        values["spec_json"] = values.get("spec_json") or "{}"
        with self._tx() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO jobs ({', '.join(values)}, submitted, status, raw_status, "
                f"updated_at) VALUES ({','.join('?' * len(values))},0,?,?,?)",
                (*values.values(), JobStatus.QUEUED.value, RAW_PENDING_SUBMIT, now))
            conn.execute("INSERT INTO status_history (job_id, status, raw_status, at) "
                         "VALUES (?,?,?,?)", (values["id"], JobStatus.QUEUED.value,
                                              "unitune:recovered", now))
        return self.get_job(values["id"])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """A short write transaction; BEGIN IMMEDIATE takes the write lock up front so a
        read-then-write inside cannot interleave with another process."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- claiming a job (durable before remote) --------------------------------------------------
    def find_reusable(self, backend: str, spec_hash: str, data_hash: str | None) -> JobRecord | None:
        """The newest job for the same spec + data + backend that neither failed nor was
        cancelled (a crashed or running one, or one that already succeeded)."""
        rows = self._query(
            "SELECT * FROM jobs WHERE backend = ? AND spec_hash = ? AND data_hash IS ? "
            f"AND status NOT IN ({','.join('?' * len(NOT_REUSABLE))}) "
            "ORDER BY created_at DESC LIMIT 1",
            (backend, spec_hash, data_hash, *NOT_REUSABLE))
        return JobRecord.from_row(rows[0]) if rows else None

    def find_latest(self, backend: str, spec_hash: str, data_hash: str | None) -> JobRecord | None:
        """The newest job for the same spec + data + backend, whatever its status."""
        rows = self._query(
            "SELECT * FROM jobs WHERE backend = ? AND spec_hash = ? AND data_hash IS ? "
            "ORDER BY created_at DESC LIMIT 1", (backend, spec_hash, data_hash))
        return JobRecord.from_row(rows[0]) if rows else None

    def claim(self, *, backend: str, spec: dict[str, Any], spec_hash: str, data_hash: str | None,
              name: str | None = None, base_model: str | None = None,
              spec_path: str | None = None, new: bool = False,
              work_root: Path | None = None,
              location: Location | None = None) -> tuple[JobRecord, bool]:
        """Return `(record, created)`: the reusable job for this spec + data + backend, or a new
        row with a fresh idempotency key, committed before this returns. Runs under
        BEGIN IMMEDIATE, so concurrent claims of the same spec end with one job."""
        from .recovery import lost_rows, write_manifest

        root = work_root or self.work_root
        lost = lost_rows(self, root)
        if lost:
            ids = ", ".join(m["id"] for m in lost[:5]) + (" …" if len(lost) > 5 else "")
            raise RegistryError(
                f"the job registry {self.path} has lost {len(lost)} job(s) that still have "
                f"folders under {root} ({ids}); submitting now could start (and pay for) a "
                "second copy of one of them",
                hint="`unitune registry recover` rebuilds them and asks their vendors; "
                     "`unitune registry check` shows the state")
        spec_json = redact_text(json.dumps(redact(spec), sort_keys=True)) or "{}"
        for _attempt in range(5):
            with self._tx() as conn:
                if not new:
                    existing = self.find_reusable(backend, spec_hash, data_hash)
                    if existing is not None:
                        return existing, False
                job_id = new_job_id()
                if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                    continue  # random id collided (1 in 16M per day): draw again
                now = _now()
                work_dir = str(root / job_id)
                location_json = redact_text(location.model_dump_json()) if location else None
                conn.execute(
                    "INSERT INTO jobs (id, name, backend, base_model, spec_json, spec_hash, "
                    "data_hash, spec_path, idempotency_key, submitted, status, raw_status, "
                    "work_dir, location_json, created_at, updated_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?,?,?,?)",
                    (job_id, name, backend, base_model, spec_json, spec_hash, data_hash,
                     spec_path, new_idempotency_key(job_id), JobStatus.QUEUED.value,
                     RAW_PENDING_SUBMIT, work_dir, location_json, now, now))
                conn.execute("INSERT INTO status_history (job_id, status, raw_status, at) "
                             "VALUES (?,?,?,?)", (job_id, JobStatus.QUEUED.value,
                                                  RAW_PENDING_SUBMIT, now))
            rec = self.get_job(job_id)
            # durable before remote, twice: the row, and (once the row is committed, so another
            # process never sees a manifest without its row) a manifest beside the job's folder
            # that lets `unitune registry recover` rebuild the row should it be lost
            write_manifest(work_dir, {
                "id": job_id, "name": name, "backend": backend, "base_model": base_model,
                "spec_json": spec_json, "spec_hash": spec_hash, "data_hash": data_hash,
                "spec_path": spec_path, "idempotency_key": rec.idempotency_key,
                "work_dir": work_dir, "location_json": location_json, "created_at": now})
            return rec, True
        raise UnituneError("could not allocate a job id", hint="try again")  # pragma: no cover

    # -- lookups -----------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobRecord:
        """By full id, unique id prefix, or the vendor's remote id."""
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            like = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query("SELECT * FROM jobs WHERE id LIKE ? ESCAPE '\\' "
                               "ORDER BY created_at DESC LIMIT 6", (like,))
            if not rows:
                rows = self._query("SELECT * FROM jobs WHERE remote_id = ?", (job_id,))
        if not rows:
            raise JobNotFound(f"no job {job_id!r} in the registry ({self.path})",
                              hint="`unitune list` shows the jobs unitune knows")
        if len(rows) > 1:
            ids = ", ".join(r["id"] for r in rows[:5])
            raise JobNotFound(f"job id {job_id!r} is ambiguous: {ids}",
                              hint="give more characters of the id")
        return JobRecord.from_row(rows[0])

    def list_jobs(self, backend: str | None = None, status: str | JobStatus | None = None,
                  limit: int | None = None) -> list[JobRecord]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if backend:
            sql += " AND backend = ?"
            args.append(backend)
        if status:
            sql += " AND status = ?"
            args.append(JobStatus(status).value)
        sql += " ORDER BY created_at DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [JobRecord.from_row(r) for r in self._query(sql, tuple(args))]

    def history(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT status, raw_status, at FROM status_history WHERE job_id = ? "
                           "ORDER BY seq", (job_id,))
        return [{"status": r["status"], "raw_status": r["raw_status"], "at": r["at"]} for r in rows]

    # -- updates -----------------------------------------------------------------------------------
    def _set_status(self, conn: sqlite3.Connection, job_id: str, status: JobStatus,
                    raw: str | None, now: str) -> None:
        cur = conn.execute("SELECT status, raw_status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if cur is None:
            raise JobNotFound(f"no job {job_id!r} in the registry")
        if (cur["status"], cur["raw_status"]) != (status.value, raw):
            conn.execute("INSERT INTO status_history (job_id, status, raw_status, at) "
                         "VALUES (?,?,?,?)", (job_id, status.value, raw, now))
        conn.execute("UPDATE jobs SET status = ?, raw_status = ?, updated_at = ? WHERE id = ?",
                     (status.value, raw, now, job_id))

    # -- the submit lease: one process at a time talks to the vendor for an unsubmitted job --------
    def acquire_submit(self, job_id: str) -> str | None:
        """Take the right to find/submit an unsubmitted job. Returns None when taken, else
        who holds it ("host:pid:thread") — a live process, or a lease younger than
        SUBMIT_LEASE_S from another host. A SIGKILLed holder's lease is void at once."""
        me = _owner()
        with self._tx() as conn:
            row = conn.execute("SELECT submitted, lease_owner, lease_at FROM jobs WHERE id = ?",
                               (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job {job_id!r} in the registry")
            if row["submitted"]:
                return "submitted"
            holder = row["lease_owner"]
            if holder and holder != me and _holder_alive(holder, row["lease_at"]):
                return holder
            conn.execute("UPDATE jobs SET lease_owner = ?, lease_at = ? WHERE id = ?",
                         (me, _now(), job_id))
        return None

    def release_submit(self, job_id: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET lease_owner = NULL, lease_at = NULL "
                         "WHERE id = ? AND lease_owner = ?", (job_id, _owner()))

    def mark_submitted(self, job_id: str, ref: RemoteRef) -> JobRecord:
        """The vendor accepted (or `find` located) the job: remember its id."""
        now = _now()
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET remote_id = ?, remote_extra = ?, submitted = 1, "
                         "lease_owner = NULL, lease_at = NULL, "
                         "submitted_at = COALESCE(submitted_at, ?), updated_at = ? WHERE id = ?",
                         (ref.remote_id, json.dumps(redact(ref.extra)), now, now, job_id))
            row = conn.execute("SELECT raw_status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row and row["raw_status"] == RAW_PENDING_SUBMIT:
                self._set_status(conn, job_id, JobStatus.QUEUED, "unitune:submitted", now)
        return self.get_job(job_id)

    def record_snapshot(self, job_id: str, snap: Snapshot) -> JobRecord:
        """Store what the vendor said about the job (status change → history row)."""
        now = _now()
        error = snap.error.model_copy(update={"message": redact_text(snap.error.message)}) \
            if snap.error else None
        with self._tx() as conn:
            self._set_status(conn, job_id, snap.status, snap.raw_status, now)
            progress = snap.progress
            if snap.status.is_terminal:  # the last word: no ETA, and a finished run's last step
                if progress is None:
                    row = conn.execute("SELECT progress_json FROM jobs WHERE id = ?",
                                       (job_id,)).fetchone()
                    progress = Progress.model_validate_json(row[0]) if row and row[0] else None
                if progress is not None:
                    done = snap.status is JobStatus.SUCCEEDED and progress.total_steps
                    progress = progress.model_copy(update={
                        "eta_seconds": None,
                        **({"step": progress.total_steps} if done else {})})
            conn.execute(
                "UPDATE jobs SET error_json = ?, model_json = COALESCE(?, model_json), "
                "progress_json = COALESCE(?, progress_json), "
                "trained_tokens = COALESCE(?, trained_tokens), "
                "billed_tokens = COALESCE(?, billed_tokens), "
                "started_at = COALESCE(?, started_at), "
                + ("finished_at = COALESCE(?, finished_at) " if snap.status.is_terminal
                   else "finished_at = ? ")  # a resumed job is no longer finished
                + "WHERE id = ?",
                (error.model_dump_json() if error else None,
                 snap.model.model_dump_json() if snap.model else None,
                 progress.model_dump_json() if progress else None,
                 snap.trained_tokens, snap.billed_tokens, _iso(snap.started_at),
                 _iso(snap.finished_at), job_id))
        return self.get_job(job_id)

    def mark_failed(self, job_id: str, message: str, *, code: str | None = None,
                    status: JobStatus = JobStatus.FAILED, raw: str = RAW_SUBMIT_FAILED) -> JobRecord:
        """A failure unitune saw itself (e.g. the vendor refused the submission)."""
        now = _now()
        err = JobError(message=redact_text(message) or "", code=code)
        with self._tx() as conn:
            self._set_status(conn, job_id, status, raw, now)
            conn.execute("UPDATE jobs SET error_json = ?, finished_at = COALESCE(finished_at, ?), "
                         "lease_owner = NULL, lease_at = NULL WHERE id = ?",
                         (err.model_dump_json(), now, job_id))
        return self.get_job(job_id)

    def discard(self, job_id: str) -> None:
        """Forget a job the vendor refused before it existed there (its row, history and
        manifest), so `list` does not show a job that never was."""
        from .recovery import MANIFEST

        rec = self.get_job(job_id)
        if rec.submitted:
            raise UnituneError(f"job {job_id} exists at {rec.backend}; it cannot be discarded")
        with self._tx() as conn:
            for table in ("status_history", "metrics", "events"):
                conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        if rec.work_dir:
            folder = Path(rec.work_dir)
            for name in (MANIFEST, "request.json"):
                (folder / name).unlink(missing_ok=True)
            try:
                folder.rmdir()
            except OSError:
                pass  # something else lives there (e.g. a local job's files): keep it

    def set_model(self, job_id: str, model: ModelHandle | None) -> JobRecord:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET model_json = ?, updated_at = ? WHERE id = ?",
                         (model.model_dump_json() if model else None, _now(), job_id))
        return self.get_job(job_id)

    def set_cost(self, job_id: str, cost_usd: float | None) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET cost_usd = ? WHERE id = ?", (cost_usd, job_id))

    # -- caches ------------------------------------------------------------------------------------
    def set_metrics(self, job_id: str, rows: list[Metrics]) -> None:
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO metrics (job_id, step, row_json) VALUES (?,?,?)",
                             [(job_id, r.step, r.model_dump_json()) for r in rows])

    def metrics(self, job_id: str) -> list[Metrics]:
        rows = self._query("SELECT row_json FROM metrics WHERE job_id = ? ORDER BY step", (job_id,))
        return [Metrics.model_validate_json(r["row_json"]) for r in rows]

    def set_events(self, job_id: str, events: list[Event]) -> None:
        """Replace the cached events of a job (vendors return the whole log)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            conn.executemany(
                "INSERT INTO events (job_id, seq, event_json) VALUES (?,?,?)",
                [(job_id, i, e.model_copy(update={"message": redact_text(e.message),
                                                  "data": redact(e.data)}).model_dump_json())
                 for i, e in enumerate(events)])

    def events(self, job_id: str) -> list[Event]:
        rows = self._query("SELECT event_json FROM events WHERE job_id = ? ORDER BY seq", (job_id,))
        return [Event.model_validate_json(r["event_json"]) for r in rows]

    # -- UploadCache protocol ----------------------------------------------------------------------
    def get(self, backend: str, key: str) -> str | None:
        rows = self._query("SELECT value FROM uploads WHERE backend = ? AND key = ?", (backend, key))
        return rows[0]["value"] if rows else None

    def put(self, backend: str, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO uploads (backend, key, value, created_at) "
                         "VALUES (?,?,?,?)", (backend, key, value, _now()))

    def forget_upload(self, backend: str, key: str) -> None:
        """Drop a cache entry (e.g. the vendor deleted the file)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM uploads WHERE backend = ? AND key = ?", (backend, key))
