"""Cross-backend comparison: one CostEstimate per backend/model, sorted by training cost.

The rows are the spec's `models` (backend → model); when the spec names none, the catalog's
default set (`default: true`). The data is read once and counted once per distinct tokenizer.
A row that cannot run (past its lifecycle cut-off, a method the model lacks) is listed after the
others and never ranked (`rank` None): a refused model is never the "cheapest".
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from .estimate import CostEstimate, _counter_key, count_tokens, estimate


def targets_for(spec: Any, backends: list[str] | None = None) -> list[tuple[str, str]]:
    """(backend, model) pairs to compare: the spec's `models`, else the catalog defaults."""
    from ..catalog import models

    if spec.models:
        pairs = list(spec.models.items())
        if spec.base_model and spec.backend and spec.backend not in spec.models:
            pairs.insert(0, (spec.backend, spec.base_model))
    else:
        pairs = [(m.backend, m.model) for m in models() if m.default]
    if backends:
        pairs = [p for p in pairs if p[0] in backends]
    return pairs


def compare(spec: Any, data: str | Path | None = None, *, backends: list[str] | None = None,
            today: date | None = None) -> list[CostEstimate]:
    """Estimate the spec on every target backend/model; cheapest training cost first (unknown
    prices last)."""
    from ..catalog import find_model

    pairs = targets_for(spec, backends)
    infos = {pair: find_model(*pair) for pair in pairs}
    counted = count_tokens(spec, infos.values(), data) if any(infos.values()) else {}
    rows = []
    for (backend, model), info in infos.items():
        stats = counted.get(_counter_key(info)) if info is not None else None
        rows.append(estimate(spec, backend, model, stats, data=data, today=today))
    rows.sort(key=lambda r: r.sort_key)
    rank = 0
    for r in rows:
        if r.runnable and r.training_usd is not None:
            rank += 1
            r.rank = rank
    return rows
