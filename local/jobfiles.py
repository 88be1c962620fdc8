"""The files a local job is made of, shared by the worker (writer) and the backend (reader).

    JOB_DIR/request.json     what the worker reads: the spec as it trains (prepared data files,
                             resolved base model), the typed options, job id, key and dir
    JOB_DIR/spec.json        the spec as trained (request["spec"]; read by merge/export/generate)
    JOB_DIR/job.json         job id, idempotency key, base model, every launch's argv
    JOB_DIR/status.json      replaced atomically (write temp + rename) on every change
    JOB_DIR/metrics.jsonl    one row per logged step: the unified Metrics fields + extras
    JOB_DIR/events.jsonl     log lines (level, message, data)
    JOB_DIR/worker.log       the worker's stdout/stderr
    JOB_DIR/checkpoints/     trainer checkpoints (checkpoint-N)
    JOB_DIR/adapter/         the final adapter (or full model) + tokenizer
    JOB_DIR/cancel           present once a cancel was requested
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: Path) -> dict | None:
    for _ in range(3):  # a reader may race a writer only on non-atomic files; retry briefly
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            time.sleep(0.02)
    return None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line being written right now
            continue
    return rows


class JobFiles:
    def __init__(self, job_dir: str | os.PathLike) -> None:
        self.dir = Path(job_dir)

    request = property(lambda self: self.dir / "request.json")
    spec = property(lambda self: self.dir / "spec.json")
    job = property(lambda self: self.dir / "job.json")
    status = property(lambda self: self.dir / "status.json")
    metrics = property(lambda self: self.dir / "metrics.jsonl")
    events = property(lambda self: self.dir / "events.jsonl")
    log = property(lambda self: self.dir / "worker.log")
    checkpoints = property(lambda self: self.dir / "checkpoints")
    adapter = property(lambda self: self.dir / "adapter")
    cancel_flag = property(lambda self: self.dir / "cancel")
    pid_file = property(lambda self: self.dir / "pid")
    ranks = property(lambda self: self.dir / "ranks")

    def read_status(self) -> dict:
        return read_json(self.status) or {}

    def update_status(self, **fields: Any) -> dict:
        cur = self.read_status()
        cur.update(fields)
        cur["updated_at"] = now_iso()
        write_json_atomic(self.status, cur)
        return cur

    def append(self, path: Path, row: dict) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
            fh.flush()

    def event(self, message: str, level: str = "info", **data: Any) -> None:
        row = {"time": now_iso(), "level": level, "message": message}
        if data:
            row["data"] = data
        self.append(self.events, row)

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints.is_dir():
            return None
        best = None
        for child in self.checkpoints.iterdir():
            if child.name.startswith("checkpoint-") and (child / "trainer_state.json").exists():
                try:
                    n = int(child.name.split("-", 1)[1])
                except ValueError:
                    continue
                if best is None or n > best[0]:
                    best = (n, child)
        return best[1] if best else None
