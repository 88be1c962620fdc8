"""`unitune import` / `unitune export-config` through the CLI: the spec written runs on any
backend with one flag, export → import round-trips the training settings, lossy exports are
refused, and an OpenAI job's files download through the real SDK from the fake server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.spec import JobSpec

FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
ALPACA = ROOT / "examples/data/instructions_alpaca.jsonl"
CHAT = ROOT / "examples/data/support_zh.jsonl"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, code: int | None = 0):
        result = runner.invoke(app, [str(a) for a in args])
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        return result

    return invoke


def test_import_writes_a_spec_that_plans_on_a_cloud_backend(run, tmp_path, monkeypatch):
    data = tmp_path / "chat.jsonl"
    data.write_bytes(CHAT.read_bytes())
    out = tmp_path / "spec.yaml"
    res = run("import", "axolotl", FIX / "axolotl/lora-1b.yml", "-o", out, "--data", data)
    assert "not mapped optimizer" in res.stdout
    head = out.read_text().split("\nname:")[0]
    assert "# Not mapped" in head and "optimizer" in head and "special_tokens" in head
    spec = JobSpec.load(out)
    assert spec.data_path("train") == data
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    plan = json.loads(run("plan", out, "--backend", "openai", "--json").stdout)
    assert plan["ready"] is True and plan["model"] == "gpt-4.1-mini-2025-04-14"
    # an existing file is not overwritten without --force
    res = run("import", "axolotl", FIX / "axolotl/lora-1b.yml", "-o", out, code=2)
    assert "exists" in res.stderr
    run("import", "axolotl", FIX / "axolotl/lora-1b.yml", "-o", out, "--force")


def test_import_prints_yaml_and_json(run, tmp_path):
    text = run("import", "llama-factory", FIX / "llama-factory/qwen3_lora_dpo.yaml").stdout
    assert text.startswith("# Imported from llama-factory config")
    assert yaml.safe_load(text)["method"] == "dpo"
    doc = json.loads(run("import", "openai-job", FIX / "openai-job/create_dpo.json",
                         "--json").stdout)
    assert doc["spec"]["method"] == "dpo" and doc["written"] is None
    assert {"source", "target", "value"} <= set(doc["mapped"][0])


@pytest.mark.parametrize("args,needle", [
    (("import", "kohya", "x.yml"), "unknown tool"),
    (("import", "openai-job", FIX / "openai-job/create_reinforcement.json"), "reinforcement"),
    (("import", "axolotl", FIX / "NOTICE"), "mapping"),
    (("import", "axolotl", "missing.yml"), "missing"),
])
def test_import_errors_are_clean(run, args, needle):
    res = run(*args, code=2)
    assert needle in res.stderr and "Traceback" not in res.output


ROUND_TRIP = [("axolotl", "lora-1b.yml"), ("axolotl", "qlora-1b.yml"),
              ("axolotl", "fft-8b.yaml"), ("llama-factory", "qwen3_lora_sft.yaml"),
              ("llama-factory", "qwen3_lora_sft_otfq.yaml"), ("llama-factory",
                                                               "qwen3_full_sft.yaml")]


def _training(spec: JobSpec) -> dict:
    from unitune.importers.export import _data_format

    d = spec.model_dump(mode="json", exclude={"source_dir", "name"})
    d["data"]["format"] = _data_format(spec)  # "auto" and the detected format are the same
    d["adapter"]["alpha"] = spec.adapter.effective_alpha
    d["data"]["train"] = str(spec.data_path("train"))
    return d


@pytest.mark.parametrize("tool,name", ROUND_TRIP)
@pytest.mark.parametrize("to", ["axolotl", "llama-factory"])
def test_export_import_round_trip(run, tmp_path, tool, name, to):
    data = tmp_path / "alpaca.jsonl"
    data.write_bytes(ALPACA.read_bytes())
    spec_path = tmp_path / "spec.yaml"
    run("import", tool, FIX / tool / name, "-o", spec_path, "--data", data)
    spec = JobSpec.load(spec_path)
    local = spec.backend_options.get("local", {})
    if to == "llama-factory" and local.get("precision") == "auto":
        res = run("export-config", spec_path, "--to", to, "-o", tmp_path / "cfg.yaml", code=1)
        assert "precision" in res.stderr and "--lossy" in res.stderr
        return
    if local.get("strategy") in ("deepspeed", "fsdp"):
        res = run("export-config", spec_path, "--to", to, "-o", tmp_path / "cfg.yaml", code=1)
        assert "strategy" in res.stderr
        return
    run("export-config", spec_path, "--to", to, "-o", tmp_path / "cfg.yaml")
    run("import", to, tmp_path / "cfg.yaml", "-o", tmp_path / "back.yaml")
    back = JobSpec.load(tmp_path / "back.yaml")
    assert _training(back) == _training(spec)


def test_lossy_export_is_refused_then_allowed(run, tmp_path):
    data = tmp_path / "alpaca.jsonl"
    data.write_bytes(ALPACA.read_bytes())
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "pt", "models": {"local": "unitune/tiny-chat"},
                                    "data": {"train": "alpaca.jsonl"},
                                    "adapter": {"type": "prompt_tuning"}}))
    res = run("export-config", spec, "--to", "axolotl", "-o", tmp_path / "a.yml", code=1)
    assert "adapter.type" in res.stderr and not (tmp_path / "a.yml").exists()
    run("export-config", spec, "--to", "axolotl", "-o", tmp_path / "a.yml", "--lossy")
    assert "LOST: adapter.type" in (tmp_path / "a.yml").read_text()


def test_openai_job_fetch_data_through_the_sdk(run, tmp_path, monkeypatch):
    from openai import OpenAI

    from unitune.testing.openai_server import FakeOpenAIServer

    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                             {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                    for i in range(12))
    with FakeOpenAIServer() as srv:
        client = OpenAI(base_url=srv.base_url, api_key="sk-test")
        f = client.files.create(file=("train.jsonl", lines.encode()), purpose="fine-tune")
        job = json.loads((FIX / "openai-job/create_epochs.json").read_text())
        job["training_file"] = f.id
        (tmp_path / "job.json").write_text(json.dumps(job))
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        out = tmp_path / "spec.yaml"
        res = run("import", "openai-job", tmp_path / "job.json", "-o", out, "--fetch-data")
    spec = JobSpec.load(out)
    assert spec.data_path("train").read_text() == lines
    assert "to do" not in res.stdout
