"""What the data says, in one streaming pass: how many examples, how long prompts and replies
are (tokens, estimated), whether prompts carry retrieved context (a retrieval pattern), whether
replies are structured (JSON) or share one system prompt (a behaviour to learn), duplicates and
the main language."""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTEXT_MARKERS = re.compile(
    r"(?i)(^|\n)\s*(context|document|documents|passage|reference|references|sources?|"
    r"retrieved|knowledge)\s*[:：]|参考资料|参考文档|已知信息|背景资料|根据以下|根据下面|上下文[:：]")
LONG_PROMPT_CHARS = 2000  # a user turn this long usually pastes a document in
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass
class DataEvidence:
    file: str | None = None
    examples: int = 0
    preference_examples: int = 0
    lines: int = 0
    errors: int = 0
    prompt_tokens_mean: float = 0.0  # system + user (+ tool) tokens per example, estimated
    reply_tokens_mean: float = 0.0  # assistant tokens per example, estimated
    context_share: float = 0.0  # prompts with pasted context (markers or > 2,000 characters)
    json_reply_share: float = 0.0  # examples whose final reply is a JSON object/array
    shared_system_share: float = 0.0  # examples with the most common system prompt
    exact_duplicate_share: float = 0.0
    reply_length_cv: float | None = None  # spread of reply lengths (std / mean)
    language: str = "unknown"  # zh, en, mixed
    token_method: str = "estimate (unitune's calibrated estimator)"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("prompt_tokens_mean", "reply_tokens_mean", "context_share", "json_reply_share",
                  "shared_system_share", "exact_duplicate_share"):
            out[k] = round(out[k], 3)
        if out["reply_length_cv"] is not None:
            out["reply_length_cv"] = round(out["reply_length_cv"], 3)
        return out


def _is_json(text: str) -> bool:
    t = text.strip()
    if not t or t[0] not in "{[":
        return False
    try:
        json.loads(t)
    except ValueError:
        return False
    return True


def read_data(path: str | Path, fmt: str = "auto") -> DataEvidence:
    """Evidence from a dataset file (any supported format); data errors are counted, not raised."""
    from ..data.dataset import load_examples
    from ..data.example import PreferenceExample, text_of
    from ..data.keys import exact_key
    from ..data.report import Report
    from ..tokens import estimate_tokens

    ev = DataEvidence(file=str(path))
    rep = Report(file=str(path), max_problems=50)
    prompt_tok = reply_tok = 0
    context = json_replies = 0
    systems: Counter[str] = Counter()
    keys: set[bytes] = set()
    dups = 0
    lengths: list[int] = []
    han = latin = 0
    for ex in load_examples(path, fmt, rep):
        ev.examples += 1
        if isinstance(ex, PreferenceExample):
            ev.preference_examples += 1
            prompt_msgs, reply_msgs = ex.prompt, ex.chosen
        else:
            prompt_msgs = [m for m in ex.messages if m.role != "assistant"]
            reply_msgs = [m for m in ex.messages if m.role == "assistant"]
        ptext = "\n".join(text_of(m.content) for m in prompt_msgs)
        rtext = "\n".join(text_of(m.content) for m in reply_msgs)
        prompt_tok += estimate_tokens(ptext)
        reply_tok += estimate_tokens(rtext)
        users = [text_of(m.content) for m in prompt_msgs if m.role == "user"]
        if any(len(u) > LONG_PROMPT_CHARS or CONTEXT_MARKERS.search(u) for u in users):
            context += 1
        if reply_msgs and _is_json(text_of(reply_msgs[-1].content)):
            json_replies += 1
        sys_text = next((text_of(m.content) for m in prompt_msgs if m.role == "system"), None)
        if sys_text:
            systems[sys_text.strip()] += 1
        k = exact_key(ex)
        if k in keys:
            dups += 1
        keys.add(k)
        lengths.append(len(rtext))
        han += len(_HAN.findall(rtext))
        latin += len(_LATIN.findall(rtext))
    ev.lines = rep.examples
    ev.errors = rep.summary()["errors"]
    n = ev.examples
    if n:
        ev.prompt_tokens_mean = prompt_tok / n
        ev.reply_tokens_mean = reply_tok / n
        ev.context_share = context / n
        ev.json_reply_share = json_replies / n
        ev.shared_system_share = (systems.most_common(1)[0][1] / n) if systems else 0.0
        ev.exact_duplicate_share = dups / n
        mean = sum(lengths) / n
        if mean and n > 1:
            var = sum((x - mean) ** 2 for x in lengths) / (n - 1)
            ev.reply_length_cv = var ** 0.5 / mean
    if han + latin:
        share = han / (han + latin / 4)  # ~4 Latin letters carry what one Han character does
        ev.language = "zh" if share > 0.6 else "en" if share < 0.2 else "mixed"
    if ev.errors:
        ev.notes.append(f"{ev.errors} line(s) with data errors were not counted "
                        f"(`unitune validate {path}`)")
    return ev
