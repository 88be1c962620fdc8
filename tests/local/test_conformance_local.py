"""The local backend passes the shared conformance suite, with real worker processes.

Scenarios: success = a short run; slow = a very long max_steps run (cancelled by the suite);
failure = the base model directory is corrupt, so the worker itself fails and reports why;
unknown_status = the harness stops the worker and writes a status nobody documented.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conformance.suite import BackendConformance

from .conftest import make_spec

pytestmark = pytest.mark.slow


class LocalHarness:
    failure_message = "cannot load model config"
    unknown_raw = "defragmenting"
    timeout_s = 180

    def __init__(self, chat_file: Path) -> None:
        from unitune.local.backend import LocalBackend

        self.backend = LocalBackend()
        self.chat_file = chat_file
        self.spec = None
        self.scenario = "success"
        self.tampered: set[str] = set()

    def make_spec(self, tmp_path: Path):
        self.spec = make_spec(self.chat_file, steps=3, options={"save_steps": 1000})
        self.tmp = tmp_path
        return self.spec

    def arrange(self, scenario: str) -> None:
        self.scenario = scenario
        if scenario in ("slow", "unknown_status"):
            self.spec.hyperparameters.max_steps = 100000
        elif scenario == "failure":
            bad = self.tmp / "corrupt-model"
            bad.mkdir(exist_ok=True)
            (bad / "config.json").write_text("{ this is not json")
            self.spec.base_model = str(bad)

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


@pytest.fixture
def harness(tiny_home, chat_file):
    return LocalHarness(chat_file)


class TestLocalConformance(BackendConformance):
    pass
