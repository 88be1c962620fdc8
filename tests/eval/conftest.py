"""Fixtures for the evaluation tests: the tiny model built once per session and linked into each
test's UNITUNE_HOME."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from unitune.local.tiny import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-chat")


@pytest.fixture
def tiny_home(tiny_model_dir, _isolated_env) -> Path:
    models = Path(os.environ["UNITUNE_HOME"]) / "models"
    models.mkdir(parents=True, exist_ok=True)
    link = models / "tiny-chat"
    if not link.exists():
        link.symlink_to(tiny_model_dir, target_is_directory=True)
    return Path(os.environ["UNITUNE_HOME"])
