"""Data quality beyond format: the guide's rule-of-thumb volumes per task type (数据量指南), and
(see below) near-duplicates, diversity, inconsistent answers and train/validation leakage.

Everything here produces warnings, never errors: a dataset can be valid and still thin,
repetitive or contradictory.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


@dataclass(frozen=True)
class VolumeTier:
    tier: str
    low: int  # the guide's recommended range
    high: int
    guide: str  # the guide's row, quoted


# The guide's table 4.3 (数据量指南): task complexity → recommended number of examples.
VOLUME_TIERS = {
    "format": VolumeTier("format", 50, 100, "简单格式转换 50-100 条 (如固定模板填充)"),
    "style": VolumeTier("style", 100, 500, "风格迁移 100-500 条 (如客服语调调整)"),
    "domain": VolumeTier("domain", 500, 2000, "领域适应 500-2000 条 (如法律/医疗术语)"),
    "complex": VolumeTier("complex", 2000, 10000, "复杂任务 2000-10000 条 (如代码生成、复杂推理)"),
}
# `--task` names → the guide's tier.
TASK_TIERS = {
    "classification": "format", "extraction": "format", "format": "format",
    "template": "format", "style": "style", "tone": "style", "chat": "style",
    "support": "style", "qa": "domain", "domain": "domain", "summarization": "domain",
    "translation": "domain", "code": "complex", "reasoning": "complex", "complex": "complex",
}
# The guide (1.3): fine-tuning does not suit very little data (数据量极少 <100 条).
MIN_FOR_TUNING = 100


def volume_tier(task: str) -> VolumeTier:
    """The guide's tier for a `--task` name; ValueError listing the names otherwise."""
    key = task.strip().lower()
    if key not in TASK_TIERS:
        raise ValueError(f"unknown task {task!r}; one of: {', '.join(sorted(TASK_TIERS))}")
    return VOLUME_TIERS[TASK_TIERS[key]]


# ---------------------------------------------------------------------------------------------
# Text of an example, shingles and MinHash

NUM_PERM = 64  # MinHash permutations: Jaccard estimates within ~±0.06 (1/sqrt(64)/2)
NEAR_DUP_THRESHOLD = 0.8  # Jaccard of character shingles: "the same example, reworded a bit"
SAME_PROMPT_THRESHOLD = 0.9  # prompts this similar should get answers in one style
DIFFERENT_ANSWER_BELOW = 0.3  # … and answers below this similarity disagree
OPENING_SHARE_WARN = 0.3  # one opening in more than 30 % of the replies
DISTINCT2_WARN = 0.25  # fewer than 25 % distinct bigrams over the replies
MIN_FOR_DIVERSITY = 20  # diversity is not judged on fewer examples
MAX_PAIRS = 200  # pairs kept per check (all are counted)
MAX_QUALITY_EXAMPLES = 100_000  # larger files: the checks are skipped unless asked for

_HAN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+",
                    re.UNICODE)


def normalize(text: str) -> str:
    """NFKC, lower case, whitespace collapsed: what near-duplicate checks compare."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


_LETTER = re.compile(r"[^\W\d_]")


def cjk_share(text: str) -> float:
    """Share of CJK characters among the letters of `text` (0.0 without letters)."""
    letters = len(_LETTER.findall(text))
    return len(_HAN.findall(text)) / letters if letters else 0.0


_NOT_WORD = re.compile(r"[^\w\s]|_")


def _strip_punct(text: str) -> str:
    """Punctuation and symbols → spaces (a C-speed regex; `\\w` is Unicode-aware)."""
    return _NOT_WORD.sub(" ", text)


def shingles(text: str) -> set[str]:
    """Character n-grams of the normalized text without punctuation: 3-grams where CJK
    dominates (a Han character is about a word), 5-grams otherwise; no word segmenter needed."""
    t = _WS.sub(" ", _strip_punct(normalize(text))).strip()
    n = 3 if cjk_share(t) > 0.3 else 5
    if len(t) <= n:
        return {t} if t else set()
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def tokens(text: str) -> list[str]:
    """Words, with each CJK character a token of its own (for distinct-n and openings)."""
    return _TOKEN.findall(normalize(text))


_PERMUTATIONS: Any = None


def minhash(text: str):
    """The MinHash of `text`'s shingles. The permutations are computed once (datasketch would
    draw them again for every signature) and shingles are hashed with CRC-32 (in C) instead of
    datasketch's default SHA-1: ~3× faster, and as stable across runs."""
    import zlib

    from datasketch import MinHash

    global _PERMUTATIONS
    if _PERMUTATIONS is None:
        first = MinHash(num_perm=NUM_PERM, seed=1)
        _PERMUTATIONS = (first.permutations, getattr(first, "scheme", None))
    perms, scheme = _PERMUTATIONS
    kw = {"scheme": scheme} if scheme is not None else {}  # datasketch >= 2 labels its scheme
    m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=zlib.crc32, permutations=perms, **kw)
    sh = shingles(text)
    if sh:
        m.update_batch([s.encode("utf-8") for s in sh])
    return m


