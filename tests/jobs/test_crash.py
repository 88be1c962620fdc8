"""Crash safety: `unitune train` killed with SIGKILL at each stage, then run again.

Each test runs the real CLI in a subprocess against the fake backend whose vendor state lives
in a JSON file (UNITUNE_FAKE_STATE), so the remote jobs can be counted across processes. After
the re-run there must be exactly one remote job and one consistent registry row.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unitune.paths import unitune_home
from unitune.registry import Registry
from unitune.testing.fake import FakeProvider

from .conftest import write_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    state = tmp_path / "vendor" / "fake-state.json"
    monkeypatch.setenv("UNITUNE_FAKE_STATE", str(state))
    e = dict(os.environ, UNITUNE_POLL_INITIAL="0.01", UNITUNE_POLL_MAX="0.05",
             UNITUNE_RETRY_BASE="0.01", COLUMNS="200")
    return e


def _start(spec: Path, env: dict, *args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unitune", "train", str(spec), *args],
                            env={**env, **extra_env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(spec: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unitune", "train", str(spec), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended early (rc={proc.returncode}): {out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("condition not reached before the timeout")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _rows() -> list:
    path = unitune_home() / "registry.sqlite3"
    if not path.exists():
        return []
    try:
        return Registry(path).list_jobs()
    except sqlite3.OperationalError:  # schema being created by the child right now
        return []


def _assert_consistent(expect_id: str | None = None) -> None:
    """One registry job, submitted, succeeded, pointing at the only remote job."""
    conn = sqlite3.connect(unitune_home() / "registry.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = _rows()
    remote = FakeProvider.remote_jobs()
    assert len(remote) == 1, remote
    assert len(rows) == 1, [r.id for r in rows]
    rec = rows[0]
    if expect_id:
        assert rec.id == expect_id
    assert rec.submitted and rec.remote_id == remote[0]["id"]
    assert remote[0]["key"] == rec.idempotency_key and remote[0]["unitune_job_id"] == rec.id
    assert rec.status.value == "succeeded" and rec.model is not None
    history = Registry().history(rec.id)
    assert history[0]["raw_status"] == "unitune:pending-submit"
    assert history[-1]["status"] == "succeeded"


def test_killed_before_submit(tmp_path, env):
    spec = write_spec(tmp_path)
    proc = _start(spec, env, UNITUNE_FAKE_SLEEP_BEFORE_SUBMIT="30")
    _wait_for(lambda: len(_rows()) == 1, proc)
    time.sleep(0.2)  # well inside the fake's pause at the top of submit
    _kill(proc)
    [row] = _rows()
    assert not row.submitted and FakeProvider.remote_jobs() == []
    again = _run(spec, env)
    assert again.returncode == 0, again.stderr
    assert "re-attaching" in again.stderr
    _assert_consistent(row.id)


def test_killed_inside_submit_after_the_vendor_created_the_job(tmp_path, env):
    spec = write_spec(tmp_path)
    proc = _start(spec, env, UNITUNE_FAKE_SLEEP_IN_SUBMIT="30")
    _wait_for(lambda: len(FakeProvider.remote_jobs()) == 1, proc)
    _kill(proc)
    [row] = _rows()
    assert not row.submitted  # the vendor has it, the registry does not know yet
    again = _run(spec, env)
    assert again.returncode == 0, again.stderr
    assert "already has it" in again.stderr
    _assert_consistent(row.id)


def test_killed_while_watching(tmp_path, env):
    spec = write_spec(tmp_path, fake={"advance": "time", "tick_seconds": 0.05, "steps": 20})
    proc = _start(spec, env)
    _wait_for(lambda: any(r.status.value == "running" for r in _rows()), proc)
    _kill(proc)
    [row] = _rows()
    assert row.submitted
    again = _run(spec, env)
    assert again.returncode == 0, again.stderr
    assert "re-attaching" in again.stderr and "succeeded" in again.stdout
    _assert_consistent(row.id)


def test_killed_detached_submit_then_watch_by_id(tmp_path, env):
    """A crash during `--detach` leaves a row `unitune resume` finishes without a duplicate."""
    spec = write_spec(tmp_path)
    proc = _start(spec, env, "--detach", UNITUNE_FAKE_SLEEP_IN_SUBMIT="30")
    _wait_for(lambda: len(FakeProvider.remote_jobs()) == 1, proc)
    _kill(proc)
    [row] = _rows()
    res = subprocess.run([sys.executable, "-m", "unitune", "resume", row.id], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    _assert_consistent(row.id)


SECRETS = {
    "OPENAI_API_KEY": "sk-planted-openai-7f3a9c1e",
    "AZURE_OPENAI_API_KEY": "planted-azure-key-55aa11",
    "AWS_SECRET_ACCESS_KEY": "planted/aws+secret/Zq9",
    "UNITUNE_FAKE_API_KEY": "planted-fake-option-env-42",
    "HF_TOKEN": "hf_plantedtoken0987",
}
SPEC_SECRETS = {"api_key": "planted-spec-api-key-314",
                "credentials": {"private_key": "planted-private-key-577"}}
# options the fake does not have: refused as typos, their values never echoed
UNKNOWN_SECRETS = {"token": "planted-spec-token-2718", "client_secret": "planted-spec-secret-161",
                   "password": "planted-pass-word-99"}


def test_no_secret_reaches_the_registry_files_or_cli_output(tmp_path, env):
    env = {**env, **SECRETS}
    ok = write_spec(tmp_path, name="ok", fake={**SPEC_SECRETS})
    # the vendor echoes a key back in its failure message (it happens)
    bad = write_spec(tmp_path, name="bad", fake={**SPEC_SECRETS, "scenario": "failure"})
    outputs = []

    def cli(*args: str, rc: int = 0, extra: dict | None = None) -> None:
        res = subprocess.run([sys.executable, "-m", "unitune", *args], env={**env, **(extra or {})},
                             capture_output=True, text=True, timeout=60)
        outputs.extend([res.stdout, res.stderr])
        assert res.returncode == rc, res.stderr

    cli("train", str(ok))
    typo = write_spec(tmp_path, name="typo", fake={**UNKNOWN_SECRETS})
    cli("train", str(typo), rc=2)
    cli("plan", str(typo), rc=1)
    cli("train", str(bad), rc=1, extra={"UNITUNE_FAKE_FAILURE_MESSAGE":
                                        f"key {SECRETS['OPENAI_API_KEY']} was rejected"})
    rows = _rows()
    assert len(rows) == 2
    for row in rows:
        for cmd in (["status", row.id], ["status", row.id, "--json"], ["logs", row.id],
                    ["logs", row.id, "--json"], ["metrics", row.id, "--json"],
                    ["watch", row.id, "--json"]):
            cli(*cmd, rc=1 if cmd[0] == "watch" and row.status.value == "failed" else 0)
    cli("list", "--json")
    failed = [r for r in _rows() if r.status.value == "failed"][0]
    assert "was rejected" in failed.error.message  # the message kept, the key gone

    planted = list(SECRETS.values()) + [v for v in _flatten({**SPEC_SECRETS, **UNKNOWN_SECRETS})]
    written = [p for p in unitune_home().rglob("*") if p.is_file()]
    assert any(p.name == "registry.sqlite3" for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in planted:
            assert secret.encode() not in data, f"{secret!r} written to {path}"
    for text in outputs:
        for secret in planted:
            assert secret not in text, f"{secret!r} printed"


def _flatten(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _flatten(v)
    else:
        yield obj


def test_ctrl_c_while_waiting_leaves_the_job_running(tmp_path, env):
    spec = write_spec(tmp_path, fake={"advance": "time", "tick_seconds": 0.2, "steps": 50})
    proc = _start(spec, env)
    _wait_for(lambda: any(r.status.value == "running" for r in _rows()), proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "keeps running" in err and "Traceback" not in err
    [row] = _rows()
    assert row.submitted and not row.is_terminal
    assert len(FakeProvider.remote_jobs()) == 1


def test_two_concurrent_trains_of_one_spec_submit_once(tmp_path, env):
    """The second process finds the claimed row under another live process's submit lease and
    waits for it instead of calling the vendor: one job, one submit call."""
    spec = write_spec(tmp_path)
    first = _start(spec, env, "--detach", UNITUNE_FAKE_SLEEP_IN_SUBMIT="1.0")
    _wait_for(lambda: len(FakeProvider.remote_jobs()) == 1, first)
    second = _start(spec, env, "--detach")
    out2, err2 = second.communicate(timeout=30)
    out1, err1 = first.communicate(timeout=30)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert "is submitting it; waiting" in err2
    assert FakeProvider.submit_calls() == 1
    [row] = _rows()
    assert row.submitted and row.remote_id == FakeProvider.remote_jobs()[0]["id"]
