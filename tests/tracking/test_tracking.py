"""Experiment tracking, end to end: a live local run and a fake cloud job in MLflow and
TensorBoard, read back with the tools' own readers and compared with `unitune metrics --json`."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.job import Metrics

pytestmark = pytest.mark.slow
KEYS = [c for c in Metrics.COLUMNS if c != "step"]


def _metrics_json(job_id: str) -> list[dict]:
    res = CliRunner().invoke(app, ["metrics", job_id, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _expected(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(r["step"], float(r[key])) for r in rows if r.get(key) is not None]


def _mlflow_runs(home):
    """`mlflow.search_runs` on the embedded store (through MLFLOW_TRACKING_URI, restored after:
    `mlflow.set_tracking_uri` would leak into the environment of later tests)."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
        return mlflow.search_runs(experiment_names=["unitune"], output_format="list")


def test_mlflow_holds_both_runs_row_for_row(in_tracked_home):
    from mlflow.tracking import MlflowClient

    t = in_tracked_home
    runs = {r.data.tags["unitune.job_id"]: r for r in _mlflow_runs(t.home)}
    assert set(runs) == {t.local_id, t.fake_id}
    assert runs[t.local_id].data.tags["unitune.backend"] == "local"
    assert runs[t.local_id].data.tags["unitune.base_model"] == "unitune/tiny-chat"
    assert runs[t.fake_id].data.tags["unitune.backend"] == "fake"
    assert runs[t.fake_id].data.tags["unitune.base_model"] == "fake-base"
    # params from the spec; the live run also has the trainer's own TrainingArguments
    assert runs[t.local_id].data.params["adapter.r"] == "4"
    assert runs[t.local_id].data.params["hyperparameters.max_steps"] == "4"
    assert "per_device_train_batch_size" in runs[t.local_id].data.params
    assert runs[t.fake_id].data.params["method"] == "sft"
    assert runs[t.fake_id].info.status == "FINISHED"

    client = MlflowClient(f"sqlite:///{t.home / 'mlflow' / 'mlflow.db'}")
    for job_id in (t.local_id, t.fake_id):
        rows = _metrics_json(job_id)
        assert len(rows) >= 4
        checked = 0
        for key in KEYS:
            want = _expected(rows, key)
            got = sorted((m.step, m.value) for m in
                         client.get_metric_history(runs[job_id].info.run_id, key))
            assert got == want, (job_id, key)
            checked += bool(want)
        assert checked >= 3  # train_loss, learning_rate, epoch at least
    local_rows = _metrics_json(t.local_id)
    assert _expected(local_rows, "valid_loss"), "the local run evaluated (eval_steps=2)"
    assert "grad_norm" in runs[t.local_id].data.metrics  # the trainer's extras, live only


def test_fake_job_was_mirrored_while_polled(in_tracked_home):
    # every poll of the running fake job went through the live mirror (not one final write)
    assert in_tracked_home.fake_polls >= 6


def test_tensorboard_event_files_hold_the_same_values(in_tracked_home):
    import numpy as np
    from tensorboard.backend.event_processing import event_accumulator as ea

    t = in_tracked_home
    for job_id in (t.local_id, t.fake_id):
        acc = ea.EventAccumulator(str(t.home / "tensorboard" / job_id),
                                  size_guidance={ea.SCALARS: 0})
        acc.Reload()
        rows = _metrics_json(job_id)
        tags = set(acc.Tags()["scalars"])
        for key in KEYS:
            want = _expected(rows, key)
            if not want:
                assert key not in tags
                continue
            got = [(e.step, e.value) for e in acc.Scalars(key)]
            assert [s for s, _ in got] == [s for s, _ in want], (job_id, key)
            # TensorBoard stores scalars as float32
            assert [v for _, v in got] == [float(np.float32(v)) for _, v in want], (job_id, key)


def test_track_again_logs_nothing_twice(in_tracked_home):
    t = in_tracked_home
    for job_id in (t.local_id, t.fake_id):
        res = CliRunner().invoke(app, ["track", job_id, "--to", "mlflow", "--to", "tensorboard",
                                       "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert [(r["tool"], r["logged"]) for r in out] == [("mlflow", 0), ("tensorboard", 0)]
    assert len(_mlflow_runs(t.home)) == 2


def test_tool_conventions_win_over_the_embedded_default(in_tracked_home, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from unitune.tracking import mirror

    t = in_tracked_home
    env_uri = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    [res] = mirror(t.fake_id, to="mlflow")
    assert res.where["tracking_uri"] == env_uri and res.where["experiment"] == "from-env"
    rows = _metrics_json(t.fake_id)
    assert res.logged == sum(len(_expected(rows, k)) for k in KEYS)
    runs = MlflowClient(env_uri).search_runs(
        [MlflowClient(env_uri).get_experiment_by_name("from-env").experiment_id])
    assert [r.data.tags["unitune.job_id"] for r in runs] == [t.fake_id]
    # the spec's tracking_uri wins over the environment
    spec_uri = f"sqlite:///{tmp_path / 'spec.db'}"
    [res] = mirror(t.fake_id, to="mlflow", tracking={"tracking_uri": spec_uri,
                                                     "experiment": "mine"})
    assert res.where["tracking_uri"] == spec_uri and res.logged > 0
    # and `unitune metrics … --to` style mirroring of the finished local job adds nothing new
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    [res] = mirror(t.local_id, to=["mlflow"])
    assert res.logged == 0


def test_wandb_offline_runs_hold_the_same_values(in_tracked_home, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (optional `tracking` extra)")
    from unitune.tracking import mirror

    from .wandb_log import history

    t = in_tracked_home
    root = t.home / "wandb" / "wandb"  # WANDB_DIR defaults to UNITUNE_HOME/wandb
    for job_id in (t.local_id, t.fake_id):  # live: the trainer's WandbCallback / LiveMirror
        by_step: dict[int, dict] = {}
        for h in history(root, job_id):
            by_step.setdefault(h["_step"], {}).update(h)
        assert by_step, f"no offline W&B history for {job_id}"
        rows = _metrics_json(job_id)
        for key in KEYS:
            got = sorted((s, float(v[key])) for s, v in by_step.items() if key in v)
            assert got == _expected(rows, key), (job_id, key)
    # after the fact, into another W&B dir, offline by default; a repeat logs nothing
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    [res] = mirror(t.fake_id, to="wandb")
    assert res.where["mode"] == "offline" and res.logged > 0
    [again] = mirror(t.fake_id, to="wandb")
    assert again.logged == 0
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1
    assert sorted(h["_step"] for h in history(tmp_path / "wandb", t.fake_id)) == \
        sorted({r["step"] for r in _metrics_json(t.fake_id)})
