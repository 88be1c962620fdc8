"""An unreachable service stops after a bounded time with "cannot reach …" (issue 12 item 13),
instead of retrying for minutes without saying so."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_unreachable_openai_base_url_gives_up_in_bounded_time(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodels: {openai: gpt-4.1-mini-2025-04-14}\ndata: {train: d.jsonl}\n")
    port = _closed_port()
    env = {**os.environ, "UNITUNE_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": "sk-test-1234567",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "UNITUNE_CONNECT_DEADLINE": "3",
           "UNITUNE_RETRY_BASE": "0.5"}
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "unitune", "train", str(spec), "--backend",
                          "openai", "--detach"], capture_output=True, text=True, env=env,
                         timeout=120)
    elapsed = time.monotonic() - started
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"cannot reach http://127.0.0.1:{port}" in res.stderr
    assert "UNITUNE_CONNECT_DEADLINE" in res.stderr  # says how to wait longer
    assert "retry" in res.stderr  # and it said it was retrying while it did
    assert elapsed < 30, elapsed
