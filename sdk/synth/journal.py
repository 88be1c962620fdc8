"""The journal of a synth run: every generator response, written (and fsynced) the moment it
arrives, so a run killed at any point resumes without calling — or paying for — a journaled
call again.

One JSON object per line; the first line is the run's header (its key: a hash of everything that
determines the prompts — task, seeds, model, N, k, format, language — so a changed command is a
new run, not a resume). A line cut short by a crash is ignored (it was not acknowledged). Lines
are appended with O_APPEND by one writer under a lock; the file is the run's state, nothing else.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import UnituneError


class Journal:
    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.lock = threading.Lock()
        self.records: dict[int, dict[str, Any]] = {}  # call index → its latest record

    @staticmethod
    def read(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(header, records) of an existing journal; a torn last line is skipped."""
        if not path.exists():
            return None, []
        header, records = None, []
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn write: the crash came before it was complete
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if header is None:
                    header = obj
                else:
                    records.append(obj)
        return header, records

    def open(self, *, restart: bool = False) -> int:
        """Start or resume; returns how many calls are already journaled. A journal of another
        run (different settings) is refused unless `restart`."""
        header, records = self.read(self.path)
        if header is not None and not restart:
            if header.get("run") != self.header["run"]:
                raise UnituneError(
                    f"{self.path} is the journal of another synth run (other task, seeds, model "
                    "or settings)",
                    hint="use another -o, delete the journal, or pass --restart to start over")
            for rec in records:
                if isinstance(rec.get("call"), int):
                    self.records[rec["call"]] = rec
            return sum(1 for r in self.records.values() if r.get("ok"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.header, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        return 0

    def done(self, index: int) -> bool:
        rec = self.records.get(index)
        return bool(rec and rec.get("ok"))

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.records[record["call"]] = record
