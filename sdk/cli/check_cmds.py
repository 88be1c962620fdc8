"""`unitune validate` and `unitune stats`: check a dataset before spending a cent.

Exit codes (validate): 0 no errors (warnings allowed), 1 errors found, 2 usage error or
unreadable file. `--json` prints the whole report (contract in unitune.data.report).
"""
from __future__ import annotations

from typing import List, Optional

import typer

from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, fail, handle_errors, print_json

LISTING_CAP = 50  # problems listed in the human view (the JSON carries all of them)


def console():
    # soft_wrap: one problem per line (file:line stays greppable), the terminal wraps visually
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _run(file: str, targets: list[str], max_problems: int | None):
    from pathlib import Path

    from ..data.reader import check_data_file
    from ..data.validate import resolve_targets, validate_file
    from ..errors import DataError

    resolved = resolve_targets(targets)  # unknown targets fail before the file is read
    p = Path(file)
    try:
        check_data_file(p)  # missing, a directory, or a device/pipe that would be read forever
    except DataError as exc:
        raise fail(exc.message, exc.hint, EXIT_USAGE) from None
    try:
        return validate_file(p, [t.info for t in resolved], max_problems=max_problems)
    except DataError as exc:  # unreadable (e.g. truncated gzip): a usage-level failure
        raise fail(exc.message, exc.hint, EXIT_USAGE) from None
    except PermissionError as exc:
        raise fail(f"{file}: cannot read ({exc.strerror})", "check the file permissions",
                   EXIT_USAGE) from None


def _quality(report, file: str, *, quality: bool, quality_all: bool, task: Optional[str],
             validation: Optional[str]):
    """The data-quality checks (warnings only) on a validated file; their figures, or None."""
    from pathlib import Path

    if not (quality or task or validation):
        return None
    from ..data.reader import check_data_file
    from ..data.validate import add_quality
    from ..errors import DataError

    if validation is not None:
        try:
            check_data_file(Path(validation))
        except DataError as exc:
            raise fail(exc.message, exc.hint, EXIT_USAGE) from None
    try:
        q = add_quality(report, Path(file), task=task, validation=validation,
                        limit=0 if quality_all else None)
    except DataError as exc:
        raise fail(exc.message, exc.hint, EXIT_USAGE) from None
    return q.to_dict()


_TASK_HELP = ("task type for the guide's volume rule of thumb: classification, extraction, "
              "format, style, chat, qa, domain, summarization, translation, code, reasoning")


def _target_specs(report, targets: list[str]) -> None:
    # Keep the user's spelling of each target in the report.
    if len(report.targets) == len(targets):
        mapping = dict(zip(report.targets, targets))
        report.targets = list(targets)
        for p in report.problems:
            if p.target in mapping:
                p.target = mapping[p.target]
        report.stats["tokens"] = {mapping.get(k, k): v
                                  for k, v in report.stats.get("tokens", {}).items()}


def _where(p) -> str:
    if p.line is None:
        return p.file or "-"
    return f"{p.file}:{p.line}"


def _print_report(report, cap: int) -> None:
    from rich.markup import escape

    out = console()
    s = report.summary()
    fmt = f" ({report.format})" if report.format else ""
    out.print(f"[bold]{escape(str(report.file))}[/]{escape(fmt)}: {s['examples']:,} lines, "
              f"[red]{s['errors']:,} error(s)[/], [yellow]{s['warnings']:,} warning(s)[/]")
    if s["by_code"]:
        sev = {}
        for p in report.problems:
            sev.setdefault(p.code, p.severity)
        for (code, severity), _ in report.omitted.items():
            sev.setdefault(code, severity)
        width = max(map(len, s["by_code"]))
        for code, n in s["by_code"].items():
            color = "red" if sev.get(code) == "error" else "yellow"
            out.print(f"  [{color}]{code:<{width}}[/] {n:>8,}")
    if report.problems:
        out.print()
        for p in report.problems[:cap]:
            color = "red" if p.severity == "error" else "yellow"
            path = f" {p.path}" if p.path else ""
            tgt = f" [{p.target}]" if p.target and p.target not in p.message else ""
            out.print(f"[{color}]{p.severity}[/] {escape(_where(p))}{escape(path)} "
                      f"[bold]{p.code}[/]{escape(tgt)}: {escape(p.message)}")
            if p.hint:
                out.print(f"    [dim]hint: {escape(p.hint)}[/]")
        hidden = s["errors"] + s["warnings"] - min(cap, len(report.problems))
        if hidden > 0:
            out.print(f"… and {hidden:,} more (use --json for every problem)")
    for spec, t in report.stats.get("tokens", {}).items():
        over = f", {t['over_limit']:,} over the {t['limit']:,} limit" if t.get("limit") else ""
        out.print(f"[bold]{escape(spec)}[/]: {t['total']:,} tokens, max {t['max']:,} per example"
                  f"{over} — {escape(t['method'])}")
    if report.ok:
        out.print("[green]ok[/]: no errors" + (" (warnings above)" if report.warnings else ""))


