"""`unitune compare`, `unitune plan` and `unitune models`: costs, translation tables, the catalog.

Nothing here uploads or calls a vendor, except `unitune models --refresh`, which asks each
vendor what is tunable now (`catalog.discovery`) and caches the answer under UNITUNE_HOME.
`plan` asks the backend for its translation table (`backend.plan(spec)`), which by contract only
reads local files. `compare` ranks only runnable rows (a refused model gets no rank) and marks
prices that no primary source confirmed ("≈ $x, unverified"); `models` warns when the bundled
catalog was last checked more than STALE_DAYS ago.
"""
from __future__ import annotations

from typing import Any, List, Optional

import typer

from .common import EXIT_FAIL, handle_errors, print_json


# ------------------------------------------------------------------------------------------------
# formatting helpers (pure; tested directly)


def fmt_usd(value: float | None, rng: tuple[float, float] | None = None) -> str:
    if value is None:
        return "n/a"

    def one(v: float) -> str:
        if v == 0:
            return "$0"
        if v < 0.01:
            return "<$0.01"
        return f"${v:,.2f}" if v < 1000 else f"${v:,.0f}"

    if rng and abs(rng[1] - rng[0]) > max(0.005, 0.01 * rng[1]):
        return f"{one(rng[0])}–{one(rng[1])}"
    return one(value)


def fmt_hours(rng: tuple[float, float] | None) -> str:
    if rng is None:
        return "n/a"

    def one(h: float) -> str:
        if h < 1 / 60:
            return "<1 min"
        if h < 1:
            return f"{h * 60:.0f} min"
        if h < 48:
            return f"{h:.1f} h"
        return f"{h / 24:.1f} d"

    lo, hi = one(rng[0]), one(rng[1])
    return lo if lo == hi else f"{lo} – {hi}"


