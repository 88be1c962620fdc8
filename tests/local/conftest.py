"""Fixtures for the local backend tests: one tiny model per session, linked into each test's
UNITUNE_HOME, and small variable-length chat / preference data files."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from unitune.local.tiny import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-chat")


@pytest.fixture
def tiny_home(tiny_model_dir, _isolated_env) -> Path:
    """UNITUNE_HOME with the session's tiny model in place (no rebuild per test)."""
    models = Path(os.environ["UNITUNE_HOME"]) / "models"
    models.mkdir(parents=True, exist_ok=True)
    link = models / "tiny-chat"
    if not link.exists():
        link.symlink_to(tiny_model_dir, target_is_directory=True)
    return Path(os.environ["UNITUNE_HOME"])


@pytest.fixture(scope="session")
def chat_file(tmp_path_factory) -> Path:
    from unitune.local.synthetic import chat_rows, write_jsonl

    return write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", chat_rows(48, seed=3))


@pytest.fixture(scope="session")
def fixed_batch_file(tmp_path_factory) -> Path:
    """4 examples = one batch of 4: every step sees the same batch, so its loss must fall."""
    from unitune.local.synthetic import chat_rows, write_jsonl

    return write_jsonl(tmp_path_factory.mktemp("data") / "four.jsonl", chat_rows(4, seed=5))


@pytest.fixture(scope="session")
def dpo_file(tmp_path_factory) -> Path:
    from unitune.local.synthetic import preference_rows, write_jsonl

    return write_jsonl(tmp_path_factory.mktemp("data") / "dpo.jsonl", preference_rows(32, seed=4))


def make_spec(data: Path, *, adapter: str = "lora", method: str = "sft", steps: int = 6,
              lr: float = 1e-2, batch: int = 4, options: dict | None = None, **adapter_kw):
    from unitune.spec import JobSpec

    return JobSpec.from_dict({
        "name": f"test-{adapter}", "backend": "local", "base_model": "unitune/tiny-chat",
        "method": method, "data": {"train": str(data)},
        "adapter": {"type": adapter, **adapter_kw},
        "hyperparameters": {"max_steps": steps, "batch_size": batch, "learning_rate": lr, "seed": 7},
        "backend_options": {"local": options or {}}})


def submit_local(spec):
    """Submit `spec` as `unitune train` does (prepare, then submit with fresh ids): the provider
    and the job's RemoteRef."""
    import uuid

    from unitune.local.backend import LocalProvider
    from unitune.pipeline import Pipeline
    from unitune.provider import Ids

    pipe = Pipeline(LocalProvider())
    sub = pipe.prepare_submission(spec)
    job_id = f"ut-test-{uuid.uuid4().hex[:8]}"
    ref = pipe.submit(sub, Ids(job_id=job_id, key=f"key-{job_id}", spec_hash=spec.spec_hash()))
    return pipe.provider, ref


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
