"""Where each tracker writes, and what a run is called and tagged with.

Precedence, for every tool: what the job's `tracking:` says, then the tool's own environment
conventions, then unitune's embedded default (never a server):

* MLflow: `tracking_uri` > `MLFLOW_TRACKING_URI` > `sqlite:///UNITUNE_HOME/mlflow/mlflow.db`;
  experiment: `experiment` > `MLFLOW_EXPERIMENT_NAME` > `unitune`.
* TensorBoard: `log_dir` > `UNITUNE_HOME/tensorboard`, one sub-folder per job id.
* W&B: `wandb_mode` > `WANDB_MODE` > `offline`; `WANDB_DIR` > `UNITUNE_HOME/wandb`;
  project: `experiment` > `WANDB_PROJECT` > `unitune`.

`RunInfo` is what every tracker is told about a job: its id, name, backend and base model (the
tags) and the spec's settings as flat parameters (`method`, `adapter.r`,
`hyperparameters.learning_rate`, …; account settings in `backend_options` are never sent).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import unitune_home
from .spec import TrackingSpec

DEFAULT_EXPERIMENT = "unitune"
TAG_JOB, TAG_BACKEND, TAG_MODEL, TAG_NAME = ("unitune.job_id", "unitune.backend",
                                             "unitune.base_model", "unitune.name")
# spec sections sent as parameters (backend_options can hold account details: never sent)
_PARAM_SECTIONS = ("method", "adapter", "hyperparameters", "data", "suffix")


def mlflow_uri(spec: TrackingSpec | None) -> str:
    if spec is not None and spec.tracking_uri:
        return spec.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return default_mlflow_uri()


def default_mlflow_uri() -> str:
    root = unitune_home() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def default_artifact_root() -> str:
    return (unitune_home() / "mlflow" / "artifacts").resolve().as_uri()


def experiment_name(spec: TrackingSpec | None, tool: str = "mlflow") -> str:
    if spec is not None and spec.experiment:
        return spec.experiment
    var = "MLFLOW_EXPERIMENT_NAME" if tool == "mlflow" else "WANDB_PROJECT"
    return os.environ.get(var) or DEFAULT_EXPERIMENT


def tensorboard_dir(spec: TrackingSpec | None, job_id: str) -> Path:
    root = Path(spec.log_dir).expanduser() if spec is not None and spec.log_dir else \
        unitune_home() / "tensorboard"
    return root / job_id


def wandb_settings(spec: TrackingSpec | None) -> dict[str, str]:
    """mode, dir and project for W&B (offline unless the spec or WANDB_MODE says otherwise)."""
    mode = (spec.wandb_mode if spec is not None and spec.wandb_mode else None) \
        or os.environ.get("WANDB_MODE") or "offline"
    wdir = os.environ.get("WANDB_DIR") or str(unitune_home() / "wandb")
    return {"mode": mode, "dir": wdir, "project": experiment_name(spec, "wandb")}


def wandb_run_id(job_id: str) -> str:
    """A W&B run id derived from the job id (W&B allows letters, digits, `-` and `_`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", job_id)[:64]


@dataclass
class RunInfo:
    """What every tracker is told about one unitune job."""

    job_id: str
    backend: str
    base_model: str | None = None
    name: str | None = None
    status: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        tags = {TAG_JOB: self.job_id, TAG_BACKEND: self.backend}
        if self.base_model:
            tags[TAG_MODEL] = self.base_model
        if self.name:
            tags[TAG_NAME] = self.name
        return tags

    @property
    def run_name(self) -> str:
        return f"{self.name}-{self.job_id}" if self.name else self.job_id

    @classmethod
    def from_record(cls, rec: Any) -> "RunInfo":
        """From a registry JobRecord (any backend)."""
        return cls(job_id=rec.id, backend=rec.backend, base_model=rec.base_model, name=rec.name,
                   status=str(rec.status), params=spec_params(rec.spec or {}))

    @classmethod
    def from_job_dir(cls, job_dir: Path, spec: dict[str, Any], job: dict[str, Any]) -> "RunInfo":
        """From a local job's folder (the worker's view: spec.json and job.json)."""
        return cls(job_id=job.get("job_id") or Path(job_dir).name, backend="local",
                   base_model=job.get("base_model") or spec.get("base_model"),
                   name=spec.get("name"), status="running", params=spec_params(spec))


def spec_params(spec: dict[str, Any]) -> dict[str, str]:
    """The spec's settings as flat `section.field` parameters (None values left out)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif value is not None:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            out[prefix] = text[:500]

    for section in _PARAM_SECTIONS:
        if section in spec:
            walk(section, spec[section])
    return out
