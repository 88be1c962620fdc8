"""Held-out examples for `unitune eval`: prompts (every turn before the last assistant turn) and
references (that assistant turn), from a file in any supported SFT format or from a job's own
validation split.

The default is the job's validation data: the file named by `data.validation`, or the same
seeded split of the training file that the job trained without (`split_cached` with the spec's
fraction and seed: the identical split, not a new one). A job without validation data has no
default holdout; the error says to pass `--holdout FILE`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, UnituneError


@dataclass
class Item:
    id: str
    prompt: list[dict[str, Any]]  # messages sent to the model
    reference: str
    line: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def conversation(self) -> list[dict[str, Any]]:
        """The prompt plus the reference answer (what perplexity is measured on)."""
        return [*self.prompt, {"role": "assistant", "content": self.reference}]


def load(path: str | Path, *, limit: int | None = None) -> list[Item]:
    """Items of a JSONL file (chat, instruction, prompt/completion… — any SFT format)."""
    from ..data.dataset import load_examples
    from ..data.example import PreferenceExample, text_of
    from ..data.report import Report

    path = Path(path)
    if not path.is_file():
        raise DataError(f"holdout file {path} does not exist",
                        hint="pass --holdout FILE (JSONL, any supported SFT format)")
    report = Report(file=str(path))
    items: list[Item] = []
    for ex in load_examples(path, "auto", report):
        if isinstance(ex, PreferenceExample):
            raise DataError(f"{path}:{ex.line}: a preference pair cannot be a holdout example",
                            hint="use chat / instruction data with one reference answer")
        msgs = [{"role": m.role, "content": text_of(m.content)} for m in ex.messages]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        items.append(Item(id=f"{path.name}:{ex.line}", prompt=msgs[:last],
                          reference=msgs[last]["content"], line=ex.line))
        if limit is not None and len(items) >= limit:
            break
    if report.errors:
        p = report.errors[0]
        raise DataError(f"{p.file}:{p.line}: {p.message}", report=report,
                        hint=p.hint or f"`unitune validate {path}` lists every problem")
    if not items:
        raise DataError(f"{path}: no example with an assistant answer to compare against",
                        hint="each line needs a prompt and a reference assistant turn")
    return items


def job_validation_file(rec: Any) -> Path:
    """The validation data a job was trained with (see the module docstring)."""
    from ..spec import JobSpec

    try:
        spec = JobSpec.from_dict(rec.spec or {}, source=f"registry:{rec.id}")
    except UnituneError as exc:
        raise UnituneError(f"job {rec.id}: its stored spec cannot be read ({exc.message})",
                           hint="pass --holdout FILE") from None
    val = spec.data_path("validation")
    if val is not None:
        if not val.is_file():
            raise DataError(f"job {rec.id}'s validation file {val} is gone",
                            hint="pass --holdout FILE")
        return val
    fraction = spec.data.validation
    train = spec.data_path("train")
    if not isinstance(fraction, float) or train is None:
        raise UnituneError(f"job {rec.id} was trained without validation data, so there is no "
                           "held-out set to evaluate on", hint="pass --holdout FILE (examples "
                                                               "the model never saw)")
    if not train.is_file():
        raise DataError(f"job {rec.id}'s training file {train} is gone, so its validation "
                        "split cannot be rebuilt", hint="pass --holdout FILE")
    from ..data.prepared import split_cached

    halves = split_cached(str(train), fraction, spec.hyperparameters.seed or 0)
    return Path(halves.validation_path)
