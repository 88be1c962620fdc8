"""Experiment tracking: a job's normalized curves in MLflow, TensorBoard or Weights & Biases.

    from unitune.tracking import mirror, TrackingSpec
    mirror("ut-20261204-abc123", to=["mlflow", "tensorboard"])   # after the fact, any backend

Local jobs report live from their worker through the trainer's own integrations
(`unitune.tracking.trainer`); cloud jobs are mirrored as they are polled (`LiveMirror`,
`follow`). Nothing here imports mlflow, tensorboard or wandb until a sink is opened; the
trackers are the optional `tracking` extra. See docs/tracking.md.
"""
from __future__ import annotations

from typing import Any

from .spec import TOOLS, TrackingSpec, as_tracking

__all__ = ["TOOLS", "TrackingSpec", "as_tracking", "mirror", "follow", "LiveMirror", "Mirrored",
           "RunInfo"]


def __getattr__(name: str) -> Any:  # lazy: the sinks import nothing heavy until used
    if name in ("mirror", "follow", "LiveMirror", "Mirrored"):
        from . import mirroring as _m

        return getattr(_m, name)
    if name == "RunInfo":
        from .settings import RunInfo

        return RunInfo
    raise AttributeError(name)
