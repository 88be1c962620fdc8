"""Before the paid run: `advise` (prompting vs retrieval vs fine-tuning), `import` (another tool's
recipe → a unitune spec), `export-config` (a spec → Axolotl / LLaMA-Factory) and `synth`
(synthetic examples through any backend).

Everything heavy is imported inside the commands, so `unitune --help` stays light.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_FAIL, EXIT_USAGE, console, fail, handle_errors, print_json


def _esc(text) -> str:
    from rich.markup import escape

    return escape(str(text))


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise fail(f"{path} exists", "pass --force to overwrite it", EXIT_USAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# -- advise ------------------------------------------------------------------------------------------
@handle_errors
def advise_cmd(
    data: Optional[Path] = typer.Argument(None, help="Your examples (JSONL, any supported "
                                          "format); optional."),
    goal: str = typer.Option(..., "--goal", "-g", help="What the model should do better, in a "
                             "sentence (English or Chinese)."),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", help="BACKEND:MODEL to "
                                               "price (repeatable; default: the catalog's "
                                               "default cloud models)."),
    task: Optional[str] = typer.Option(None, "--task", help="classification, extraction, "
                                       "style, qa, code, … (sets the guide's example volume)."),
    fmt: str = typer.Option("auto", "--format", help="Data format (default: detected)."),
    model: Optional[str] = typer.Option(None, "--model", help="Also ask this model "
                                        "(BACKEND:MODEL) for its opinion, labelled as such."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="With --model: an "
                                           "OpenAI-compatible server."),
    as_json: bool = typer.Option(False, "--json", help="Print the advice as JSON."),
) -> None:
    """Prompt engineering, retrieval or fine-tuning? Deterministic rules from the guide, with the
    evidence used and the cost of each route."""
    from ..advice import ROUTES, advise

    if data is not None and not data.is_file():
        raise fail(f"{data}: no such file", "give your examples as a JSONL file, or leave DATA "
                   "out", EXIT_USAGE)
    advice = advise(data, goal, targets=list(target or []), task=task, fmt=fmt)
    if model:
        from ..advice.opinion import model_opinion

        advice.model_opinion = model_opinion(advice, model, base_url=base_url)
    if as_json:
        print_json(advice.to_dict())
        return
    from rich.table import Table

    con = console()
    con.print(f"[bold]recommendation: {advice.recommendation}[/] — {_esc(advice.summary)}")
    con.print()
    for rule in advice.rules:
        mark = "[green]✓[/]" if rule.fired else "[dim]·[/]"
        con.print(f"{mark} {_esc(rule.id)}: {_esc(rule.says)}", soft_wrap=True)
        for e in rule.evidence if rule.fired or rule.id == "too-few-examples" else []:
            con.print(f"    [dim]{_esc(e)}[/]", soft_wrap=True)
    if advice.data is not None:
        d = advice.data
        con.print(f"[dim]data: {d.examples:,} example(s), prompt ~{d.prompt_tokens_mean:.0f} / "
                  f"reply ~{d.reply_tokens_mean:.0f} tokens, language {d.language}, "
                  f"{d.exact_duplicate_share:.0%} exact duplicates[/]")
    table = Table(box=None, header_style="bold", title="cost per route (USD; one-off / per "
                  "1,000 calls)", title_justify="left")
    table.add_column("target", overflow="fold")
    for route in ROUTES:
        table.add_column(route, justify="right")

    def cell(c: dict) -> str:
        one = c.get("one_off_usd")
        per = c.get("per_calls_usd")
        left = "–" if one is None else f"{one:,.2f}"
        right = "?" if per is None else f"{per:,.2f}"
        return f"{left} / {right}"

    for tgt, routes in advice.costs.items():
        table.add_row(_esc(tgt), *[cell(routes[r]) for r in ROUTES])
    con.print()
    con.print(table)
    for a in advice.assumptions:
        con.print(f"[dim]assumed: {_esc(a)}[/]", soft_wrap=True)
    op = advice.model_opinion
    if op:
        con.print()
        con.print(f"[bold]{_esc(op['model'])}[/] — {_esc(op['label'])}:", soft_wrap=True)
        con.print(f"  route: {_esc(op['route'] or '(none named)')}"
                  + ("" if op["agrees"] is None else " (agrees)" if op["agrees"]
                     else " (disagrees)"))
        con.print(f"  {_esc(op['why'])}", soft_wrap=True)


# -- synth -------------------------------------------------------------------------------------------
@handle_errors
def synth_cmd(
    task: str = typer.Option(..., "--task", help="What the examples are for, in a sentence."),
    seeds: Path = typer.Option(..., "--seeds", help="A few examples (JSONL, any chat or "
                               "instruction format)."),
    n: int = typer.Option(..., "--n", help="How many examples to keep."),
    model: str = typer.Option(..., "--model", help="Generator, BACKEND:MODEL (e.g. "
                              "openai:gpt-4.1-2025-04-14, local:unitune/tiny-chat)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL."),
    fmt: str = typer.Option("messages", "--format", help="messages or alpaca."),
    language: str = typer.Option("auto", "--language", help="zh, en or auto (the seeds')."),
    batch: bool = typer.Option(False, "--batch", help="Price with the vendor's batch "
                               "discount (with --dry-run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and price only."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Go ahead above the cost threshold "
                             "(UNITUNE_CONFIRM_USD, default $0.50)."),
    per_call: int = typer.Option(10, "--per-call", help="Samples asked for per call (k)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Calls in flight at "
                                    "most."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Any OpenAI-compatible "
                                           "server (vLLM, llama.cpp, Ollama)."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="BACKEND:MODEL whose "
                                         "data rules every kept example must pass."),
    restart: bool = typer.Option(False, "--restart", help="Ignore an existing journal for -o "
                                 "and start over."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan / report as JSON."),
) -> None:
    """Generate training examples from a few seeds with any model: planned and priced first,
    journaled (a killed run resumes without paying twice), filtered with a reason per drop."""
    import sys

    from ..inference.cost import threshold
    from ..synth import SynthConfig, plan_synth, run_synth

    if not seeds.is_file():
        raise fail(f"{seeds}: no such file", "give a JSONL file of seed examples", EXIT_USAGE)
    cfg = SynthConfig(task=task, seeds=seeds, n=n, model=model, out=out, fmt=fmt,
                      language=language, batch=batch, per_call=per_call,
                      concurrency=concurrency, base_url=base_url, target=target)
    plan = plan_synth(cfg)
    err = console(stderr=True)
    if dry_run:
        if as_json:
            print_json(plan.to_dict())
        else:
            console().print(_esc(plan.line()), soft_wrap=True)
            for note in plan.notes:
                console().print(f"[dim]note: {_esc(note)}[/]", soft_wrap=True)
        return
    if batch:
        raise fail("--batch prices with the vendor's batch discount; sending through the "
                   "vendor's batch API is not implemented yet",
                   "plan with `--batch --dry-run`; run without --batch", EXIT_USAGE)
    if not as_json:
        err.print(_esc(plan.line()), soft_wrap=True)
        for note in plan.notes:
            err.print(f"[dim]note: {_esc(note)}[/]", soft_wrap=True)
    if plan.cost_usd is not None and plan.cost_usd > threshold() and not yes:
        if as_json or not sys.stdin.isatty() or \
                not typer.confirm(f"this may cost ~${plan.cost_usd:,.2f}; go on?", default=False):
            raise fail(f"not confirmed: ~${plan.cost_usd:,.2f} is above UNITUNE_CONFIRM_USD="
                       f"${threshold():.2f}", "add --yes, or lower --n", EXIT_FAIL)
    log = (lambda _m: None) if as_json else (lambda m: err.print(f"[dim]{_esc(m)}[/]",
                                                                 soft_wrap=True))
    report = run_synth(plan, restart=restart, log=log)
    if as_json:
        print_json(report)
    else:
        con = console()
        con.print(f"kept {report['kept']:,} of {report['requested']:,} requested → "
                  f"{_esc(report['out'])}")
        for reason, count in report["dropped"].items():
            con.print(f"  dropped {reason:<15} {count:>6,}")
        sp = report["spend"]
        est = "–" if sp["estimate_usd"] is None else f"${sp['estimate_usd']:,.4f}"
        act = "–" if sp["actual_usd"] is None else f"${sp['actual_usd']:,.4f}"
        con.print(f"  spend {act} (estimate {est}); tokens in {sp['input_tokens_actual']:,} "
                  f"(est. {sp['input_tokens_estimate']:,}), out {sp['output_tokens_actual']:,} "
                  f"(est. {sp['output_tokens_estimate']:,})")
        d = report.get("diversity") or {}
        if d:
            con.print(f"  diversity: distinct-1 {d['distinct_1']:.2f}, distinct-2 "
                      f"{d['distinct_2']:.2f}")
        if report.get("shortfall"):
            con.print(f"[yellow]{_esc(report['shortfall'])}[/]", soft_wrap=True)
        con.print(f"[dim]provenance: {_esc(report['provenance'])}[/]")
    if report["kept"] == 0:
        raise typer.Exit(EXIT_FAIL)


# -- import ------------------------------------------------------------------------------------------
@handle_errors
def import_cmd(
    tool: str = typer.Argument(..., help="axolotl, llama-factory, openai-job or trl."),
    file: Path = typer.Argument(..., help="The tool's config: Axolotl / LLaMA-Factory YAML, an "
                                "OpenAI fine-tuning job (JSON as the API returns it), or a TRL "
                                "SFTConfig dump / `trl sft` YAML."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the spec here (default: "
                                       "print it)."),
    data: Optional[str] = typer.Option(None, "--data", help="Training JSONL to use instead of "
                                       "the config's dataset."),
    name: Optional[str] = typer.Option(None, "--name", help="Job name (default: from the "
                                       "config)."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Local model id "
                                             "(models.local), e.g. for a TRL dump that names "
                                             "none."),
    fetch_data: bool = typer.Option(False, "--fetch-data", help="openai-job: download the "
                                    "job's files through the openai SDK."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the mapping as JSON."),
) -> None:
    """Read another tool's training recipe into a unitune spec; every field it could not map is
    listed with the reason (also in the spec file's header)."""
    from ..importers import import_config

    out_dir = out.parent if out is not None else Path(".")
    if out is not None and out.exists() and not force:
        raise fail(f"{out} exists", "pass --force to overwrite it", EXIT_USAGE)
    result = import_config(tool, file, out_dir=out_dir, name=name, data=data,
                           base_model=base_model, fetch_data=fetch_data)
    command = f"unitune import {tool} {file.name}" + (f" -o {out.name}" if out else "")
    text = result.to_yaml(command)
    if out is not None:
        _write_new(out, text, force)
    if as_json:
        print_json({**result.to_dict(), "written": str(out) if out else None})
        return
    if out is None:
        typer.echo(text, nl=False)
        return
    con = console()
    detailed = [u for u in result.unmapped if u.kind in ("unsupported", "data")]
    con.print(f"wrote {_esc(out)}: {len(result.mapped)} setting(s) mapped, "
              f"{len(detailed)} not mapped (listed in the file's header)")
    for u in detailed:
        con.print(f"  [yellow]not mapped[/] {_esc(u.source)}: {_esc(u.reason)}")
    for step in result.steps():
        con.print(f"  [bold]to do[/] {_esc(step)}")
    con.print(f"[dim]next: unitune plan {_esc(out)}  (add --backend openai|bedrock|vertex to "
              "move it)[/]")


# -- export-config -----------------------------------------------------------------------------------
@handle_errors
def export_config_cmd(
    spec: Path = typer.Argument(..., help="unitune job spec."),
    to: str = typer.Option(..., "--to", help="axolotl or llama-factory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the config here "
                                       "(default: print it)."),
    lossy: bool = typer.Option(False, "--lossy", help="Write it even when some settings cannot "
                               "be expressed (they are listed)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a unitune spec as an Axolotl or LLaMA-Factory config, when nothing is lost."""
    import json

    import yaml

    from ..importers.export import export_config
    from ..spec import JobSpec

    job = JobSpec.load(spec)
    out_dir = out.parent if out is not None else Path(".")
    res = export_config(job, to, out_dir)
    if as_json:
        print_json(res.to_dict())
    if res.lost and not lossy:
        lines = "; ".join(f"{f} ({w})" for f, _v, w in res.lost)
        raise fail(f"{spec}: not lossless for {res.tool}: {lines}",
                   "pass --lossy to write it anyway, without those settings", EXIT_FAIL)
    header = [f"# Exported from {spec.name} by `unitune export-config --to {res.tool}`."]
    for f, v, w in res.lost:
        header.append(f"# LOST: {f} = {v!r} — {w}")
    for n in res.notes:
        header.append(f"# note: {n}")
    text = "\n".join(header) + "\n" + yaml.safe_dump(res.config, sort_keys=False,
                                                     allow_unicode=True)
    if out is None:
        if not as_json:
            typer.echo(text, nl=False)
        return
    _write_new(out, text, force)
    for rel, content in res.extra_files.items():
        target = out_dir / rel
        if target.exists():
            try:
                merged = json.loads(target.read_text(encoding="utf-8"))
            except ValueError:
                raise fail(f"{target} exists and is not JSON", "move it away", EXIT_USAGE) \
                    from None
            merged.update(content)
            content = merged
        target.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    if not as_json:
        con = console()
        extra = f" (+ {', '.join(res.extra_files)})" if res.extra_files else ""
        con.print(f"wrote {_esc(out)}{_esc(extra)}: {res.tool} config"
                  + (", lossless" if res.lossless else f", {len(res.lost)} setting(s) lost"))
        for f, _v, w in res.not_applicable:
            con.print(f"  [dim]not applicable: {_esc(f)} ({_esc(w)})[/]")


def register(app: typer.Typer) -> None:
    app.command("advise")(advise_cmd)
    app.command("synth")(synth_cmd)
    app.command("import")(import_cmd)
    app.command("export-config")(export_config_cmd)
