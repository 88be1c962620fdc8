"""One tiny local run that reports live to MLflow + TensorBoard, and one fake cloud job mirrored
as it is polled, both in one session UNITUNE_HOME shared by the tracking tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


@dataclass
class Tracked:
    home: Path
    local_id: str
    fake_id: str
    fake_polls: int  # on_update calls the live mirror saw while the fake job ran


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UNITUNE_", "MLFLOW_", "WANDB_", "OPENAI_", "AWS_", "GOOGLE_"))}
    env.update(UNITUNE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    return env


def tools() -> list[str]:
    """The trackers this machine has: MLflow and TensorBoard, W&B when installed."""
    import importlib.util

    return ["mlflow", "tensorboard"] + (["wandb"] if importlib.util.find_spec("wandb") else [])


@pytest.fixture(scope="session")
def tracked(tmp_path_factory) -> Tracked:
    from unitune.local.synthetic import chat_rows, write_jsonl
    from unitune.local.tiny import ensure_tiny_model

    home = tmp_path_factory.mktemp("tracked-home")
    ensure_tiny_model(home / "models" / "tiny-chat")
    work = tmp_path_factory.mktemp("tracked-specs")
    write_jsonl(work / "chat.jsonl", chat_rows(40, seed=3, max_sentences=2))
    (work / "local.yaml").write_text(yaml.safe_dump({
        "name": "quick", "backend": "local", "base_model": "unitune/tiny-chat",
        "data": {"train": "chat.jsonl", "validation": 0.2},
        "adapter": {"type": "lora", "r": 4},
        "hyperparameters": {"max_steps": 4, "batch_size": 4, "learning_rate": 0.01, "seed": 7},
        "backend_options": {"local": {"tracking": tools(), "eval_steps": 2,
                                      "save_steps": 4, "precision": "fp32"}}}))
    proc = subprocess.run([sys.executable, "-m", "unitune", "train", str(work / "local.yaml"),
                           "--json"], capture_output=True, text=True, env=_env(home),
                          timeout=900, cwd=work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    local_id = json.loads(proc.stdout)["id"]

    # the cloud fake, mirrored live through the same on_update hook `unitune train` uses
    (work / "fake.yaml").write_text(yaml.safe_dump({
        "name": "cloudy", "backend": "fake", "base_model": "fake-base",
        "data": {"train": "chat.jsonl"}, "backend_options": {"fake": {"steps": 6}}}))
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("UNITUNE_", "MLFLOW_", "WANDB_")):
                mp.delenv(key)
        mp.setenv("UNITUNE_HOME", str(home))
        mp.setenv("UNITUNE_POLL_INITIAL", "0.001")
        mp.setenv("UNITUNE_POLL_MAX", "0.005")
        from unitune.client import Client
        from unitune.testing.fake import FakeProvider
        from unitune.tracking import LiveMirror

        client = Client(backends={"fake": FakeProvider()})
        live = LiveMirror(client, to=tools())
        polls = []

        def on_update(job):
            polls.append(job.progress.step if job.progress else None)
            live(job)

        job = client.train(work / "fake.yaml", on_update=on_update)
        assert str(job.status) == "succeeded"
        client.registry.close()
    return Tracked(home=home, local_id=local_id, fake_id=job.id, fake_polls=len(polls))


@pytest.fixture(autouse=True)
def _no_tracker_env(monkeypatch):
    """The user's own MLFLOW_* / WANDB_* settings must not leak into these tests."""
    for key in list(os.environ):
        if key.startswith(("MLFLOW_", "WANDB_")):
            monkeypatch.delenv(key)


@pytest.fixture
def in_tracked_home(tracked, monkeypatch) -> Tracked:
    monkeypatch.setenv("UNITUNE_HOME", str(tracked.home))
    return tracked
