"""Training and validation metrics that Bedrock writes to the job's output S3 prefix.

    <output>/model-customization-job-<jobId>/training_artifacts/step_wise_training_metrics.csv
        step_number, epoch_number, training_loss, perplexity
    <output>/model-customization-job-<jobId>/validation_artifacts/post_fine_tuning_validation/
        [validation/]validation_metrics.csv      (both documented variants are read)
        step_number, epoch_number, validation_loss, perplexity

`<jobId>` is the last segment of the job ARN.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from unitune.job import Metrics, merge_metrics

from .naming import job_id_from_arn
from .s3 import split_uri

TRAINING_CSV = "training_artifacts/step_wise_training_metrics.csv"
VALIDATION_CSVS = (
    "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv",
    "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv",
)


def metric_keys(output_uri: str, job_arn: str) -> tuple[str, str, list[str]]:
    """(bucket, training key, validation key candidates)."""
    bucket, prefix = split_uri(output_uri)
    base = f"{prefix.rstrip('/')}/model-customization-job-{job_id_from_arn(job_arn)}/".lstrip("/")
    return bucket, base + TRAINING_CSV, [base + v for v in VALIDATION_CSVS]


def _num(value: Any) -> float | None:
    try:
        out = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN → None


def parse_csv(text: str, kind: str) -> list[Metrics]:
    """Rows of one metrics CSV; `kind` is "train" or "valid". Step numbers that restart per epoch
    are made global by adding the previous epochs' last step."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    rows: list[Metrics] = []
    offset = 0
    last = None
    for rec in reader:
        rec = {(k or "").strip(): v for k, v in rec.items()}
        step = _num(rec.get("step_number"))
        if step is None:
            continue
        step_i = int(step)
        if last is not None and step_i + offset <= last:
            offset = last  # counter restarted with a new epoch
        step_i += offset
        last = step_i
        loss_key = "training_loss" if kind == "train" else "validation_loss"
        fields: dict[str, Any] = {"step": step_i, "epoch": _num(rec.get("epoch_number"))}
        fields[f"{kind}_loss"] = _num(rec.get(loss_key))
        perplexity = _num(rec.get("perplexity"))
        if perplexity is not None and f"{kind}_perplexity" in Metrics.model_fields:
            fields[f"{kind}_perplexity"] = perplexity
        rows.append(Metrics(**fields))
    return rows


def read_metrics(s3, output_uri: str, job_arn: str) -> list[Metrics]:
    """Training + validation rows merged by step; [] while the files do not exist yet."""
    from botocore.exceptions import ClientError

    from .aws import is_missing, map_error

    bucket, train_key, valid_keys = metric_keys(output_uri, job_arn)

    def fetch(key: str) -> str | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise map_error(exc, f"get_object s3://{bucket}/{key}") from exc
        return body.decode("utf-8", errors="replace")

    rows: list[Metrics] = []
    text = fetch(train_key)
    if text:
        rows.extend(parse_csv(text, "train"))
    for key in valid_keys:
        text = fetch(key)
        if text:
            rows.extend(parse_csv(text, "valid"))
            break
    return merge_metrics(rows)
