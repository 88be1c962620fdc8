"""`unitune demo`: the whole path a user takes, on the embedded model, offline, with no keys.

Each step is one clear line: validate the bundled data against every backend's rules, compare
what the job would cost everywhere, train the embedded `unitune/tiny-chat` locally with LoRA
(live progress), show the loss curve and how far it fell, merge the adapter, answer a prompt with
the base and the tuned model, evaluate base vs tuned on the held-out split (`unitune eval`:
chrF, BLEU, ROUGE-L, … with bootstrap intervals, and the curves' diagnosis), and list the job.

The demo's spec and data ship inside the package (`unitune.demo`), so it runs from any
directory; `--spec` runs another spec the same way (its `local` model is trained).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, fail, handle_errors, print_json

DEMO_LEARNING_RATE = 2e-2  # for tiny-chat only: the spec's 1e-4 suits the cloud models
DEMO_EVAL_TOKENS = 96


def _step(n: int, total: int, text: str) -> None:
    console().print(f"[bold cyan][{n}/{total}][/] {text}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    spec_path: Optional[Path] = typer.Option(None, "--spec", help="Spec to run (default: the "
                                             "demo job shipped with unitune; its `local` model "
                                             "is trained, the others are compared)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Stop training after this "
                                        "many steps (default: the spec's epochs)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Prompt for the side-by-side "
                                         "answer (default: the first held-out question, which "
                                         "the model never saw)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also save the loss curve as PNG "
                                        "(default: loss.png in the job directory)."),
    skip_eval: bool = typer.Option(False, "--no-eval", help="Skip the base-vs-tuned "
                                   "evaluation."),
    as_json: bool = typer.Option(False, "--json", help="Show the steps on stderr and print a "
                                 "JSON summary (job, loss, evaluation, seconds) on stdout."),
) -> None:
    """Validate, compare costs, train tiny-chat with LoRA, merge, generate, evaluate, list."""
    if not as_json:
        _demo_steps(spec_path, steps, prompt, plot, skip_eval)
        return
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        summary = _demo_steps(spec_path, steps, prompt, plot, skip_eval)
    print_json(summary)


def _demo_steps(spec_path: Optional[Path], steps: Optional[int], prompt: Optional[str],
                plot: Optional[Path], skip_eval: bool) -> dict:
    import time

    from .. import demo as bundled
    from ..client import Client
    from ..data.validate import validate_file
    from ..paths import unitune_home
    from ..spec import JobSpec
    from . import cost_cmds, display

    spec_path = spec_path or bundled.SPEC
    if not spec_path.exists():
        raise fail(f"demo spec {spec_path} not found", "pass --spec PATH (or omit it to run "
                   "the demo job shipped with unitune)", 2)
    total = 8
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
    tiny = spec.model_for("local") == "unitune/tiny-chat"
    if tiny:
        # the spec's rate (1e-4) suits the cloud models; a 160k-parameter model needs a far
        # higher one to learn within a minute
        spec.hyperparameters.learning_rate = DEMO_LEARNING_RATE
        lr_note = f", learning rate {DEMO_LEARNING_RATE} for the tiny base"
    _step(3, total, f"training {spec.model_for('local')} with LoRA on this machine "
                    f"({spec.hyperparameters.epochs} epochs{lr_note}"
                    + ("; the tiny model was pre-trained on a little general text when it was "
                       "built, and learns the shop's replies here)" if tiny else ")"))
    client = Client(log=lambda m: console(stderr=True).print(f"    {m}", markup=False,
                                                             highlight=False))
    started = time.monotonic()
    with display.Progress() as progress:
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
    display.plot_losses(rows, png)
    if losses:
        _step(4, total, f"loss curve: {display.sparkline(losses)}  {losses[0]:.3f} → "
                        f"{losses[-1]:.3f}: the final loss is {losses[-1] / losses[0]:.0%} of "
                        f"the first (PNG: {png})")
    else:
        _step(4, total, "loss curve: no loss rows were logged")

    # 5. merge the adapter onto the full-precision base
    from ..local.merge import merge

    merged = merge(job_dir)
    _step(5, total, f"merged the LoRA adapter onto the full-precision base: {merged}")

    # 6. base vs tuned answers, on questions the model never saw (the first held-out ones)
    from ..eval.holdout import job_validation_file, load
    from ..inference.types import GenParams
    from ..local.inference import caller_for_dir

    try:
        held = load(job_validation_file(client.registry.get_job(job.id)), limit=3)
    except Exception:  # noqa: BLE001 - no validation split: fall back to a plain question
        held = []
    system = [m for m in (held[0].prompt if held else []) if m["role"] == "system"]
    if prompt is not None or not held:
        questions = [(system + [{"role": "user", "content": prompt or "你好，我的包裹到哪了？"}],
                      None)]
    else:
        questions = [(it.prompt, it.reference) for it in held]
    params = GenParams(max_tokens=DEMO_EVAL_TOKENS)
    callers = {which: caller_for_dir(job_dir, base=which == "base") for which in ("base", "tuned")}
    _step(6, total, "answered held-out questions the model never saw, with the base and the "
                    "tuned model:" if questions[0][1] is not None else
                    "answered your prompt with the base and the tuned model:")
    from rich.table import Table

    table = Table(show_lines=True)
    for col in ("question", "base", "tuned") + (("reference",) if questions[0][1] else ()):
        table.add_column(col, overflow="fold")
    for messages, reference in questions:
        question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        answers = [callers[w].generate(messages, params).text or "(empty)"
                   for w in ("base", "tuned")]
        table.add_row(question, *answers, *([reference] if reference else []))
    out.print(table)

    # 7. did tuning help? base vs tuned on the held-out split, and the curves' diagnosis
    if skip_eval:
        _step(7, total, f"evaluation skipped (run `unitune eval {job.id}`)")
    else:
        from ..eval.diagnose import diagnose, lines
        from ..eval.run import EvalOptions, evaluate
        from .eval_cmds import _eval_table

        _step(7, total, "did tuning help? base vs tuned on the held-out validation split "
                        "(`unitune eval`):")
        report = evaluate(job.id, EvalOptions(max_tokens=DEMO_EVAL_TOKENS, yes=True),
                          log=lambda m: None)
        _eval_table(report)
        chrf = report["metrics"]["chrf"]
        out.print(f"    chrF {chrf['base']:.1f} → {chrf['tuned']:.1f} "
                  f"({'tuned ahead' if chrf['delta'] > 0 else 'tuned NOT ahead'}"
                  f"{', within noise' if chrf['within_noise'] else ''})", highlight=False)
        for line in lines(diagnose(rows, report, job=job.id)):
            out.print(f"    {line}", markup=False, highlight=False)

    # 8. the job is in the registry like any cloud job
    jobs = client.list()
    _step(8, total, f"the registry ({unitune_home()}) lists {len(jobs)} job(s); this one:")
    out.print(f"    {job.id}  {job.backend}  {job.status}  {job.base_model}  "
              f"created {job.created_at:%Y-%m-%d %H:%M}", markup=False, highlight=False)
    out.print(f"[dim]demo finished in {time.monotonic() - t0:.0f}s. Next: `unitune metrics "
              f"{job.id}`, `unitune generate {job.id} \"...\"`, `unitune eval {job.id}`, "
              f"`unitune diagnose {job.id}`, or `unitune train SPEC --backend "
              "openai|azure|bedrock|vertex`.[/]")
    return {"job": job.id, "status": str(job.status), "steps": rows[-1].step if rows else 0,
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "eval": None if skip_eval else report["metrics"],
            "seconds": round(time.monotonic() - t0, 1)}
