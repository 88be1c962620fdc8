"""lifecycle_status: warn before the cut-off, refuse after it, point at `unitune compare`."""
from __future__ import annotations

from datetime import date

from unitune.catalog import find_model
from unitune.cost.lifecycle import lifecycle_short, lifecycle_status

MINI = find_model("openai", "gpt-4.1-mini-2025-04-14")


def test_warning_before_cutoff_counts_days():
    level, msg = lifecycle_status(MINI, date(2026, 12, 7))
    assert level == "warning"
    assert "2027-01-06" in msg and "(in 30 days)" in msg and "2027-01-14" in msg
    assert "unitune compare" in msg


def test_last_accepted_day_is_still_a_warning_and_the_next_day_is_refused():
    assert lifecycle_status(MINI, date(2027, 1, 5))[0] == "warning"
    level, msg = lifecycle_status(MINI, date(2027, 1, 6))
    assert level == "error"
    assert "stopped accepting new tuning jobs on 2027-01-06" in msg and "unitune compare" in msg


def test_after_retirement_refused_with_retirement_message():
    level, msg = lifecycle_status(MINI, date(2027, 1, 14))
    assert level == "error" and "retired on 2027-01-14" in msg


def test_unverified_dates_are_labelled():
    nano = find_model("openai", "gpt-4.1-nano")
    level, msg = lifecycle_status(nano, date(2026, 11, 28))
    assert level == "error" and "unverified" in msg
    assert lifecycle_short(nano, date(2026, 11, 28)).startswith("REFUSED")


def test_models_without_dates_are_ok():
    assert lifecycle_status(find_model("vertex", "gemini-3.5-flash"), date(2030, 1, 1)) == ("ok", "")
    assert lifecycle_short(find_model("local", "unitune/tiny-chat")) is None


def test_short_form():
    assert lifecycle_short(MINI, date(2026, 11, 28)) == (
        "new jobs stop 2027-01-06, retires 2027-01-14, gated for some orgs since 2026-07-02")
    assert lifecycle_short(MINI, date(2026, 6, 1)) == (
        "new jobs stop 2027-01-06, retires 2027-01-14, gated for some orgs since 2026-05-07")
