"""Which generated samples are kept, and why the others are not — one reason per dropped sample,
checked in this order (the first that applies is counted):

  invalid          the dataset engine rejects the rendered line (structure or the generic
                   per-example checks; `--target` adds the vendor's rules after the run)
  refusal          "I cannot help with that", "As an AI…", "作为AI…", "我无法…"
  placeholder      "[Your Name]", "<insert …>", "{{var}}", "lorem ipsum", "XXX", "[插入…]"
  echo             the output repeats the instruction/input (near-identical, or contained in it)
  wrong_language   the script ratio does not match `--language` (CJK share of the letters)
  length_outlier   output under 1/5 or over 5× the seeds' median output length
  duplicate        the same sample (normalized) as a seed or a kept sample
  near_duplicate   MinHash LSH over character shingles (unitune.data.quality) finds a seed or a
                   kept sample at ≥ 0.8 Jaccard — works for Chinese without a segmenter
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..data.quality import NearDupIndex, cjk_share, minhash, normalize, shingles
from .seeds import Seeds

REASONS = ("unparsable", "invalid", "refusal", "placeholder", "echo", "wrong_language",
           "length_outlier", "duplicate", "near_duplicate", "vendor_rules", "surplus")

_REFUSAL = re.compile(
    r"(?i)\b(as an ai\b|as a language model|as an ai language model|i(?: am|'m) (?:sorry|"
    r"afraid),? but i (?:can(?:no|')t|am unable|won't)|i can(?:no|')t (?:help|assist|comply|"
    r"provide|fulfil)|i(?: am|'m) (?:unable|not able) to (?:help|assist|comply|provide)|"
    r"i won't be able to help)|作为(?:一个)?(?:ai|AI|人工智能|语言模型|AI助手)|我(?:无法|不能)(?:提供|协助|"
    r"帮助|回答|满足)|抱歉，我(?:无法|不能)|很抱歉，我不能")
_PLACEHOLDER = re.compile(
    r"(?i)\[(?:your|insert|name|company|product|placeholder|date|address|phone|email|xx+)"
    r"[^\]]{0,40}\]|<(?:insert|placeholder|your)[^>]{0,40}>|\{\{[^}]{1,40}\}\}|lorem ipsum|"
    r"\bTODO\b|\bX{3,}\b|\bxxx+\b|\[插入[^\]]{0,20}\]|【[^】]{0,10}(?:填写|插入|名称)[^】]{0,10}】|"
    r"此处(?:填写|插入)")
LENGTH_FACTOR = 5.0
ECHO_SIMILARITY = 0.8


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text or ""))


def has_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text or ""))


def is_echo(sample: dict[str, str]) -> bool:
    out = normalize(sample["output"])
    prompt = normalize(sample["instruction"] + " " + sample.get("input", ""))
    if not out:
        return False
    if out in prompt:
        return True
    a, b = shingles(out), shingles(prompt)
    return bool(a) and len(a & b) / len(a | b) >= ECHO_SIMILARITY


def language_ok(text: str, language: str) -> bool:
    if language not in ("zh", "en"):
        return True
    share = cjk_share(text)
    return share >= 0.3 if language == "zh" else share <= 0.05


def render(sample: dict[str, str], fmt: str, system: str | None) -> dict[str, Any]:
    """One output line in the requested format."""
    if fmt == "alpaca":
        line: dict[str, Any] = {"instruction": sample["instruction"],
                                "input": sample.get("input", ""), "output": sample["output"]}
        if system:
            line["system"] = system
        return line
    user = sample["instruction"] + (f"\n\n{sample['input']}" if sample.get("input") else "")
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": sample["output"]}]
    return {"messages": msgs}


class SampleFilter:
    """Stateful: a kept sample joins the duplicate indexes (so later ones are compared to it)."""

    def __init__(self, seeds: Seeds, language: str, fmt: str) -> None:
        from ..data.validate import ExampleChecker

        self.language, self.fmt, self.system = language, fmt, seeds.system
        self.counts: Counter[str] = Counter()
        self.kept = 0
        self.checker = ExampleChecker()
        self.index = NearDupIndex()
        self.exact: set[str] = set()
        median = seeds.median_output_chars()
        self.min_chars = max(2, int(median / LENGTH_FACTOR))
        self.max_chars = max(self.min_chars + 1, int(median * LENGTH_FACTOR)) if median else 10**9
        for s in seeds.items:
            self._remember(f"seed:{s.id}", s.sample())

    def _text(self, sample: dict[str, str]) -> str:
        return "\n".join((sample["instruction"], sample.get("input", ""), sample["output"]))

    def _remember(self, key: str, sample: dict[str, str]) -> None:
        text = self._text(sample)
        self.exact.add(normalize(text))
        self.index.add(key, minhash(text))

    def reason(self, sample: dict[str, str]) -> str | None:
        """Why `sample` is dropped (None: keep it). Does not remember it; `keep` does."""
        from ..data.formats import normalize as normalize_line

        problems: list = []
        line = render(sample, self.fmt, self.system)
        ex = normalize_line(line, self.fmt, 0, problems)
        if ex is None or not sample["output"].strip() or \
                any(p.severity == "error" for p in problems) or self.checker.errors(ex):
            return "invalid"
        text = sample["instruction"] + "\n" + sample.get("input", "") + "\n" + sample["output"]
        if is_refusal(sample["output"]):
            return "refusal"
        if has_placeholder(text):
            return "placeholder"
        if is_echo(sample):
            return "echo"
        if not language_ok(sample["output"], self.language):
            return "wrong_language"
        if not self.min_chars <= len(sample["output"]) <= self.max_chars:
            return "length_outlier"
        full = self._text(sample)
        if normalize(full) in self.exact:
            return "duplicate"
        if self.index.query(minhash(full)):
            return "near_duplicate"
        return None

    def check(self, key: str, sample: dict[str, str]) -> str | None:
        """The drop reason, counted; a kept sample is remembered."""
        why = self.reason(sample)
        if why is None:
            self._remember(key, sample)
            self.kept += 1
        else:
            self.counts[why] += 1
        return why
