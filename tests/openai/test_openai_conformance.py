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
