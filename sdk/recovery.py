"""Registry recovery: every job leaves a manifest beside its work folder, so lost rows are noticed
and rebuilt instead of silently paid for twice.

`Registry.claim` writes `jobs/<id>/registry-row.json` (the row as claimed: id, backend,
idempotency key, location, redacted spec) before the vendor is ever called. From those:

* `lost_rows(registry)` — manifests whose job has no row (the registry file was replaced, emptied
  or restored from an old copy). While any exist, `claim` refuses to create a new job: the
  vendor may already be running (and billing) one of them for the same spec.
* `check(registry)` — SQLite's integrity check, lost rows, rows whose folder is gone.
* `recover(client)` — a corrupt registry file is moved aside (kept, never deleted) and a new one
  made; every lost row is rebuilt from its manifest and, for each job the registry cannot
  confirm, the vendor is asked by idempotency key at the stored location: a job it has is
  re-attached (`submitted`), one it never got is marked cancelled locally.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client
    from .registry import Registry

MANIFEST = "registry-row.json"
MANIFEST_COLUMNS = ("id", "name", "backend", "base_model", "spec_json", "spec_hash", "data_hash",
                    "spec_path", "idempotency_key", "work_dir", "location_json", "created_at")


def write_manifest(work_dir: str | Path, row: dict[str, Any]) -> None:
    """The claimed row beside the job's folder (atomic: written then renamed)."""
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({k: row.get(k) for k in MANIFEST_COLUMNS}, indent=1))
    os.replace(tmp, folder / MANIFEST)


def manifests(work_root: Path) -> list[dict[str, Any]]:
    if not work_root.is_dir():
        return []
    out = []
    for path in sorted(work_root.glob(f"*/{MANIFEST}")):
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(row, dict) and row.get("id") and row.get("idempotency_key"):
            out.append(row)
    return out


def lost_rows(registry: "Registry", work_root: Path | None = None) -> list[dict[str, Any]]:
    """Manifests of jobs the registry has no row for."""
    root = work_root or registry.work_root
    found = manifests(root)
    if not found:
        return []
    known = registry.known_ids([m["id"] for m in found])
    return [m for m in found if m["id"] not in known]


@dataclass
class CheckResult:
    path: str
    integrity: str = "ok"
    lost: list[str] = field(default_factory=list)
    missing_folders: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and not self.lost

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.path, "ok": self.ok, "integrity": self.integrity,
                "lost_rows": self.lost, "rows_without_folder": self.missing_folders,
                "unconfirmed": self.unconfirmed}


def check(registry: "Registry") -> CheckResult:
    out = CheckResult(path=str(registry.path), integrity=registry.integrity())
    out.lost = [m["id"] for m in lost_rows(registry)]
    for rec in registry.list_jobs():
        if rec.work_dir and not Path(rec.work_dir).exists():
            out.missing_folders.append(rec.id)
        if not rec.submitted and not rec.is_terminal:
            out.unconfirmed.append(rec.id)
    return out


def move_aside(path: Path) -> Path | None:
    """Keep a corrupt registry (and its WAL files) under a dated name; return the new name."""
    if not path.exists():
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target


@dataclass
class RecoverResult:
    moved_aside: str | None = None
    rebuilt: list[str] = field(default_factory=list)
    reattached: dict[str, str] = field(default_factory=dict)  # job id -> remote id
    never_submitted: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # job id -> why

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_or_replace(path: Path) -> tuple["Registry", str | None]:
    """The registry at `path`; a corrupt one is moved aside first and a new one made."""
    from .errors import RegistryError
    from .registry import Registry

    try:
        return Registry(path), None
    except RegistryError:
        moved = move_aside(path)
        return Registry(path), str(moved) if moved else None


def recover(client: "Client", moved_aside: str | None = None) -> RecoverResult:
    """Rebuild lost rows from manifests, then confirm every unconfirmed job with its vendor."""
    from .errors import UnituneError
    from .job import JobStatus
    from .registry import RAW_CANCELLED_LOCALLY

    reg = client.registry
    result = RecoverResult(moved_aside=moved_aside)
    for row in lost_rows(reg):
        reg.insert_recovered(row)
        result.rebuilt.append(row["id"])
    for rec in reg.list_jobs():
        if rec.submitted or rec.is_terminal:
            continue
        try:
            again = client.reconcile(rec)
        except UnituneError as exc:
            result.unreachable[rec.id] = exc.message
            continue
        if again.submitted:
            result.reattached[rec.id] = again.remote_id or ""
        elif rec.id in result.rebuilt:
            reg.mark_failed(rec.id, "recovered: the vendor never got this job",
                            status=JobStatus.CANCELLED, raw=RAW_CANCELLED_LOCALLY)
            result.never_submitted.append(rec.id)
    return result


def is_corrupt(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
