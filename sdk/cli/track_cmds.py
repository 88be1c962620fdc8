"""`unitune track`: a job's normalized metrics mirrored into MLflow, TensorBoard or W&B."""
from __future__ import annotations

from typing import List, Optional

import typer

from .common import console, handle_errors, print_json

VIEW = {"mlflow": "mlflow ui --backend-store-uri {tracking_uri}",
        "tensorboard": "tensorboard --logdir {log_dir}",
        "wandb": "wandb sync {dir}/wandb/offline-run-*   (offline runs; nothing was uploaded)"}


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def track(job: str = typer.Argument(..., help="Job id (or a unique prefix), any backend."),
              to: Optional[List[str]] = typer.Option(None, "--to", help="mlflow, tensorboard or "
                                                     "wandb (repeat for several; default: the "
                                                     "job's `tracking:`, else mlflow)."),
              follow: bool = typer.Option(False, "--follow", "-f", help="Keep watching the job "
                                          "and mirror new rows as they are polled."),
              tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow "
                                                         "tracking URI (default: "
                                                         "MLFLOW_TRACKING_URI, else an SQLite "
                                                         "store under UNITUNE_HOME)."),
              experiment: Optional[str] = typer.Option(None, "--experiment", help="MLflow "
                                                       "experiment / W&B project (default "
                                                       "'unitune')."),
              log_dir: Optional[str] = typer.Option(None, "--log-dir", help="TensorBoard root "
                                                    "(default UNITUNE_HOME/tensorboard)."),
              wandb_mode: Optional[str] = typer.Option(None, "--wandb-mode", help="offline "
                                                       "(default), online or disabled."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Mirror a job's metrics (train_loss, valid_loss, learning_rate, … per step) into
        MLflow, TensorBoard or Weights & Biases; repeating it logs nothing twice."""
        from ..client import Client
        from ..errors import SpecError
        from ..tracking import TrackingSpec, follow as do_follow, mirror

        settings = None
        given = {k: v for k, v in (("tracking_uri", tracking_uri), ("experiment", experiment),
                                   ("log_dir", log_dir), ("wandb_mode", wandb_mode)) if v}
        try:
            if given or to:
                settings = TrackingSpec(**({"to": to} if to else {}), **given)
        except ValueError as exc:
            raise SpecError(f"invalid tracking option: {_first_error(exc)}",
                            hint="--to takes mlflow, tensorboard or wandb; --wandb-mode "
                                 "offline, online or disabled") from None
        err = console(stderr=True)
        client = Client(log=(lambda _m: None) if as_json else (lambda m: err.print(m,
                                                                               markup=False)))
        tools = settings.to if (settings and to) else None
        if follow:
            results = do_follow(job, tools, client=client, tracking=settings)
        else:
            results = mirror(job, tools, client=client, tracking=settings)
        if as_json:
            print_json([r.to_dict() for r in results])
            return
        out = console()
        for r in results:
            where = ", ".join(f"{k} {v}" for k, v in r.where.items() if k != "tool" and v)
            out.print(f"{r.tool}: {r.logged} new point(s) for {r.job_id} ({where})",
                      markup=False)
            try:
                out.print("  view: " + VIEW[r.tool].format(**r.where), markup=False,
                          style="dim")
            except KeyError:
                pass


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)
