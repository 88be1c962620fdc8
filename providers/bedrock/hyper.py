"""Unified hyperparameters → the Bedrock family's vendor keys (strings), with range checks.

Ranges and defaults come from the catalog (`ModelInfo.hyperparameters`, each with `vendor_key`,
`min`, `max`, `default`, `type`). An out-of-range value is an error at `check`/`plan` naming the
allowed range; a field the family has no key for is shown as "not applied" with the reason.
Vendor-only knobs (early stopping, Cohere's evalPercentage) go in
`backend_options.bedrock.hyperparameters` under their vendor key and are range-checked the same way.
A range the model's own documents do not give (`verified: false` in the catalog, e.g. Nova 2
Lite's, copied from Nova 1) is never applied silently: its plan row and a warning say the range
is unverified and where it was copied from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from unitune.backends import PlanRow
from unitune.data.report import Problem

# unified spec field -> the vendor key Bedrock uses for it (wire names of the API, not data)
UNIFIED = {
    "epochs": "epochCount",
    "batch_size": "batchSize",
    "learning_rate": "learningRate",
    "learning_rate_multiplier": "learningRateMultiplier",
    "warmup_ratio": "learningRateWarmupSteps",
}

NOT_APPLIED = {
    "weight_decay": "Bedrock model customization exposes no weight decay",
    "seed": "Bedrock model customization takes no seed",
    "gradient_accumulation_steps": "Bedrock chooses its own accumulation",
    "max_steps": "Bedrock trains whole epochs (set epochs instead)",
    "beta": "DPO is not available through Bedrock model customization",
    "max_seq_length": "not sent: used only to check records against the model's token limit",
}


@dataclass
class Mapped:
    """The vendor hyperParameters to send, the plan rows and any problems: one table yields
    both (translate.Table has the same shape for the whole request)."""

    params: dict[str, str] = field(default_factory=dict)
    rows: list[PlanRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    effective: dict[str, float] = field(default_factory=dict)  # vendor key -> value used (incl. defaults)


def fmt(value: float, kind: str) -> str:
    """A vendor string without exponent notation ("0.00001", not "1e-05")."""
    if kind == "int":
        return str(int(value))
    text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _ranges(info) -> dict[str, Any]:
    return {r.vendor_key: r for r in info.hyperparameters.values()}


def describe_range(r) -> str:
    lo, hi = r.min, r.max
    def num(v):
        return fmt(v, r.type)

    if lo is not None and hi is not None:
        span = f"exactly {num(lo)}" if lo == hi else f"{num(lo)}–{num(hi)}"
    elif lo is not None:
        span = f"≥ {num(lo)}"
    elif hi is not None:
        span = f"≤ {num(hi)}"
    else:
        span = "any value"
    default = f" (default {r.default})" if r.default is not None else ""
    why = r.note or "not in this model's documents"
    unverified = "" if getattr(r, "verified", True) else f" [range unverified: {why}]"
    return f"{r.vendor_key} takes {span}{default}{unverified}"


def _unverified(r, where: str, model: str) -> Problem | None:
    """A warning when a value is checked against a range the model's documents do not give."""
    if getattr(r, "verified", True):
        return None
    return Problem("hyperparameter_range_unverified", f"{where} is checked against an "
                   f"unverified range for {model}: {describe_range(r)}", severity="warning",
                   path=where, target=f"bedrock:{model}",
                   hint="AWS may accept a different range for this model; check its "
                        "customization documentation")


def _check(r, value: Any, where: str, model: str) -> Problem | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return Problem("hyperparameter_type", f"{where}={value!r} is not a number",
                       path=where, hint=describe_range(r), target=f"bedrock:{model}")
    if r.type == "int" and not float(number).is_integer():
        return Problem("hyperparameter_type", f"{where}={value!r} must be a whole number",
                       path=where, hint=describe_range(r), target=f"bedrock:{model}")
    if (r.min is not None and number < r.min) or (r.max is not None and number > r.max):
        return Problem("hyperparameter_out_of_range",
                       f"{where}={value} is out of range for {model}: {describe_range(r)}",
                       path=where, hint=f"set {where} inside the range, or `auto` for the default",
                       target=f"bedrock:{model}")
    return None


