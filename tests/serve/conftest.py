"""Serve fixtures: the session's trained tiny job (shared with tests/export)."""
from __future__ import annotations

import pytest

from export.trained import Trained, converter_source, trained_job


def pytest_configure(config):
    config.addinivalue_line("markers", "gguf_fidelity: needs llama-cpp-python; `pytest -m "
                            "gguf_fidelity` builds it into the test cache once (~11-20 min)")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return trained_job(tmp_path_factory)


@pytest.fixture
def in_job_home(trained, monkeypatch) -> Trained:
    monkeypatch.setenv("UNITUNE_HOME", str(trained.home))
    return trained


@pytest.fixture(scope="session")
def job_gguf(trained, tmp_path_factory) -> str:
    """An f16 GGUF of the job (the converter from the test cache; skips without it)."""
    import os

    from unitune.local.gguf import export_gguf

    old = {k: os.environ.get(k) for k in ("UNITUNE_HOME", "UNITUNE_LLAMA_CPP")}
    os.environ["UNITUNE_HOME"] = str(trained.home)
    os.environ["UNITUNE_LLAMA_CPP"] = str(converter_source())
    try:
        return export_gguf(trained.job_dir, tmp_path_factory.mktemp("serve-gguf") / "g")["file"]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