def example_texts(example: Any, system: bool = False) -> tuple[str, str]:
    """(prompt, reply) of an Example or PreferenceExample: user/tool turns (and system turns
    with `system`), and the assistant turns (the chosen reply for a preference pair). The
    similarity checks leave the system prompt out: one shared system prompt is intended, and
    it would make every example look alike."""
    from .example import PreferenceExample, text_of

    msgs = example.prompt if isinstance(example, PreferenceExample) else \
        [m for m in example.messages if m.role != "assistant"]
    prompt = [text_of(m.content) for m in msgs if system or m.role != "system"]
    replies = example.chosen if isinstance(example, PreferenceExample) else \
        [m for m in example.messages if m.role == "assistant"]
    reply = [text_of(m.content) for m in replies]
    return "\n".join(prompt), "\n".join(reply)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> list[str]:
    return _NUMBER.findall(unicodedata.normalize("NFKC", text))


# ---------------------------------------------------------------------------------------------
# The checks


@dataclass
class Pair:
    line: int  # the later example
    other: int  # the earlier one it resembles
    similarity: float
    file: str | None = None
    other_file: str | None = None
    reason: str | None = None  # inconsistent answers: "different" wording or "numbers"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "other_line": self.other,
                               "similarity": round(self.similarity, 3)}
        if self.reason:
            out["reason"] = self.reason
        if self.file:
            out["file"] = self.file
        if self.other_file:
            out["other_file"] = self.other_file
        return out


class NearDupIndex:
    """MinHash LSH over character shingles: `add` then `query` returns earlier keys whose
    estimated Jaccard similarity is at least the threshold (LSH candidates, then checked)."""

    def __init__(self, threshold: float = NEAR_DUP_THRESHOLD) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.hashes: dict[Any, Any] = {}

    def query(self, m) -> list[tuple[Any, float]]:
        out = []
        for key in self.lsh.query(m):
            sim = m.jaccard(self.hashes[key])
            if sim >= self.threshold:
                out.append((key, sim))
        return sorted(out, key=lambda kv: (-kv[1], kv[0]))

    def add(self, key: Any, m) -> None:
        if key in self.hashes:
            return
        self.hashes[key] = m
        self.lsh.insert(key, m)


@dataclass
class QualityReport:
    examples: int = 0
    near_duplicates: list[Pair] = field(default_factory=list)
    near_duplicate_count: int = 0
    inconsistent: list[Pair] = field(default_factory=list)  # similar prompts, different answers
    inconsistent_count: int = 0
    leakage: list[Pair] = field(default_factory=list)  # validation line ~ train line
    leakage_count: int = 0
    validation_examples: int = 0
    diversity: dict[str, Any] = field(default_factory=dict)
    volume: dict[str, Any] | None = None
    skipped: str | None = None  # why the checks did not run

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "examples": self.examples,
            "near_duplicates": {"count": self.near_duplicate_count, "threshold":
                                NEAR_DUP_THRESHOLD,
                                "pairs": [p.to_dict() for p in self.near_duplicates]},
            "inconsistent_answers": {"count": self.inconsistent_count,
                                     "pairs": [p.to_dict() for p in self.inconsistent]},
            "diversity": self.diversity,
        }
        if self.validation_examples:
            out["leakage"] = {"count": self.leakage_count, "validation_examples":
                              self.validation_examples,
                              "pairs": [p.to_dict() for p in self.leakage]}
        if self.volume is not None:
            out["volume"] = self.volume
        if self.skipped:
            out["skipped"] = self.skipped
        return out


