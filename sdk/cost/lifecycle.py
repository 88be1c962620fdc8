"""Model lifecycle rule: warn before a vendor's cut-off, refuse after it — one rule for every
backend, with one "today".

Dates come from the catalog (`ModelInfo.lifecycle`): `new_jobs_until` = last day new tuning jobs
are accepted, `retires` = the base model and its fine-tunes stop serving, `status` = the vendor's
own word for tuning ("not_tunable", "legacy", "retired"; from the data or from
`unitune models --refresh`), `gates` = staged closures that hit only some callers (they warn),
`disputed` = other sources' dates (named in every message). A model past its cut-off is REFUSED:
`lifecycle_problems` returns an error Problem (so `plan` is NOT READY and `train` refuses before
anything is uploaded), quoting the source, its date and the vendor's words. The refusal is
overridable with `backend_options.<backend>.ignore_lifecycle: true`, since some dates are
unverified; every message points at `unitune compare`.

"Today" is read in one place, `today()`: the environment variable UNITUNE_TODAY (an ISO date)
when set, else the real date. Tests and what-if runs set it; every backend obeys it.
"""
from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]

COMPARE_HINT = "run `unitune compare SPEC` to see what the same job costs on other backends"
TODAY_VAR = "UNITUNE_TODAY"
CLOSED = ("not_tunable", "legacy", "retired")
STATUS_WORDS = {"not_tunable": "is no longer in the vendor's list of fine-tunable models",
                "legacy": "is a legacy model at the vendor (no new tuning jobs)",
                "retired": "is retired at the vendor"}


def today() -> date:
    """The date lifecycle rules are evaluated on: UNITUNE_TODAY (YYYY-MM-DD) or the real date."""
    text = os.environ.get(TODAY_VAR, "").strip()
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        from ..errors import SpecError

        raise SpecError(f"{TODAY_VAR}={text!r} is not an ISO date", field=TODAY_VAR,
                        hint="use YYYY-MM-DD, e.g. UNITUNE_TODAY=2026-12-01, or unset it") from None


# kept for callers of the old private name
_today = today


def _has_dates(lc: Any) -> bool:
    return lc is not None and bool(lc.new_jobs_until or lc.retires or lc.status in CLOSED
                                   or lc.gates or lc.disputed)


def _sourced(lc: Any) -> str:
    return f"[source: {lc.source}, as of {lc.as_of.isoformat()}]"


def _disputed_text(lc: Any, t: date) -> str:
    """" Other sources: …" naming each disagreeing source with its dates."""
    bits = []
    for d in lc.disputed:
        parts = []
        if d.new_jobs_until:
            stop = d.new_jobs_until + timedelta(days=1)
            parts.append(f"new jobs {'stopped' if t >= stop else 'stop'} {stop.isoformat()}")
        if d.retires:
            parts.append(f"{'retired' if t >= d.retires else 'retires'} {d.retires.isoformat()}")
        what = ", ".join(parts) or (d.note or "a different account")
        bits.append(f"{what} ({d.source}, as of {d.as_of.isoformat()})"
                    + (f": {d.note}" if d.note and parts else ""))
    return (" Sources disagree — also: " + "; ".join(bits) + ".") if bits else ""


def _gates_text(lc: Any, t: date) -> str:
    bits = []
    for g in lc.gates:
        if t >= g.since:
            bits.append(f"since {g.since.isoformat()} {g.who} cannot create jobs")
        else:
            bits.append(f"from {g.since.isoformat()} {g.who} cannot create jobs "
                        f"(in {(g.since - t).days} days)")
    return ("Staged closure: " + "; ".join(bits) + ".") if bits else ""


def _closed_since(lc: Any) -> date:
    return lc.since or lc.as_of


