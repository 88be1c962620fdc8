"""`unitune demo` visibly learns, from any directory: the tiny model is built (and pre-trained)
from nothing, the job's final training loss is at most half its first logged value, and the
evaluation at the end shows the tuned model ahead of its base on chrF."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_bundled_demo_spec_and_data_ship_in_the_package():
    from unitune import demo
    from unitune.data.validate import validate_file
    from unitune.spec import JobSpec

    spec = JobSpec.load(demo.SPEC)
    assert spec.data_path("train") == demo.DATA and demo.DATA.is_file()
    report = validate_file(demo.DATA, targets=[f"{b}:{m}" for b, m in spec.models.items()])
    assert report.ok and report.examples == 150
    text = Path(__file__).resolve().parents[2].joinpath("pyproject.toml").read_text()
    assert '"unitune.demo" = ["*.yaml", "*.jsonl"]' in text


def test_make_examples_regenerates_the_bundled_demo_data():
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "examples" / "data" / "make_examples.py"),
                          "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_demo_learns_from_any_directory(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items()}
    env.update(COLUMNS="200", UNITUNE_HOME=str(tmp_path / "home"))
    started = time.monotonic()
    out = subprocess.run([str(Path(sys.executable).with_name("unitune")), "demo"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr
    from unitune.client import Client

    monkeypatch.setenv("UNITUNE_HOME", str(tmp_path / "home"))
    client = Client()
    job = client.list()[0]
    rows = client.metrics(job.id)
    losses = [r.train_loss for r in rows if r.train_loss is not None]
    assert losses[-1] <= 0.5 * losses[0], losses
    reports = sorted((tmp_path / "home" / "jobs" / job.id / "eval").glob("*/report.json"))
    report = json.loads(reports[-1].read_text())
    chrf = report["metrics"]["chrf"]
    assert chrf["tuned"] > chrf["base"] and chrf["ci95"][0] > 0, chrf
    assert re.search(r"chrF [\d.]+ → [\d.]+ \(tuned ahead", out.stdout)
    print(f"demo took {took:.0f}s here; loss {losses[0]:.3f} → {losses[-1]:.3f}; "
          f"chrF {chrf['base']:.1f} → {chrf['tuned']:.1f}")
