"""Model lifecycle rule: warn before a vendor's cut-off, refuse after it.

Dates come from the catalog (`ModelInfo.lifecycle`: `new_jobs_until` = last day new tuning jobs
are accepted, `retires` = the base model and its fine-tunes stop serving). `plan` and `train`
call `lifecycle_status`; a refusal is overridable by the caller (e.g. `--ignore-lifecycle`), since
the dates are partly unverified. Every message points at `unitune compare` for alternatives.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]

COMPARE_HINT = "run `unitune compare SPEC` to see what the same job costs on other backends"


def _today() -> date:
    return date.today()


def lifecycle_status(model_info: Any, today: date | None = None) -> tuple[Level, str]:
    """("ok" | "warning" | "error", message) for starting a new tuning job on `model_info` today.

    - "error": new jobs are no longer accepted (after `new_jobs_until`) or the model has retired.
    - "warning": a cut-off date is known and still ahead (the message says how many days).
    - "ok": no lifecycle dates known (message is "").
    Unverified dates are labelled as such in the message.
    """
    today = today or _today()
    lc = getattr(model_info, "lifecycle", None)
    if lc is None or (lc.new_jobs_until is None and lc.retires is None):
        return "ok", ""
    name = f"{model_info.backend}:{model_info.model}"
    unverified = "" if lc.verified else " (unverified date)"
    detail = f" {lc.note}." if lc.note else ""
    if lc.retires is not None and today >= lc.retires:
        return "error", (f"{name} retired on {lc.retires.isoformat()}{unverified}: new tuning jobs "
                         f"are refused and its fine-tunes no longer serve.{detail} {COMPARE_HINT}.")
    if lc.new_jobs_until is not None and today > lc.new_jobs_until:
        stop = lc.new_jobs_until + timedelta(days=1)
        retire = f"; it retires on {lc.retires.isoformat()}" if lc.retires else ""
        return "error", (f"{name} stopped accepting new tuning jobs on {stop.isoformat()}"
                         f"{unverified}{retire}.{detail} {COMPARE_HINT}.")
    parts = []
    if lc.new_jobs_until is not None:
        stop = lc.new_jobs_until + timedelta(days=1)
        parts.append(f"new tuning jobs stop on {stop.isoformat()} "
                     f"(in {(stop - today).days} days)")
    if lc.retires is not None:
        parts.append(f"the model and its fine-tunes retire on {lc.retires.isoformat()} "
                     f"(in {(lc.retires - today).days} days)")
    return "warning", (f"{name}: " + "; ".join(parts) + f"{unverified}. {COMPARE_HINT}.")


def lifecycle_short(model_info: Any, today: date | None = None) -> str | None:
    """A few words for a table cell: "new jobs stop 2027-01-06, retires 2027-01-14"."""
    today = today or _today()
    lc = getattr(model_info, "lifecycle", None)
    if lc is None or (lc.new_jobs_until is None and lc.retires is None):
        return None
    level, _ = lifecycle_status(model_info, today)
    bits = []
    if lc.new_jobs_until is not None:
        stop = lc.new_jobs_until + timedelta(days=1)
        bits.append(f"new jobs {'stopped' if today >= stop else 'stop'} {stop.isoformat()}")
    if lc.retires is not None:
        bits.append(f"{'retired' if today >= lc.retires else 'retires'} {lc.retires.isoformat()}")
    text = ", ".join(bits) + ("" if lc.verified else " (unverified)")
    return ("REFUSED: " + text) if level == "error" else text
