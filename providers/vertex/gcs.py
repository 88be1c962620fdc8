"""Cloud Storage for the Vertex backend: content-addressed dataset uploads and metrics files.

Uses google-cloud-storage, which honours `STORAGE_EMULATOR_HOST` (with its http:// scheme) and
then talks to the emulator anonymously. Datasets go to `gs://<bucket>/<prefix>/datasets/
<sha256>.jsonl`, so identical content is uploaded once: `upload_once` asks whether the object is
there (HEAD) and only then PUTs it (the emulator does not enforce `if_generation_match=0`, and the
real service would only answer 412 for it anyway). Every call runs with `retry=None`: the core
retries.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unitune.job import Metrics

from .vendor_errors import translate

# Vertex AI Experiments metric names (as they appear in the metrics file and the Experiments UI)
_METRIC_KEYS = {
    "train_total_loss": "train_loss",
    "train_loss": "train_loss",
    "eval_total_loss": "valid_loss",
    "eval_loss": "valid_loss",
    "valid_loss": "valid_loss",
    "train_fraction_of_correct_next_step_preds": "train_token_accuracy",
    "eval_fraction_of_correct_next_step_preds": "valid_token_accuracy",
    "learning_rate": "learning_rate",
    "epoch": "epoch",
}


def dataset_object(prefix: str, sha256: str) -> str:
    return f"{prefix}/datasets/{sha256}.jsonl" if prefix else f"datasets/{sha256}.jsonl"


def upload_once(client, bucket: str, name: str, local: Path) -> bool:
    """Upload `local` to gs://bucket/name unless an object is already there; True if uploaded."""
    with translate(f"upload to gs://{bucket}/{name}"):
        blob = client.bucket(bucket).blob(name)
        if blob.exists(retry=None):
            return False
        blob.upload_from_filename(str(local), content_type="application/jsonl", retry=None)
        return True


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri}")
    bucket, _, name = uri[len("gs://"):].partition("/")
    return bucket, name


def read_metrics(client, uri: str) -> list[Metrics]:
    """Rows from a metrics file, or from every .jsonl/.json/.csv under a gs:// prefix.

    The file format is not documented by Google; this reader takes JSON lines (or a JSON list)
    of objects with a `step` and metric names as Vertex AI Experiments shows them
    (`/train_total_loss`, `/eval_fraction_of_correct_next_step_preds`, …), and CSV with the same
    column names. Unknown keys are ignored.
    """
    bucket_name, name = split_uri(uri)
    with translate(f"read metrics from {uri}"):
        bucket = client.bucket(bucket_name)
        blob = bucket.blob(name)
        if name and not name.endswith("/") and blob.exists(retry=None):
            blobs = [blob]
        else:
            prefix = name if not name or name.endswith("/") else name + "/"
            blobs = [b for b in client.list_blobs(bucket_name, prefix=prefix, retry=None)
                     if b.name.endswith((".jsonl", ".json", ".csv"))]
        texts = [(b.name, b.download_as_text(retry=None)) for b in blobs]
    rows: list[Metrics] = []
    for obj_name, text in texts:
        for record in _records(obj_name, text):
            row = _to_row(record)
            if row is not None:
                rows.append(row)
    return rows


def _records(name: str, text: str) -> list[dict[str, Any]]:
    if name.endswith(".csv"):
        import csv
        import io

        return list(csv.DictReader(io.StringIO(text)))
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        return [r for r in data if isinstance(r, dict)]
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def _to_row(record: dict[str, Any]) -> Metrics | None:
    step = record.get("step", record.get("global_step"))
    try:
        step = int(float(step))
    except (TypeError, ValueError):
        return None
    values: dict[str, Any] = {}
    for key, value in record.items():
        field = _METRIC_KEYS.get(str(key).lstrip("/"))
        if field is None or value in (None, ""):
            continue
        try:
            values[field] = int(float(value)) if field == "tokens_seen" else float(value)
        except (TypeError, ValueError):
            continue
    return Metrics(step=step, **values)
