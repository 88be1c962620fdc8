"""Training rows for TRL from any supported dataset format, through the dataset engine.

`unitune.data.dataset.load_examples` detects the format and normalizes every line into a canonical
Example / PreferenceExample; this module renders those as TRL's conversational rows:
`{"messages": [...]}` for SFT and `{"prompt": [...], "chosen": [...], "rejected": [...]}` for DPO.
Structural problems stop the job with the file, line and field (never a traceback).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ..data.example import Message, PreferenceExample, text_of
from ..data.report import Report
from ..errors import DataError


def _msg(m: Message) -> dict[str, Any]:
    row: dict[str, Any] = {"role": m.role, "content": text_of(m.content)}
    if m.tool_calls:
        row["tool_calls"] = [{"type": "function", "id": tc.id,
                              "function": {"name": tc.name, "arguments": tc.arguments}}
                             for tc in m.tool_calls]
    if m.tool_call_id:
        row["tool_call_id"] = m.tool_call_id
    return row


def _iter_examples(path: Path, report: Report) -> Iterator[Any]:
    from ..data.dataset import load_examples

    yield from load_examples(path, "auto", report)


def load_rows(path: Path, method: str) -> tuple[list[dict], list[str]]:
    """Rows for `method` ("sft" | "dpo") and notes (e.g. weight-0 turns that are still trained)."""
    if not Path(path).exists():
        raise DataError(f"data file {path} does not exist", hint="check data.train in the spec")
    report = Report(file=str(path))
    rows: list[dict] = []
    notes: list[str] = []
    weight0 = 0
    for ex in _iter_examples(Path(path), report):
        if method == "dpo":
            if not isinstance(ex, PreferenceExample):
                raise DataError(f"{path}:{ex.line}: method dpo needs preference pairs (prompt, "
                                "chosen, rejected); this line is a plain chat example",
                                hint="convert to a DPO format (trl-dpo or openai-dpo) or use "
                                     "method: sft")
            rows.append({"prompt": [_msg(m) for m in ex.prompt],
                         "chosen": [_msg(m) for m in ex.chosen],
                         "rejected": [_msg(m) for m in ex.rejected]})
        else:
            if isinstance(ex, PreferenceExample):
                raise DataError(f"{path}:{ex.line}: method sft got a preference pair",
                                hint="use method: dpo for preference data")
            weight0 += sum(1 for m in ex.messages if m.role == "assistant" and m.weight == 0)
            rows.append({"messages": [_msg(m) for m in ex.messages]})
    if report.errors:
        first = report.errors[:5]
        lines = "\n".join(f"  {p.file}:{p.line}: {p.path or ''} {p.message}".replace("  :", "  ")
                          for p in first)
        raise DataError(f"{path}: {len(report.errors)} problem(s) in the data\n{lines}",
                        report=report, hint=(first[0].hint or "run `unitune validate` on the file"))
    if not rows:
        raise DataError(f"{path}: no examples", hint="the file must hold at least one JSONL example")
    if weight0:
        notes.append(f"{weight0} assistant turn(s) with weight 0 are trained anyway: TRL's "
                     "assistant mask has no per-turn weights")
    return rows, notes
