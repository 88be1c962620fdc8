"""Fixtures for the job lifecycle tests: data files, specs, a client with tiny poll intervals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from unitune.client import Client, PollPolicy
from unitune.retry import RetryPolicy
from unitune.registry import Registry
from unitune.testing.fake import FakeProvider


def write_data(path: Path, n: int = 20, offset: int = 0) -> Path:
    with open(path, "w") as fh:
        for i in range(offset, offset + n):
            fh.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                              {"role": "assistant", "content": f"answer {i}"}]})
                     + "\n")
    return path


def write_spec(tmp_path: Path, name: str = "demo", fake: dict | None = None, **extra) -> Path:
    """A spec file for the fake backend with its data file beside it (relative path)."""
    data = tmp_path / "train.jsonl"
    if not data.exists():
        write_data(data)
    spec = {"name": name, "backend": "fake", "base_model": "fake-base",
            "models": {"openai": "gpt-4.1-mini-2025-04-14"},
            "data": {"train": "train.jsonl"},
            "backend_options": {"fake": {"steps": 5, **(fake or {})}}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(autouse=True)
def _fresh_fake(monkeypatch):
    monkeypatch.setenv("UNITUNE_POLL_INITIAL", "0.001")
    monkeypatch.setenv("UNITUNE_POLL_MAX", "0.005")
    monkeypatch.setenv("UNITUNE_RETRY_BASE", "0.001")
    FakeProvider.reset()
    yield
    FakeProvider.reset()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(fake, sleeps) -> Client:
    return Client(backends={"fake": fake},
                  poll=PollPolicy(initial=0.01, maximum=0.04, factor=2.0),
                  retry=RetryPolicy(max_retries=4, base=0.5, jitter=False), sleep=sleeps)


@pytest.fixture
def registry(client) -> Registry:
    return client.registry
