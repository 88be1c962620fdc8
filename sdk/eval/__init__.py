"""Did tuning help? Offline scores, base-vs-tuned evaluation, vendor comparison, an LLM judge and
a reading of the training curves.

    metrics     the `score` metrics (sacrebleu, rouge-score), defined once
    stats       paired bootstrap 95% intervals (seeded)
    holdout     held-out prompts + references (a file, or the job's validation split)
    run         `unitune eval JOB`: base vs tuned, per-example diffs saved beside the job
    compare     `unitune eval JOB_A JOB_B …`: several tuned models on the same prompts
    judge       pairwise LLM judge with position swap
    diagnose    overfitting / divergence / spikes / flat curves / regressions, with remedies

Heavy libraries (sacrebleu, rouge-score, vendor SDKs, torch) load only when used.
"""
from __future__ import annotations

from typing import Any


def score_file(path: str) -> dict[str, Any]:
    """`unitune score FILE`: {"examples", "metrics", "bleu_signature"} of a predictions JSONL."""
    from .scorefile import score_file as _score_file

    return _score_file(path)


def diagnose(rows: Any, eval_report: dict[str, Any] | None = None, job: str | None = None):
    """Findings for a job's metric rows (see `unitune.eval.diagnose`)."""
    from .diagnose import diagnose as _diagnose

    return _diagnose(rows, eval_report, job=job)


def diagnose_job(job_id: str, client: Any = None):
    from .diagnose import diagnose_job as _diagnose_job

    return _diagnose_job(job_id, client)


def print_diagnosis(job_id: str, client: Any = None, echo: Any = print):
    """Print a finished job's diagnosis (what `train` calls when a job ends); never raises."""
    from .diagnose import print_for

    return print_for(job_id, client, echo)
