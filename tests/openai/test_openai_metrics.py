"""Metrics: events while running, result CSV at the end (every column variant, base64), model
handle with checkpoints."""
from __future__ import annotations

import base64

import pytest

from unitune.job import JobStatus
from unitune.providers.openai import (OpenAIProvider, decode_result_file, metrics_from_event_data,
                                      parse_result_csv)
from unitune.testing.openai_server import FakeOpenAIServer

from openai_helpers import make_spec, submit

LEGACY = """step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy
1,1.95,0.55,,
2,1.60,0.61,1.70,0.58
3,1.20,0.70,,
"""
AZURE = """step,train_loss,train_mean_token_accuracy,valid_loss,validation_mean_token_accuracy,full_valid_loss,full_valid_mean_token_accuracy
1,1.9,0.5,,,,
2,1.5,0.6,,,1.55,0.57
3,1.1,0.7,1.2,0.66,,
"""


def test_parse_legacy_columns_and_blank_cells():
    rows = parse_result_csv(LEGACY)
    assert [r.step for r in rows] == [1, 2, 3]
    assert rows[0].train_token_accuracy == 0.55 and rows[0].valid_loss is None
    assert rows[1].valid_loss == 1.70 and rows[1].valid_token_accuracy == 0.58
    assert rows[2].valid_token_accuracy is None


def test_parse_azure_columns_with_full_validation_fallback():
    rows = parse_result_csv(AZURE)
    assert rows[0].train_token_accuracy == 0.5 and rows[0].valid_loss is None
    assert rows[1].valid_loss == 1.55 and rows[1].valid_token_accuracy == 0.57  # full_valid_* only
    assert rows[2].valid_loss == 1.2 and rows[2].valid_token_accuracy == 0.66  # batch wins


def test_base64_content_is_detected():
    encoded = base64.b64encode(AZURE.encode())
    assert decode_result_file(encoded).startswith("step,")
    wrapped = b"\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    assert [r.train_loss for r in parse_result_csv(wrapped)] == [1.9, 1.5, 1.1]
    assert parse_result_csv(b"") == [] and parse_result_csv("not,a,csv\n1,2,3\n") == []


def test_event_data_mapping():
    row = metrics_from_event_data({"step": 6, "total_steps": 12, "train_loss": 0.5,
                                   "train_mean_token_accuracy": 0.8, "full_valid_loss": 0.7},
                                  epochs=3)
    assert (row.step, row.epoch, row.train_loss, row.train_token_accuracy, row.valid_loss) == \
        (6, 1.5, 0.5, 0.8, 0.7)
    assert metrics_from_event_data({"train_loss": 1.0}) is None


def _run(server, tmp_path, monkeypatch, *, n_valid=4):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    be = OpenAIProvider(log=lambda _m: None)
    return be, submit(be, make_spec(tmp_path, n_valid=n_valid))


@pytest.mark.parametrize("variant,b64", [("openai", False), ("openai-full", False),
                                         ("azure", False), ("openai", True)])
def test_metrics_from_both_csv_variants_end_to_end(tmp_path, monkeypatch, variant, b64):
    with FakeOpenAIServer(csv_variant=variant, result_base64=b64, steps=12) as server:
        be, ref = _run(server, tmp_path, monkeypatch)
        while not (snap := be.read(ref)).status.is_terminal:
            pass
        assert snap.status is JobStatus.SUCCEEDED
        # the CSV alone (events cleared) must give the full curve
        server.jobs[ref.remote_id].events.clear()
        rows = be.metrics(ref)
        assert [r.step for r in rows] == list(range(1, 13))
        assert all(r.train_loss is not None and r.train_token_accuracy is not None for r in rows)
        valid = [r for r in rows if r.valid_loss is not None]
        assert 0 < len(valid) < len(rows)  # blank validation cells stay None
        assert rows[0].train_loss > rows[-1].train_loss
        assert rows[-1].epoch == 3.0  # n_epochs from the job


def test_metrics_while_running_and_progress(tmp_path, monkeypatch):
    with FakeOpenAIServer(ticks={"running": 4}, steps=12) as server:
        be, ref = _run(server, tmp_path, monkeypatch)
        while (snap := be.read(ref)).status is not JobStatus.RUNNING or snap.progress is None:
            assert not snap.status.is_terminal
        assert snap.progress.total_steps == 12 and 0 < snap.progress.step < 12
        assert snap.progress.latest_loss is not None
        rows = be.metrics(ref)  # (reading the job ticks the fake once more)
        assert len(rows) == server.jobs[ref.remote_id].step >= snap.progress.step
        assert not server.jobs[ref.remote_id].result_files  # events only; no result file yet
        assert snap.model is None and snap.error is None  # all-null error object = no error


def test_model_handle_lists_checkpoints(tmp_path, monkeypatch):
    with FakeOpenAIServer(steps=12) as server:
        be, ref = _run(server, tmp_path, monkeypatch)
        while not (snap := be.read(ref)).status.is_terminal:
            pass
        job = server.jobs[ref.remote_id]
        assert snap.model.model_id == job.fine_tuned_model
        assert snap.model.base_model == "gpt-4o-mini-2024-07-18"
        assert snap.model.checkpoints == [f"{job.fine_tuned_model}:ckpt-step-{s}" for s in (12, 8, 4)]
        assert snap.trained_tokens and snap.billed_tokens == snap.trained_tokens
        assert snap.finished_at is not None and snap.raw["id"] == ref.remote_id
        cps = be.checkpoints(ref)
        assert cps[0]["step"] == 12 and cps[0]["metrics"]["train_loss"] > 0
        events = be.events(ref)
        assert events[0].message.startswith("Validating training file")
        assert events[-1].message == "The job has successfully completed"
        assert any(e.data and e.data.get("step") == 5 for e in events)
