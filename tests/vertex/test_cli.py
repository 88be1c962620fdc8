"""End to end through the CLI: plan / train / status / metrics / cancel against the REST fake and
the GCS emulator, with the endpoint set the way a user would (UNITUNE_VERTEX_ENDPOINT)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conformance.suite import same_except_placeholders
from unitune.cli.app import app

from .conftest import BUCKET, LOCATION, PROJECT, write_chat


@pytest.fixture
def cli(fake, kind, monkeypatch):
    monkeypatch.setenv("UNITUNE_VERTEX_CLIENT", kind)
    monkeypatch.setenv("UNITUNE_POLL_INITIAL", "0.01")
    monkeypatch.setenv("UNITUNE_POLL_MAX", "0.02")
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _spec(tmp_path: Path, r: int = 12) -> Path:
    write_chat(tmp_path / "train.jsonl")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({
        "name": "cli-vertex", "backend": "vertex", "models": {"vertex": "gemini-2.5-pro"},
        "data": {"train": "train.jsonl"}, "adapter": {"type": "lora", "r": r},
        "hyperparameters": {"epochs": 1},
        "backend_options": {"vertex": {"project": PROJECT, "location": LOCATION,
                                       "bucket": BUCKET}}}))
    return path


def test_plan_train_status_metrics(cli, fake, tmp_path):
    spec = _spec(tmp_path)
    plan = json.loads(cli("plan", str(spec), "--json").stdout)
    rows = {r["field"]: r for r in plan["translation"]}
    assert rows["adapter.r"]["vendor_value"] == "ADAPTER_SIZE_EIGHT"
    assert "rank 12 → nearest allowed size 8" in rows["adapter.r"]["note"]
    assert plan["uploads"][0]["destination"].startswith(f"gs://{BUCKET}/")
    assert not fake.creates()  # plan uploads and creates nothing

    job = json.loads(cli("train", str(spec), "--json").stdout)
    assert job["status"] == "succeeded"
    assert job["model"]["model_id"].startswith(f"projects/{PROJECT}/locations/{LOCATION}/models/")
    status = json.loads(cli("status", job["id"], "--json").stdout)
    assert status["raw_status"] == "JOB_STATE_SUCCEEDED"
    metrics = cli("metrics", job["id"], "--json").stdout
    rows = json.loads(metrics)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert [r["step"] for r in rows] == [1, 2, 3, 4]

    again = json.loads(cli("train", str(spec), "--json").stdout)  # same spec + data: re-attach
    assert again["id"] == job["id"] and len(fake.creates()) == 1


def test_plan_request_is_what_train_sends(cli, fake, tmp_path):
    spec = _spec(tmp_path)
    plan = json.loads(cli("plan", str(spec), "--json").stdout)
    assert plan["ready"] is True
    assert plan["request"]["labels"]["unitune_key"].startswith("<")
    fake.arrange("slow")
    cli("train", str(spec), "--detach", "--json")
    sent = fake.creates(canonical=True)[-1]  # GAPIC's encoding read as the same values
    assert same_except_placeholders(plan["request"], sent) == []


def test_a_misspelled_option_names_the_nearest(cli, fake, tmp_path):
    spec = _spec(tmp_path)
    raw = yaml.safe_load(spec.read_text())
    raw["backend_options"]["vertex"]["buckt"] = raw["backend_options"]["vertex"].pop("bucket")
    spec.write_text(yaml.safe_dump(raw))
    for command in ("plan", "train"):
        result = cli(command, str(spec), ok=False)
        assert result.exit_code != 0
        text = " ".join(result.output.split())
        assert "buckt" in text and "bucket" in text
    assert not fake.creates()


def test_detach_then_cancel(cli, fake, tmp_path, monkeypatch):
    spec = _spec(tmp_path, r=4)
    fake.arrange("slow")
    monkeypatch.setenv("UNITUNE_VERTEX_KEY_FILE", os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    job = json.loads(cli("train", str(spec), "--detach", "--json").stdout)
    assert job["remote_id"].startswith(f"projects/{PROJECT}/")
    # endpoint, client and key file were stored with the job (through the registry): status and
    # cancel need none of the environment that created it
    for name in ("UNITUNE_VERTEX_ENDPOINT", "UNITUNE_VERTEX_CLIENT", "UNITUNE_VERTEX_KEY_FILE"):
        monkeypatch.delenv(name)
    cancelled = json.loads(cli("cancel", job["id"], "--json").stdout)
    assert cancelled["status"] in ("cancelling", "cancelled")
    final = json.loads(cli("status", job["id"], "--json").stdout)
    assert final["status"] == "cancelled"


def test_failed_job_and_experiments_only_metrics(cli, fake, tmp_path):
    spec = _spec(tmp_path)
    fake.arrange("failure")
    result = cli("train", str(spec), ok=False)
    assert result.exit_code == 1
    assert "example 7 has an empty model turn" in " ".join(result.output.split())
    fake.arrange("experiments_only")
    job = json.loads(cli("train", str(spec), "--new", "--json").stdout)
    assert job["status"] == "succeeded"
    result = cli("metrics", job["id"], ok=False)
    assert result.exit_code == 1
    assert "Vertex AI Experiments" in " ".join(result.output.split())
