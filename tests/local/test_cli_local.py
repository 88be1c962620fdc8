"""Through the CLI, as a user runs it: `unitune train` on data or a model the local backend
cannot train exits non-zero without creating a job (nothing in `unitune list`, no job folder, no
worker), and `unitune plan --backend local --json` says NOT READY for the same specs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unitune.cli.app import app

CHAT = ('{"messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "yo"}]}\n')


def write_spec(tmp_path: Path, data: str, model: str = "unitune/tiny-chat") -> Path:
    (tmp_path / "train.jsonl").write_text(data)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "refused", "backend": "local", "base_model": model,
                                    "data": {"train": "train.jsonl"},
                                    "hyperparameters": {"max_steps": 2}}))
    return spec


@pytest.mark.parametrize("data,model,says", [
    ("", "unitune/tiny-chat", "no examples"),
    ("a,b\n1,2\n", "unitune/tiny-chat", "looks like CSV"),
    (CHAT, "someorg/never-downloaded", "someorg/never-downloaded"),
], ids=["empty", "csv", "unknown-model"])
def test_train_refuses_before_any_job_or_process(tmp_path, data, model, says, _isolated_env):
    spec = write_spec(tmp_path, data, model)
    runner = CliRunner()
    plan = runner.invoke(app, ["plan", str(spec), "--backend", "local", "--json"])
    body = json.loads(plan.stdout)
    assert body["ready"] is False, plan.stdout
    out = runner.invoke(app, ["train", str(spec)])
    assert out.exit_code != 0
    assert says in out.output, out.output
    assert "Traceback" not in out.output
    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    jobs = _isolated_env / "jobs"
    assert not jobs.exists() or not [p for p in jobs.iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_plan_request_is_what_the_worker_reads(tmp_path, tiny_home):
    """`unitune plan --json`'s request, then `unitune train --detach`: the job folder's
    request.json (what the worker reads) equals it except for the placeholders; the job is
    cancelled at once (no training run needed)."""
    from tests.conformance.suite import same_except_placeholders

    spec = write_spec(tmp_path, CHAT * 6)
    raw = yaml.safe_load(spec.read_text())
    raw["data"]["validation"] = 0.25
    raw["hyperparameters"]["max_steps"] = 100000
    spec.write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    plan = json.loads(runner.invoke(app, ["plan", str(spec), "--backend", "local",
                                          "--json"]).stdout)
    assert plan["ready"] is True and plan["request"]["job_dir"] == "<job-dir>"
    out = runner.invoke(app, ["train", str(spec), "--detach", "--json"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.stdout)
    try:
        sent = json.loads((tiny_home / "jobs" / job["id"] / "request.json").read_text())
        assert same_except_placeholders(plan["request"], sent) == []
        assert sent["job_dir"] == str((tiny_home / "jobs" / job["id"]).resolve())
        assert sent["spec"]["data"]["validation"].endswith(".validation.jsonl")
    finally:
        assert runner.invoke(app, ["cancel", job["id"]]).exit_code == 0
