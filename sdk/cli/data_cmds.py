"""`unitune convert`, `unitune split`, `unitune dedupe`: reshape a dataset before training."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_FAIL, console, handle_errors, print_json

_TARGETS_HELP = ("openai, openai-dpo, bedrock-converse, bedrock-prompt-completion, bedrock-claude, "
                 "vertex, messages, alpaca, trl-dpo")


def _stem(path: Path) -> tuple[str, str]:
    """('support_zh', '.jsonl' or '.jsonl.gz') for naming derived files."""
    name = path.name
    ext = ""
    if name.endswith(".gz"):
        name, ext = name[:-3], ".gz"
    for suffix in (".jsonl", ".json", ".ndjson", ".csv", ".tsv"):
        if name.endswith(suffix):
            return name[: -len(suffix)], ".jsonl" + ext
    return name, ".jsonl" + ext


def _problem_line(p) -> str:
    where = f"line {p.line}" if p.line else "file"
    if p.path:
        where += f" {p.path}"
    return f"{where}: [{p.code}] {p.message}"


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def convert(
        src: Path = typer.Argument(..., help="input JSONL (.jsonl or .jsonl.gz), any format; "
                                             "also CSV/TSV with a header row, a JSON array or "
                                             "pretty-printed JSON"),
        to: str = typer.Option(..., "--to", "-t", help=f"target format: {_TARGETS_HELP}"),
        out: Optional[Path] = typer.Option(None, "-o", "--output",
                                           help="output file (default: IN.<target>.jsonl)"),
        from_: str = typer.Option("auto", "--from", help="input format (default: detect)"),
        as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
        show: int = typer.Option(10, "--show", help="problems listed per kind"),
    ) -> None:
        """Convert a dataset into a vendor's training format, warning about anything lost.

        Lines that would not pass `unitune validate` once converted are not written (listed as
        errors). CSV/TSV, JSON arrays and pretty-printed JSON are read too: `--to messages`
        turns them into JSONL."""
        from ..data.convert import canonical_target, convert_file

        target = canonical_target(to)
        if out is None:
            stem, ext = _stem(src)
            out = src.with_name(f"{stem}.{target}{ext}")
        result = convert_file(src, target, out, fmt=from_, max_warnings=10_000)
        if as_json:
            print_json(result.to_dict())
        else:
            con = console()
            say = lambda *a, **k: con.print(*a, soft_wrap=True, **k)  # noqa: E731
            where = f"wrote {result.written} to {result.output}" if result.written \
                else "nothing written"
            say(f"converted {result.examples} examples ({result.format or '?'} → {target}): "
                f"{where}")
            if result.warning_counts:
                say("lossy changes (one warning per affected line):")
                for code, n in sorted(result.warning_counts.items(), key=lambda kv: -kv[1]):
                    sample = [p for p in result.warnings if p.code == code][:show]
                    lines = ", ".join(str(p.line) for p in sample)
                    more = "…" if n > len(sample) else ""
                    first = sample[0].message if sample else ""
                    say(f"  {code}: {n} line(s) (lines {lines}{more}) — {first}")
            if result.errors:
                say(f"[bold red]{result.dropped} line(s) not written:[/]")
                for p in result.errors[:show]:
                    say(f"  {_problem_line(p)}", markup=False)
                if len(result.errors) > show:
                    say(f"  … {len(result.errors) - show} more (use --json)")
        if result.errors:
            raise typer.Exit(EXIT_FAIL)

    @app.command()
    @handle_errors
    def split(
        src: Path = typer.Argument(..., help="input JSONL (.jsonl or .jsonl.gz)"),
        validation: float = typer.Option(0.1, "--validation", "-v",
                                         help="fraction (0.1) or number of examples (200)"),
        seed: int = typer.Option(0, "--seed", help="same file + seed = same split"),
        out_dir: Optional[Path] = typer.Option(None, "-o", "--output-dir",
                                               help="folder for the two files (default: IN's)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Split a dataset into train and validation files, deterministically."""
        from ..data.split import split_file

        stem, ext = _stem(src)
        folder = out_dir if out_dir is not None else src.parent
        result = split_file(src, validation, seed, folder / f"{stem}.train{ext}",
                            folder / f"{stem}.validation{ext}")
        if as_json:
            print_json(result.to_dict())
            return
        con = console()
        say = lambda *a, **k: con.print(*a, soft_wrap=True, **k)  # noqa: E731
        say(f"train:      {result.train:>7} → {result.train_path}")
        say(f"validation: {result.validation:>7} → {result.validation_path}")
        say(f"(seed {result.seed}; the same file and seed always give the same split)")

    @app.command()
    @handle_errors
    def dedupe(
        src: Path = typer.Argument(..., help="input JSONL (.jsonl or .jsonl.gz)"),
        out: Optional[Path] = typer.Option(None, "-o", "--output",
                                           help="output file (default: IN.dedup.jsonl)"),
        exact: bool = typer.Option(False, "--exact",
                                   help="only remove byte-identical examples (default also "
                                        "treats whitespace/case variants as duplicates)"),
        as_json: bool = typer.Option(False, "--json"),
        show: int = typer.Option(10, "--show", help="duplicates listed"),
    ) -> None:
        """Remove duplicate examples, keeping the first valid one of each group."""
        from ..data.split import dedupe_file

        if out is None:
            stem, ext = _stem(src)
            out = src.with_name(f"{stem}.dedup{ext}")
        result = dedupe_file(src, out, normalized=not exact)
        if as_json:
            print_json(result.to_dict())
            return
        con = console()
        say = lambda *a, **k: con.print(*a, soft_wrap=True, **k)  # noqa: E731
        kind = "exact" if exact else "exact or whitespace/case"
        say(f"kept {result.kept}, removed {result.removed} {kind} duplicate(s) → "
                  f"{result.output}")
        for line, first in result.duplicates[:show]:
            say(f"  line {line} repeats line {first}")
        if result.preferred_valid:
            say(f"{result.preferred_valid} group(s) kept a later valid line instead of an "
                f"invalid first one")
        if result.removed > show:
            say(f"  … {result.removed - show} more (use --json)")
        if result.unparsed:
            say(f"{result.unparsed} line(s) are not valid examples and were kept as they "
                      f"are; run `unitune validate {src}`")
