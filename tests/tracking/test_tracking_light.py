"""Tracking settings, shorthands, errors and import hygiene (no training)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.tracking import TrackingSpec
from unitune.tracking.settings import (RunInfo, default_mlflow_uri, mlflow_uri, spec_params,
                                       tensorboard_dir, wandb_settings)


def test_shorthands():
    assert TrackingSpec.model_validate("mlflow").to == ["mlflow"]
    assert TrackingSpec.model_validate("mlflow, TensorBoard").to == ["mlflow", "tensorboard"]
    assert TrackingSpec.model_validate(["wandb", "wandb"]).to == ["wandb"]
    full = TrackingSpec.model_validate({"to": ["mlflow"], "tracking_uri": "http://x:5000"})
    assert full.tracking_uri == "http://x:5000"
    with pytest.raises(ValueError):
        TrackingSpec.model_validate(["comet"])
    with pytest.raises(ValueError):
        TrackingSpec.model_validate({"to": ["mlflow"], "uri": "typo"})


def test_precedence(monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("UNITUNE_HOME", str(home))
    assert mlflow_uri(None) == default_mlflow_uri() == \
        f"sqlite:///{(home / 'mlflow' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert mlflow_uri(None) == "http://127.0.0.1:5000"
    assert mlflow_uri(TrackingSpec(tracking_uri="sqlite:///x.db")) == "sqlite:///x.db"
    assert tensorboard_dir(None, "ut-1") == home / "tensorboard" / "ut-1"
    assert wandb_settings(None)["mode"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "w"))
    assert wandb_settings(None) == {"mode": "online", "dir": str(tmp_path / "w"),
                                    "project": "unitune"}
    assert wandb_settings(TrackingSpec(wandb_mode="disabled"))["mode"] == "disabled"


def test_params_never_carry_backend_options():
    spec = {"name": "n", "method": "sft", "adapter": {"type": "lora", "r": 8, "alpha": None},
            "hyperparameters": {"learning_rate": 0.001, "seed": 1},
            "backend_options": {"bedrock": {"role_arn": "arn:aws:iam::1:role/x"}},
            "data": {"train": "a.jsonl", "validation": 0.1}, "metadata": {"k": "v"}}
    params = spec_params(spec)
    assert params == {"method": "sft", "adapter.type": "lora", "adapter.r": "8",
                      "hyperparameters.learning_rate": "0.001", "hyperparameters.seed": "1",
                      "data.train": "a.jsonl", "data.validation": "0.1"}
    info = RunInfo(job_id="ut-1", backend="bedrock", base_model="m", name="n")
    assert info.tags == {"unitune.job_id": "ut-1", "unitune.backend": "bedrock",
                         "unitune.base_model": "m", "unitune.name": "n"}


def test_local_option_and_env(monkeypatch):
    from unitune.local.options import LocalOptions, worker_options
    from unitune.options import resolve_options

    monkeypatch.setenv("UNITUNE_LOCAL_TRACKING", "mlflow,tensorboard")
    opts = resolve_options(LocalOptions, "local")
    assert opts.tracking.to == ["mlflow", "tensorboard"]
    assert worker_options(opts)["tracking"] == {"to": ["mlflow", "tensorboard"]}


def test_cli_refuses_an_unknown_tool():
    res = CliRunner().invoke(app, ["track", "ut-x", "--to", "comet"])
    assert res.exit_code == 2
    assert "mlflow, tensorboard or wandb" in res.output


def test_cli_unknown_job():
    res = CliRunner().invoke(app, ["track", "ut-nope", "--to", "mlflow"])
    assert res.exit_code == 1 and "no job" in res.output


def test_nothing_heavy_is_imported():
    code = ("import sys, unitune.tracking, unitune.cli.app, unitune.local.options; "
            "print(','.join(m for m in ('mlflow', 'tensorboard', 'wandb', 'torch', 'gguf') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
