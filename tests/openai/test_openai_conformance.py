"""Both backends pass the shared conformance suite against the fake server, via the real SDK."""
from __future__ import annotations

import pytest

from tests.conformance.suite import BackendConformance

from openai_helpers import make_spec


class _Harness:
    timeout_s = 20

    def __init__(self, server, backend):
        self.server = server
        self.backend = backend
        self.failure_message = server.failure_message
        self.unknown_raw = server.unknown_raw

    def make_spec(self, tmp_path):
        return make_spec(tmp_path)

    def arrange(self, scenario):
        self.server.arrange(scenario)

    def advance(self, ref):
        pass  # the fake advances a job on every retrieve


class TestOpenAIConformance(BackendConformance):
    @pytest.fixture
    def harness(self, openai_backend, openai_env):
        return _Harness(openai_env, openai_backend)


class TestAzureConformance(BackendConformance):
    @pytest.fixture
    def harness(self, azure_backend, azure_env):
        return _Harness(azure_env, azure_backend)


from unitune.testing.openai_server import fake_openai_server  # noqa: E402,F401 (user fixture)


def test_user_facing_fixture(fake_openai_server):
    import openai

    client = openai.OpenAI(api_key="x", base_url=fake_openai_server.base_url)
    assert client.fine_tuning.jobs.list().data == []
    assert fake_openai_server.requests[-1]["route"] == "/fine_tuning/jobs"
