"""Both providers pass the shared conformance suite against the fake server, via the real SDK."""
from __future__ import annotations

import pytest

from tests.conformance.suite import ProviderConformance
from unitune.pipeline import Pipeline

from openai_helpers import make_spec


class _Harness:
    timeout_s = 20

    def __init__(self, server, provider, target: str, env: dict[str, str]) -> None:
        self.server = server
        self.provider = provider
        self.failure_message = server.failure_message
        self.unknown_raw = server.unknown_raw
        self.spawn = (target, {}, env)

    def make_spec(self, tmp_path):
        return make_spec(tmp_path)

    def arrange(self, scenario):
        self.server.arrange(scenario)

    def advance(self, ref):
        pass  # the fake advances a job on every retrieve

    def last_request(self):
        return self.server.last_request("POST", "/fine_tuning/jobs")

    def uploads(self) -> int:
        return sum(1 for r in self.server.requests if (r["method"], r["route"]) == ("POST", "/files"))

    def missing_ref(self):
        from unitune.providers.openai import remote_ref

        pipe = Pipeline(self.provider)
        return remote_ref(self.provider.locate(None, pipe.options()), "ftjob-does-not-exist")

    def rate_limit_next(self, retry_after: float):
        self.server.inject("429", count=1, method=None, path=None, retry_after=retry_after)


class TestOpenAIConformance(ProviderConformance):
    @pytest.fixture
    def harness(self, openai_provider, openai_env):
        return _Harness(openai_env, openai_provider, "unitune.providers.openai:OpenAIProvider",
                        {"OPENAI_BASE_URL": openai_env.base_url,
                         "OPENAI_API_KEY": "sk-test-not-a-real-key-0001"})


class TestAzureConformance(ProviderConformance):
    @pytest.fixture
    def harness(self, azure_provider, azure_env):
        return _Harness(azure_env, azure_provider, "unitune.providers.openai:AzureOpenAIProvider",
                        {"AZURE_OPENAI_ENDPOINT": azure_env.endpoint,
                         "AZURE_OPENAI_API_KEY": "azure-test-key-0001"})


from unitune.testing.openai_server import fake_openai_server  # noqa: E402,F401 (user fixture)


def test_user_facing_fixture(fake_openai_server):
    import openai

    client = openai.OpenAI(api_key="x", base_url=fake_openai_server.base_url)
    assert client.fine_tuning.jobs.list().data == []
    assert fake_openai_server.requests[-1]["route"] == "/fine_tuning/jobs"