def map_hyperparameters(spec, info, vendor: dict[str, Any], n_train: int | None) -> Mapped:
    """Translate `spec.hyperparameters` (+ `vendor`: raw vendor keys from
    backend_options.bedrock.hyperparameters) for model `info`; `n_train` records to train on."""
    out = Mapped()
    ranges = _ranges(info)
    hp = spec.hyperparameters
    model = info.model

    def default_of(key: str) -> float | None:
        r = ranges.get(key)
        return float(r.default) if r is not None and r.default is not None else None

    for name, key in UNIFIED.items():
        value = getattr(hp, name)
        where = f"hyperparameters.{name}"
        r = ranges.get(key)
        if value in (None, "auto"):
            if r is not None:
                out.rows.append(PlanRow(where, value, key, None, note=f"Bedrock default "
                                        f"{r.default}" if r.default is not None else "Bedrock default"))
                if r.default is not None:
                    out.effective[key] = float(r.default)
            continue
        if r is None:
            why = f"{model} takes no {key}"
            if name == "learning_rate" and "learningRateMultiplier" in ranges:
                why += " (it takes learning_rate_multiplier)"
            if name == "learning_rate_multiplier" and "learningRate" in ranges:
                why += " (it takes an absolute learning_rate)"
            out.rows.append(PlanRow(where, value, None, None, note=f"not applied: {why}",
                                    applied=False))
            out.problems.append(Problem("hyperparameter_not_applied", f"{where}={value} is not "
                                        f"applied: {why}", severity="warning", path=where,
                                        target=f"bedrock:{model}"))
            continue
        if name == "warmup_ratio":
            continue  # needs the step count; handled below
        problem = _check(r, value, where, model)
        if problem:
            out.problems.append(problem)
            out.rows.append(PlanRow(where, value, key, None, note=f"refused: {describe_range(r)}",
                                    applied=False))
            continue
        out.params[key] = fmt(value, r.type)
        out.effective[key] = float(value)
        warn = _unverified(r, where, model)
        if warn:
            out.problems.append(warn)
        out.rows.append(PlanRow(where, value, key, out.params[key],
                                note="range unverified" if warn else None))

    # warmup_ratio -> learningRateWarmupSteps = round(ratio × steps), steps from data and batch
    ratio = hp.warmup_ratio
    r = ranges.get("learningRateWarmupSteps")
    if ratio is not None and r is not None:
        where = "hyperparameters.warmup_ratio"
        epochs = out.effective.get("epochCount") or default_of("epochCount") or 1
        batch = out.effective.get("batchSize") or default_of("batchSize") or 1
        if n_train is None:
            out.rows.append(PlanRow(where, ratio, r.vendor_key, None, applied=False,
                                    note="not applied: the training file could not be read to "
                                         "count steps"))
        else:
            steps = math.ceil(n_train / batch) * int(epochs)
            warm = int(round(ratio * steps))
            note = f"{ratio} × {steps} steps ({n_train} examples / batch {int(batch)} × " \
                   f"{int(epochs)} epochs)"
            if r.max is not None and warm > r.max:
                out.problems.append(Problem(
                    "hyperparameter_clamped", f"{where}={ratio} gives {warm} warmup steps, above "
                    f"the maximum {int(r.max)} for {model}; {int(r.max)} is sent",
                    severity="warning", path=where, hint=describe_range(r),
                    target=f"bedrock:{model}"))
                note += f" = {warm}, clamped to {int(r.max)}"
                warm = int(r.max)
            out.params[r.vendor_key] = fmt(warm, "int")
            out.effective[r.vendor_key] = warm
            out.rows.append(PlanRow(where, ratio, r.vendor_key, out.params[r.vendor_key], note=note))

    # raw vendor keys (early stopping, evalPercentage, ...) from backend_options.bedrock.hyperparameters
    for key, value in vendor.items():
        where = f"backend_options.bedrock.hyperparameters.{key}"
        r = ranges.get(key)
        if r is None:
            out.problems.append(Problem(
                "hyperparameter_unknown", f"{model} has no hyperparameter {key!r}", path=where,
                hint="it takes: " + ", ".join(sorted(ranges)) if ranges else None,
                target=f"bedrock:{model}"))
            continue
        if key in out.params:
            out.problems.append(Problem("hyperparameter_conflict", f"{key} is set twice (spec "
                                        f"hyperparameters and {where})", path=where,
                                        hint="keep one of them"))
            continue
        problem = _check(r, value, where, model)
        if problem:
            out.problems.append(problem)
            continue
        out.params[key] = fmt(value, r.type)
        out.effective[key] = float(value)
        out.rows.append(PlanRow(where, value, key, out.params[key]))

    # defaults of vendor-only keys, shown so nothing is hidden
    shown = {row.vendor_param for row in out.rows}
    for key, r in sorted(ranges.items()):
        if key not in shown and r.default is not None:
            out.rows.append(PlanRow(f"(vendor) {key}", None, key, None,
                                    note=f"Bedrock default {r.default}; {describe_range(r)}"))
            out.effective.setdefault(key, float(r.default) if _is_number(r.default) else 0.0)

    for name, why in NOT_APPLIED.items():
        value = getattr(hp, name)
        if value is not None:
            out.rows.append(PlanRow(f"hyperparameters.{name}", value, None, None,
                                    note=f"not applied: {why}", applied=False))
            if name != "max_seq_length":
                out.problems.append(Problem("hyperparameter_not_applied",
                                            f"hyperparameters.{name}={value} is not applied: {why}",
                                            severity="warning", path=f"hyperparameters.{name}",
                                            target=f"bedrock:{model}"))
    return out


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
