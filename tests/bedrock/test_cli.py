"""End to end through the CLI against moto: `unitune plan / train / status / metrics / deploy`
with AWS_ENDPOINT_URL pointing at moto's server. `plan --json`'s `request` is what `train` then
sends; a spec missing settings is NOT READY naming all of them and `train` leaves nothing behind.
moto lacks deployments, so `deploy --yes` is expected to fail cleanly there (the real call is
covered with Stubber in test_deploy)."""
from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.conformance.suite import same_except_placeholders

from .conftest import BUCKET, ROLE, chat_lines, write_jsonl
from .harness import put_metrics


def run(*args: str):
    from unitune.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def spec_file(aws, tmp_path, monkeypatch):
    write_jsonl(tmp_path / "train.jsonl", chat_lines(24))
    spec = {"name": "cli-demo", "backend": "bedrock",
            "models": {"bedrock": "amazon.nova-micro-v1:0:128k"},
            "data": {"train": "train.jsonl", "validation": 0.25},
            "hyperparameters": {"epochs": 2, "learning_rate": 0.00002}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    # account-specific values come from the environment, as in CI
    monkeypatch.setenv("UNITUNE_BEDROCK_BUCKET", BUCKET)
    monkeypatch.setenv("UNITUNE_BEDROCK_ROLE_ARN", ROLE)
    # moto answers deploy calls with a 500: the client should not wait on it
    monkeypatch.setenv("UNITUNE_RETRY_MAX", "1")
    monkeypatch.setenv("UNITUNE_RETRY_BASE", "0.01")
    return path


def test_plan_train_status_metrics_deploy(aws, spec_file):
    res = run("plan", str(spec_file), "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["ok"] and plan["ready"] and plan["backend"] == "bedrock"
    assert plan["location"]["region"] == "us-east-1"
    params = {r["vendor_param"]: r["vendor_value"] for r in plan["translation"] if r.get("vendor_param")}
    assert params["epochCount"] == "2" and params["learningRate"] == "0.00002"
    assert len(plan["uploads"]) == 2 and aws.jobs() == {}

    res = run("train", str(spec_file), "--detach", "--json")
    assert res.exit_code == 0, res.output
    job = json.loads(res.stdout)
    job_id = job["id"]
    assert job["backend"] == "bedrock" and job["remote_id"].startswith("arn:aws:bedrock:")
    (name, moto_job), = aws.jobs().items()
    (sent,) = aws.front.creates
    assert same_except_placeholders(plan["request"], sent.body) == []

    res = run("status", job_id, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "running"

    # the job finishes at the "vendor": moto's state + the CSVs Bedrock writes
    put_metrics(aws, moto_job)
    moto_job.status = "Completed"
    res = run("status", job_id, "--json")
    status = json.loads(res.stdout)
    assert status["status"] == "succeeded" and status["raw_status"] == "Completed"
    assert status["model"]["model_id"] == moto_job.output_model_arn

    res = run("metrics", job_id, "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["train_loss"] for r in rows] == [2.5, 1.9, 1.4, 1.1]
    assert rows[3]["valid_loss"] == 1.3

    # deploy without --yes: the plan with its cost, nothing created
    res = run("deploy", job_id)
    assert res.exit_code != 0
    assert "on-demand" in res.output and "--yes" in res.output

    # with --yes the real call is made; moto does not implement it: a clean error, no traceback
    res = run("deploy", job_id, "--yes")
    assert res.exit_code == 1
    assert "create_custom_model_deployment" in res.output and "Traceback" not in res.output

    # re-running train with the same spec attaches to the same job: one vendor job
    res = run("train", str(spec_file), "--detach", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["id"] == job_id
    assert len(aws.jobs()) == 1


def test_plan_refuses_out_of_range_with_the_allowed_range(aws, spec_file):
    spec = yaml.safe_load(spec_file.read_text())
    spec["hyperparameters"]["epochs"] = 7
    spec_file.write_text(yaml.safe_dump(spec))
    res = run("plan", str(spec_file))
    assert res.exit_code == 1
    assert "epochCount takes 1–5 (default 2)" in res.output
    res = run("train", str(spec_file), "--detach")
    assert res.exit_code != 0 and "1–5" in res.output
    assert aws.jobs() == {}


def test_missing_settings_are_all_named_and_train_leaves_nothing(aws, spec_file, monkeypatch):
    monkeypatch.delenv("UNITUNE_BEDROCK_BUCKET")
    monkeypatch.delenv("UNITUNE_BEDROCK_ROLE_ARN")
    res = run("plan", str(spec_file), "--json")
    assert res.exit_code != 0
    plan = json.loads(res.stdout)
    assert not plan["ready"]
    missing = sorted(p["path"] for p in plan["problems"] if p["code"] == "option_missing")
    assert missing == ["backend_options.bedrock.bucket", "backend_options.bedrock.role_arn"]
    res = run("plan", str(spec_file))
    assert "NOT READY" in res.output and "OK: ready" not in res.output
    res = run("train", str(spec_file), "--detach")
    assert res.exit_code != 0
    assert "bucket" in res.output and "role_arn" in res.output
    assert aws.jobs() == {} and aws.front.s3_puts == 0
    res = run("list", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []  # no `queued` row left behind
