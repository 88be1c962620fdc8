"""The lifecycle CLI in-process (typer's CliRunner) against the fake backend."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.testing.fake import FakeProvider

from .conftest import write_spec


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, code: int | None = 0):
        result = runner.invoke(app, [str(a) for a in args])
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception  # never a traceback
        return result

    return invoke


def test_train_waits_and_exits_zero_on_success(run, tmp_path):
    res = run("train", write_spec(tmp_path))
    assert "succeeded" in res.stdout and "model: fake:fake-base" in res.stdout
    assert "step 5/5" in res.stderr and "loss" in res.stderr  # progress lines
    jobs = json.loads(run("list", "--json").stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "succeeded"


def test_train_failure_exits_non_zero_with_the_reason(run, tmp_path):
    spec = write_spec(tmp_path, fake={"scenario": "failure", "failure_message": "row 9: no "
                                      "assistant turn"})
    res = run("train", spec, code=1)
    assert "failed" in res.stderr and "row 9: no assistant turn" in res.stderr
    res = run("train", spec, "--json", code=1)
    assert json.loads(res.stdout)["status"] == "failed"


def test_train_cancelled_at_vendor_exits_non_zero(run, tmp_path):
    res = run("train", write_spec(tmp_path, fake={"scenario": "cancelled"}), code=1)
    assert "cancelled" in res.stderr


def test_detach_then_status_watch_metrics_logs(run, tmp_path):
    spec = write_spec(tmp_path)
    res = run("train", spec, "--detach", "--json")
    job = json.loads(res.stdout)
    assert job["submitted"] and job["status"] != "succeeded"
    assert len(FakeProvider.remote_jobs()) == 1
    # the same spec re-attaches (no second remote job)
    again = json.loads(run("train", spec, "--detach", "--json").stdout)
    assert again["id"] == job["id"] and len(FakeProvider.remote_jobs()) == 1
    status = json.loads(run("status", job["id"][:15], "--json").stdout)
    assert status["id"] == job["id"] and status["history"][0]["raw_status"]
    lines = run("watch", job["id"], "--json").stdout.strip().splitlines()
    assert json.loads(lines[-1])["status"] == "succeeded" and len(lines) > 2
    human = run("status", job["id"]).stdout
    assert "succeeded" in human and "history" in human
    csv = run("metrics", job["id"], "--csv").stdout.splitlines()
    assert csv[0].startswith("step,epoch,train_loss") and len(csv) == 6
    chart = run("metrics", job["id"]).stdout
    assert "train loss" in chart and any(c in chart for c in "▁▂▃▄▅▆▇█")
    rows = json.loads(run("metrics", job["id"], "--json").stdout)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    png = tmp_path / "loss.png"
    run("metrics", job["id"], "--plot", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logs = run("logs", job["id"]).stdout
    assert "training started" in logs and "succeeded" in logs
    assert json.loads(run("logs", job["id"], "--json").stdout)


def test_new_forces_a_second_job(run, tmp_path):
    spec = write_spec(tmp_path)
    run("train", spec, "--detach")
    run("train", spec, "--detach", "--new")
    assert len(FakeProvider.remote_jobs()) == 2
    assert len(json.loads(run("list", "--json", "--backend", "fake").stdout)) == 2
    assert json.loads(run("list", "--json", "--status", "succeeded").stdout) == []
    assert "ut-" in run("list").stdout


def test_cancel(run, tmp_path):
    job = json.loads(run("train", write_spec(tmp_path, fake={"scenario": "slow"}), "--detach",
                         "--json").stdout)
    res = json.loads(run("cancel", job["id"], "--json").stdout)
    assert res["status"] == "cancelling"
    res = run("watch", job["id"], code=1)
    assert "cancelled" in res.stderr
    res = run("cancel", job["id"], code=1)
    assert "already cancelled" in res.stderr


def test_deploy_requires_yes_and_undeploy(run, tmp_path):
    job = json.loads(run("train", write_spec(tmp_path), "--json").stdout)
    res = run("deploy", job["id"], code=2)  # non-interactive without --yes
    assert "--yes" in res.stderr and "would create endpoint" in res.stdout
    res = run("deploy", job["id"], "--yes")  # the plan (with its cost) is shown even with --yes
    assert "would create endpoint" in res.stdout and "deployed:" in res.stdout
    run("undeploy", job["id"])
    out = json.loads(run("deploy", job["id"], "--yes", "--option", "units=3", "--json").stdout)
    assert out["deployed"] and out["model"]["endpoint"]
    assert "3 unit" in out["plan"]
    run("deploy", job["id"], "--yes", "--option", "oops", code=2)
    run("undeploy", job["id"])
    assert json.loads(run("status", job["id"], "--json").stdout)["model"]["endpoint"] is None


def test_resume_of_a_finished_job_reports_it(run, tmp_path):
    job = json.loads(run("train", write_spec(tmp_path), "--json").stdout)
    res = run("resume", job["id"], "--json")
    assert json.loads(res.stdout)["status"] == "succeeded"


def test_errors_are_messages_not_tracebacks(run, tmp_path):
    res = run("status", "ut-nope", code=1)
    assert "no job" in res.stderr and "unitune list" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {train: t.jsonl}\nhyperparameters: {epoch: 3}\n")
    res = run("train", bad, "--backend", "fake", code=2)
    assert "hyperparameters.epoch" in res.stderr
    res = run("train", write_spec(tmp_path, adapter={"type": "ia3"}), code=1)
    assert "ia3" in res.stderr and "before" not in res.stdout
    res = run("list", "--status", "bogus", code=2)
    assert "queued" in res.stderr
    res = run("train", write_spec(tmp_path), "--backend", "nosuch", code=2)
    assert "unknown backend" in res.stderr


def test_live_progress_panel_on_a_terminal(tmp_path):
    """On a terminal, long waits show a live panel: status, step/total, loss, elapsed, ETA."""
    import io

    from rich.console import Console

    from unitune.cli.display import Progress as _Progress
    from unitune.job import Job, JobStatus, Progress

    buf = io.StringIO()
    progress = _Progress()
    progress.console = Console(file=buf, force_terminal=True, width=100)
    base = dict(id="ut-20990101-abcdef", backend="fake", remote_id="r-1", raw_status="TRAINING")
    with progress:
        progress(Job(status=JobStatus.QUEUED, **{**base, "raw_status": "PENDING"}))
        for step in (2, 4, 6):
            progress(Job(status=JobStatus.RUNNING, progress=Progress(
                step=step, total_steps=10, latest_loss=1.0 / step), **base))
    text = buf.getvalue()
    assert "6/10" in text and "0.1667" in text and "ETA" in text and "elapsed" in text
    assert progress.live is not None
