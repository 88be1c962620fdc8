"""`unitune score PREDICTIONS.jsonl`: the metrics on a file of predictions, offline.

One line per example: `{"prediction": str, "reference": str | [str, ...]}` (an `"id"` is
allowed). A line that is not JSON, lacks either field or has the wrong type is an error naming
the file, the line and the field; nothing is scored until every line is valid.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError

ALLOWED = {"prediction", "reference", "id"}


def read(path: str | Path) -> tuple[list[str], list[Any]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist", hint="give a JSONL file of {\"prediction\", "
                                                       "\"reference\"} lines")
    preds: list[str] = []
    refs: list[Any] = []
    problems: list[str] = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                            hint="save the file as UTF-8") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path}:{n}: expected an object with prediction and reference")
            continue
        extra = sorted(set(obj) - ALLOWED)
        pred, ref = obj.get("prediction"), obj.get("reference")
        if extra:
            problems.append(f"{path}:{n}: unknown field(s) {', '.join(extra)}")
        elif not isinstance(pred, str):
            problems.append(f"{path}:{n}: field prediction: expected a string, got "
                            f"{type(pred).__name__ if pred is not None else 'nothing'}")
        elif not (isinstance(ref, str) or (isinstance(ref, list) and ref and
                                           all(isinstance(r, str) for r in ref))):
            problems.append(f"{path}:{n}: field reference: expected a string or a non-empty "
                            "list of strings")
        else:
            preds.append(pred)
            refs.append(ref)
    if problems:
        more = f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(f"{len(problems)} problem(s) in {path}:\n  " + "\n  ".join(problems[:10])
                        + more, hint='each line: {"prediction": "…", "reference": "…" or '
                                     '["…", …]} (optional "id")')
    if not preds:
        raise DataError(f"{path}: no predictions", hint="the file has no non-blank lines")
    return preds, refs


def score_file(path: str | Path) -> dict[str, Any]:
    from .metrics import score

    preds, refs = read(path)
    return score(preds, refs).to_dict()
