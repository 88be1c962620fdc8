"""How a job is shown while it runs and after: the live progress display (a panel on a
terminal, one line per change otherwise), status colours, durations, a sparkline of the loss and
the loss chart. Used by the lifecycle commands and the demo."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import console

SPARK = "▁▂▃▄▅▆▇█"


def esc(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def status_style(status) -> str:
    return {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan",
            "unknown": "magenta"}.get(str(status), "white")


class Progress:
    """on_update callback: a live panel on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        import time

        self.quiet = quiet
        self.console = console(stderr=True)
        self.live = None
        self.start = time.monotonic()
        self.run_start: float | None = None
        self.run_step0 = 0
        self.last_line: str | None = None
        self.job = None

    def __enter__(self) -> "_Progress":
        if not self.quiet and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def eta(self, job) -> float | None:
        import time

        p = job.progress
        if p is None or not p.step or not p.total_steps:
            return None
        if p.eta_seconds is not None:
            return p.eta_seconds
        if str(job.status) != "running":
            return None
        now = time.monotonic()
        if self.run_start is None:
            self.run_start, self.run_step0 = now, p.step
            return None
        done = p.step - self.run_step0
        if done <= 0:
            return None
        return (now - self.run_start) / done * (p.total_steps - p.step)

    def line(self, job) -> str:
        import time

        p = job.progress
        parts = [f"{job.id}", f"{job.status}", f"({job.raw_status})" if job.raw_status else ""]
        if p and p.total_steps:
            parts.append(f"step {p.step or 0}/{p.total_steps}")
        if p and p.latest_loss is not None:
            parts.append(f"loss {p.latest_loss:.4f}")
        parts.append(f"elapsed {fmt_duration(time.monotonic() - self.start)}")
        eta = self.eta(job)
        if eta is not None and not job.status.is_terminal:
            parts.append(f"ETA {fmt_duration(eta)}")
        return "  ".join(x for x in parts if x)

    def render(self, job):
        import time

        from rich.progress_bar import ProgressBar
        from rich.table import Table

        p = job.progress
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("job", f"{job.id}  [dim]{esc(job.backend)} {esc(job.remote_id or '')}[/]")
        table.add_row("status", f"[{status_style(job.status)}]{job.status}[/] "
                                f"[dim]({esc(job.raw_status or '')})[/]")
        if p and p.total_steps:
            bar = ProgressBar(total=p.total_steps, completed=p.step or 0, width=30)
            row = Table.grid(padding=(0, 1))
            row.add_row(bar, f"{p.step or 0}/{p.total_steps}")
            table.add_row("step", row)
        if p and p.latest_loss is not None:
            table.add_row("loss", f"{p.latest_loss:.4f}")
        table.add_row("elapsed", fmt_duration(time.monotonic() - self.start))
        eta = self.eta(job)
        if eta is not None and not job.status.is_terminal:
            table.add_row("ETA", fmt_duration(eta))
        return table

    def __call__(self, job) -> None:
        self.job = job
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self.render(job))
            return
        line = self.line(job)
        key = line.split("  elapsed")[0]
        if key != self.last_line:
            self.last_line = key
            self.console.print(esc(line), soft_wrap=True)


def sparkline(values: list[float], width: int = 60) -> str:
    if not values:
        return ""
    if len(values) > width:  # sample evenly, keep the last value
        step = len(values) / width
        values = [values[min(len(values) - 1, int(i * step))] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))]
                   for v in values)


def fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    return str(value)


def plot_losses(rows, path: Path) -> None:
    """Loss chart as PNG; matplotlib is imported here only."""
    from ..errors import MissingDependency

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency("matplotlib is needed for --plot",
                                hint="pip install matplotlib") from exc
    fig, ax = plt.subplots(figsize=(7, 4))
    for col, label in (("train_loss", "train loss"), ("valid_loss", "valid loss")):
        pts = [(r.step, getattr(r, col)) for r in rows if getattr(r, col) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if col == "valid_loss"
                    else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