@handle_errors
def validate(
    file: str = typer.Argument(..., help="JSONL dataset (.jsonl or .jsonl.gz)"),
    target: Optional[List[str]] = typer.Option(
        None, "--target", "-t",
        help="BACKEND:MODEL to check against (repeatable), e.g. openai:gpt-4.1-mini-2025-04-14"),
    json_out: bool = typer.Option(False, "--json", help="print the full report as JSON"),
    max_errors: Optional[int] = typer.Option(
        None, "--max-errors", min=1,
        help="keep at most N problems (the summary still counts all of them)"),
    task: Optional[str] = typer.Option(None, "--task", help=_TASK_HELP),
    validation: Optional[str] = typer.Option(
        None, "--validation", help="validation JSONL: warn about examples it shares with FILE"),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="data-quality warnings: "
                                 "near-duplicates, inconsistent answers, diversity, leakage"),
    quality_all: bool = typer.Option(False, "--quality-all", help="run the similarity checks "
                                     "on files over 100,000 examples too"),
) -> None:
    """Check a dataset: every problem with file:line, JSON path, code and a fix hint."""
    targets = list(target or [])
    report = _run(file, targets, max_errors)
    _quality(report, file, quality=quality, quality_all=quality_all, task=task,
             validation=validation)
    _target_specs(report, targets)
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report, min(LISTING_CAP, max_errors or LISTING_CAP))
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAIL)


def _print_stats(report) -> None:
    from rich.markup import escape

    from ..data.stats import render_histogram

    out = console()
    st = report.stats
    out.print(f"[bold]{escape(str(report.file))}[/]"
              f"{escape(f' ({report.format})' if report.format else '')}")
    out.print(f"  examples          {st['examples']:,} (of {st['lines']:,} lines)")
    if st.get("preference_examples"):
        out.print(f"  preference pairs  {st['preference_examples']:,}")
    out.print(f"  assistant turns   {st['assistant_turns']:,}")
    roles = ", ".join(f"{r} {n:,}" for r, n in st["roles"].items())
    out.print(f"  messages          {st['messages']:,} ({escape(roles)})")
    d = st["duplicates"]
    out.print(f"  duplicates        {d['exact']:,} exact, {d['normalized']:,} normalized")
    for spec, t in st.get("tokens", {}).items():
        out.print()
        out.print(f"[bold]{escape(spec)}[/] — {escape(t['method'])}")
        out.print(f"  tokens total {t['total']:,}  mean {t['mean']:,}  p50 {t['p50']:,}  "
                  f"p90 {t['p90']:,}  p99 {t['p99']:,}  max {t['max']:,}")
        out.print(f"  assistant share {t['assistant_share']:.1%}")
        if t.get("limit"):
            fate = "truncated" if t["truncates"] else "rejected"
            out.print(f"  over the {t['limit']:,}-token limit: {t['over_limit']:,} ({fate})")
        for line in render_histogram(t["histogram"]):
            out.print(line)
    if st.get("quality"):
        from ..data.stats import render_quality

        out.print()
        out.print("[bold]quality[/] — warnings, not errors (docs/data-quality.md)")
        for line in render_quality(st["quality"]):
            out.print(escape(line))
    s = report.summary()
    if s["errors"] or s["warnings"]:
        out.print()
        out.print(f"{s['errors']:,} error(s), {s['warnings']:,} warning(s): "
                  f"run `unitune validate` for details")


@handle_errors
def stats(
    file: str = typer.Argument(..., help="JSONL dataset (.jsonl or .jsonl.gz)"),
    target: Optional[List[str]] = typer.Option(
        None, "--target", "-t", help="BACKEND:MODEL to count tokens for (repeatable)"),
    json_out: bool = typer.Option(False, "--json", help="print the statistics as JSON"),
    task: Optional[str] = typer.Option(None, "--task", help=_TASK_HELP),
    validation: Optional[str] = typer.Option(
        None, "--validation", help="validation JSONL: count examples it shares with FILE"),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="data-quality figures: "
                                 "near-duplicates, inconsistent answers, diversity, leakage"),
    quality_all: bool = typer.Option(False, "--quality-all", help="run the similarity checks "
                                     "on files over 100,000 examples too"),
) -> None:
    """Dataset statistics: examples, turns, roles, duplicates, tokens per target, histogram,
    and data quality beyond format (near-duplicates, consistency, diversity, leakage, volume)."""
    targets = list(target or [])
    report = _run(file, targets, 1000)
    q = _quality(report, file, quality=quality, quality_all=quality_all, task=task,
                 validation=validation)
    if q is not None:
        report.stats["quality"] = q
    _target_specs(report, targets)
    if json_out:
        print_json({"file": report.file, "format": report.format, "stats": report.stats,
                    "summary": report.summary()})
    else:
        _print_stats(report)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(stats)
