"""The inference routes of the bundled fakes answer bad requests the way the services do, and
their responses fit the SDKs' own shapes (botocore's service model, google-genai's types)."""
from __future__ import annotations

import httpx
import pytest

from unitune.testing.bedrock_runtime_server import BedrockRuntimeFake, ShapeError, check, service_model
from unitune.testing.openai_server import FakeOpenAIServer
from unitune.testing.vertex_server import VertexFakeServer

SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/bedrock/"
                           "aws4_request, SignedHeaders=host, Signature=00"}


def test_openai_chat_refuses_unknown_fields_stream_and_bad_roles():
    with FakeOpenAIServer() as srv:
        url = f"{srv.base_url}/chat/completions"
        ok = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(url, json=ok).status_code == 200
        r = httpx.post(url, json={**ok, "temprature": 0})
        assert r.status_code == 400 and "Unrecognized request argument supplied: temprature" in \
            r.json()["error"]["message"]
        assert httpx.post(url, json={**ok, "stream": True}).status_code == 400
        assert httpx.post(url, json={**ok, "messages": [{"role": "robot", "content": "x"}]}
                          ).status_code == 400
        assert httpx.post(url, json={**ok, "messages": []}).status_code == 400
        assert httpx.post(url, json={"messages": ok["messages"]}).status_code == 400
        assert httpx.post(url, json={**ok, "temperature": 3}).status_code == 400
        assert httpx.get(url).status_code == 405


def test_openai_chat_is_scriptable_over_http_and_in_process():
    with FakeOpenAIServer() as srv:
        url = f"{srv.base_url}/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 2}
        r = httpx.post(f"{srv.endpoint}/_fake/chat/script",
                       json={"responses": ["one", {"content": "two", "refusal": None}]})
        assert r.json()["queued"] == 2
        choices = httpx.post(url, json=body).json()["choices"]
        assert [c["message"]["content"] for c in choices] == ["one", "two"]
        srv.chat.script("only for mini", model="gpt-4o-mini")
        srv.chat.script("shared")
        other = {**body, "model": "gpt-4o", "n": 1}
        assert httpx.post(url, json=other).json()["choices"][0]["message"]["content"] == "shared"
        srv.chat.responder = lambda model, msgs, b: f"{model} says hi"
        got = httpx.post(url, json={**body, "n": 1}).json()["choices"][0]["message"]["content"]
        assert got == "only for mini"
        got = httpx.post(url, json={**body, "n": 1}).json()["choices"][0]["message"]["content"]
        assert got == "gpt-4o-mini says hi"
        seen = httpx.get(f"{srv.endpoint}/_fake/chat/requests").json()["requests"]
        assert len(seen) == 4 and seen[0]["n"] == 2
        httpx.post(f"{srv.endpoint}/_fake/chat/reset")
        assert srv.chat.requests == [] and srv.chat.responder is None


def test_azure_chat_needs_api_version_and_an_existing_deployment():
    with FakeOpenAIServer(azure=True) as srv:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        url = f"{srv.endpoint}/openai/deployments/dep/chat/completions"
        assert httpx.post(url, json=body).status_code == 404  # no api-version
        r = httpx.post(url, params={"api-version": "2025-04-01-preview"}, json=body)
        assert r.status_code == 404 and r.json()["error"]["code"] == "DeploymentNotFound"
        srv.chat.deployments.add("dep")
        r = httpx.post(url, params={"api-version": "2025-04-01-preview"}, json=body)
        assert r.status_code == 200 and r.json()["model"] == "dep"


def test_bedrock_fake_checks_requests_against_botocore():
    op = service_model().operation_model("Converse")
    good = {"modelId": "amazon.nova-micro-v1:0",
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 10, "temperature": 0.0}}
    check(op.input_shape, good)
    for bad in ({**good, "inferenceConfig": {"maxTokens": 0}},
                {**good, "inferenceConfig": {"temperature": 1.5}},
                {**good, "messages": [{"role": "robot", "content": [{"text": "x"}]}]},
                {**good, "messages": [{"role": "user", "content": [{"text": "x", "image": {}}]}]},
                {**good, "topK": 3},
                {**good, "messages": [{"role": "user"}]}):
        with pytest.raises(ShapeError):
            check(op.input_shape, bad)
    with BedrockRuntimeFake() as srv:
        url = f"{srv.url}/model/amazon.nova-micro-v1%3A0/converse"
        body = {k: v for k, v in good.items() if k != "modelId"}
        assert httpx.post(url, json=body).status_code == 403  # unsigned
        r = httpx.post(url, json=body, headers=SIGNED)
        assert r.status_code == 200
        check(op.output_shape, r.json())
        r = httpx.post(url, json={**body, "inferenceConfig": {"maxTokens": 0}}, headers=SIGNED)
        assert r.status_code == 400 and r.headers["x-amzn-ErrorType"].startswith(
            "ValidationException") and "maxTokens" in r.json()["message"]
        r = httpx.post(f"{srv.url}/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A"
                       "provisioned-model%2Fabcdefabcdef/converse", json=body, headers=SIGNED)
        assert r.status_code == 400 and "model identifier is invalid" in r.json()["message"]


def test_bedrock_fake_answers_parse_through_boto3(monkeypatch):
    import boto3
    from botocore.config import Config

    with BedrockRuntimeFake() as srv:
        client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=srv.url,
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=Config(retries={"total_max_attempts": 1}))
        srv.script({"content": "cut", "stop_reason": "max_tokens"})
        resp = client.converse(modelId="us.amazon.nova-micro-v1:0",
                               messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert resp["stopReason"] == "max_tokens"
        assert resp["output"]["message"]["content"] == [{"text": "cut"}]
        assert set(resp["usage"]) == {"inputTokens", "outputTokens", "totalTokens"}
        with pytest.raises(client.exceptions.ThrottlingException):
            srv.script({"status": 429})
            client.converse(modelId="amazon.nova-micro-v1:0",
                            messages=[{"role": "user", "content": [{"text": "hi"}]}])
        with pytest.raises(client.exceptions.ValidationException):
            client.converse(modelId="amazon.nova-micro-v1:0",
                            messages=[{"role": "assistant", "content": [{"text": "hi"}]}])


def test_vertex_generate_refuses_unknown_names_and_unknown_endpoints():
    with VertexFakeServer() as srv:
        base = f"{srv.url}/v1/projects/p/locations/us-central1"
        auth = {"Authorization": "Bearer t"}
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"maxOutputTokens": 8}}
        url = f"{base}/publishers/google/models/gemini-2.5-flash:generateContent"
        assert httpx.post(url, json=body).status_code == 401
        r = httpx.post(url, json=body, headers=auth)
        assert r.status_code == 200 and r.json()["candidates"][0]["finishReason"] == "STOP"
        r = httpx.post(url, json={**body, "generationConfig": {"maxOutputToken": 8}},
                       headers=auth)
        assert r.status_code == 400 and "maxOutputToken" in r.json()["error"]["message"]
        r = httpx.post(url, json={**body, "contents": []}, headers=auth)
        assert r.status_code == 400
        r = httpx.post(url, json={"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
                       headers=auth)
        assert r.status_code == 400
        r = httpx.post(f"{base}/endpoints/77:generateContent", json=body, headers=auth)
        assert r.status_code == 404
        srv.generate.endpoints.add("projects/p/locations/us-central1/endpoints/77")
        assert httpx.post(f"{base}/endpoints/77:generateContent", json=body,
                          headers=auth).status_code == 200
        srv.rate_limit_next(0.0)
        assert httpx.post(url, json=body, headers=auth).status_code == 429