def distinct_n(token_lists: Iterable[list[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the texts (1.0: nothing repeats)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for toks in token_lists:
        for i in range(len(toks) - n + 1):
            seen.add(tuple(toks[i:i + n]))
            total += 1
    return len(seen) / total if total else 1.0


def opening(reply: str) -> str:
    """The first words of a reply (first 3 tokens; CJK characters count one each, 6 of them)."""
    toks = tokens(reply)
    k = 6 if toks and _HAN.match(toks[0]) else 3
    return " ".join(toks[:k])


DIVERSITY_SAMPLE_TOKENS = 10_000  # distinct-n falls as text grows: measure a fixed amount


def _sample_tokens(texts: list[str], budget: int = DIVERSITY_SAMPLE_TOKENS) -> list[list[str]]:
    """Token lists of texts taken in a seeded order until `budget` tokens, so distinct-n is
    comparable between a 100-example and a 100,000-example file."""
    import random

    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    out, used = [], 0
    for i in order:
        toks = tokens(texts[i])
        out.append(toks)
        used += len(toks)
        if used >= budget:
            break
    return out


def diversity(replies: list[str], prompts: list[str] | None = None) -> dict[str, Any]:
    """distinct-1/2 of the replies (and prompts), measured on ~10,000 tokens of them (a seeded
    sample, so files of any size compare), the most common reply openings and their shares,
    and a reply-length histogram (characters)."""
    from .stats import histogram

    toks = _sample_tokens(replies)
    opens = Counter(o for o in (opening(r) for r in replies) if o)
    top = opens.most_common(5)
    lengths = sorted(len(r) for r in replies)
    out: dict[str, Any] = {
        "distinct_1": round(distinct_n(toks, 1), 4),
        "distinct_2": round(distinct_n(toks, 2), 4),
        "top_openings": [{"opening": o, "count": c, "share": round(c / len(replies), 4)}
                         for o, c in top] if replies else [],
        "reply_chars_histogram": histogram(lengths),
    }
    if prompts is not None:
        out["prompt_distinct_2"] = round(distinct_n(_sample_tokens(prompts), 2), 4)
    out["sample_tokens"] = sum(len(t) for t in toks)
    return out


def skipped_message(limit: int) -> str:
    return (f"more than {limit:,} examples: near-duplicate, consistency and leakage checks "
            "skipped (pass --quality-all to run them)")


def _iter(path: Any, fmt: str) -> Iterator[Any]:
    from .dataset import load_examples
    from .report import Report

    rep = Report(file=str(path), max_problems=10)
    yield from load_examples(path, fmt, rep)


def check_quality(path: Any, *, validation: Any = None, task: str | None = None,
                  fmt: str = "auto", limit: int | None = MAX_QUALITY_EXAMPLES) -> QualityReport:
    """Run every quality check on `path` (and leakage against `validation`, a second file).

    Streams the file once (plus the validation file once); memory grows with the MinHash
    signatures (~0.6 KB an example). Files with more than `limit` examples are not checked
    (`skipped` says so) unless `limit` is None.
    """
    q = QualityReport()
    if not have_datasketch():
        return _without_similarity(path, fmt, task, q)
    whole = NearDupIndex(NEAR_DUP_THRESHOLD)
    prompts = NearDupIndex(SAME_PROMPT_THRESHOLD)
    replies: dict[int, str] = {}
    prompts_of: dict[int, str] = {}
    reply_texts: list[str] = []
    prompt_texts: list[str] = []
    seen_norm: dict[str, int] = {}
    for ex in _iter(path, fmt):
        q.examples += 1
        if limit is not None and q.examples > limit:
            q.skipped = skipped_message(limit)
            q.near_duplicates, q.inconsistent = [], []
            q.near_duplicate_count = q.inconsistent_count = 0
            break
        prompt, reply = example_texts(ex)
        full = prompt + "\n" + reply
        norm = normalize(full)
        m = minhash(full)
        if norm in seen_norm:  # the validator reports exact / normalized duplicates already
            whole.add(ex.line, m)
        else:
            seen_norm[norm] = ex.line
            hits = whole.query(m)
            if hits:
                q.near_duplicate_count += 1
                if len(q.near_duplicates) < MAX_PAIRS:
                    q.near_duplicates.append(Pair(ex.line, hits[0][0], hits[0][1]))
            whole.add(ex.line, m)
        if prompt.strip() and reply.strip():
            pm = minhash(prompt)
            rset = shingles(reply)
            rnums = sorted(numbers(reply))
            for other, psim in prompts.query(pm):
                if numbers(prompt) != numbers(prompts_of[other]):
                    continue  # "order 1001" vs "order 1002": different questions
                oset = shingles(replies[other])
                rsim = len(rset & oset) / (len(rset | oset) or 1)
                why = None
                if rsim < DIFFERENT_ANSWER_BELOW:
                    why = "different"
                elif rnums != sorted(numbers(replies[other])):
                    why = "numbers"
                if why:
                    q.inconsistent_count += 1
                    if len(q.inconsistent) < MAX_PAIRS:
                        q.inconsistent.append(Pair(ex.line, other, rsim, reason=why))
                    break
            prompts.add(ex.line, pm)
            replies[ex.line] = reply
            prompts_of[ex.line] = prompt
        reply_texts.append(reply)
        prompt_texts.append(prompt)
    if q.skipped is None and validation is not None:
        for ex in _iter(validation, fmt):
            q.validation_examples += 1
            prompt, reply = example_texts(ex)
            hits = whole.query(minhash(prompt + "\n" + reply))
            if hits:
                q.leakage_count += 1
                if len(q.leakage) < MAX_PAIRS:
                    q.leakage.append(Pair(ex.line, hits[0][0], hits[0][1], file=str(validation),
                                          other_file=str(path)))
    q.diversity = diversity(reply_texts, prompt_texts)
    if task:
        tier = volume_tier(task)
        q.volume = {"task": task, "tier": tier.tier, "recommended": [tier.low, tier.high],
                    "guide": tier.guide, "examples": q.examples, "enough": q.examples >= tier.low}
    return q


NO_DATASKETCH = ("near-duplicate, consistency and leakage checks need datasketch: "
                 "pip install 'unitune[quality]'")


def have_datasketch() -> bool:
    try:
        import datasketch  # noqa: F401
    except ImportError:
        return False
    return True


def _without_similarity(path: Any, fmt: str, task: str | None, q: QualityReport
                        ) -> QualityReport:
    """Diversity and volume only (they need no MinHash)."""
    replies, prompts = [], []
    for ex in _iter(path, fmt):
        q.examples += 1
        prompt, reply = example_texts(ex)
        replies.append(reply)
        prompts.append(prompt)
    q.diversity = diversity(replies, prompts)
    q.skipped = NO_DATASKETCH
    if task:
        tier = volume_tier(task)
        q.volume = {"task": task, "tier": tier.tier, "recommended": [tier.low, tier.high],
                    "guide": tier.guide, "examples": q.examples, "enough": q.examples >= tier.low}
    return q


def quality_problems(q: QualityReport, file: str | None = None) -> list:
    """The report's findings as warnings for a validation Report (never errors)."""
    from .report import Problem

    out: list[Problem] = []
    for p in q.near_duplicates:
        out.append(Problem(code="similar_examples", severity="warning", line=p.line, file=file,
                           message=f"line {p.line} is a near-duplicate of line {p.other} "
                                   f"(~{p.similarity:.0%} similar)",
                           hint="near-duplicates over-weight one example; keep the better one"))
    for p in q.inconsistent:
        what = "with other numbers" if p.reason == "numbers" else \
            f"differently (answers ~{p.similarity:.0%} similar)"
        out.append(Problem(code="inconsistent_answers", severity="warning", line=p.line,
                           file=file,
                           message=f"line {p.line} asks nearly what line {p.other} asks but "
                                   f"answers {what}",
                           hint="the guide asks for consistency (一致性): similar inputs should "
                                "get answers in the same style; reconcile or drop one"))
    for p in q.leakage:
        out.append(Problem(code="validation_leakage", severity="warning", line=p.line,
                           file=p.file,
                           message=f"validation line {p.line} is a near-duplicate of training "
                                   f"line {p.other} (~{p.similarity:.0%} similar)",
                           hint="validation examples seen in training make the validation loss "
                                "look better than it is; remove them from one side"))
    d = q.diversity
    if q.examples >= MIN_FOR_DIVERSITY and d:
        if d.get("distinct_2", 1.0) < DISTINCT2_WARN:
            out.append(Problem(code="low_diversity", severity="warning", file=file,
                               message=f"the replies repeat themselves: distinct-2 "
                                       f"{d['distinct_2']:.2f} (under {DISTINCT2_WARN})",
                               hint="the guide asks for diversity (多样性): cover more "
                                    "scenarios and phrasings"))
        top = (d.get("top_openings") or [None])[0]
        if top and top["share"] > OPENING_SHARE_WARN:
            out.append(Problem(code="repeated_openings", severity="warning", file=file,
                               message=f"{top['share']:.0%} of the replies open with "
                                       f"\"{top['opening']}\"",
                               hint="a tuned model learns the opening too; vary it unless it is "
                                    "meant to be fixed"))
    v = q.volume
    if v is not None and not v["enough"]:
        out.append(Problem(code="low_volume", severity="warning", file=file,
                           message=f"{v['examples']:,} examples for a {v['task']} task; the "
                                   f"guide recommends {v['recommended'][0]:,}-"
                                   f"{v['recommended'][1]:,} ({v['guide']})",
                           hint="add examples (`unitune synth` generates candidates from "
                                "seeds) or start with few-shot prompting (`unitune advise`)"))
    if q.skipped:
        hint = "pip install 'unitune[quality]'" if q.skipped == NO_DATASKETCH else \
            "pass --quality-all"
        out.append(Problem(code="quality_skipped", severity="warning", file=file,
                           message=q.skipped, hint=hint))
    return out
