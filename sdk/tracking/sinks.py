"""One sink per tracker: open (or find again) the job's run, log metric rows once, close.

Every sink is idempotent: mirroring a job twice, or after the local worker already reported it
live, logs only the (metric, step) pairs the tool does not hold yet. MLflow is asked (the run
is found by its `unitune.job_id` tag, each metric's history read back); TensorBoard's event files
in the job's folder are read back with tensorboard's own reader; W&B (whose steps only grow)
keeps the last mirrored step in a small state file beside its runs.

Metric keys are unitune's normalized column names (`Metrics.COLUMNS`: `train_loss`,
`valid_loss`, `learning_rate`, `tokens_seen`, …) and the step is the unitune step.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import MissingDependency, UnituneError
from .settings import (RunInfo, TAG_JOB, default_artifact_root, default_mlflow_uri,
                       experiment_name, mlflow_uri, tensorboard_dir, wandb_run_id, wandb_settings)
from .spec import TrackingSpec

# columns of a Metrics row that are not metrics
_NOT_METRICS = ("step", "elapsed_s", "time")
_FINAL = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


def metric_values(row: Any, *, extras: bool = False) -> dict[str, float]:
    """{normalized key: value} of one metrics row (a Metrics or a metrics.jsonl dict); None
    values left out. With `extras`, other numeric fields (grad_norm, rewards/…) too."""
    from ..job import Metrics

    data = row.model_dump() if hasattr(row, "model_dump") else dict(row)
    out: dict[str, float] = {}
    for key in Metrics.COLUMNS:
        if key not in _NOT_METRICS and data.get(key) is not None:
            out[key] = float(data[key])
    if extras:
        for key, value in data.items():
            if key in out or key in _NOT_METRICS or key in Metrics.COLUMNS:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
    return out


def _step(row: Any) -> int:
    return int(row.step if hasattr(row, "step") else row["step"])


def _require(module: str, extra: str = "tracking") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependency(f"{top} is not installed ({exc})",
                                hint=f"pip install 'unitune[{extra}]'  (or pip install {top})") \
            from None


class MLflowSink:
    """One MLflow run per job, found again by its `unitune.job_id` tag."""

    tool = "mlflow"

    def __init__(self, info: RunInfo, spec: TrackingSpec | None = None) -> None:
        self.info, self.spec = info, spec
        self.uri = mlflow_uri(spec)
        self.experiment = experiment_name(spec, "mlflow")
        self.run_id: str | None = None
        self._client: Any = None
        self._seen: dict[str, set[int]] = {}

    def open(self) -> "MLflowSink":
        _require("mlflow")
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            self._client = client = MlflowClient(tracking_uri=self.uri)
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                artifacts = default_artifact_root() if self.uri == default_mlflow_uri() else None
                try:
                    exp_id = client.create_experiment(self.experiment,
                                                      artifact_location=artifacts)
                except MlflowException:  # created meanwhile by another process
                    exp_id = client.get_experiment_by_name(self.experiment).experiment_id
            else:
                exp_id = exp.experiment_id
            found = client.search_runs(
                [exp_id], filter_string=f"tags.`{TAG_JOB}` = '{self.info.job_id}'",
                max_results=1, order_by=["attributes.start_time ASC"])
            if found:
                run = found[0]
                self.run_id = run.info.run_id
                have_params = dict(run.data.params)
                self._seen = {key: {m.step for m in client.get_metric_history(self.run_id, key)}
                              for key in run.data.metrics}
            else:
                run = client.create_run(exp_id, run_name=self.info.run_name, tags=self.info.tags)
                self.run_id = run.info.run_id
                have_params = {}
            from mlflow.entities import Param, RunTag

            params = [Param(k, v) for k, v in self.info.params.items() if k not in have_params]
            tags = [RunTag(k, v) for k, v in self.info.tags.items()]
            for i in range(0, max(len(params), 1), 100):
                client.log_batch(self.run_id, params=params[i:i + 100],
                                 tags=tags if i == 0 else [])
        except MlflowException as exc:
            raise UnituneError(f"MLflow at {self.uri}: {exc.message}",
                               hint="check MLFLOW_TRACKING_URI / tracking.tracking_uri") from None
        return self

    def log(self, rows: Iterable[Any]) -> int:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = []
        for row in rows:
            step = _step(row)
            for key, value in metric_values(row).items():
                if step in self._seen.setdefault(key, set()):
                    continue
                self._seen[key].add(step)
                batch.append(Metric(key, value, now, step))
        for i in range(0, len(batch), 1000):
            self._client.log_batch(self.run_id, metrics=batch[i:i + 1000])
        return len(batch)

    def close(self, status: str | None) -> None:
        final = _FINAL.get(str(status or ""))
        if final and self._client is not None and self.run_id:
            self._client.set_terminated(self.run_id, status=final)

    def describe(self) -> dict[str, Any]:
        return {"tool": self.tool, "tracking_uri": self.uri, "experiment": self.experiment,
                "run_id": self.run_id}


class TensorBoardSink:
    """Scalars in `<log_dir>/<job id>/`, written with tensorboard's own event-file writer."""

    tool = "tensorboard"

    def __init__(self, info: RunInfo, spec: TrackingSpec | None = None) -> None:
        self.info, self.spec = info, spec
        self.dir = tensorboard_dir(spec, info.job_id)
        self._writer: Any = None
        self._seen: dict[str, set[int]] = {}

    def open(self) -> "TensorBoardSink":
        _require("tensorboard")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._seen = read_tensorboard(self.dir)
        return self

    def log(self, rows: Iterable[Any]) -> int:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        n = 0
        for row in rows:
            step = _step(row)
            values = [Summary.Value(tag=k, simple_value=v)
                      for k, v in metric_values(row).items()
                      if step not in self._seen.setdefault(k, set())]
            if not values:
                continue
            if self._writer is None:
                from tensorboard.summary.writer.event_file_writer import EventFileWriter

                self._writer = EventFileWriter(str(self.dir), filename_suffix=".unitune")
            self._writer.add_event(Event(wall_time=time.time(), step=step,
                                         summary=Summary(value=values)))
            for v in values:
                self._seen[v.tag].add(step)
            n += len(values)
        if self._writer is not None:
            self._writer.flush()
        return n

    def close(self, status: str | None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def describe(self) -> dict[str, Any]:
        return {"tool": self.tool, "log_dir": str(self.dir)}


def read_tensorboard(log_dir: Path) -> dict[str, set[int]]:
    """{tag: steps} of the scalars already in `log_dir` (tensorboard's EventAccumulator)."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    if not any(Path(log_dir).glob("events.out.tfevents.*")):
        return {}
    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return {tag: {e.step for e in acc.Scalars(tag)} for tag in acc.Tags().get("scalars", [])}


class WandbSink:
    """A W&B run whose id is derived from the job id; offline unless told otherwise."""

    tool = "wandb"

    def __init__(self, info: RunInfo, spec: TrackingSpec | None = None) -> None:
        self.info, self.spec = info, spec
        self.settings = wandb_settings(spec)
        self.run_id = wandb_run_id(info.job_id)
        self._run: Any = None
        self._state = Path(self.settings["dir"]) / "unitune-mirror" / f"{self.run_id}.json"
        self._last = -1

    def open(self) -> "WandbSink":
        _require("wandb")
        try:
            self._last = int(json.loads(self._state.read_text()).get("last_step", -1))
        except (OSError, ValueError):
            self._last = -1
        return self

    def _start(self) -> Any:
        """The W&B run, started on the first new point (a repeat mirror starts none)."""
        if self._run is None:
            import wandb

            Path(self.settings["dir"]).mkdir(parents=True, exist_ok=True)
            self._run = wandb.init(
                project=self.settings["project"], id=self.run_id, resume="allow",
                mode=self.settings["mode"], dir=self.settings["dir"], name=self.info.run_name,
                tags=[f"{k.split('.', 1)[1]}:{v}"[:64] for k, v in self.info.tags.items()],
                config={**self.info.params, **self.info.tags},
                settings=wandb.Settings(silent=True, console="off"))
        return self._run

    def log(self, rows: Iterable[Any]) -> int:
        n = 0
        for row in sorted(rows, key=_step):
            step = _step(row)
            values = metric_values(row)
            if step <= self._last or not values:
                continue
            self._start().log(values, step=step)
            self._last = step
            n += len(values)
        self._state.parent.mkdir(parents=True, exist_ok=True)
        self._state.write_text(json.dumps({"job_id": self.info.job_id, "last_step": self._last}))
        return n

    def close(self, status: str | None) -> None:
        if self._run is not None:
            self._run.finish(exit_code=0 if str(status) in ("succeeded", "None", "") else 1)
            self._run = None
            import wandb

            if wandb.run is None:  # finish() returns before the offline file is flushed;
                wandb.teardown()   # tearing the idle service down writes it completely

    def describe(self) -> dict[str, Any]:
        return {"tool": self.tool, "mode": self.settings["mode"], "dir": self.settings["dir"],
                "project": self.settings["project"], "run_id": self.run_id}


SINKS = {"mlflow": MLflowSink, "tensorboard": TensorBoardSink, "wandb": WandbSink}


def make_sink(tool: str, info: RunInfo, spec: TrackingSpec | None = None) -> Any:
    try:
        return SINKS[tool](info, spec)
    except KeyError:
        raise UnituneError(f"unknown tracker {tool!r}",
                           hint=f"choose one of: {', '.join(SINKS)}") from None