def fmt_tokens(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


STALE_DAYS = 90


def fmt_training(row: Any) -> str:
    """The training cell of `compare`: "≈ $x, unverified" when no primary source confirmed the
    price (the catalog's `verified: false`)."""
    text = fmt_usd(row.training_usd, row.training_usd_range)
    if row.training_usd is not None and row.price_verified is False:
        return f"≈ {text}, unverified"
    return text


def staleness(backend: str | None, today: Any = None) -> str | None:
    """A warning when the bundled catalog (one backend's file, or the oldest) is older than
    STALE_DAYS, else None."""
    from ..catalog import catalog_as_of
    from ..cost.lifecycle import today as lifecycle_today

    as_of = catalog_as_of(backend)
    if as_of is None:
        return None
    now = today or lifecycle_today()
    age = (now - as_of).days
    if age <= STALE_DAYS:
        return None
    return (f"the {'catalog' if backend is None else backend + ' catalog'} was last checked on "
            f"{as_of.isoformat()} ({age} days ago, more than {STALE_DAYS}): vendors move — run "
            "`unitune models --refresh` where the vendor lists its models, and re-check prices "
            "and dates marked unverified")


def _price_cell(price: Any) -> str:
    if price is None:
        return "n/a"
    star = "" if price.verified else "*"
    if price.unit == "per_1m_tokens":
        return f"${price.usd:g}/1M tok{star}"
    return f"${price.usd:g}/h{star}"


def _hosting_cell(info: Any) -> str:
    parts = []
    for h in info.hosting:
        star = "" if h.verified else "*"
        if h.kind == "none":
            parts.append("no standing fee")
            continue
        price = "?" if h.usd is None else f"${h.usd:g}"
        unit = "/h" if h.unit == "per_hour" else "/mo"
        name = {"provisioned_throughput": "PT/MU", "storage": "storage",
                "deployment": "deploy", "endpoint": "endpoint"}[h.kind]
        life = f" ({h.lifetime_hours}h tier)" if h.lifetime_hours else ""
        parts.append(f"{name} {price}{unit}{star}{life}")
    return ", ".join(parts) or "n/a"


# ------------------------------------------------------------------------------------------------
# commands


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
    app.command("plan")(plan)
    app.command("models")(models)


@handle_errors
def compare(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="Job spec (YAML)."),
    data: Optional[str] = typer.Option(None, "--data", help="Training JSONL (default: the spec's)."),
    backend: Optional[List[str]] = typer.Option(None, "--backend", "-b",
                                                help="Only these backends (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """What the spec would cost on every backend/model it names (or a default set), cheapest first."""
    from ..cost.compare import compare as run_compare
    from ..spec import JobSpec
    from .common import console

    spec = JobSpec.load(spec_path)
    rows = run_compare(spec, data, backends=backend or None)
    if json_out:
        print_json({"spec": spec.name, "rows": [r.model_dump(mode="json") for r in rows]})
        return
    from rich.table import Table

    table = Table(title=f"unitune compare: {spec.name}", title_justify="left", show_lines=True)
    for col, kw in (("#", {"justify": "right"}), ("backend", {}), ("model", {"overflow": "fold"}),
                    ("billable tokens", {"justify": "right"}), ("epochs", {"justify": "right"}),
                    ("training", {"justify": "right"}), ("rough time", {"justify": "right"}),
                    ("hosting/month", {"justify": "right"}), ("notes", {"overflow": "fold",
                                                                       "ratio": 1})):
        table.add_column(col, **kw)
    for r in rows:
        hosting = fmt_usd(r.hosting_usd_per_month)
        notes = list(r.notes)
        if r.hosting:
            notes.insert(0, f"hosting: {r.hosting}")
        table.add_row(str(r.rank) if r.rank else "—", r.backend, r.model,
                      fmt_tokens(r.billable_tokens),
                      str(r.epochs) if r.epochs is not None else "n/a",
                      fmt_training(r), fmt_hours(r.hours_range),
                      hosting, "\n".join(f"• {n}" for n in notes),
                      style=None if r.runnable else "dim")
    out = console()
    out.print(table)
    by_method: dict[str, list[str]] = {}
    for r in rows:
        if r.token_method:
            by_method.setdefault(r.token_method, []).append(r.backend)
    out.print("Token counts — " + "; ".join(f"{', '.join(sorted(set(b)))}: {m}"
                                             for m, b in by_method.items()),
              style="dim", markup=False)
    refused = [r for r in rows if not r.runnable]
    if refused:
        out.print("Not ranked (refused or not runnable): " + ", ".join(
            f"{r.backend}:{r.model}" for r in refused), style="dim", markup=False)
    out.print("Prices and times are estimates from the dated catalog (`unitune models`); "
              "\"≈ …, unverified\" prices are not confirmed by a primary source and must be "
              "re-checked. Local: GPU-hours at 25–50% MFU on the cheapest fitting GPU. See "
              "docs/costs.md.", style="dim", markup=False)


@handle_errors
def plan(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="Job spec (YAML)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b",
                                          help="Backend to plan for (default: the spec's)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Validate the data against a backend's rules, show how every spec field maps to the vendor's
    parameters, the cost estimate, and what would be uploaded where. Nothing is uploaded."""
    from ..cost.plan import build_plan

    from ..spec import JobSpec

    spec = JobSpec.load(spec_path)
    name = spec.resolve_backend(backend)
    result = build_plan(spec, name)
    if json_out:
        print_json(result.to_dict())
    else:
        _print_plan(result)
    if not result.ready:
        raise typer.Exit(EXIT_FAIL)


def _print_plan(result: Any) -> None:
    from rich.table import Table

    from .common import console

    out = console()
    out.print(f"[bold]unitune plan[/]: {result.spec_name} → [bold]{result.backend}[/] "
              f"({result.model})", markup=True, highlight=False)
    if result.missing:
        out.print(f"[yellow]backend not available:[/] {result.missing}", markup=True)
        if result.install_hint:
            out.print(f"  install with: {result.install_hint}", markup=False)

    # 1. validation
    out.print("\n[bold]1. Data validation[/] " + (f"({result.validation_target})"
                                                   if result.validation_target else ""), markup=True)
    if result.validation is None:
        out.print(f"  {result.validation_note or 'not run'}", markup=False)
    else:
        if result.validation_note:
            out.print(f"  [yellow]note:[/] {result.validation_note}", markup=True, highlight=False)
        s = result.validation.summary()
        out.print(f"  {s['examples']} examples, {s['errors']} errors, {s['warnings']} warnings",
                  markup=False)
        for p in result.validation.problems[:15]:
            where = f"line {p.line}" if p.line else "file"
            out.print(f"  {p.severity}: {where}: {p.message}"
                      + (f" (hint: {p.hint})" if p.hint else ""), markup=False)
        if len(result.validation.problems) > 15:
            out.print(f"  … {len(result.validation.problems) - 15} more (run `unitune validate`)",
                      markup=False)

    # 2. translation
    out.print("\n[bold]2. Translation[/] (spec field → vendor parameter)", markup=True)
    if result.rows:
        table = Table(show_lines=False)
        for col in ("spec field", "value", "vendor parameter", "vendor value", "note"):
            table.add_column(col, overflow="fold")
        for r in result.rows:
            vendor = r.vendor_param if r.applied else "—"
            vval = "" if not r.applied or r.vendor_value is None else str(r.vendor_value)
            note = r.note or ("" if r.applied else "not applied")
            table.add_row(r.field, "" if r.value is None else str(r.value), vendor or "—", vval,
                          note, style=None if r.applied else "yellow")
        out.print(table)
    else:
        out.print(f"  {result.plan_note or 'no translation table available'}", markup=False)
    for p in result.problems:
        out.print(f"  {p.severity}: {p.message}" + (f" (hint: {p.hint})" if p.hint else ""),
                  markup=False)
    for n in result.notes:
        out.print(f"  note: {n}", markup=False)

    # 3. estimate
    out.print("\n[bold]3. Estimate[/]", markup=True)
    e = result.estimate
    if e is None:
        out.print(f"  {result.estimate_note or 'not available'}", markup=False)
    elif not e.in_catalog:
        for n in e.notes:
            out.print(f"  {n}", markup=False)
    else:
        out.print(f"  examples {e.examples} (+{e.validation_examples} validation), billable tokens "
                  f"{fmt_tokens(e.billable_tokens)} = {e.epochs} epochs × "
                  f"{fmt_tokens(e.dataset_tokens)} ({e.epochs_source})", markup=False)
        out.print(f"  training {fmt_usd(e.training_usd, e.training_usd_range)}"
                  + (f" at {e.price}" if e.price else "")
                  + f"; rough time {fmt_hours(e.hours_range)}; hosting "
                  f"{fmt_usd(e.hosting_usd_per_month)}/month"
                  + (f" ({e.hosting})" if e.hosting else ""), markup=False)
        if e.lifecycle:
            style = "red" if e.lifecycle_level == "error" else "yellow"
            out.print(f"  [{style}]lifecycle:[/] {e.lifecycle}", markup=True, highlight=False)
        for n in e.notes:
            if n and not (e.lifecycle and n.startswith(("new jobs", "REFUSED", "retire"))):
                out.print(f"  • {n}", markup=False)

    # 4. uploads
    out.print("\n[bold]4. Would upload[/] (nothing is uploaded by plan)", markup=True)
    if result.uploads:
        for u in result.uploads:
            size = f", {u.bytes:,} bytes" if u.bytes else ""
            out.print(f"  {u.local} → {u.destination} ({u.format}, {u.examples} examples{size})",
                      markup=False)
    else:
        out.print("  " + ("nothing (the backend reads local files)" if result.rows and
                          result.backend == "local" else "unknown (no plan from the backend)"),
                  markup=False)
    if result.request is not None:
        import json

        out.print("\n[bold]5. Request[/] (exactly what `train` sends; <…> is known at submit)",
                  markup=True)
        out.print(json.dumps(result.request, indent=2, default=str), markup=False,
                  highlight=False)
    out.print("\n" + ("[green]OK[/]: ready to `unitune train`" if result.ready else
                      "[red]NOT READY[/]: fix the errors above"), markup=True)


@handle_errors
def models(
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Only this backend."),
    refresh: bool = typer.Option(False, "--refresh", help="Ask the vendor what is tunable now "
                                 "(Bedrock, Azure, OpenAI) and cache it under UNITUNE_HOME; "
                                 "the bundled catalog stays the offline default."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The model catalog: training prices, hosting, limits and lifecycle dates (with sources)."""
    from ..catalog import gpus, models as catalog_models
    from ..cost.lifecycle import lifecycle_short

    refreshed = _refresh(backend) if refresh else []
    rows = catalog_models(backend)
    stale = staleness(backend)
    if json_out:
        print_json({"models": [m.model_dump(mode="json") for m in rows],
                    "gpus": [g.model_dump(mode="json") for g in gpus()]
                    if backend in (None, "local") else [],
                    "stale": stale, "refreshed": refreshed})
        return
    if not rows:
        from ..backends import available_backends

        raise typer.Exit(_no_models(backend, sorted(available_backends())))
    from rich.table import Table

    from .common import console

    out = console()
    for r in refreshed:
        style = "green" if r["ok"] else "yellow"
        out.print(f"[{style}]refresh {r['backend']}:[/] ", markup=True, end="")
        out.print(r["message"], markup=False, highlight=False)
    table = Table(title="unitune model catalog (* = unverified)", title_justify="left")
    for col in ("backend", "model", "methods", "training", "hosting", "tokens/example",
                "examples", "lifecycle"):
        table.add_column(col, overflow="fold")
    for m in rows:
        lim = m.limits
        tok = "n/a" if not lim.tokens_per_example else (
            f"{lim.tokens_per_example:,}" + ("" if lim.truncates else " (rejects)"))
        ex = "–".join(str(x) for x in (lim.min_examples, lim.max_examples) if x) or "n/a"
        train = _price_cell(m.training)
        if m.backend == "local" and m.parameters:
            train = f"GPU time ({m.parameters / 1e9:.3g}B params)"
        table.add_row(m.backend, m.model + (" (legacy)" if m.deprecated else ""),
                      ",".join(m.methods), train, _hosting_cell(m), tok, ex,
                      lifecycle_short(m) or "")
    out.print(table)
    if stale:
        out.print(f"[yellow]warning:[/] {stale}", markup=True, highlight=False)
    if backend in (None, "local"):
        gt = Table(title="GPU price table for local estimates (* = unverified)",
                   title_justify="left")
        for col in ("gpu", "$/hour", "peak bf16 TFLOPs", "memory", "as of"):
            gt.add_column(col)
        for g in gpus():
            gt.add_row(g.gpu, f"{g.usd_per_hour:g}" + ("" if g.verified else "*"),
                       f"{g.peak_bf16_tflops:g}", f"{g.memory_gb} GB", g.as_of.isoformat())
        out.print(gt)


def _refresh(backend: str | None) -> list[dict[str, Any]]:
    """Refresh one backend (or every refreshable one): a result line per backend; a vendor that
    cannot be asked is reported, not fatal, unless it was the one backend asked for."""
    from ..catalog import discovery
    from ..errors import UnituneError

    names = [backend] if backend else list(discovery.REFRESHABLE)
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            found = discovery.refresh(name)
        except UnituneError as exc:
            if backend is not None and name not in discovery.NO_API:
                raise
            results.append({"backend": name, "ok": False, "message": exc.message})
            continue
        changed = _changed(name, found)
        msg = (f"{len(found.models)} model(s) from {found.source} at {found.fetched_at}; "
               f"cached in {discovery.cache_path(name)}")
        if changed:
            msg += "; lifecycle now from the vendor for: " + ", ".join(changed)
        if found.note:
            msg += f" ({found.note})"
        results.append({"backend": name, "ok": True, "message": msg,
                        "fetched_at": found.fetched_at, "changed": changed})
    return results


def _changed(backend: str, found: Any) -> list[str]:
    from ..catalog import discovery, load_catalog

    return [m.model for m in load_catalog().models
            if m.backend == backend and discovery.verdict(m, found)]


def _no_models(backend: str | None, known: list[str]) -> int:
    from .common import fail

    raise fail(f"no catalog entries for backend {backend!r}",
               hint="backends with catalog data: openai, azure, bedrock, vertex, local "
                    f"(registered: {', '.join(known)})")
