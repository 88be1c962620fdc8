"""Issue 11 on Vertex: Gemini 2.5 tuning is refused past its cut-off with both sources named,
Gemini 3.x plans today; learning_rate / batch_size go where the model takes them (Vertex: open
models only — Gemini reports them not applied with the documented reason); the lookup label key
is a plain identifier for the list-filter grammar. Pure: plan/translate only, no fake needed."""
from __future__ import annotations

import pytest

from unitune.catalog import HyperparameterRange, find_model
from unitune.provider import Location
from unitune.providers.vertex.translate import (JOB_LABEL, KEY_LABEL, _Table,
                                                open_model_hyperparameters)
from unitune.spec import JobSpec

from .conftest import make_spec, pipeline


def _plan(tmp_path, today, **over):
    import os

    os.environ["UNITUNE_TODAY"] = today  # restored by the suite's autouse monkeypatch
    return pipeline().plan(make_spec(tmp_path, "genai", **over))


@pytest.mark.parametrize("today, level", [("2026-05-15", "warning"), ("2026-05-16", "warning"),
                                          ("2026-05-17", "error"), ("2026-12-04", "error")])
def test_gemini_2_5_flash_before_on_and_after_its_tuning_cutoff(tmp_path, today, level):
    plan = _plan(tmp_path, today)
    codes = {p.code: p for p in plan.problems}
    if level == "warning":
        assert codes["lifecycle_closing"].severity == "warning" and plan.request is not None
        assert "new tuning jobs stop on 2026-05-17" in codes["lifecycle_closing"].message
        return
    p = codes["unsupported_lifecycle"]
    assert p.severity == "error" and not plan.ready
    assert "cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions" in p.message
    assert "2026-10-20" in p.message and "still lists Gemini 2.5" in p.message  # the others
    assert "ignore_lifecycle" in p.hint


def test_ignore_lifecycle_is_a_typed_vertex_option(tmp_path):
    spec = make_spec(tmp_path, "genai")
    opts = dict(spec.backend_options["vertex"], ignore_lifecycle=True)
    spec = spec.model_copy(update={"backend_options": {"vertex": opts}})
    import os

    os.environ["UNITUNE_TODAY"] = "2026-12-04"
    plan = pipeline().plan(spec)
    assert [p.severity for p in plan.problems if p.code == "lifecycle_closed"] == ["warning"]
    assert not any(p.code == "unsupported_lifecycle" for p in plan.problems)


def test_gemini_3_5_flash_is_tunable_today(tmp_path):
    plan = _plan(tmp_path, "2026-12-04", models={"vertex": "gemini-3.5-flash"})
    assert plan.ready, [p.message for p in plan.problems if p.severity == "error"]
    assert plan.request["baseModel"] == "gemini-3.5-flash"


def test_gemini_reports_learning_rate_and_batch_size_as_open_model_only(tmp_path):
    plan = _plan(tmp_path, "2026-04-01", hyperparameters={"epochs": 1, "learning_rate": 1e-4,
                                                          "batch_size": 8})
    hp = plan.request["supervisedTuningSpec"]["hyperParameters"]
    assert "learningRate" not in hp and "batchSize" not in hp
    rows = {r.field: r for r in plan.rows}
    for field in ("hyperparameters.learning_rate", "hyperparameters.batch_size"):
        assert not rows[field].applied and "only available for open source models" in rows[field].note
    assert plan.ready  # a warning, not a refusal


def _open_model(**ranges):
    info = find_model("vertex", "gemini-3.5-flash")
    hps = {k: HyperparameterRange(**v) for k, v in ranges.items()}
    return info.model_copy(update={"model": "open-model-x", "hyperparameters": hps})


def _hp(tmp_path, **values):
    spec = make_spec(tmp_path, "genai", hyperparameters={"epochs": 1, **values})
    return spec.hyperparameters


def test_a_model_that_takes_them_gets_learning_rate_and_batch_size(tmp_path):
    info = _open_model(learning_rate={"vendor_key": "learningRate", "min": 0, "max": 1},
                       batch_size={"vendor_key": "batchSize", "min": 1, "max": 64, "type": "int"})
    t = _Table()
    open_model_hyperparameters(t, _hp(tmp_path, learning_rate=2e-4, batch_size=16), info,
                               Location(backend="vertex", extra={"client": "genai"}))
    assert t.body == {"supervisedTuningSpec": {"hyperParameters": {"learningRate": 2e-4,
                                                                   "batchSize": 16}}}
    assert not t.problems
    # mutually exclusive with the multiplier (make_spec sets learning_rate_multiplier 0.5)
    t = _Table()
    open_model_hyperparameters(t, make_spec(tmp_path, "genai", hyperparameters={
        "learning_rate": 2e-4, "learning_rate_multiplier": 0.5}).hyperparameters, info,
        Location(backend="vertex", extra={"client": "genai"}))
    assert [p.code for p in t.problems] == ["conflict"] and not t.body
    # out of range, and the GAPIC 2.7 v1 proto has no such field
    t = _Table()
    open_model_hyperparameters(t, _hp(tmp_path, batch_size=128), info,
                               Location(backend="vertex", extra={"client": "genai"}))
    assert [p.code for p in t.problems] == ["out_of_range"]
    t = _Table()
    open_model_hyperparameters(t, _hp(tmp_path, batch_size=16), info,
                               Location(backend="vertex", extra={"client": "aiplatform"}))
    assert not t.body and "aiplatform" in t.rows[0].note


def test_label_keys_are_plain_identifiers_for_the_list_filter():
    import re

    for key in (KEY_LABEL, JOB_LABEL):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key)
