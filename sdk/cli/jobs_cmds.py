"""Lifecycle commands: train, status, list, watch, cancel, metrics, logs, resume, deploy, undeploy.

Every command has `--json` for scripts. Long waits show a progress display on stderr (a live
panel on a terminal, one line per change otherwise). `train` and `watch` exit 0 only when the job
succeeded; a failed or cancelled job exits 1 with the vendor's reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from .common import EXIT_FAIL, EXIT_USAGE, console, fail, handle_errors, print_json
from .display import Progress, esc, fmt_cell, plot_losses, sparkline, status_style

# -- helpers (imports inside, so `unitune --help` stays light) ---------------------------------------
def _client(quiet: bool = False):
    from ..client import Client

    err = console(stderr=True)
    log = (lambda _m: None) if quiet else (lambda m: err.print(f"[dim]{esc(m)}[/]"))
    return Client(log=log)


def _out():
    return console()


def _job_dict(job, history: list | None = None) -> dict:
    out = job.model_dump(mode="json")
    if history is not None:
        out["history"] = history
    return out


def _live_mirror(client: Any, spec: Path, backend: str | None, track: list[str] | None):
    """The LiveMirror for `train`: `--track` tools (added to the spec's `tracking:`), or the
    spec's `tracking:` for a cloud job (a local job reports live from its own worker)."""
    from ..spec import JobSpec

    loaded = JobSpec.load(spec)
    tracking = loaded.tracking
    if not track and (tracking is None or (backend or loaded.backend) == "local"):
        return None
    from ..tracking import LiveMirror, TrackingSpec

    if track:
        tracking = TrackingSpec(**{**(tracking.model_dump() if tracking else {}), "to": track})
    return LiveMirror(client, tracking=tracking, log=client.log)


def _finish(job, as_json: bool, history: list | None = None) -> None:
    """Print the final job and exit 0 only when it succeeded."""
    if as_json:
        print_json(_job_dict(job, history))
    else:
        out = _out()
        out.print(f"[{status_style(job.status)}]{job.status}[/]: {job.id} "
                  f"[dim]({esc(job.backend)} {esc(job.remote_id or '')})[/]")
        if job.model is not None:
            out.print(f"model: {esc(job.model.model_id)}")
            if job.model.invoke:
                out.print(f"[dim]use it: {esc(job.model.invoke)}[/]")
    if str(job.status) == "succeeded":
        return
    reason = job.error.message if job.error else (job.raw_status or str(job.status))
    code = f" [{job.error.code}]" if job.error and job.error.code else ""
    raise fail(f"job {job.id} {job.status}: {reason}{code}",
               f"`unitune logs {job.id}` shows the vendor's events", EXIT_FAIL)


def _parse_options(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--option {pair!r} is not key=value", "e.g. --option units=1", EXIT_USAGE)
        out[key.strip()] = value
    return out


def _watch(client, job_id: str, as_json: bool) -> None:
    if as_json:  # JSON lines: one object per snapshot, the last one final
        job = None
        for job in client.watch(job_id):
            _print_jsonl(_job_dict(job))
        _finish_exit_only(job)
        return
    with Progress() as progress:
        job = None
        for job in client.watch(job_id):
            progress(job)
    _finish(job, False)


def _print_jsonl(obj: dict) -> None:
    import sys

    import orjson

    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def _finish_exit_only(job) -> None:
    if job is not None and str(job.status) != "succeeded":
        reason = job.error.message if job.error else (job.raw_status or str(job.status))
        raise fail(f"job {job.id} {job.status}: {reason}", None, EXIT_FAIL)


# -- commands ----------------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def train(
        spec: Path = typer.Argument(..., help="Job spec (YAML or JSON)."),
        backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Backend to run on "
                                              "(overrides `backend:` in the spec)."),
        detach: bool = typer.Option(False, "--detach", "-d", help="Return as soon as the vendor "
                                    "accepted the job."),
        new: bool = typer.Option(False, "--new", help="Always create a new job, even when the same "
                                 "spec and data already have one."),
        as_json: bool = typer.Option(False, "--json", help="Print the job as JSON."),
        smoke: bool = typer.Option(False, "--smoke", help="Smoke run first: the same spec on a "
                                   "small deterministic sample, 1 epoch, a few steps (locally on "
                                   "the spec's local model or the embedded tiny model; with "
                                   "--backend at that vendor's minimum size, priced first)."),
        smoke_examples: int = typer.Option(16, "--smoke-examples", min=1, help="Examples in "
                                           "the smoke sample (raised to the vendor's minimum)."),
        track: Optional[List[str]] = typer.Option(None, "--track", help="Mirror the job's "
                                                  "metrics into mlflow, tensorboard or wandb as "
                                                  "it is polled (repeatable; adds to the spec's "
                                                  "`tracking:`)."),
    ) -> None:
        """Submit a job (or re-attach to the one this spec + data already has) and wait for it."""
        client = _client(quiet=as_json)
        target: Any = spec
        if smoke:
            from ..smoke import smoke_spec
            from ..spec import JobSpec

            plan = smoke_spec(JobSpec.load(spec), backend, smoke_examples)
            target, backend = plan.spec, plan.backend
            err = console(stderr=True)
            err.print(esc(plan.summary()), soft_wrap=True)
            for note in plan.notes:
                err.print(f"[dim]  {esc(note)}[/]", soft_wrap=True)
        live = _live_mirror(client, spec, backend, track)
        with Progress(quiet=as_json) as progress:
            def on_update(j: Any) -> None:
                progress(j)
                if live is not None:
                    live(j)

            try:
                job = client.train(target, backend, detach=detach, new=new, on_update=on_update)
            except KeyboardInterrupt:
                if progress.job is None or not progress.job.submitted:
                    raise
                jid = progress.job.id
                raise fail(f"stopped waiting; job {jid} keeps running at {progress.job.backend}",
                           f"`unitune watch {jid}` follows it again, `unitune cancel {jid}` "
                           "stops it", 130) from None
        if live is not None:
            live.close(str(job.status) if job.status.is_terminal else None)
        if job.status.is_terminal and not as_json:  # what the curves say: overfitting, LR, …
            from ..eval import print_diagnosis

            err = console(stderr=True)
            print_diagnosis(job.id, client, echo=lambda line: err.print(line, markup=False,
                                                                         highlight=False))
        if detach and not job.status.is_terminal:
            if as_json:
                print_json(_job_dict(job))
            else:
                out = _out()
                out.print(f"submitted {job.id} to {esc(job.backend)} as {esc(job.remote_id)} "
                          f"({job.status})")
                out.print(f"[dim]follow it: unitune watch {job.id}"
                          + (f"; mirror its curves: unitune track {job.id} --follow" if live
                             else "") + "[/]")
            return
        _finish(job, as_json)

    @app.command()
    @handle_errors
    def status(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix, or the vendor's id)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show a job, refreshed from its backend."""
        client = _client(quiet=as_json)
        job = client.get(job_id)
        history = client.history(job.id)
        if as_json:
            print_json(_job_dict(job, history))
            return
        from rich.table import Table

        out = _out()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        rows = [("id", job.id), ("name", job.name), ("backend", job.backend),
                ("base model", job.base_model), ("remote id", job.remote_id),
                ("status", f"[{status_style(job.status)}]{job.status}[/] "
                           f"[dim]({esc(job.raw_status or '')})[/]"),
                ("created", job.created_at), ("started", job.started_at),
                ("finished", job.finished_at), ("trained tokens", job.trained_tokens)]
        p = job.progress
        if p and p.total_steps:
            rows.append(("step", f"{p.step or 0}/{p.total_steps}"))
        if p and p.latest_loss is not None:
            rows.append(("latest loss", f"{p.latest_loss:.4f}"))
        if job.error:
            rows.append(("error", f"[red]{esc(job.error.message)}[/]"
                                  + (f" [dim][{esc(job.error.code)}][/]" if job.error.code else "")))
        if job.model:
            rows.append(("model", esc(job.model.model_id)))
            if job.model.endpoint:
                rows.append(("endpoint", esc(job.model.endpoint)))
        for key, value in rows:
            if value is not None:
                table.add_row(key, value if key in ("status", "error", "model", "endpoint")
                              else esc(value))
        out.print(table)
        out.print("[bold]history[/]")
        for h in history:
            out.print(f"  {h['at'][:19]}  {h['status']:<11} [dim]{esc(h['raw_status'] or '')}[/]")

    @app.command("list")
    @handle_errors
    def list_jobs(
        backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Only this backend."),
        status_: Optional[str] = typer.Option(None, "--status", "-s", help="Only this status "
                                              "(queued, running, succeeded, failed, …)."),
        limit: int = typer.Option(50, "--limit", "-n", help="At most this many, newest first."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List the jobs in the local registry (no vendor calls)."""
        from ..job import JobStatus

        if status_ is not None and status_ not in JobStatus._value2member_map_:
            raise fail(f"unknown status {status_!r}",
                       "one of: " + ", ".join(s.value for s in JobStatus), EXIT_USAGE)
        jobs = _client(quiet=True).list(backend=backend, status=status_, limit=limit)
        if as_json:
            print_json([_job_dict(j) for j in jobs])
            return
        from rich.table import Table

        out = _out()
        if not jobs:
            out.print("no jobs yet — `unitune train SPEC` starts one")
            return
        table = Table(box=None, header_style="bold")
        table.add_column("id", no_wrap=True)
        table.add_column("name", overflow="fold")
        table.add_column("backend", no_wrap=True)
        table.add_column("base model", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("created", no_wrap=True)
        table.add_column("remote id", overflow="fold")
        for j in jobs:
            table.add_row(j.id, esc(j.name or ""), j.backend, esc(j.base_model or ""),
                          f"[{status_style(j.status)}]{j.status}[/]",
                          j.created_at.strftime("%m-%d %H:%M") if j.created_at else "",
                          esc(j.remote_id or ""))
        out.print(table)

    @app.command()
    @handle_errors
    def watch(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per snapshot."),
    ) -> None:
        """Follow a job until it ends; exit 0 only if it succeeded."""
        _watch(_client(quiet=as_json), job_id, as_json)

    @app.command()
    @handle_errors
    def cancel(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Ask the vendor to cancel a job."""
        job = _client(quiet=as_json).cancel(job_id)
        if as_json:
            print_json(_job_dict(job))
        else:
            _out().print(f"{job.id}: {job.status} [dim]({esc(job.raw_status or '')})[/]")

    @app.command()
    @handle_errors
    def metrics(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix)."),
        csv: bool = typer.Option(False, "--csv", help="Write the rows as CSV to stdout."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Save a loss chart (PNG)."),
        to: Optional[List[str]] = typer.Option(None, "--to", help="Also mirror the rows into "
                                               "mlflow, tensorboard or wandb (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Training metrics: one row per step, with a terminal loss chart."""
        from ..job import Metrics

        client = _client(quiet=as_json or csv)
        rows = client.metrics(job_id)
        if to:
            from ..tracking import mirror

            err = console(stderr=True)
            for r in mirror(job_id, to=to, client=client):
                err.print(esc(f"{r.tool}: {r.logged} new point(s) ({r.where})"))
        cols = list(Metrics.COLUMNS)
        if csv:
            import csv as csv_mod
            import sys

            writer = csv_mod.writer(sys.stdout, lineterminator="\n")
            writer.writerow(cols)
            for r in rows:
                writer.writerow(["" if getattr(r, c) is None else getattr(r, c) for c in cols])
        elif as_json:
            print_json([r.model_dump(mode="json") for r in rows])
        if plot is not None:
            plot_losses(rows, plot)
            if not as_json and not csv:
                console(stderr=True).print(f"wrote {esc(plot)}")
        if csv or as_json:
            return
        out = _out()
        if not rows:
            out.print("no metrics yet")
            return
        train = [r.train_loss for r in rows if r.train_loss is not None]
        valid = [r.valid_loss for r in rows if r.valid_loss is not None]
        if train:
            out.print(f"train loss  {sparkline(train)}  {train[0]:.4f} → {train[-1]:.4f} "
                      f"(min {min(train):.4f})")
        if valid:
            out.print(f"valid loss  {sparkline(valid)}  {valid[0]:.4f} → {valid[-1]:.4f}")
        from rich.table import Table

        present = [c for c in cols if any(getattr(r, c) is not None for r in rows)]
        shown = rows if len(rows) <= 25 else rows[:: max(1, len(rows) // 20)] + [rows[-1]]
        table = Table(box=None, header_style="bold")
        short = {"train_loss": "train loss", "valid_loss": "valid loss",
                 "train_token_accuracy": "train acc", "valid_token_accuracy": "valid acc",
                 "learning_rate": "lr", "tokens_seen": "tokens"}
        for c in present:
            table.add_column(short.get(c, c), justify="right", no_wrap=True)
        seen = set()
        for r in shown:
            if r.step in seen:
                continue
            seen.add(r.step)
            table.add_row(*[fmt_cell(getattr(r, c)) for c in present])
        out.print(table)
        if len(shown) < len(rows):
            out.print(f"[dim]{len(rows)} rows; --csv prints all of them[/]")

    @app.command()
    @handle_errors
    def logs(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The vendor's (or the local worker's) event log for a job."""
        events = _client(quiet=as_json).events(job_id)
        if as_json:
            print_json([e.model_dump(mode="json") for e in events])
            return
        out = _out()
        for e in events:
            when = e.time.strftime("%Y-%m-%d %H:%M:%S") if e.time else " " * 19
            style = {"error": "red", "warning": "yellow"}.get(e.level, "")
            msg = f"[{style}]{esc(e.message)}[/]" if style else esc(e.message)
            out.print(f"{when}  {e.level:<7} {msg}")

    @app.command()
    @handle_errors
    def resume(
        job_id: str = typer.Argument(..., help="Job id (or a unique prefix)."),
        detach: bool = typer.Option(False, "--detach", "-d", help="Do not wait for the end."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Finish an interrupted submission or resume a paused job, then follow it."""
        client = _client(quiet=as_json)
        job = client.resume(job_id)
        if detach or job.status.is_terminal:
            if as_json:
                print_json(_job_dict(job))
            else:
                _out().print(f"{job.id}: {job.status} [dim]({esc(job.raw_status or '')})[/]")
            if job.status.is_terminal:
                if not as_json:
                    _finish(job, False)
                else:
                    _finish_exit_only(job)
            return
        _watch(client, job.id, as_json)

    @app.command()
    @handle_errors
    def deploy(
        job_id: str = typer.Argument(..., help="Job id of a succeeded job."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        option: Optional[List[str]] = typer.Option(None, "--option", "-o", help="Backend deploy "
                                                   "option key=value (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Deploy a tuned model where the backend supports it (may cost money: asks first)."""
        import sys

        client = _client(quiet=as_json)
        opts = _parse_options(option)
        plan = client.deploy(job_id, opts, dry_run=True)
        if not as_json:  # the plan carries the hosting cost: always shown before anything is created
            _out().print(esc(plan))
        if not yes:
            if as_json or not sys.stdin.isatty():
                if as_json:
                    print_json({"deployed": False, "plan": plan})
                raise fail("not deploying without --yes", "re-run with --yes to create it "
                           "(hosting is billed until `unitune undeploy`)", EXIT_USAGE)
            if not typer.confirm("deploy?", default=False):
                raise fail("not deployed", None, EXIT_FAIL)
        handle = client.deploy(job_id, opts, dry_run=False)
        if as_json:
            print_json({"deployed": True, "plan": plan, "model": handle})
        else:
            out = _out()
            out.print(f"deployed: {esc(getattr(handle, 'endpoint', None) or handle)}")

    @app.command()
    @handle_errors
    def undeploy(
        job_id: str = typer.Argument(..., help="Job id."),
        option: Optional[List[str]] = typer.Option(None, "--option", "-o",
                                                   help="Backend option key=value."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Remove a deployment created by `unitune deploy` (stops its hosting charges)."""
        result = _client(quiet=as_json).undeploy(job_id, _parse_options(option))
        if as_json:
            print_json({"undeployed": True, "model": result})
        else:
            _out().print(f"undeployed {job_id}")