def lifecycle_status(model_info: Any, today_: date | None = None) -> tuple[Level, str]:
    """("ok" | "warning" | "error", message) for starting a new tuning job on `model_info`.

    - "error": the vendor lists the model as not tunable / legacy / retired, new jobs are no
      longer accepted (after `new_jobs_until`), or the model has retired.
    - "warning": a cut-off or a gate is known (the message says which and when), or another
      source says the cut-off has passed.
    - "ok": nothing known (message is "").
    Unverified dates are labelled as such; the source and its date are always named.
    """
    t = today_ or today()
    lc = getattr(model_info, "lifecycle", None)
    if not _has_dates(lc):
        return "ok", ""
    name = f"{model_info.backend}:{model_info.model}"
    unverified = "" if lc.verified else " (unverified)"
    detail = f" {lc.note}." if lc.note else ""
    tail = f"{_disputed_text(lc, t)} {_sourced(lc)} {COMPARE_HINT}."
    if lc.status in CLOSED and t >= _closed_since(lc):
        words = f" — in the source's words: \"{lc.vendor_words}\"" if lc.vendor_words else ""
        return "error", (f"{name} {STATUS_WORDS[lc.status]} (as of "
                         f"{_closed_since(lc).isoformat()}){unverified}{words}; new tuning jobs "
                         f"are refused.{'' if lc.vendor_words else detail}{tail}")
    if lc.retires is not None and t >= lc.retires:
        return "error", (f"{name} retired on {lc.retires.isoformat()}{unverified}: new tuning "
                         f"jobs are refused and its fine-tunes no longer serve.{detail}{tail}")
    if lc.new_jobs_until is not None and t > lc.new_jobs_until:
        stop = lc.new_jobs_until + timedelta(days=1)
        retire = f"; it retires on {lc.retires.isoformat()}" if lc.retires else ""
        return "error", (f"{name} stopped accepting new tuning jobs on {stop.isoformat()}"
                         f"{unverified}{retire}.{detail}{tail}")
    parts = []
    if lc.new_jobs_until is not None:
        stop = lc.new_jobs_until + timedelta(days=1)
        parts.append(f"new tuning jobs stop on {stop.isoformat()} (in {(stop - t).days} days)")
    if lc.retires is not None:
        parts.append(f"the model and its fine-tunes retire on {lc.retires.isoformat()} "
                     f"(in {(lc.retires - t).days} days)")
    if lc.status in CLOSED:
        parts.append(f"it {STATUS_WORDS[lc.status]} from {_closed_since(lc).isoformat()}")
    text = f"{name}: " + "; ".join(parts) + f"{unverified}." if parts else f"{name}:"
    gates = _gates_text(lc, t)
    if gates:
        text += f" {gates}"
    return "warning", f"{text}{tail}"


def lifecycle_short(model_info: Any, today_: date | None = None) -> str | None:
    """A few words for a table cell: "new jobs stop 2027-01-06, retires 2027-01-14"."""
    t = today_ or today()
    lc = getattr(model_info, "lifecycle", None)
    if not _has_dates(lc):
        return None
    level, _ = lifecycle_status(model_info, t)
    bits = []
    if lc.status in CLOSED:
        since = _closed_since(lc)
        bits.append(f"{lc.status.replace('_', ' ')} {'since' if t >= since else 'from'} "
                    f"{since.isoformat()}")
    if lc.new_jobs_until is not None:
        stop = lc.new_jobs_until + timedelta(days=1)
        bits.append(f"new jobs {'stopped' if t >= stop else 'stop'} {stop.isoformat()}")
    if lc.retires is not None:
        bits.append(f"{'retired' if t >= lc.retires else 'retires'} {lc.retires.isoformat()}")
    open_gates = [g for g in lc.gates if t >= g.since]
    if open_gates and level != "error":
        bits.append(f"gated for some orgs since {max(g.since for g in open_gates).isoformat()}")
    if lc.disputed:
        bits.append("sources disagree")
    text = ", ".join(bits) + ("" if lc.verified else " (unverified)")
    return ("REFUSED: " + text) if level == "error" else text


def lifecycle_problems(model_info: Any, backend: str, *, ignore: bool = False,
                       today_: date | None = None) -> list[Any]:
    """The lifecycle rule as Problems for `check`/`plan`/`train`: an error past a cut-off
    (a warning, saying so, when `ignore`), a warning before one, nothing when no date is known."""
    from ..data.report import Problem

    if model_info is None:
        return []
    level, message = lifecycle_status(model_info, today_)
    if level == "ok":
        return []
    target = f"{backend}:{model_info.model}"
    override = f"backend_options.{backend}.ignore_lifecycle: true"
    path = f"models.{backend}"
    if level == "warning":
        return [Problem("lifecycle_closing", message, severity="warning", path=path,
                        target=target)]
    if ignore:
        return [Problem("lifecycle_closed", f"{message} — submitting anyway ({override})",
                        severity="warning", path=path, target=target)]
    return [Problem("unsupported_lifecycle", message, path=path, target=target,
                    hint="run `unitune compare` and move the job with one flag "
                         f"(`--backend …`); to try anyway: {override}")]


def flag(value: Any) -> bool:
    """An `ignore_lifecycle` value from a spec, an option or the environment, as a bool."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")
