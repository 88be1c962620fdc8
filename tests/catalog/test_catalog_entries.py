"""The bundled catalog after issue 11: every entry sourced and dated, every file dated, the
quickstart names a model tunable today on every backend, and the one lifecycle rule holds one
day before, on and after every date in the data (with a fixed "today")."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from unitune.catalog import DATA_DIR, catalog_as_of, find_model, load_catalog, models
from unitune.cost.lifecycle import lifecycle_status, today
from unitune.spec import JobSpec

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
AUDIT = date(2026, 12, 4)


def test_every_entry_carries_source_and_as_of():
    for m in models():
        assert m.source and m.source.strip(), (m.backend, m.model)
        assert m.as_of is not None and m.as_of <= AUDIT + timedelta(days=365), (m.backend, m.model)
        for r in m.hyperparameters.values():
            if not r.verified:
                assert r.note, (m.model, r.vendor_key)  # where the range was copied from


def test_every_data_file_says_when_it_was_checked():
    stems = {p.stem for p in DATA_DIR.glob("*.yaml")}
    assert set(load_catalog().as_of) == stems
    assert catalog_as_of() == min(load_catalog().as_of.values())
    assert catalog_as_of("bedrock") == AUDIT


def test_quickstart_names_a_model_tunable_today_on_every_backend(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", AUDIT.isoformat())
    spec = JobSpec.load(str(QUICKSTART))
    for backend, model in spec.models.items():
        info = find_model(backend, model)
        assert info is not None, (backend, model)
        level, msg = lifecycle_status(info)
        assert level != "error", (backend, model, msg)
        assert spec.method in info.methods


def test_default_comparison_set_holds_no_refused_model(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", AUDIT.isoformat())
    refused = [(m.backend, m.model) for m in models() if m.default
               and lifecycle_status(m)[0] == "error"]
    assert not refused


def _dated():
    for m in load_catalog().models:
        lc = m.lifecycle
        if lc is None:
            continue
        if lc.new_jobs_until:
            yield pytest.param(m.backend, m.model, lc.new_jobs_until + timedelta(days=1),
                               id=f"{m.backend}:{m.model}:stop")
        if lc.retires and (not lc.new_jobs_until or lc.retires > lc.new_jobs_until + timedelta(1)):
            yield pytest.param(m.backend, m.model, lc.retires, id=f"{m.backend}:{m.model}:retire")
        if lc.status in ("not_tunable", "legacy", "retired"):
            yield pytest.param(m.backend, m.model, lc.since or lc.as_of,
                               id=f"{m.backend}:{m.model}:status")


@pytest.mark.parametrize("backend, model, cutoff", list(_dated()))
def test_one_day_before_on_and_after_each_cutoff(backend, model, cutoff):
    info = find_model(backend, model)
    before = lifecycle_status(info, cutoff - timedelta(days=1))
    on, after = lifecycle_status(info, cutoff), lifecycle_status(info, cutoff + timedelta(days=1))
    assert on[0] == "error" and after[0] == "error", (on, after)
    assert cutoff.isoformat() in on[1]  # the refusal names the date …
    assert "source:" in on[1] and "unitune compare" in on[1]  # … and the source
    # the day before is refused only if an earlier cut-off of the same model already passed
    earlier = [d for d in (info.lifecycle.new_jobs_until and
                           info.lifecycle.new_jobs_until + timedelta(days=1),
                           info.lifecycle.retires,
                           info.lifecycle.status and (info.lifecycle.since or info.lifecycle.as_of))
               if d and d < cutoff]
    assert before[0] == ("error" if earlier else "warning"), (before, earlier)


def test_unitune_today_is_read_in_one_place(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", "2027-01-06")
    assert today() == date(2027, 1, 6)
    mini = find_model("openai", "gpt-4.1-mini")
    assert lifecycle_status(mini)[0] == "error"
    monkeypatch.delenv("UNITUNE_TODAY")
    assert today() == date.today()
