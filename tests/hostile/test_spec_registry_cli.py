"""Hostile specs, a broken registry and CLI edges (issue 12 items 2, 3, 5, 11, 12, 14, 15): each
gets one clear line and an exit code, never a traceback, and never a second paid job."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unitune.client import Client
from unitune.errors import RegistryError
from unitune.job import JobStatus, Progress, RemoteRef, Snapshot
from unitune.registry import Registry
from unitune.testing.fake import FakeProvider

ROWS = [{"messages": [{"role": "user", "content": f"q{i}"},
                      {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UNITUNE_FAKE_STATE", str(tmp_path / "fake.json"))
    monkeypatch.setenv("UNITUNE_POLL_INITIAL", "0.001")
    monkeypatch.setenv("UNITUNE_POLL_MAX", "0.005")
    FakeProvider.reset()


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    import os

    res = subprocess.run([sys.executable, "-m", "unitune", *args], capture_output=True,
                         text=True, timeout=120, cwd=cwd, env={**os.environ, **(env or {})})
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    return res


def spec(tmp_path: Path, body: str = "", name: str = "s.yaml") -> Path:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    path = tmp_path / name
    path.write_text("name: x\nbackend: fake\nbase_model: fake-base\ndata: {train: train.jsonl}\n"
                    + body)
    return path


@pytest.mark.parametrize("content,needle", [
    ("name: a\nname: b\n", "duplicate key 'name'"),
    ("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
     "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "expands to more than"),
    ("a: " + "[" * 10000 + "]" * 10000 + "\n", "nested too deeply"),
    ("name: x\ndata: {train: t.jsonl}\nhyperparameters: {learning_rate: .inf}\n",
     "finite number"),
])
def test_hostile_spec_text_is_one_clear_line(tmp_path, content, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    res = cli("plan", str(path))
    assert res.returncode == 2 and needle in res.stderr


def test_non_utf8_and_huge_specs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    res = cli("plan", str(bad))
    assert res.returncode == 2 and "not UTF-8" in res.stderr and "line 1" in res.stderr
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n#" + "x" * (2 << 20) + "\n")
    res = cli("plan", str(big))
    assert res.returncode == 2 and "at most" in res.stderr


def test_data_that_is_a_directory_or_not_a_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\nbackend: fake\nbase_model: f\ndata: {{train: {tmp_path}}}\n")
    res = cli("plan", str(path), "--json")
    out = json.loads(res.stdout)
    assert res.returncode == 1 and out["ready"] is False
    assert any(p["code"] == "not_a_file" for p in out["problems"])
    res = cli("train", str(path))
    assert res.returncode != 0 and "not a regular file" in res.stderr
    assert cli("list", "--json").stdout.strip() == "[]"


def test_integer_beyond_64_bits_prints_as_json(tmp_path):
    res = cli("plan", str(spec(tmp_path, "hyperparameters: {seed: 99999999999999999999999}\n")),
              "--json")
    assert json.loads(res.stdout)["request"]["seed"] == 99999999999999999999999


def test_unknown_backend_lists_the_known_ones(tmp_path):
    res = cli("plan", str(spec(tmp_path)), "--backend", "gcp")
    assert res.returncode == 2 and "unknown backend 'gcp'" in res.stderr
    assert "openai" in res.stderr and "bedrock" in res.stderr


def test_version_and_json_everywhere(tmp_path):
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("unitune ")
    assert json.loads(cli("schema", "--json").stdout)["properties"]["backend_options"]


def test_schema_documents_every_backends_options():
    props = json.loads(cli("schema").stdout)["properties"]["backend_options"]["properties"]
    assert "scenario" in props["fake"]["properties"]


class _NeedsMissingSdk(FakeProvider):
    extra = "bedrock"
    requires = ("unitune_no_such_sdk_xyz",)


def test_missing_sdk_is_not_ready_and_refused_before_a_row(tmp_path):
    from unitune.errors import MissingDependency
    from unitune.pipeline import Pipeline
    from unitune.spec import JobSpec

    s = JobSpec.load(spec(tmp_path))
    plan = Pipeline(_NeedsMissingSdk()).plan(s)
    assert not plan.ready and plan.request  # the translation still shows (it needs no SDK)
    [p] = [p for p in plan.problems if p.code == "missing_dependency"]
    assert p.hint == "pip install 'unitune[bedrock]'"
    client = Client(backends={"fake": _NeedsMissingSdk()})
    with pytest.raises(MissingDependency):
        client.train(s, detach=True)
    assert client.list() == [] and FakeProvider.remote_jobs() == []


def test_error_hints_are_printed_literally(capsys):
    from unitune.cli.common import fail

    fail("boto3 is not installed", "pip install 'unitune[bedrock]'")
    assert "pip install 'unitune[bedrock]'" in capsys.readouterr().err


def test_corrupt_registry_is_one_error_with_the_way_out(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.sqlite3").write_text("this is not a database")
    res = cli("list")
    assert res.returncode == 2 and "corrupt" in res.stderr
    assert "unitune registry recover" in res.stderr
    res = cli("registry", "recover")
    assert res.returncode == 0, res.stderr
    assert list(home.glob("registry.sqlite3.corrupt-*"))  # kept, not deleted
    assert cli("list", "--json").returncode == 0


def test_lost_rows_refuse_a_second_paid_job_until_recovered(tmp_path):
    path = spec(tmp_path)
    assert cli("train", str(path), "--detach").returncode == 0
    assert len(FakeProvider.remote_jobs()) == 1
    registry = tmp_path / "home" / "registry.sqlite3"
    for side in ("-wal", "-shm"):
        Path(str(registry) + side).unlink(missing_ok=True)
    registry.write_bytes(b"")  # the rows are gone, the job folders are not
    res = cli("train", str(path), "--detach")
    assert res.returncode == 2 and "lost 1 job" in res.stderr
    assert len(FakeProvider.remote_jobs()) == 1  # no second paid job
    assert cli("registry", "check").returncode == 1
    res = cli("registry", "recover", "--json")
    out = json.loads(res.stdout)
    assert len(out["rebuilt"]) == 1 and len(out["reattached"]) == 1
    assert cli("registry", "check").returncode == 0
    res = cli("train", str(path), "--detach")  # re-attaches to the recovered job
    assert res.returncode == 0 and len(FakeProvider.remote_jobs()) == 1


def test_status_of_an_unconfirmed_row_asks_the_vendor_first(tmp_path):
    from unitune.client import data_hash, stored_spec
    from unitune.pipeline import Pipeline
    from unitune.provider import Ids
    from unitune.spec import JobSpec

    s = JobSpec.load(spec(tmp_path))
    client = Client(backends={"fake": FakeProvider()})
    pipe = client.backend("fake")
    sub = pipe.prepare_submission(s)
    rec, _ = client.registry.claim(backend="fake", spec=stored_spec(s), spec_hash=s.spec_hash(),
                                   data_hash=data_hash(s), location=sub.location)
    # the vendor got it, then the process died before the registry heard back
    Pipeline(FakeProvider()).submit(sub, Ids(job_id=rec.id, key=rec.idempotency_key))
    job = client.get(rec.id)
    assert job.submitted and job.remote_id == FakeProvider.remote_jobs()[0]["id"]
    assert job.raw_status != "unitune:pending-submit"


def test_a_finished_job_shows_its_last_step_and_no_eta(tmp_path):
    reg = Registry(tmp_path / "r.sqlite3", work_root=tmp_path / "jobs")
    rec, _ = reg.claim(backend="fake", spec={}, spec_hash="h", data_hash=None)
    reg.mark_submitted(rec.id, RemoteRef(backend="fake", remote_id="r1"))
    ref = RemoteRef(backend="fake", remote_id="r1")
    reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.RUNNING, progress=Progress(
        step=8, total_steps=12, eta_seconds=40.0, latest_loss=0.5)))
    done = reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.SUCCEEDED))
    assert done.progress.step == 12 and done.progress.eta_seconds is None
    assert done.progress.latest_loss == 0.5


@pytest.mark.parametrize("kind", ["quota", "400"])
def test_a_refused_submission_leaves_no_job_behind(tmp_path, kind):
    from unitune.errors import InvalidRequest, QuotaExceeded

    fake = FakeProvider()
    client = Client(backends={"fake": fake})
    path = spec(tmp_path)
    for _ in range(4):
        fake.fail_next(1, kind=kind, methods=("create",))
        with pytest.raises((QuotaExceeded, InvalidRequest)):
            client.train(path, detach=True)
    assert client.list() == []  # 4 refused runs, no phantom rows (was: 4 failed rows)
    assert not [p for p in (tmp_path / "home" / "jobs").glob("*/registry-row.json")]
    job = client.train(path, detach=True)  # and the next run is a normal new job
    assert job.submitted and len(client.list()) == 1


def test_every_command_accepts_json():
    """Issue 12 item 15: every command takes --json (schema and demo refused it)."""
    import click
    import typer

    from unitune.cli.app import app

    missing, seen = [], []

    def walk(cmd: click.Command, path: str) -> None:
        if getattr(cmd, "commands", None):  # a group (typer's own Group class)
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
            return
        seen.append(path)
        if not any("--json" in getattr(p, "opts", ()) for p in cmd.params):
            missing.append(path)

    walk(typer.main.get_command(app), "")
    assert len(seen) > 30 and "demo" in seen and "registry recover" in seen
    assert missing == []
