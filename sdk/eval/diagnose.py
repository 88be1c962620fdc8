"""Reading the curves: what a job's normalized metrics (any backend) say about its settings.

`diagnose(rows, eval_report=None) -> Diagnosis` looks for, in this order:

    no_validation   no validation loss was logged: overfitting cannot be seen (say so)
    divergence      the training loss became NaN/inf, or ended above where it started
    spikes          training-loss points far above the recent median (learning rate too high)
    overfitting     the validation loss rose from its minimum while the training loss kept
                    falling
    flat            the training loss barely moved (learning rate too low, too few steps, or
                    too little data)
    regression      `unitune eval` found the tuned model worse than its base on a metric, with
                    the 95% interval below zero (forgetting)

Each finding names its evidence (steps and values) and the remedy the fine-tuning guide gives
for it (过拟合: fewer epochs, more dropout / data; 性能退化 / divergence: lower learning rate,
warm-up; 灾难性遗忘: LoRA, mix in general data). No finding is a finding too ("healthy").
`diagnose_job(job_id)` reads the job's metrics (and its latest eval report, if any) from the
registry; `lines(diagnosis)` renders it for the terminal — what `train` prints when a job ends.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

SPIKE_FACTOR = 1.5  # a point this many times the median of the previous window is a spike
SPIKE_WINDOW = 5
FLAT_DROP = 0.05  # less than a 5% fall from the first to the last smoothed loss is "flat"
OVERFIT_RISE = 0.05  # validation loss 5% above its minimum at the end


@dataclass
class Finding:
    code: str
    severity: str  # "warning" | "info"
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""


@dataclass
class Diagnosis:
    job: str | None
    steps: int
    findings: list[Finding]

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "warning" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "steps": self.steps, "healthy": self.healthy,
                "findings": [asdict(f) for f in self.findings]}


def _val(row: Any, name: str) -> float | None:
    v = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    return float(v) if v is not None else None


def _series(rows: Sequence[Any], name: str) -> list[tuple[int, float]]:
    out = []
    for r in rows:
        v = _val(r, name)
        step = _val(r, "step")
        if v is not None and step is not None:
            out.append((int(step), v))
    return sorted(out)


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _smooth_ends(values: list[float]) -> tuple[float, float]:
    k = max(1, len(values) // 5)
    return sum(values[:k]) / k, sum(values[-k:]) / k


def diagnose(rows: Sequence[Any], eval_report: dict[str, Any] | None = None,
             job: str | None = None) -> Diagnosis:
    """Findings for the metric rows (`unitune.Metrics` or dicts) and an optional eval report."""
    train = _series(rows, "train_loss")
    valid = _series(rows, "valid_loss")
    found: list[Finding] = []
    steps = max((s for s, _ in train + valid), default=0)
    if not valid:
        found.append(Finding(
            "no_validation", "info", "no validation loss was logged, so overfitting cannot "
            "be seen in the curves", {"train_points": len(train)},
            "add validation data (`data.validation: 0.1` or a file) and run `unitune eval` on "
            "held-out examples"))
    if train:
        values = [v for _, v in train]
        bad = [(s, v) for s, v in train if not math.isfinite(v)]
        first, last = _smooth_ends([v for v in values if math.isfinite(v)] or [0.0])
        if bad:
            found.append(Finding(
                "divergence", "warning", f"the training loss became {bad[0][1]} at step "
                f"{bad[0][0]}: training diverged", {"step": bad[0][0], "value": str(bad[0][1])},
                "lower the learning rate (e.g. halve it), add warm-up (warmup_ratio 0.03–0.1), "
                "keep gradient clipping on"))
        elif len(values) >= 4 and last > first * 1.02:
            found.append(Finding(
                "divergence", "warning", f"the training loss ended higher than it started "
                f"({first:.4g} → {last:.4g}): the learning rate is likely too high",
                {"first": first, "last": last, "steps": [train[0][0], train[-1][0]]},
                "lower the learning rate (or learning_rate_multiplier) and add warm-up"))
        spikes = []
        for i in range(SPIKE_WINDOW, len(train)):
            window = [v for _, v in train[i - SPIKE_WINDOW:i] if math.isfinite(v)]
            if window and math.isfinite(train[i][1]) and \
                    train[i][1] > SPIKE_FACTOR * _median(window):
                spikes.append({"step": train[i][0], "value": train[i][1],
                               "median_before": _median(window)})
        if spikes:
            worst = max(spikes, key=lambda s: s["value"] / max(s["median_before"], 1e-9))
            found.append(Finding(
                "spikes", "warning", f"{len(spikes)} loss spike(s); the largest at step "
                f"{worst['step']}: {worst['value']:.4g} against a recent median of "
                f"{worst['median_before']:.4g}", {"spikes": spikes[:10]},
                "a learning rate that is too high makes the loss jump: lower it and use "
                "warm-up; check the data around those steps for broken examples"))
        if len(values) >= 4 and not bad and first > 0 and (first - last) / first < FLAT_DROP \
                and last <= first * 1.02:
            found.append(Finding(
                "flat", "warning", f"the training loss barely moved ({first:.4g} → {last:.4g}, "
                f"{(first - last) / first:.1%} over {len(values)} points)",
                {"first": first, "last": last, "points": len(values)},
                "raise the learning rate (or multiplier), train more steps/epochs, or add data; "
                "check that the loss covers the answers (assistant tokens)"))
    if len(valid) >= 2:
        best_step, best = min(valid, key=lambda sv: sv[1])
        end_step, end = valid[-1]
        train_at_best = [v for s, v in train if s <= best_step]
        train_end = train[-1][1] if train else None
        if end > best * (1 + OVERFIT_RISE) and end_step > best_step and (
                train_end is None or not train_at_best or train_end < train_at_best[-1]):
            found.append(Finding(
                "overfitting", "warning", f"validation loss rose from {best:.4g} (step "
                f"{best_step}) to {end:.4g} (step {end_step}) while the training loss kept "
                "falling: the model is memorizing the training set",
                {"best_step": best_step, "best_valid_loss": best, "last_step": end_step,
                 "last_valid_loss": end, "train_loss_at_best": train_at_best[-1]
                 if train_at_best else None, "train_loss_at_end": train_end},
                f"fewer epochs (stop near step {best_step}), more or more varied data, more "
                "dropout, or a lower learning rate"))
    if eval_report:
        for name, m in (eval_report.get("metrics") or {}).items():
            ci = m.get("ci95") or [None, None]
            lower_better = m.get("lower_is_better", False)
            worse = (ci[0] is not None and ci[0] > 0) if lower_better else \
                (ci[1] is not None and ci[1] < 0)
            if worse:
                found.append(Finding(
                    "regression", "warning", f"the tuned model is worse than its base on "
                    f"{name}: {m['base']:.4g} → {m['tuned']:.4g} (95% CI of the change "
                    f"[{ci[0]:+.4g}, {ci[1]:+.4g}])", {"metric": name, **m},
                    "forgetting: lower the learning rate or epochs, use LoRA with a smaller r, "
                    "and mix general-purpose examples into the training data"))
    if not any(f.severity == "warning" for f in found) and train:
        found.append(Finding("healthy", "info", "no sign of divergence, spikes, overfitting or "
                             "a flat curve", {"first": train[0][1], "last": train[-1][1]}))
    return Diagnosis(job=job, steps=steps, findings=found)


def latest_eval(job_id: str) -> dict[str, Any] | None:
    from ..paths import unitune_home

    root = unitune_home() / "jobs" / job_id / "eval"
    reports = sorted(root.glob("*/report.json")) if root.is_dir() else []
    for path in reversed(reports):
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def diagnose_job(job_id: str, client: Any = None) -> Diagnosis:
    """The diagnosis of a job from its metrics and its latest `unitune eval` report."""
    from ..client import Client

    client = client or Client()
    job = client.registry.get_job(job_id)
    rows = client.metrics(job.id)
    return diagnose(rows, latest_eval(job.id), job=job.id)


def lines(d: Diagnosis) -> list[str]:
    """The diagnosis as terminal lines (no markup)."""
    out = [f"diagnosis of {d.job or 'the curves'} ({d.steps} steps): "
           + ("healthy" if d.healthy else f"{sum(f.severity == 'warning' for f in d.findings)} "
              "warning(s)")]
    for f in d.findings:
        out.append(f"  [{f.severity}] {f.code}: {f.message}")
        if f.remedy:
            out.append(f"      → {f.remedy}")
    return out


def print_for(job_id: str, client: Any = None, echo: Any = print) -> Diagnosis | None:
    """What `train` calls when a job ends: print the diagnosis (never raises)."""
    from ..errors import UnituneError

    try:
        d = diagnose_job(job_id, client)
    except UnituneError:
        return None
    for line in lines(d):
        echo(line)
    return d
