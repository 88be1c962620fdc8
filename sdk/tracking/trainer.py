"""Live reporting from a local training job, through the trainer's own integrations.

The local worker asks for this with one call (`attach_trackers(callback, ctx)` in
`unitune.local.training.make_callback`) when the job has `tracking:`. Each tool is served by
transformers' own callback (`MLflowCallback`, `TensorBoardCallback`, `WandbCallback`: their
setup, environment conventions — `MLFLOW_*`, `WANDB_*` — and the TrainingArguments they log),
subclassed only so that what they log is the row unitune just wrote to `metrics.jsonl`, under
unitune's normalized keys (`train_loss`, `valid_loss`, `learning_rate`, `tokens_seen`, … plus
the trainer's extras such as `grad_norm`) at the unitune step. `unitune metrics JOB` and the
tracker therefore hold the same numbers, and a later `unitune track JOB` adds nothing twice.

The integration callbacks are not given to the Trainer (`report_to` stays "none", which would
add transformers' stock callbacks logging its own key names); the job-files callback forwards
the trainer's events to them. A tracker that fails is switched off with a warning event: it
never stops the training.
"""
from __future__ import annotations

import json
import os
from typing import Any

from .settings import RunInfo, tensorboard_dir, wandb_run_id, wandb_settings
from .sinks import MLflowSink, metric_values
from .spec import TrackingSpec, as_tracking

FORWARDED = ("on_train_begin", "on_train_end", "on_save", "on_evaluate")


def _mlflow_callback(info: RunInfo, spec: TrackingSpec | None):
    from transformers.integrations import MLflowCallback

    sink = MLflowSink(info, spec).open()  # experiment + tagged run + spec params, found or made
    os.environ["MLFLOW_TRACKING_URI"] = sink.uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = sink.experiment
    os.environ["MLFLOW_RUN_ID"] = sink.run_id or ""
    os.environ["MLFLOW_TAGS"] = json.dumps(info.tags)

    class UnituneMLflowCallback(MLflowCallback):
        unitune_where = sink.describe()

    return UnituneMLflowCallback()


def _tensorboard_callback(info: RunInfo, spec: TrackingSpec | None):
    from transformers.integrations import TensorBoardCallback

    log_dir = tensorboard_dir(spec, info.job_id)
    log_dir.mkdir(parents=True, exist_ok=True)

    class UnituneTensorBoardCallback(TensorBoardCallback):
        unitune_where = {"tool": "tensorboard", "log_dir": str(log_dir)}

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.tb_writer is None:
                self._init_summary_writer(args)
            for key, value in (logs or {}).items():  # unitune's keys, not rewrite_logs' train/…
                self.tb_writer.add_scalar(key, value, state.global_step)
            self.tb_writer.flush()

    cb = UnituneTensorBoardCallback()
    cb.logging_dir = str(log_dir)
    return cb


def _wandb_callback(info: RunInfo, spec: TrackingSpec | None):
    from transformers.integrations import WandbCallback

    settings = wandb_settings(spec)
    os.environ["WANDB_MODE"] = settings["mode"]
    os.environ["WANDB_DIR"] = settings["dir"]
    os.environ["WANDB_PROJECT"] = settings["project"]
    os.environ["WANDB_RUN_ID"] = wandb_run_id(info.job_id)
    os.environ["WANDB_RESUME"] = "allow"
    os.environ["WANDB_TAGS"] = ",".join(f"{k.split('.', 1)[1]}:{v}"[:64]
                                        for k, v in info.tags.items())
    os.makedirs(settings["dir"], exist_ok=True)

    class UnituneWandbCallback(WandbCallback):
        unitune_where = {"tool": "wandb", **settings, "run_id": wandb_run_id(info.job_id)}

        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            if not self._initialized:
                self.setup(args, state, model)
            self._wandb.log({**(logs or {}), "train/global_step": state.global_step},
                            step=state.global_step)

    return UnituneWandbCallback()


BUILDERS = {"mlflow": _mlflow_callback, "tensorboard": _tensorboard_callback,
            "wandb": _wandb_callback}


def _appended_rows(path, offset: int) -> list[dict]:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def attach_trackers(callback: Any, ctx: Any) -> Any:
    """Make the job-files `callback` also report to the job's trackers (main rank only);
    returns the same callback object."""
    try:
        spec = as_tracking(ctx.options.get("tracking"))
    except ValueError as exc:
        ctx.files.event(f"tracking settings ignored: {exc}", level="warning")
        return callback
    if spec is None or not ctx.is_main:
        return callback
    files = ctx.files
    info = RunInfo.from_job_dir(files.dir, _read(files.spec), _read(files.job))
    trackers: list[Any] = []
    for tool in spec.to:
        try:
            cb = BUILDERS[tool](info, spec)
        except Exception as exc:  # noqa: BLE001 - a missing or broken tracker never stops training
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            files.event(f"tracking to {tool} is off: {message}", level="warning")
            continue
        trackers.append(cb)
        files.event(f"reporting live to {tool}", **getattr(cb, "unitune_where", {}))
    if not trackers:
        return callback

    def call(tracker: Any, event: str, *args: Any, **kwargs: Any) -> None:
        if tracker in trackers:
            try:
                getattr(tracker, event)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                trackers.remove(tracker)
                files.event(f"tracking to {type(tracker).__name__} stopped: "
                            f"{type(exc).__name__}: {exc}", level="warning")

    def forward(event: str):
        own = getattr(callback, event)

        def handler(args, state, control, **kwargs):
            result = own(args, state, control, **kwargs)
            for tracker in list(trackers):
                call(tracker, event, args, state, control, **kwargs)
            return result
        return handler

    for event in FORWARDED:
        setattr(callback, event, forward(event))
    own_log = callback.on_log
    sent: dict[str, set] = {}

    def on_log(args, state, control, logs=None, **kwargs):
        try:
            offset = files.metrics.stat().st_size
        except OSError:
            offset = 0
        result = own_log(args, state, control, logs=logs, **kwargs)
        for row in _appended_rows(files.metrics, offset):  # exactly what metrics.jsonl got
            # a train and an eval row at one step share e.g. `epoch`: one point per key and step,
            # as `unitune metrics` merges them
            step = row.get("step")
            values = {k: v for k, v in metric_values(row, extras=True).items()
                      if step not in sent.setdefault(k, set())}
            for key in values:
                sent[key].add(step)
            if values:
                for tracker in list(trackers):
                    call(tracker, "on_log", args, state, control, logs=values, **kwargs)
        return result

    callback.on_log = on_log
    return callback


def _read(path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
