"""`unitune generate` on any backend and for any OpenAI-compatible server, a job's served
endpoint, `BACKEND:MODEL` parsing, the cost pre-flight and the import budget."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.errors import SpecError, UnituneError
from unitune.inference import GenParams
from unitune.inference.cost import confirm, estimate
from unitune.inference.registry import caller_for, caller_for_job, parse_model, served_endpoint
from unitune.job import ModelHandle
from unitune.provider import Location
from unitune.testing.openai_server import FakeOpenAIServer

from .conftest import record


def test_parse_model_keeps_colons_in_the_model_and_names_the_fix():
    assert parse_model("bedrock:amazon.nova-micro-v1:0:128k") == ("bedrock",
                                                                  "amazon.nova-micro-v1:0:128k")
    assert parse_model("OpenAI:gpt-4o") == ("openai", "gpt-4o")
    for bad in ("gpt-4o", "nope:model", "openai:"):
        with pytest.raises(SpecError) as err:
            parse_model(bad)
        assert "BACKEND:MODEL" in err.value.message and "openai:" in err.value.hint


def test_generate_model_and_base_url_json_shape(monkeypatch):
    runner = CliRunner()
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli")
        out = runner.invoke(app, ["generate", "--model", "openai:gpt-4o-mini", "hello",
                                  "--system", "be brief", "--max-tokens", "20", "--json"])
        assert out.exit_code == 0, out.output
        got = json.loads(out.stdout)
        assert set(got) == {"model", "text", "finish_reason", "usage", "latency_s"}
        assert got["text"] == "echo: hello" and got["model"] == "gpt-4o-mini"
        body = srv.chat.requests[-1]
        assert body["max_tokens"] == 20 and body["messages"][0] == {"role": "system",
                                                                    "content": "be brief"}
        monkeypatch.delenv("OPENAI_BASE_URL")
        monkeypatch.delenv("OPENAI_API_KEY")  # local servers need no key
        out = runner.invoke(app, ["generate", "--base-url", srv.endpoint, "--model",
                                  "qwen2.5:7b", "hi there", "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["model"] == "qwen2.5:7b"
        assert srv.chat.requests[-1]["model"] == "qwen2.5:7b"  # /v1 was added to the URL
        out = runner.invoke(app, ["generate", "--model", "openai:x", "a", "b"])
        assert out.exit_code == 2 and "only the prompt" in out.output
        out = runner.invoke(app, ["generate", "--model", "gpt-4o", "a"])
        assert out.exit_code == 2 and "BACKEND:MODEL" in out.output


def test_generate_job_on_a_cloud_backend_and_compare(monkeypatch):
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli")
        srv.chat.responder = lambda model, m, b: "tuned!" if model == "my-ft" else None
        srv.chat.deployments.add("x")
        srv.models = None
        rec = record("openai", "gpt-4o-mini", ModelHandle(backend="openai", model_id="my-ft",
                                                          base_model="gpt-4o-mini"),
                     Location(backend="openai", endpoint=srv.base_url))
        out = CliRunner().invoke(app, ["generate", rec.id, "hi", "--compare", "--json"])
        assert out.exit_code == 0, out.output
        both = json.loads(out.stdout)
        assert both["tuned"]["text"] == "tuned!" and both["base"]["text"] == "echo: hi"
        assert both["base"]["model"] == "gpt-4o-mini"
        out = CliRunner().invoke(app, ["generate", rec.id, "hi", "--base"])
        assert out.exit_code == 0 and "echo: hi" in out.stdout


def test_a_served_endpoint_takes_over_the_tuned_model(monkeypatch):
    with FakeOpenAIServer() as srv:
        handle = ModelHandle(backend="local", model_id="/jobs/x/adapter", name="support-zh",
                             endpoint=srv.base_url)
        assert served_endpoint(handle, "local") == srv.base_url
        assert served_endpoint(handle.model_copy(update={"endpoint": "projects/p/endpoints/1"}),
                               "vertex") is None
        azure = ModelHandle(backend="azure", model_id="m", endpoint="https://r/openai/x")
        assert served_endpoint(azure, "azure") is None
        assert served_endpoint(azure.model_copy(update={"artifacts": {"protocol": "openai"}}),
                               "azure") == "https://r/openai/x"
        rec = record("local", "unitune/tiny-chat", handle, None)
        caller = caller_for_job(rec.id)
        g = caller.generate([{"role": "user", "content": "served?"}], GenParams(max_tokens=16))
        assert g.text == "echo: served?" and srv.chat.requests[-1]["model"] == "support-zh"
        assert "served at" in caller.label and caller.price is None
        # the shape `unitune serve` registers (docs/serve.md), on any backend
        served = ModelHandle(backend="openai", model_id="ft:x", endpoint=srv.base_url,
                             artifacts={"serve_protocol": "openai", "serve_model": "job-7",
                                        "serve_api_key_env": "UNITUNE_SERVE_API_KEY"})
        monkeypatch.setenv("UNITUNE_SERVE_API_KEY", "serve-key")
        rec = record("openai", "gpt-4o-mini", served, None)
        caller = caller_for_job(rec.id)
        caller.generate([{"role": "user", "content": "x"}], GenParams(max_tokens=8))
        assert srv.chat.requests[-1]["model"] == "job-7"
        assert caller.client.api_key == "serve-key"


def test_undeployed_models_are_refused_with_the_deploy_hint(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    rec = record("azure", "gpt-4.1-mini-2025-04-14",
                 ModelHandle(backend="azure", model_id="gpt-4.1-mini.ft-1"), None)
    with pytest.raises(UnituneError) as err:
        caller_for_job(rec.id)
    assert "unitune deploy" in err.value.hint
    rec = record("bedrock", "amazon.nova-micro-v1:0:128k",
                 ModelHandle(backend="bedrock", model_id="arn:aws:bedrock:us-east-1:1:custom-model/x"),
                 Location(backend="bedrock", region="us-east-1"))
    with pytest.raises(UnituneError) as err:
        caller_for_job(rec.id)
    assert "unitune deploy" in err.value.hint
    rec = record("openai", "gpt-4o-mini", None, None)
    with pytest.raises(UnituneError) as err:
        caller_for_job(rec.id)
    assert "no tuned model yet" in err.value.message


def test_cost_estimate_and_gate(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk")
    caller = caller_for("openai:gpt-4.1-mini-2025-04-14")
    convs = [[{"role": "user", "content": "hello " * 100}]] * 50
    est = estimate(caller, convs, GenParams(max_tokens=500))
    assert est.calls == 50 and est.input_tokens > 5000 and est.usd and est.usd > 0
    assert "fine-tuned rate" in est.price or "catalog" in est.price
    monkeypatch.setenv("UNITUNE_CONFIRM_USD", "0.0001")
    with pytest.raises(UnituneError) as err:
        confirm([est])
    assert "not confirmed" in err.value.message
    confirm([est], yes=True)
    confirm([est], ask=lambda q: "go on?" in q)
    unpriced = estimate(caller_for("openai:llama", base_url="http://127.0.0.1:9/v1"), convs,
                        GenParams())
    assert unpriced.usd is None
    confirm([unpriced])  # nothing priced: nothing to confirm


def test_importing_the_inference_and_eval_packages_loads_no_sdk():
    code = ("import sys, unitune.inference, unitune.eval, unitune.cli.app; "
            "bad = [m for m in ('openai', 'boto3', 'google.genai', 'torch', 'sacrebleu', "
            "'rouge_score', 'transformers') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
