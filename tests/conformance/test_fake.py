"""FakeBackend passes the conformance suite every backend runs, in each of its advance modes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.spec import JobSpec
from unitune.testing.fake import DEFAULT_UNKNOWN, FakeBackend

from .suite import BackendConformance


def _write_data(tmp_path: Path, n: int = 12) -> Path:
    path = tmp_path / "train.jsonl"
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                              {"role": "assistant", "content": f"answer {i}"}]})
                     + "\n")
    return path


class _Harness:
    failure_message = "fake vendor: example 3 has no assistant message"
    unknown_raw = DEFAULT_UNKNOWN
    timeout_s = 20

    def __init__(self, backend: FakeBackend, manual: bool) -> None:
        self.backend = backend
        self.manual = manual

    def make_spec(self, tmp_path: Path) -> JobSpec:
        train = _write_data(tmp_path)
        return JobSpec.from_dict({"name": "conformance", "backend": "fake",
                                  "base_model": "fake-small", "data": {"train": str(train)},
                                  "backend_options": {"fake": {"steps": 6}}})

    def arrange(self, scenario: str) -> None:
        extra = {"failure_message": self.failure_message} if scenario == "failure" else {}
        self.backend.arrange(scenario, **extra)

    def advance(self, ref) -> None:
        if self.manual:
            self.backend.tick(ref)


class TestFakeTicks(BackendConformance):
    """Advanced only by the harness (advance="manual")."""

    @pytest.fixture
    def harness(self):
        return _Harness(FakeBackend(advance="manual", steps_per_tick=2), manual=True)


class TestFakeGet(BackendConformance):
    """The default: every `get` moves the job one tick."""

    @pytest.fixture
    def harness(self):
        return _Harness(FakeBackend(), manual=False)


class TestFakeTime(BackendConformance):
    """Advanced by wall-clock time, as a real vendor is."""

    @pytest.fixture
    def harness(self):
        return _Harness(FakeBackend(advance="time", tick_seconds=0.01, steps_per_tick=3),
                        manual=False)
