"""End to end through the CLI, with the fake server as a separate process (as a user runs it):
`unitune train examples/quickstart.yaml --backend openai` goes from upload to a model handle,
`unitune metrics` shows the curve, and killing the CLI mid-submit then re-running it leaves
exactly one job on the server."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def start_server(*args: str):
    proc = subprocess.Popen([sys.executable, "-m", "unitune.testing.openai_server", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line or "")
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("fake server did not start")


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def state(root: str) -> dict:
    with urllib.request.urlopen(f"{root}/_fake/state", timeout=5) as resp:
        return json.loads(resp.read())


def cli_env(root: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UNITUNE_", "OPENAI_", "AZURE_OPENAI_"))}
    env.update({"OPENAI_BASE_URL": f"{root}/v1", "OPENAI_API_KEY": "sk-test-e2e",
                "UNITUNE_HOME": str(home), "UNITUNE_POLL_INITIAL": "0.05",
                "UNITUNE_POLL_MAX": "0.1", "UNITUNE_RETRY_BASE": "0.05",
                "UNITUNE_OPENAI_POLL_INTERVAL": "0.05", "NO_COLOR": "1", "COLUMNS": "200"})
    return env


def unitune(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "unitune", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def fake():
    procs = []

    def _start(*args):
        proc, root = start_server(*args)
        procs.append(proc)
        return root

    yield _start
    for p in procs:
        stop(p)


def test_server_cli_speaks_the_protocol(fake):
    import io

    root = fake("--fault", "429:2", "--retry-after", "0.01")
    client = openai.OpenAI(api_key="x", base_url=f"{root}/v1", max_retries=3)
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": str(i)},
                                             {"role": "assistant", "content": "ok"}]}) + "\n"
                    for i in range(10))
    f = client.files.create(file=("t.jsonl", io.BytesIO(lines.encode())), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id)
    assert job.status == "validating_files"
    st = state(root)  # a 429 means "not processed": the SDK's retries create one job here
    assert st == {"jobs": 1, "files": 1, "create_attempts": 3, "faults_left": 0}


def test_train_metrics_and_kill_mid_submit(fake, tmp_path):
    if not (ROOT / "examples" / "data" / "support_zh.jsonl").exists():
        pytest.skip("quickstart data not in the repo yet")
    root = fake()
    env = cli_env(root, tmp_path / "home")
    res = unitune(env, "train", str(QUICKSTART), "--backend", "openai")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ft:gpt-4.1-mini-2025-04-14:unitune-fake:support-zh:" in res.stdout + res.stderr
    assert "2027-01-06" in res.stderr  # the lifecycle warning
    assert state(root)["jobs"] == 1
    listed = json.loads(unitune(env, "list", "--json").stdout)
    jobs = listed if isinstance(listed, list) else listed.get("jobs", [])
    (job,) = jobs
    assert job["status"] == "succeeded"
    res = unitune(env, "metrics", job["id"], "--csv")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert lines[0].startswith("step") and len(lines) == 1 + 12
    # the same spec again re-attaches instead of creating a second job
    assert unitune(env, "train", str(QUICKSTART), "--backend", "openai").returncode == 0
    assert state(root)["jobs"] == 1

    # kill the CLI while the create request hangs (the job exists, the answer never came)
    root2 = fake("--fault", "timeout:1", "--hang", "30")
    env2 = cli_env(root2, tmp_path / "home2")
    proc = subprocess.Popen([sys.executable, "-m", "unitune", "train", str(QUICKSTART),
                             "--backend", "openai"], env=env2, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while state(root2)["create_attempts"] < 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert state(root2)["jobs"] == 1
    res = unitune(env2, "train", str(QUICKSTART), "--backend", "openai")
    assert res.returncode == 0, res.stdout + res.stderr
    st = state(root2)
    assert st["jobs"] == 1 and st["create_attempts"] == 1


def test_azure_train_then_deploy_prints_hourly_cost(fake, tmp_path):
    if not (ROOT / "examples" / "data" / "support_zh.jsonl").exists():
        pytest.skip("quickstart data not in the repo yet")
    root = fake("--azure")
    env = cli_env(root, tmp_path / "home")
    env.update({"AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": "azure-key-e2e",
                "AZURE_ARM_TOKEN": "arm-token-e2e", "UNITUNE_AZURE_POLL_INTERVAL": "0.05"})
    res = unitune(env, "train", str(QUICKSTART), "--backend", "azure")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "gpt-4.1-mini-2025-04-14.ft-" in res.stdout + res.stderr
    listed = json.loads(unitune(env, "list", "--json").stdout)
    (job,) = listed if isinstance(listed, list) else listed.get("jobs", [])
    arm = ["-o", "subscription_id=sub-1", "-o", "resource_group=rg-1", "-o", "account=acct-1",
           "-o", f"arm_endpoint={root}"]
    res = unitune(env, "deploy", job["id"], "--yes", *arm)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "$1.70/hour" in res.stderr and "deployed:" in res.stdout
    assert "/openai/deployments/" in res.stdout
    res = unitune(env, "undeploy", job["id"], *arm)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "arm-token-e2e" not in res.stdout + res.stderr


def test_cli_plan_request_is_what_train_sends(fake, tmp_path):
    """`unitune plan --json` prints the exact create body; `unitune train` then sends it (only
    the placeholders differ) — through the CLI, the Client and the fake as a separate process."""
    from tests.conformance.suite import same_except_placeholders

    root = fake()
    env = cli_env(root, tmp_path / "home")
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                             {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                    for i in range(20))
    (tmp_path / "train.jsonl").write_text(lines, encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: cli plan\nmodels: {openai: gpt-4o-mini-2024-07-18}\n"
                    "data: {train: train.jsonl, validation: 0.2}\nhyperparameters: {epochs: 2, "
                    "seed: 4}\nmetadata: {team: ml}\nbackend_options: {openai: {today: "
                    "2026-12-01, wandb: {project: p}}}\n", encoding="utf-8")
    res = unitune(env, "plan", str(spec), "--backend", "openai", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    planned = json.loads(res.stdout)
    assert planned["ready"] is True and planned["request"]["training_file"] == "<upload:train>"
    res = unitune(env, "train", str(spec), "--backend", "openai")
    assert res.returncode == 0, res.stdout + res.stderr
    with urllib.request.urlopen(f"{root}/_fake/last_request", timeout=5) as resp:
        sent = json.loads(resp.read())["body"]
    assert sent["integrations"] == [{"type": "wandb", "wandb": {"project": "p"}}]
    assert same_except_placeholders(planned["request"], sent) == []
