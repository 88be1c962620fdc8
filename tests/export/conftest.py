"""Export fixtures: the session's trained tiny job, and llama.cpp's converter."""
from __future__ import annotations

import pytest

from .trained import Trained, converter_source, trained_job


def pytest_configure(config):
    config.addinivalue_line("markers", "gguf_fidelity: needs llama-cpp-python; `pytest -m "
                            "gguf_fidelity` builds it into the test cache once (~11-20 min)")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    return trained_job(tmp_path_factory)


@pytest.fixture(scope="session")
def converter() -> str:
    return str(converter_source())


@pytest.fixture
def in_job_home(trained, converter, monkeypatch) -> Trained:
    """UNITUNE_HOME = the trained job's home; UNITUNE_LLAMA_CPP = the converter sdist."""
    monkeypatch.setenv("UNITUNE_HOME", str(trained.home))
    monkeypatch.setenv("UNITUNE_LLAMA_CPP", converter)
    return trained
