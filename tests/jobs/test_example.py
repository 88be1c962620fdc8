"""examples/switch_vendor.py runs out of the box against the fake backends."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from unitune.registry import Registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "switch_vendor.py"


def test_switch_vendor_example_trains_on_two_backends(capsys):
    spec = importlib.util.spec_from_file_location("switch_vendor", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    out = capsys.readouterr().out
    assert "fake-b:" in out and out.count("succeeded") >= 4
    jobs = Registry().list_jobs()
    assert sorted(j.backend for j in jobs) == ["fake", "fake-b"]
    assert {j.base_model for j in jobs} == {"fake-small", "fake-large"}
    assert len({j.spec_hash for j in jobs}) == 1  # the same spec on both
