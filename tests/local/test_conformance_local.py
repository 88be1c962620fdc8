"""The local provider passes the shared conformance suite, with real worker processes.

Scenarios: the spec runs "forever" (max_steps 100000) unless arranged otherwise, so `plan` and
`train` see the same spec in the suite's plan-vs-request test; success = a 3-step run; failure =
the base model directory is corrupt, so the worker itself fails and reports why; unknown_status =
the harness stops the worker and writes a status nobody documented. Every worker left running is
stopped (by its process group) when the test ends.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conformance.suite import ProviderConformance
from unitune.job import RemoteRef

from .conftest import make_spec

pytestmark = pytest.mark.slow


class LocalHarness:
    failure_message = "cannot load model config"
    unknown_raw = "defragmenting"
    timeout_s = 180

    def __init__(self, chat_file: Path, home: Path) -> None:
        from unitune.local.backend import LocalProvider

        self.provider = LocalProvider()
        self.jobs = home / "jobs"
        self.home = home
        self.chat_file = chat_file
        self.spec = None
        self.scenario = "slow"
        self.tampered: set[str] = set()
        self.spawn = ("unitune.local.backend:LocalProvider", {}, {"UNITUNE_HOME": str(home)})

    def make_spec(self, tmp_path: Path):
        import shutil

        data = shutil.copy(self.chat_file, tmp_path / "train.jsonl")  # the suite may empty it
        self.spec = make_spec(Path(data), steps=100000, options={"save_steps": 1000})
        self.tmp = tmp_path
        return self.spec

    def arrange(self, scenario: str) -> None:
        self.scenario = scenario
        if scenario == "success":
            self.spec.hyperparameters.max_steps = 3
        elif scenario == "failure":
            bad = self.tmp / "corrupt-model"
            bad.mkdir(exist_ok=True)
            (bad / "config.json").write_text("{ this is not json")
            self.spec.base_model = str(bad)

    def _job_dirs(self) -> list[Path]:
        return [d for d in self.jobs.glob("*") if d.is_dir() and not d.name.startswith(".")] \
            if self.jobs.exists() else []

    def last_request(self) -> dict | None:
        found = sorted((d / "request.json" for d in self._job_dirs()
                        if (d / "request.json").exists()), key=lambda p: p.stat().st_mtime)
        return json.loads(found[-1].read_text()) if found else None

    def uploads(self) -> int:
        return len(self._job_dirs())

    def missing_ref(self) -> RemoteRef:
        return RemoteRef(backend="local", remote_id="ut-missing",
                         extra={"job_dir": str(self.jobs / "ut-missing")})

    def rate_limit_next(self, retry_after: float):
        return False  # no vendor between us and the worker

    def advance(self, ref) -> None:
        if self.scenario != "unknown_status" or ref.remote_id in self.tampered:
            return
        from unitune.local.backend import pid_alive
        from unitune.local.jobfiles import JobFiles, write_json_atomic

        files = JobFiles(ref.extra["job_dir"])
        pid = int(files.pid_file.read_text())
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        write_json_atomic(files.status, {"status": self.unknown_raw})
        files.pid_file.write_text(str(os.getpid()))  # a live process "owns" the job
        self.tampered.add(ref.remote_id)

    def stop_workers(self) -> None:
        from unitune.local.backend import pid_alive

        for d in self._job_dirs():
            try:
                pid = int((d / "pid").read_text())
            except (OSError, ValueError):
                continue
            if pid != os.getpid() and pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def harness(tiny_home, chat_file):
    h = LocalHarness(chat_file, tiny_home)
    yield h
    h.stop_workers()


class TestLocalConformance(ProviderConformance):
    pass
