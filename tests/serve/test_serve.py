"""`unitune serve`: the exact server commands, the bind/API-key rule, and the launch → health →
registered endpoint → stop cycle. llama.cpp end to end where llama-cpp-python is available."""
from __future__ import annotations

import json
import os
import socket
import sys

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["serve", *args])
    return res.exit_code, res.stdout, res.stderr if hasattr(res, "stderr") else ""


def test_vllm_commands(in_job_home, monkeypatch):
    t = in_job_home
    monkeypatch.setenv("UNITUNE_VLLM", "/opt/vllm/bin/vllm")
    code, out, _ = _serve(t.job_id, "--engine", "vllm", "--dry-run", "--json")
    assert code == 0, out
    plan = json.loads(out)
    base = str(t.home / "models" / "tiny-chat")
    adapter = str(t.job_dir / "adapter")
    # r=4 → vLLM's smallest allowed --max-lora-rank (8); no merge exists, so base + adapter
    assert plan["argv"] == ["/opt/vllm/bin/vllm", "serve", base, "--host", "127.0.0.1",
                            "--port", "8000", "--served-model-name", f"{t.job_id}-base",
                            "--enable-lora", "--lora-modules", f"{t.job_id}={adapter}",
                            "--max-lora-rank", "8"]
    assert plan["model"] == t.job_id and plan["base_url"] == "http://127.0.0.1:8000/v1"
    code, out, _ = _serve(t.job_id, "--engine", "vllm", "--merged", "--port", "9001",
                          "--dry-run", "--json")
    plan = json.loads(out)
    assert plan["argv"][1:3] == ["serve", str(t.job_dir / "merged")]
    assert plan["argv"][-2:] == ["--served-model-name", t.job_id]
    assert plan["prepare"] and "merge" in plan["prepare"][0]


