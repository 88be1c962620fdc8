"""Training metrics from a job's `metrics` events and from its result file (a CSV, sometimes
base64-encoded), with the column aliases OpenAI and Azure use."""
from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from typing import Any

from unitune.job import Metrics, merge_metrics

CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "step": ("step",),
    "train_loss": ("train_loss",),
    "train_token_accuracy": ("train_mean_token_accuracy", "train_accuracy", "train_token_accuracy"),
    "valid_loss": ("valid_loss", "validation_loss", "full_valid_loss", "full_validation_loss"),
    "valid_token_accuracy": ("valid_mean_token_accuracy", "validation_mean_token_accuracy",
                             "valid_accuracy", "validation_accuracy", "full_valid_mean_token_accuracy",
                             "full_validation_mean_token_accuracy"),
    "epoch": ("epoch",),
    "learning_rate": ("learning_rate", "lr"),
    "tokens_seen": ("tokens_seen", "train_tokens"),
}


def num(text: Any) -> float | None:
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if not s or s.lower() in ("nan", "none", "null"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def decode_result_file(content: bytes | str) -> str:
    """The CSV text of a result file; base64-encoded content (seen from some sources) is detected
    and decoded."""
    raw = content.encode() if isinstance(content, str) else bytes(content)
    text = raw.decode("utf-8-sig", "replace").strip()
    first = text.splitlines()[0] if text else ""
    if "step" in first.lower() and "," in first:
        return text
    compact = re.sub(rb"\s+", b"", raw)
    if compact and re.fullmatch(rb"[A-Za-z0-9+/]+=*", compact):
        try:
            decoded = base64.b64decode(compact, validate=True).decode("utf-8-sig").strip()
        except (binascii.Error, UnicodeDecodeError):
            return text
        if "step" in decoded.splitlines()[0].lower() if decoded else False:
            return decoded
    return text


def parse_result_csv(content: bytes | str) -> list[Metrics]:
    """Metrics rows from an OpenAI / Azure result CSV (column aliases, blank validation cells)."""
    text = decode_result_file(content)
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
    pick: dict[str, list[str]] = {k: [columns[a] for a in aliases if a in columns]
                                  for k, aliases in CSV_ALIASES.items()}
    if not pick["step"]:
        return []
    rows = []
    for rec in reader:
        step = num(rec.get(pick["step"][0]))
        if step is None:
            continue
        values: dict[str, Any] = {"step": int(step)}
        for key, cols in pick.items():
            if key == "step":
                continue
            for col in cols:  # first non-blank alias wins (batch validation before full validation)
                v = num(rec.get(col))
                if v is not None:
                    values[key] = int(v) if key == "tokens_seen" else v
                    break
        rows.append(Metrics(**values))
    return merge_metrics(rows)


def metrics_from_event_data(data: dict[str, Any], *, epochs: int | None = None) -> Metrics | None:
    """One Metrics row from a `metrics` event's `data` (or a checkpoint's `metrics`)."""
    step = num(data.get("step"))
    if step is None:
        return None
    total = num(data.get("total_steps"))

    def first(*keys: str) -> float | None:
        for k in keys:
            v = num(data.get(k))
            if v is not None:
                return v
        return None

    epoch = None
    if total and epochs:
        epoch = round(step / (total / epochs), 4)
    return Metrics(step=int(step), epoch=epoch, train_loss=first("train_loss"),
                   valid_loss=first("valid_loss", "full_valid_loss"),
                   train_token_accuracy=first("train_mean_token_accuracy", "train_accuracy"),
                   valid_token_accuracy=first("valid_mean_token_accuracy",
                                              "full_valid_mean_token_accuracy"))
