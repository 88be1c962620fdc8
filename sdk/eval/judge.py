"""The LLM judge: base vs tuned, pairwise, each pair judged twice with the positions swapped.

For every held-out example the judge model (any `BACKEND:MODEL`) sees the conversation, the
reference answer and two candidate answers labelled A and B, and ends with `VERDICT: A`,
`VERDICT: B` or `VERDICT: TIE` (`RUBRIC`). The same pair is judged again with A and B swapped.
Each verdict is mapped back to the model that wrote the answer; the pair's outcome is that model
when both verdicts agree, otherwise a tie (position bias cancels out). An answer without a
readable verdict counts as a tie and is flagged `unparsed`. Every prompt, raw judgment and
verdict is saved (`judge.jsonl`); the judge's cost is estimated and confirmed before any call.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from ..inference.types import GenParams

RUBRIC = (
    "You are an impartial judge of answers written by two AI assistants.\n"
    "Judge which answer better serves the user in the conversation: correct and consistent "
    "with the reference answer, complete, concise, in the user's language and in the tone the "
    "conversation asks for. The reference answer shows what a good answer contains; do not "
    "reward length, and ignore the order in which the answers are shown.\n"
    "Explain your reasoning in at most three sentences, then write the last line exactly as "
    "`VERDICT: A`, `VERDICT: B` or `VERDICT: TIE`.")
_VERDICT = re.compile(r"VERDICT\s*[:：]\s*\**\s*(A|B|TIE)\b", re.IGNORECASE)
JUDGE_PARAMS = GenParams(max_tokens=256, temperature=0.0, seed=0)


def judge_caller_for(model: str):
    from ..inference.registry import caller_for

    caller = caller_for(model)
    caller.label = f"judge {caller.label}"
    return caller


def parse_verdict(text: str) -> str | None:
    """"A", "B", "TIE" from the LAST verdict line in `text`, or None."""
    found = _VERDICT.findall(text or "")
    return found[-1].upper() if found else None


def render(prompt: Sequence[dict[str, Any]], reference: str, answer_a: str, answer_b: str
           ) -> list[dict[str, str]]:
    convo = "\n".join(f"[{m['role']}] {m.get('content') or ''}" for m in prompt)
    user = (f"## Conversation\n{convo}\n\n## Reference answer\n{reference}\n\n"
            f"## Answer A\n{answer_a}\n\n## Answer B\n{answer_b}\n")
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}]


def combine(first: str | None, second: str | None) -> str:
    """The pair's outcome from the two verdicts: `first` judged (A=base, B=tuned), `second`
    judged (A=tuned, B=base). Returns "tuned", "base" or "tie"."""
    to_model_1 = {"A": "base", "B": "tuned", "TIE": "tie"}
    to_model_2 = {"A": "tuned", "B": "base", "TIE": "tie"}
    one = to_model_1.get(first or "", "tie")
    two = to_model_2.get(second or "", "tie")
    return one if one == two else "tie"


def judge_estimate(caller: Any, items: Sequence[Any], answer_tokens: int = 256):
    """Cost pre-flight of 2 judgments per example (answers assumed `answer_tokens` long)."""
    from ..inference.cost import estimate

    filler = "x " * answer_tokens
    convs = [render(it.prompt, it.reference, filler, filler) for it in items] * 2
    return estimate(caller, convs, JUDGE_PARAMS)


def judge_all(caller: Any, items: Sequence[Any], base: Sequence[str], tuned: Sequence[str], *,
              concurrency: int = 4, log: Callable[[str], None] = lambda _m: None
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """({"model", "rubric", "pairs", "tuned", "base", "tie", "unparsed", "win_rate"}, rows)."""
    from ..inference.batch import run_batch

    first = [render(it.prompt, it.reference, b, t) for it, b, t in zip(items, base, tuned)]
    second = [render(it.prompt, it.reference, t, b) for it, b, t in zip(items, base, tuned)]
    log(f"judging {len(items)} pair(s) twice with {caller.label}")
    out = run_batch(caller, first + second, JUDGE_PARAMS, concurrency=concurrency, log=log)
    n = len(items)
    rows: list[dict[str, Any]] = []
    counts = {"tuned": 0, "base": 0, "tie": 0, "unparsed": 0, "failed": 0}
    for k, it in enumerate(items):
        o1, o2 = out[k], out[n + k]
        t1 = o1.generation.text if o1.ok else None
        t2 = o2.generation.text if o2.ok else None
        v1, v2 = parse_verdict(t1 or ""), parse_verdict(t2 or "")
        outcome = combine(v1, v2)
        counts[outcome] += 1
        if (o1.ok and v1 is None) or (o2.ok and v2 is None):
            counts["unparsed"] += 1
        if not (o1.ok and o2.ok):
            counts["failed"] += 1
        rows.append({"id": it.id, "order_1": {"A": "base", "B": "tuned", "judgment": t1,
                                              "verdict": v1,
                                              "error": None if o1.ok else o1.error.message},
                     "order_2": {"A": "tuned", "B": "base", "judgment": t2, "verdict": v2,
                                 "error": None if o2.ok else o2.error.message},
                     "outcome": outcome})
    decided = counts["tuned"] + counts["base"] + counts["tie"]
    summary = {"model": caller.label, "rubric": RUBRIC, "pairs": n, **counts,
               "win_rate": counts["tuned"] / decided if decided else None}
    return summary, rows
