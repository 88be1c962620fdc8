"""One harness per backend for the inference conformance suite: each starts the backend's fake
(OpenAI chat route, Azure deployment route, the Bedrock runtime fake, Vertex generateContent),
sets the environment a user would set, and knows how to script and inspect that fake. Every call
goes through the vendor's real SDK."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unitune.job import ModelHandle, RemoteRef
from unitune.provider import Location

PROJECT, REGION = "unitune-test", "us-central1"
ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456"


def record(backend: str, base_model: str, handle: ModelHandle | None,
           location: Location | None, extra: dict | None = None):
    """A registry row as a finished job leaves it (claimed, submitted, model recorded)."""
    from unitune.registry import Registry

    reg = Registry()
    rec, _ = reg.claim(backend=backend, spec={"name": "t", "base_model": base_model,
                                              "data": {"train": "/nonexistent.jsonl"}},
                       spec_hash=f"h-{backend}", data_hash=None, name="t",
                       base_model=base_model, location=location, new=True)
    reg.mark_submitted(rec.id, RemoteRef(backend=backend, remote_id=f"r-{rec.id}",
                                         extra=extra or {}))
    if handle is not None:
        reg.set_model(rec.id, handle)
    return reg.get_job(rec.id)


class Harness:
    name: str
    base_model: str
    supports_seed = True

    def script(self, *responses: Any) -> None: ...

    def requests(self) -> list[dict]: ...

    def tuned_record(self): ...

    def unknown_model(self) -> str: ...


class OpenAIHarness(Harness):
    name, base_model = "openai", "gpt-4.1-mini-2025-04-14"

    def __init__(self, srv, monkeypatch) -> None:
        self.srv = srv
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-inference")

    def script(self, *responses):
        self.srv.chat.script(*responses)

    def requests(self):
        return [{"body": b, "model": b.get("model")} for b in self.srv.chat.requests]

    def sent(self, req) -> dict:
        b = req["body"]
        return {"max_tokens": b.get("max_tokens"), "temperature": b.get("temperature"),
                "seed": b.get("seed"), "system": [m["content"] for m in b["messages"]
                                                  if m["role"] == "system"],
                "user": [m["content"] for m in b["messages"] if m["role"] == "user"]}

    def tuned_record(self):
        from openai import OpenAI

        client = OpenAI(base_url=self.srv.base_url, api_key="sk-test-inference")
        rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                {"role": "assistant", "content": f"a{i}"}]})
                       + "\n" for i in range(12))
        f = client.files.create(file=("t.jsonl", rows.encode()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=self.base_model, training_file=f.id)
        self.srv.advance(job.id, ticks=20)
        ft = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
        assert ft
        loc = Location(backend="openai", endpoint=self.srv.base_url)
        return record("openai", self.base_model, ModelHandle(backend="openai", model_id=ft,
                                                              base_model=self.base_model), loc), ft

    def unknown_model(self):
        return "openai:ft:gpt-4.1-mini-2025-04-14:org::nope"


class AzureHarness(OpenAIHarness):
    name, base_model = "azure", "gpt-4.1-mini-2025-04-14"

    def __init__(self, srv, monkeypatch) -> None:
        self.srv = srv
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", srv.endpoint)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key")
        srv.chat.deployments.add(self.base_model)

    def tuned_record(self):
        self.srv.chat.deployments.add("support-ft")
        loc = Location(backend="azure", endpoint=self.srv.endpoint,
                       extra={"api_version": "2025-04-01-preview"})
        handle = ModelHandle(backend="azure", model_id=f"{self.base_model}.ft-abc",
                             base_model=self.base_model, name="support-ft",
                             artifacts={"deployment": "support-ft"})
        return record("azure", self.base_model, handle, loc), "support-ft"

    def unknown_model(self):
        return "azure:no-such-deployment"


class BedrockHarness(Harness):
    name, base_model = "bedrock", "amazon.nova-micro-v1:0:128k"
    supports_seed = False

    def __init__(self, srv, monkeypatch) -> None:
        self.srv = srv
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", srv.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", "us-east-1")

    def script(self, *responses):
        self.srv.script(*responses)

    def requests(self):
        return [{"body": r["body"], "model": r["model_id"]} for r in self.srv.requests]

    def sent(self, req) -> dict:
        b = req["body"]
        cfg = b.get("inferenceConfig") or {}
        return {"max_tokens": cfg.get("maxTokens"), "temperature": cfg.get("temperature"),
                "seed": None, "system": [s["text"] for s in b.get("system") or []],
                "user": [c["text"] for m in b["messages"] if m["role"] == "user"
                         for c in m["content"]]}

    def tuned_record(self):
        self.srv.add_model(ARN)
        handle = ModelHandle(backend="bedrock", model_id="arn:aws:bedrock:us-east-1:"
                             "123456789012:custom-model/amazon.nova-micro-v1:0:128k/abcdefabcdef",
                             base_model=self.base_model, endpoint=ARN,
                             artifacts={"deployment": ARN, "deployment_mode": "on-demand"})
        return record("bedrock", self.base_model, handle,
                      Location(backend="bedrock", region="us-east-1")), ARN

    def unknown_model(self):
        return "bedrock:arn:aws:bedrock:us-east-1:123456789012:provisioned-model/zzzzzzzzzzzz"


class VertexHarness(Harness):
    name, base_model = "vertex", "gemini-2.5-flash"

    def __init__(self, srv, monkeypatch, tmp_path: Path) -> None:
        self.srv = srv
        adc = tmp_path / "adc.json"
        adc.write_text(json.dumps({
            "type": "authorized_user", "client_id": "unitune-test.apps.googleusercontent.com",
            "client_secret": "not-a-secret", "refresh_token": "not-a-refresh-token",
            "token": "fake-access-token", "expiry": "2099-01-01T00:00:00Z",
            "quota_project_id": PROJECT}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
        monkeypatch.setenv("UNITUNE_VERTEX_ENDPOINT", srv.url)
        monkeypatch.setenv("UNITUNE_VERTEX_PROJECT", PROJECT)
        monkeypatch.setenv("UNITUNE_VERTEX_LOCATION", REGION)

    def script(self, *responses):
        self.srv.generate.script(*responses)

    def requests(self):
        return [{"body": r["body"], "model": r["model"]} for r in self.srv.generate.requests]

    def sent(self, req) -> dict:
        b = req["body"]
        cfg = b.get("generationConfig") or {}
        return {"max_tokens": cfg.get("maxOutputTokens"), "temperature": cfg.get("temperature"),
                "seed": cfg.get("seed"),
                "system": [p["text"] for p in (b.get("systemInstruction") or {}).get("parts", [])],
                "user": [p["text"] for c in b["contents"] if c.get("role") == "user"
                         for p in c["parts"]]}

    def tuned_record(self):
        endpoint = f"projects/{PROJECT}/locations/{REGION}/endpoints/4242"
        self.srv.generate.endpoints.add(endpoint)
        loc = Location(backend="vertex", project=PROJECT, region=REGION, endpoint=self.srv.url,
                       extra={"api_version": "v1", "client": "genai"})
        handle = ModelHandle(backend="vertex", model_id=f"projects/{PROJECT}/locations/{REGION}/"
                             "models/4242@1", base_model=self.base_model, endpoint=endpoint)
        return record("vertex", self.base_model, handle, loc), endpoint

    def unknown_model(self):
        return f"vertex:projects/{PROJECT}/locations/{REGION}/endpoints/404"


@pytest.fixture(params=["openai", "azure", "bedrock", "vertex"])
def harness(request, monkeypatch, tmp_path):
    kind = request.param
    if kind in ("openai", "azure"):
        from unitune.testing.openai_server import FakeOpenAIServer

        with FakeOpenAIServer(azure=kind == "azure") as srv:
            yield (OpenAIHarness if kind == "openai" else AzureHarness)(srv, monkeypatch)
    elif kind == "bedrock":
        from unitune.testing.bedrock_runtime_server import BedrockRuntimeFake

        with BedrockRuntimeFake() as srv:
            yield BedrockHarness(srv, monkeypatch)
    else:
        from unitune.testing.vertex_server import VertexFakeServer

        with VertexFakeServer() as srv:
            yield VertexHarness(srv, monkeypatch, tmp_path)
