"""`unitune demo`: the project's main job on the embedded default, offline, with no keys.

It walks the whole path a user takes, each step one clear line: validate the bundled data against
every backend's rules, compare what the job would cost everywhere, train the embedded
`unitune/tiny-chat` model locally with LoRA (live progress), show the loss curve, merge the
adapter, answer a prompt with the base and the tuned model, and list the job in the registry.
The same functions back the individual commands (`validate`, `compare`, `train`, `metrics`,
`merge`, `generate`, `list`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, fail, handle_errors

DEFAULT_SPEC = Path("examples") / "quickstart.yaml"
DEFAULT_PROMPT = "我的订单还没有发货,能帮我查一下吗?"
DEMO_LEARNING_RATE = 1e-2


def _step(n: int, total: int, text: str) -> None:
    console().print(f"[bold cyan][{n}/{total}][/] {text}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    spec_path: Path = typer.Option(DEFAULT_SPEC, "--spec", help="Spec to run (its `local` model "
                                   "is trained; the others are compared)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Stop training after this "
                                        "many steps (default: the spec's epochs)."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", help="Prompt for the side-by-side answer."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also save the loss curve as PNG "
                                        "(default: loss.png in the job directory)."),
) -> None:
    """Validate, compare costs, train tiny-chat locally with LoRA, merge, generate, list."""
    import time

    from ..client import Client
    from ..data.validate import validate_file
    from ..paths import unitune_home
    from ..spec import JobSpec
    from . import cost_cmds, jobs_cmds

    if not spec_path.exists():
        raise fail(f"demo spec {spec_path} not found",
                   "run `make demo` (or `unitune demo`) from the unitune repository root, or pass "
                   "--spec PATH", 2)
    total = 7
    t0 = time.monotonic()
    spec = JobSpec.load(spec_path)
    data = spec.data_path("train")
    out = console()

    # 1. validate the bundled data against every backend the spec names
    targets = [f"{b}:{m}" for b, m in spec.models.items()]
    report = validate_file(data, targets=targets)
    _step(1, total, f"validated {data.name}: {report.examples} examples, {len(report.errors)} "
                    f"errors, {len(report.warnings)} warnings against {len(targets)} targets "
                    f"({', '.join(spec.models)})")
    for p in report.errors[:5]:
        out.print(f"    line {p.line}: {p.code}: {p.message}", markup=False)
    if not report.ok:
        raise fail("the bundled data does not validate", "run `unitune validate "
                   f"{data} --target ...` for the full report")

    # 2. what would it cost on each backend
    _step(2, total, "cost comparison across every backend in the spec (nothing is uploaded):")
    cost_cmds.compare(spec_path=str(spec_path), data=None, backend=None, json_out=False)

    # 3. train the embedded model locally
    if steps is not None:
        spec.hyperparameters.max_steps = steps
    lr_note = ""
    if spec.model_for("local") == "unitune/tiny-chat":
        # The spec's rate (1e-4) suits the cloud models; a random 160k-parameter base moves only
        # with a far higher one, and the demo should show it learning within a minute.
        spec.hyperparameters.learning_rate = DEMO_LEARNING_RATE
        lr_note = f", learning rate {DEMO_LEARNING_RATE} for the tiny base"
    _step(3, total, "training unitune/tiny-chat with LoRA on this machine (a tiny model built "
                    "offline from a RANDOM base: it learns the chat format and when to stop, "
                    f"not facts{lr_note})")
    client = Client(log=lambda m: console(stderr=True).print(f"    {m}", markup=False,
                                                             highlight=False))
    started = time.monotonic()
    with jobs_cmds._Progress() as progress:
        job = client.train(spec, "local", new=True, on_update=progress)
    if str(job.status) != "succeeded":
        reason = job.error.message if job.error else job.raw_status
        raise fail(f"local training {job.status}: {reason}", f"`unitune logs {job.id}`")
    rows = client.metrics(job.id)
    losses = [r.train_loss for r in rows if r.train_loss is not None]
    out.print(f"    job {job.id} succeeded in {time.monotonic() - started:.0f}s: "
              f"{rows[-1].step if rows else 0} steps, adapter in {job.model.model_id}",
              markup=False, highlight=False)

    # 4. loss curve (terminal + PNG)
    job_dir = unitune_home() / "jobs" / job.id
    png = plot or (job_dir / "loss.png")
    jobs_cmds._plot(rows, png)
    _step(4, total, f"loss curve: {jobs_cmds._sparkline(losses)}  "
                    f"{losses[0]:.3f} → {losses[-1]:.3f} (PNG: {png})" if losses else
                    "loss curve: no loss rows were logged")

    # 5. merge the adapter onto the full-precision base
    from ..local.merge import merge

    merged = merge(job_dir)
    _step(5, total, f"merged the LoRA adapter onto the full-precision base: {merged}")

    # 6. base vs tuned answer
    from ..local.generate import generate

    answer = generate(job_dir, prompt, max_new_tokens=48)
    _step(6, total, f"answered {prompt!r} with the base and the tuned model:")
    from rich.table import Table

    table = Table(show_lines=True)
    table.add_column("base (random)")
    table.add_column("tuned")
    table.add_row(answer["base"] or "(empty)", answer["tuned"] or "(empty)")
    out.print(table)

    # 7. the job is in the registry like any cloud job
    jobs = client.list()
    _step(7, total, f"the registry ({unitune_home()}) lists {len(jobs)} job(s); this one:")
    out.print(f"    {job.id}  {job.backend}  {job.status}  {job.base_model}  "
              f"created {job.created_at:%Y-%m-%d %H:%M}", markup=False, highlight=False)
    out.print(f"[dim]demo finished in {time.monotonic() - t0:.0f}s. Next: `unitune metrics "
              f"{job.id}`, `unitune generate {job.id} \"...\"`, `unitune export {job.id} DIR`, "
              f"or `unitune train {spec_path} --backend openai|azure|bedrock|vertex`.[/]")
