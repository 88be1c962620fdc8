"""Suite-wide fixtures: every test gets its own UNITUNE_HOME and a scrubbed environment, so no
test can touch the user's registry or reach a real vendor with real credentials."""
from __future__ import annotations

import os

import pytest

_SCRUB_PREFIXES = ("UNITUNE_", "OPENAI_", "AZURE_OPENAI_", "AWS_", "GOOGLE_", "CLOUDSDK_")
_SCRUB_NAMES = ("STORAGE_EMULATOR_HOST", "HF_TOKEN", "WANDB_API_KEY")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES) or key in _SCRUB_NAMES:
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("unitune-home")
    monkeypatch.setenv("UNITUNE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield home