def test_vllm_missing_is_refused_after_printing_the_command(in_job_home, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    res = CliRunner().invoke(app, ["serve", in_job_home.job_id, "--engine", "vllm"])
    assert res.exit_code == 2
    assert "vllm serve" in res.output and "never installs it" in res.output


def test_rank_mapping():
    from unitune.errors import UnituneError
    from unitune.local.serving import vllm_rank

    assert [vllm_rank(r) for r in (1, 4, 8, 16, 17, 300)] == [1, 8, 8, 16, 32, 320]
    with pytest.raises(UnituneError):
        vllm_rank(1024)


def test_non_loopback_needs_a_key_shown_once_never_stored(in_job_home, monkeypatch):
    t = in_job_home
    monkeypatch.setenv("UNITUNE_VLLM", "vllm")
    res = CliRunner().invoke(app, ["serve", t.job_id, "--engine", "vllm", "--host", "0.0.0.0",
                                   "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["api_key"] == "***redacted***"
    assert plan["command"].startswith('VLLM_API_KEY="$UNITUNE_SERVE_API_KEY" ')
    assert "ut-" not in " ".join(plan["argv"]).replace(t.job_id, "")  # no key in argv
    shown = [line for line in res.output.splitlines() if line.startswith("API key")]
    assert len(shown) == 1 and len(shown[0].split()[-1]) > 20


def test_launch_health_register_stop(in_job_home, tmp_path):
    """The launch machinery with a stand-in OpenAI-compatible process (the bundled fake server,
    which also enforces the API key): health wait, registered endpoint, redacted key, stop."""
    from unitune.local import serving
    from unitune.registry import Registry

    t = in_job_home
    port = _free_port()
    key = "ut-test-key-0123456789abcdef"
    # like vLLM, the stand-in takes the key from VLLM_API_KEY (the plan's env), never argv
    stand_in = ("import os, sys; from unitune.testing.openai_server import main; "
                "main(['--port', sys.argv[1], '--api-key', os.environ['VLLM_API_KEY']])")
    plan = serving.ServePlan("vllm", [sys.executable, "-c", stand_in, str(port)],
                             "127.0.0.1", port, t.job_id, "merged", api_key=key)
    record = serving.launch(plan, t.job_dir, wait_s=60)
    try:
        assert serving.healthy(plan.base_url, key)
        assert not serving.healthy(plan.base_url, None)  # the key is enforced
        job = serving.register_endpoint(t.job_id, record)
        assert job.model.endpoint == f"http://127.0.0.1:{port}/v1"
        assert job.model.artifacts["serve_model"] == t.job_id
        assert job.model.artifacts["serve_api_key"] == "***redacted***"
        assert job.model.artifacts["serve_api_key_env"] == "UNITUNE_SERVE_API_KEY"
        assert serving.running(t.job_dir)["pid"] == record["pid"]
        for path in [t.home / "registry.sqlite3", t.job_dir / "serve" / "server.json"]:
            assert key.encode() not in path.read_bytes()
        # a second server for the same job is refused
        res = CliRunner().invoke(app, ["serve", t.job_id, "--engine", "vllm", "--port",
                                       str(_free_port())], env={"UNITUNE_VLLM": "true"})
        assert res.exit_code == 1 and "already served" in res.output
    finally:
        res = CliRunner().invoke(app, ["serve", t.job_id, "--stop"])
    assert res.exit_code == 0 and f"pid {record['pid']}" in res.output
    assert serving.running(t.job_dir) is None
    with Registry() as reg:
        model = reg.get_job(t.job_id).model
    assert model.endpoint is None and not any(k.startswith("serve_") for k in model.artifacts)


def test_port_in_use_is_refused(in_job_home):
    from unitune.errors import UnituneError
    from unitune.local import serving

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        plan = serving.ServePlan("vllm", ["true"], "127.0.0.1", port, "m", "merged")
        with pytest.raises(UnituneError, match="already in use"):
            serving.launch(plan, in_job_home.job_dir, wait_s=5)


def test_dead_server_reports_its_log(in_job_home):
    from unitune.errors import UnituneError
    from unitune.local import serving

    plan = serving.ServePlan("vllm", [sys.executable, "-c", "import sys; print('boom: no GPU');"
                                      " sys.exit(3)"], "127.0.0.1", _free_port(), "m", "merged")
    with pytest.raises(UnituneError, match="exited with code 3") as err:
        serving.launch(plan, in_job_home.job_dir, wait_s=30)
    assert "boom: no GPU" in err.value.message


def test_llama_cpp_command(in_job_home, job_gguf):
    t = in_job_home
    code, out, _ = _serve(t.job_id, "--gguf", job_gguf, "--port", "8123", "--dry-run",
                          "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert plan["argv"] == [sys.executable, "-m", "llama_cpp.server", "--model", job_gguf,
                            "--host", "127.0.0.1", "--port", "8123", "--model_alias", t.job_id,
                            "--chat_format", "chatml", "--n_ctx", "1024"]


@pytest.mark.gguf_fidelity
def test_llama_cpp_end_to_end(in_job_home, job_gguf, monkeypatch, request):
    """Where llama-cpp-python is available: launch, chat through the OpenAI SDK (with the
    generated key on a non-default loopback address), registered endpoint, stop."""
    from export.trained import llama_cpp_site

    site = llama_cpp_site(build="gguf_fidelity" in (request.config.getoption("markexpr") or ""))
    if site is None:
        pytest.skip("llama-cpp-python is not installed or cached (`pytest -m gguf_fidelity` "
                    "builds it into the test cache)")
    monkeypatch.syspath_prepend(str(site))  # for this process' check, and the server's:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site),
                                                                   os.environ.get("PYTHONPATH")])))
    t = in_job_home
    port = _free_port()
    res = CliRunner().invoke(app, ["serve", t.job_id, "--gguf", job_gguf, "--host", "127.0.0.2",
                                   "--port", str(port), "--detach", "--wait", "180", "--json"])
    try:
        assert res.exit_code == 0, res.output
        record = json.loads(res.stdout)
        key = [line for line in res.output.splitlines()
               if line.startswith("API key")][0].split()[-1]
        from openai import AuthenticationError, OpenAI

        from unitune.registry import Registry

        with Registry() as reg:
            model = reg.get_job(t.job_id).model
        assert model.endpoint == f"http://127.0.0.2:{port}/v1" == record["base_url"]
        client = OpenAI(base_url=model.endpoint, api_key=key)
        assert [m.id for m in client.models.list().data] == [t.job_id]
        answer = client.chat.completions.create(
            model=model.artifacts["serve_model"], max_tokens=8, temperature=0,
            messages=[{"role": "user", "content": "What is the capital of France?"}])
        assert answer.choices[0].finish_reason in ("stop", "length")
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=model.endpoint, api_key="wrong").models.list()
    finally:
        stop = CliRunner().invoke(app, ["serve", t.job_id, "--stop"])
    assert stop.exit_code == 0
