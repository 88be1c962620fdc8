"""Deterministic synthetic chat and preference data (bilingual, variable length) for tests,
benchmarks and smoke runs — no network, no files shipped."""
from __future__ import annotations

import json
import random
from pathlib import Path

from .tiny import _EN, _FR

SYSTEM = "You are a helpful assistant that answers briefly."


def chat_rows(n: int, seed: int = 0, *, min_sentences: int = 1, max_sentences: int = 6) -> list[dict]:
    """`n` OpenAI-style chat rows whose lengths vary (1-6 sentences per turn)."""
    rng = random.Random(seed)
    pool = _EN + _FR
    rows = []
    for i in range(n):
        q = " ".join(rng.choice(pool) for _ in range(rng.randint(min_sentences, max_sentences)))
        # a learnable pattern: the answer starts with a fixed marker and echoes a sentence
        a = "Answer: " + " ".join(rng.choice(pool) for _ in range(rng.randint(min_sentences, max_sentences)))
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i % 3 == 0:
            msgs.insert(0, {"role": "system", "content": SYSTEM})
        rows.append({"messages": msgs})
    return rows


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    """TRL-style DPO rows: the chosen reply follows the format, the rejected one does not."""
    rng = random.Random(seed)
    pool = _EN + _FR
    rows = []
    for _ in range(n):
        q = rng.choice(pool)
        good = "Answer: " + rng.choice(pool)
        bad = rng.choice(pool).upper()
        rows.append({"prompt": [{"role": "user", "content": q}],
                     "chosen": [{"role": "assistant", "content": good}],
                     "rejected": [{"role": "assistant", "content": bad}]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
