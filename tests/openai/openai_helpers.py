"""Helpers and fixtures for the OpenAI / Azure OpenAI provider tests: a fake server per test (real
`openai` SDK, loopback HTTP), providers pointed at it through the standard environment, the
core's Pipeline around them with a fast retry policy, and spec makers."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from unitune.pipeline import Pipeline
from unitune.provider import Ids
from unitune.retry import RetryPolicy
from unitune.spec import JobSpec
from unitune.testing.openai_server import FakeOpenAIServer

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
FAST = {"poll_interval": 0.01}


def chat_lines(n: int, start: int = 0) -> str:
    return "".join(json.dumps({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"What is {i} + {i}?"},
        {"role": "assistant", "content": f"{2 * i}"}]}, ensure_ascii=False) + "\n"
        for i in range(start, start + n))


def dpo_lines(n: int) -> str:
    return "".join(json.dumps({
        "input": {"messages": [{"role": "user", "content": f"Say hi #{i}"}]},
        "preferred_output": [{"role": "assistant", "content": f"Hi #{i}!"}],
        "non_preferred_output": [{"role": "assistant", "content": "no"}]}) + "\n" for i in range(n))


def make_spec(tmp_path: Path, *, n_train: int = 12, n_valid: int | None = 4, method: str = "sft",
              backend_options: dict | None = None, **extra) -> JobSpec:
    train = tmp_path / "train.jsonl"
    train.write_text(dpo_lines(n_train) if method == "dpo" else chat_lines(n_train), encoding="utf-8")
    data: dict = {"train": str(train)}
    if n_valid:
        val = tmp_path / "valid.jsonl"
        val.write_text(dpo_lines(n_valid) if method == "dpo" else chat_lines(n_valid, 100),
                       encoding="utf-8")
        data["validation"] = str(val)
    raw = {"name": "adder", "models": {"openai": OPENAI_MODEL, "azure": OPENAI_MODEL},
           "data": data, "method": method, "hyperparameters": {"epochs": 3},
           "backend_options": backend_options or {"openai": dict(FAST), "azure": dict(FAST)}}
    raw.update(extra)
    return JobSpec.from_dict(raw, source_dir=str(tmp_path))


def pipe(provider, *, sleeps: list | None = None, max_retries: int = 8,
         base_options: dict | None = None, log: list | None = None) -> Pipeline:
    """The core's Pipeline around `provider`: a fast, jitter-free policy; sleeps recorded."""
    return Pipeline(provider, policy=RetryPolicy(max_retries=max_retries, base=0.01, cap=0.05,
                                                 deadline=60, jitter=False),
                    sleep=(sleeps.append if sleeps is not None else (lambda _s: None)),
                    base_options=base_options, log=(log.append if log is not None else None))


def new_ids(spec: JobSpec, key: str | None = None) -> Ids:
    key = key or f"ut-{uuid.uuid4().hex[:10]}"
    return Ids(job_id=key, key=key, spec_hash=spec.spec_hash())


def submit(provider_or_pipe: Any, spec: JobSpec, *, ids: Ids | None = None, uploads=None,
           work_dir: Path | None = None):
    """prepare_submission + submit, as the Client does; the RemoteRef."""
    p = provider_or_pipe if isinstance(provider_or_pipe, Pipeline) else pipe(provider_or_pipe)
    sub = p.prepare_submission(spec)
    return p.submit(sub, ids or new_ids(spec), uploads=uploads, work_dir=work_dir)


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def azure_server():
    with FakeOpenAIServer(azure=True) as srv:
        yield srv


@pytest.fixture
def openai_env(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0001")
    return server


@pytest.fixture
def azure_env(azure_server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure_server.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key-0001")
    return azure_server


@pytest.fixture
def openai_provider(openai_env):
    from unitune.providers.openai import OpenAIProvider

    return OpenAIProvider(log=lambda _m: None)


@pytest.fixture
def azure_provider(azure_env):
    from unitune.providers.openai import AzureOpenAIProvider

    return AzureOpenAIProvider(log=lambda _m: None)


class DictUploads:
    """A minimal UploadCache (the registry implements the same two methods)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get(self, backend: str, key: str) -> str | None:
        return self.data.get((backend, key))

    def put(self, backend: str, key: str, value: str) -> None:
        self.data[(backend, key)] = value
