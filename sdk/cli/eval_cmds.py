"""`unitune eval`, `unitune score`, `unitune diagnose`: did tuning help, and what the curves say."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_USAGE, console, fail, handle_errors, print_json


def _fmt(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if name in ("bleu", "chrf", "perplexity") else f"{v:.3f}"


def _eval_table(report: dict) -> None:
    from rich.table import Table

    out = console()
    out.print(f"{report['examples']} held-out example(s) from {report['holdout']}"
              + (f" ({report['failed']} left out: a call failed)" if report.get("failed") else ""),
              markup=False, highlight=False)
    out.print(f"base: {report['base_model']}   tuned: {report['tuned_model']}", markup=False,
              highlight=False)
    t = Table()
    for col in ("metric", "base", "tuned", "delta", "95% CI", ""):
        t.add_column(col)
    for name, m in report["metrics"].items():
        better = (m["delta"] < 0) if m.get("lower_is_better") else (m["delta"] > 0)
        verdict = "within noise" if m["within_noise"] else ("better" if better else "worse")
        t.add_row(name, _fmt(name, m["base"]), _fmt(name, m["tuned"]),
                  f"{m['delta']:+.3f}", f"[{m['ci95'][0]:+.3f}, {m['ci95'][1]:+.3f}]", verdict)
    out.print(t)
    w = report["wins"]
    out.print(f"win rate (sentence chrF): {report['win_rate']:.0%}  ({w['tuned']} tuned, "
              f"{w['base']} base, {w['tie']} tie)", highlight=False)
    if report.get("judge"):
        j = report["judge"]
        out.print(f"judge {j['model']}: tuned wins {j['tuned']}, base wins {j['base']}, ties "
                  f"{j['tie']} (position-swapped; {j['unparsed']} unparsed)", markup=False,
                  highlight=False)
    lat = report.get("latency_s") or {}
    if lat.get("base") is not None:
        out.print(f"median latency: base {lat['base']:.2f}s, tuned {lat['tuned']:.2f}s",
                  highlight=False)
    out.print(f"[dim]per-example diffs: {report['files']['table']} (JSONL: "
              f"{report['files']['examples']})[/]", highlight=False)


def _compare_table(report: dict) -> None:
    from rich.table import Table

    from ..eval.metrics import METRICS

    out = console()
    out.print(f"{report['examples']} held-out example(s) from {report['holdout']}",
              markup=False, highlight=False)
    t = Table(show_lines=True)
    t.add_column("")
    for j in report["jobs"]:
        t.add_column(f"{j['job']}\n{j['backend']}")
    for name in METRICS:
        cells = []
        for j in report["jobs"]:
            m = j["metrics"][name]
            note = "best" if m["vs_best"] is None else (
                "within noise of best" if m["vs_best"]["within_noise"] else
                f"{m['vs_best']['delta']:+.3f} vs best")
            cells.append(f"{_fmt(name, m['value'])} [{_fmt(name, m['ci95'][0])}, "
                         f"{_fmt(name, m['ci95'][1])}]\n{note}")
        t.add_row(name, *cells)
    if any(j.get("judge_vs_first") for j in report["jobs"]):
        t.add_row("judge win rate vs first", *[
            "-" if not j.get("judge_vs_first") else f"{j['judge_vs_first']['win_rate']:.0%}"
            for j in report["jobs"]])
    t.add_row("training cost billed", *[
        "not recorded" if j["training_cost_usd"] is None else f"${j['training_cost_usd']:,.2f}"
        for j in report["jobs"]])
    t.add_row("inference / 1k requests", *[
        f"${j['inference_usd_per_1k_requests']:,.4f}" if j["inference_usd_per_1k_requests"]
        is not None else "not priced" for j in report["jobs"]])
    t.add_row("median latency", *[
        f"{j['median_latency_s']:.2f}s" if j["median_latency_s"] is not None else "-"
        for j in report["jobs"]])
    out.print(t)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @handle_errors
    def eval_(
        jobs: list[str] = typer.Argument(..., metavar="JOB [JOB…]", help="One job: base vs "
                                         "tuned. Several: their tuned models compared."),
        holdout: Optional[Path] = typer.Option(None, "--holdout", help="Held-out examples "
                                               "(JSONL, any SFT format); default: the job's "
                                               "validation split."),
        validation: bool = typer.Option(False, "--validation", help="Use the job's "
                                        "validation split (the default)."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use the first N "
                                            "examples."),
        judge: Optional[str] = typer.Option(None, "--judge", help="BACKEND:MODEL of an LLM "
                                            "judge (pairwise, positions swapped)."),
        max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most tokens per "
                                       "answer."),
        concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Parallel "
                                        "calls per model."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before paid calls."),
        plot: bool = typer.Option(False, "--plot", help="Also save metrics.png beside the "
                                  "report."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Evaluate base vs tuned on held-out prompts (or compare several tuned models)."""
        import sys

        from ..eval.run import EvalOptions

        if holdout is not None and validation:
            raise fail("--holdout and --validation exclude each other", None, EXIT_USAGE)
        ask = None
        if sys.stdin.isatty() and not json_out:
            ask = lambda q: typer.confirm(q, default=False)  # noqa: E731
        opts = EvalOptions(holdout=str(holdout) if holdout else None, validation=validation,
                           limit=limit, judge=judge, max_tokens=max_tokens,
                           concurrency=concurrency, yes=yes, plot=plot, ask=ask)
        log = lambda m: console(stderr=True).print(f"  {m}", markup=False,  # noqa: E731
                                                   highlight=False)
        if len(jobs) > 1:
            from ..eval.compare import compare_jobs

            report = compare_jobs(jobs, opts, log=log)
            if json_out:
                print_json(report)
            else:
                _compare_table(report)
            return
        from ..eval.run import evaluate

        report = evaluate(jobs[0], opts, log=log)
        if json_out:
            print_json(report)
        else:
            _eval_table(report)

    @app.command()
    @handle_errors
    def score(predictions: Path = typer.Argument(..., help='JSONL: {"prediction": str, '
                                                 '"reference": str | [str, …]} per line.'),
              json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Score predictions offline: BLEU, chrF, ROUGE-L, exact match, token F1."""
        from ..eval.scorefile import score_file

        result = score_file(predictions)
        if json_out:
            print_json(result)
            return
        out = console()
        out.print(f"{result['examples']} example(s)", highlight=False)
        for name, v in result["metrics"].items():
            out.print(f"  {name:12} {_fmt(name, v)}", highlight=False)
        out.print(f"  [dim]BLEU signature: {result['bleu_signature']}[/]", highlight=False)

    @app.command()
    @handle_errors
    def diagnose(job: str = typer.Argument(..., help="Job id (or prefix)."),
                 json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Read a job's curves: overfitting, divergence, spikes, flat loss, regressions."""
        from ..eval.diagnose import diagnose_job, lines

        d = diagnose_job(job)
        if json_out:
            print_json(d.to_dict())
            return
        for line in lines(d):
            console().print(line, markup=False, highlight=False)
