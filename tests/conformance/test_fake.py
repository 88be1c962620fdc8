"""FakeProvider passes the conformance suite every backend runs, in each of its advance modes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.spec import JobSpec
from unitune.testing.fake import DEFAULT_UNKNOWN, FakeProvider

from unitune.job import RemoteRef

from .suite import ProviderConformance


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

    def __init__(self, provider: FakeProvider, manual: bool, state: Path) -> None:
        self.provider = provider
        self.manual = manual
        # the shared-state file lets a fresh process see the same fake vendor
        self.spawn = ("unitune.testing.fake:FakeProvider", {}, {"UNITUNE_FAKE_STATE": str(state)})

    def make_spec(self, tmp_path: Path) -> JobSpec:
        train = _write_data(tmp_path)
        return JobSpec.from_dict({"name": "conformance", "backend": "fake",
                                  "base_model": "fake-small", "data": {"train": str(train)},
                                  "backend_options": {"fake": {"steps": 6}}})

    def arrange(self, scenario: str) -> None:
        extra = {"failure_message": self.failure_message} if scenario == "failure" else {}
        self.provider.arrange(scenario, **extra)

    def advance(self, ref) -> None:
        if self.manual:
            self.provider.tick(ref)

    def last_request(self):
        return FakeProvider.last_request()

    def uploads(self) -> int:
        return len(FakeProvider.files())

    def missing_ref(self) -> RemoteRef:
        return RemoteRef(backend="fake", remote_id="fakejob-does-not-exist")

    def rate_limit_next(self, retry_after: float) -> None:
        self.provider.fail_next(1, kind="429", retry_after=retry_after)


@pytest.fixture
def state(tmp_path, monkeypatch):
    path = tmp_path / "fake-vendor.json"
    monkeypatch.setenv("UNITUNE_FAKE_STATE", str(path))
    monkeypatch.setenv("UNITUNE_HOME", str(tmp_path / "home"))
    return path


class TestFakeTicks(ProviderConformance):
    """Advanced only by the harness (advance="manual")."""

    @pytest.fixture
    def harness(self, state):
        return _Harness(FakeProvider(advance="manual", steps_per_tick=2), True, state)


class TestFakeGet(ProviderConformance):
    """The default: every `get` moves the job one tick."""

    @pytest.fixture
    def harness(self, state):
        return _Harness(FakeProvider(), False, state)


class TestFakeTime(ProviderConformance):
    """Advanced by wall-clock time, as a real vendor is."""

    @pytest.fixture
    def harness(self, state):
        return _Harness(FakeProvider(advance="time", tick_seconds=0.01, steps_per_tick=3),
                        False, state)
