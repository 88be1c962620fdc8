"""The metrics reader and the content-addressed upload against the GCS emulator."""
from __future__ import annotations

import uuid

import pytest

from unitune.providers.vertex.gcs import read_metrics, split_uri, upload_once

from .conftest import BUCKET


@pytest.fixture
def gcs(gcs_emulator, monkeypatch):
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return storage.Client(project="unitune-test")


def test_reads_csv_and_jsonl_under_a_prefix(gcs):
    prefix = f"metrics-{uuid.uuid4().hex[:6]}"
    bucket = gcs.bucket(BUCKET)
    bucket.blob(f"{prefix}/train.csv").upload_from_string(
        "step,/train_total_loss,/train_fraction_of_correct_next_step_preds\n1,2.5,0.4\n2,2.0,0.5\n")
    bucket.blob(f"{prefix}/eval.jsonl").upload_from_string(
        '{"step": 2, "/eval_total_loss": 2.2}\nnot json\n{"no_step": 1}\n')
    bucket.blob(f"{prefix}/README.txt").upload_from_string("ignored")
    rows = read_metrics(gcs, f"gs://{BUCKET}/{prefix}")
    by_step = {}
    for r in rows:
        by_step.setdefault(r.step, []).append(r)
    assert sorted(by_step) == [1, 2]
    assert any(r.train_loss == 2.0 and r.train_token_accuracy == 0.5 for r in by_step[2])
    assert any(r.valid_loss == 2.2 for r in by_step[2])


def test_upload_once_skips_an_existing_object(gcs, tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text('{"contents": []}\n')
    name = f"datasets/{uuid.uuid4().hex}.jsonl"
    assert upload_once(gcs, BUCKET, name, src) is True
    src.write_text("changed\n")  # same name = same content by construction; never re-sent
    assert upload_once(gcs, BUCKET, name, src) is False
    assert gcs.bucket(BUCKET).blob(name).download_as_text() == '{"contents": []}\n'
    assert split_uri(f"gs://{BUCKET}/{name}") == (BUCKET, name)
