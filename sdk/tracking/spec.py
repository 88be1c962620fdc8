"""`tracking:` — where a job's curves go (MLflow, TensorBoard, Weights & Biases).

One small pydantic model, used by the job spec (`tracking:` at the top level), by the local
backend's options (`backend_options.local.tracking`, `UNITUNE_LOCAL_TRACKING=mlflow`) and by
`unitune track` / `unitune.tracking.mirror`. Shorthands are accepted: `tracking: mlflow`,
`tracking: [mlflow, tensorboard]`, or the full mapping.

Where each tool writes is decided by the tool's own conventions first (`settings.py`): the
spec's `tracking_uri`, then `MLFLOW_TRACKING_URI`, then the embedded default (an SQLite store
under `UNITUNE_HOME`, no server); `WANDB_MODE` / `WANDB_DIR` / `WANDB_PROJECT` likewise.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tool = Literal["mlflow", "tensorboard", "wandb"]
TOOLS: tuple[str, ...] = ("mlflow", "tensorboard", "wandb")


class TrackingSpec(BaseModel):
    """Experiment tracking for a job: its normalized metrics (`train_loss`, `valid_loss`,
    `learning_rate`, … with the step as the step), tagged with the unitune job id, backend and
    base model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    to: list[Tool] = Field(default_factory=lambda: ["mlflow"], description=
                           "Tools to report to: mlflow, tensorboard, wandb (any of them).")
    tracking_uri: Optional[str] = Field(None, description="MLflow tracking URI (a server such as "
                                        "http://127.0.0.1:5000, or sqlite:///path). Default: "
                                        "MLFLOW_TRACKING_URI, else an SQLite store under "
                                        "UNITUNE_HOME/mlflow.")
    experiment: Optional[str] = Field(None, description="MLflow experiment / W&B project. "
                                      "Default: MLFLOW_EXPERIMENT_NAME / WANDB_PROJECT, else "
                                      "'unitune'.")
    log_dir: Optional[str] = Field(None, description="TensorBoard root (one sub-folder per job). "
                                   "Default: UNITUNE_HOME/tensorboard.")
    wandb_mode: Optional[Literal["offline", "online", "disabled"]] = Field(
        None, description="W&B mode. Default: WANDB_MODE, else offline (nothing leaves the "
                          "machine until `wandb sync`).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return {"to": list(value)}
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            value = [v.lower() if isinstance(v, str) else v for v in value]
            if not value:
                raise ValueError("name at least one tool: mlflow, tensorboard or wandb")
            return list(dict.fromkeys(value))  # de-duplicated, order kept
        return value


def as_tracking(value: Any) -> TrackingSpec | None:
    """A TrackingSpec from whatever a spec, an option or a flag holds (None stays None)."""
    if value is None or isinstance(value, TrackingSpec):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return TrackingSpec.model_validate(value)
