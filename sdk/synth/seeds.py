"""Seed examples for `unitune synth`: read from any supported format through the dataset engine,
each turned into one instruction / input / output sample (what the generator is shown and what
it writes back) with a stable id, plus the seeds' language and typical output length."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError


@dataclass
class Seed:
    id: str  # "L<line>" in the seed file
    instruction: str
    input: str
    output: str
    system: str | None = None

    def sample(self) -> dict[str, str]:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


@dataclass
class Seeds:
    items: list[Seed]
    file: str
    sha256: str
    format: str | None
    language: str  # zh | en | mixed
    system: str | None  # the system prompt every seed shares (kept on generated chats)

    def median_output_chars(self) -> int:
        lengths = sorted(len(s.output) for s in self.items)
        return lengths[len(lengths) // 2] if lengths else 0


def _language(text: str) -> str:
    from ..data.quality import cjk_share

    share = cjk_share(text)
    return "zh" if share > 0.3 else "en" if share < 0.05 else "mixed"


def read_seeds(path: str | Path, fmt: str = "auto") -> Seeds:
    """Seeds from `path`; DataError (file, line, fix) when the file has errors or no usable
    example."""
    from ..data.dataset import load_examples
    from ..data.example import PreferenceExample, text_of
    from ..data.report import Report

    p = Path(path)
    rep = Report(file=str(p), max_problems=20)
    items: list[Seed] = []
    for ex in load_examples(p, fmt, rep):
        if isinstance(ex, PreferenceExample):
            raise DataError(f"{p}:{ex.line}: a preference pair; synth generates SFT examples",
                            hint="give instruction or chat examples as seeds")
        system = next((text_of(m.content) for m in ex.messages if m.role == "system"), None)
        users = [m for m in ex.messages if m.role == "user"]
        assistants = [m for m in ex.messages if m.role == "assistant"]
        if not users or not assistants:
            continue
        items.append(Seed(id=f"L{ex.line}", instruction=text_of(users[-1].content),
                          input="", output=text_of(assistants[-1].content), system=system))
    if rep.errors:
        first = rep.errors[0]
        raise DataError(f"{first.file}:{first.line}: {first.message}",
                        hint=first.hint or f"`unitune validate {p}` lists every problem")
    if not items:
        raise DataError(f"{p}: no usable seed (each needs a user and an assistant turn)",
                        hint="give 3 or more examples of what you want")
    if rep.format == "alpaca":  # keep instruction and input apart, as written
        _split_alpaca(p, items)
    raw = p.read_bytes()
    systems = {s.system for s in items}
    return Seeds(items=items, file=str(p), sha256=hashlib.sha256(raw).hexdigest(),
                 format=rep.format, language=_language(" ".join(s.output for s in items)),
                 system=systems.pop() if len(systems) == 1 else None)


def _split_alpaca(path: Path, items: list[Seed]) -> None:
    from ..data.reader import iter_raw_lines

    by_line = {int(s.id[1:]): s for s in items}
    for raw in iter_raw_lines(path):
        seed = by_line.get(raw.number)
        if seed is None:
            continue
        try:
            obj: Any = json.loads(raw.data)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("instruction"), str):
            seed.instruction = obj["instruction"]
            seed.input = obj.get("input") or ""
