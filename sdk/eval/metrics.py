"""The `score` metrics, defined exactly once and computed with the field's libraries
(sacrebleu, rouge-score) — never re-implemented:

    bleu         sacrebleu.corpus_bleu(predictions, references_transposed, tokenize=T).score,
                 T = "zh" when any reference holds a CJK character, else "13a" (0–100)
    chrf         sacrebleu.corpus_chrf(predictions, references_transposed).score (0–100)
    rouge_l      mean over examples of RougeScorer(["rougeL"], tokenizer=TOK)
                 .score(reference, prediction)["rougeL"].fmeasure, max over references (0–1)
    exact_match  mean of equality after NFKC, lowercasing, removing punctuation and whitespace
                 (any reference) (0–1)
    token_f1     mean SQuAD-style F1 over TOK's tokens, max over references (0–1)

TOK makes every CJK character (CJK Unified Ideographs incl. extensions and compatibility
ideographs, Hiragana, Katakana, Hangul) its own token and every other run of letters/digits,
lowercased, a token: rouge-score's default tokenizer drops non-ASCII text, so Chinese would
score 0.0 with it.

Examples may carry several references; sacrebleu wants equally long reference streams, so an
example with fewer references repeats its first one (for BLEU's clipped counts and closest
reference length, and for chrF's best reference, a repeated reference changes nothing).

`paired_stats` gives per-example sufficient statistics so `unitune.eval.stats` can bootstrap
corpus-level BLEU/chrF the way sacrebleu's own paired bootstrap does (sum the resampled rows'
statistics, compute the score from the sums).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

METRICS = ("bleu", "chrf", "rouge_l", "exact_match", "token_f1")
SCALE = {"bleu": 100.0, "chrf": 100.0, "rouge_l": 1.0, "exact_match": 1.0, "token_f1": 1.0}

_CJK_RANGES = ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK Unified (+ Ext A) + Compatibility
               "\U00020000-\U0002ebef\U00030000-\U0003134f"  # CJK Unified Ext B–H
               "\u3040-\u309f"  # Hiragana
               "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"  # Katakana (+ ext, half-width)
               "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff")  # Hangul
CJK = re.compile(f"[{_CJK_RANGES}]")
_TOKEN = re.compile(f"[{_CJK_RANGES}]|(?:(?![{_CJK_RANGES}])[^\\W_])+")


def has_cjk(text: str) -> bool:
    return CJK.search(text or "") is not None


def tok(text: str) -> list[str]:
    """TOK: every CJK character alone; every other run of letters/digits, lowercased."""
    return [t.lower() for t in _TOKEN.findall(text or "")]


class TokTokenizer:
    """TOK in the shape rouge-score's RougeScorer takes (`tokenize(text) -> list[str]`)."""

    def tokenize(self, text: str) -> list[str]:
        return tok(text)


def normalize_answer(text: str) -> str:
    """NFKC, lowercased, without punctuation (Unicode P*) or whitespace."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in text if not ch.isspace()
                   and not unicodedata.category(ch).startswith("P"))


def exact_match(prediction: str, references: Sequence[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(r) for r in references))


def _f1(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    pred = tok(prediction)
    return max(_f1(pred, tok(r)) for r in references)


_SCORER: Any = None


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rougeL"], tokenizer=TokTokenizer())
    return max(_SCORER.score(r, prediction)["rougeL"].fmeasure for r in references)


def as_references(ref: Any) -> list[str]:
    if isinstance(ref, str):
        return [ref]
    if isinstance(ref, (list, tuple)) and ref and all(isinstance(r, str) for r in ref):
        return list(ref)
    raise ValueError("a reference is a string or a non-empty list of strings")


def transpose(references: Sequence[Sequence[str]]) -> list[list[str]]:
    """sacrebleu's reference streams: stream k holds every example's k-th reference (an example
    with fewer repeats its first)."""
    width = max((len(r) for r in references), default=1)
    return [[r[k] if k < len(r) else r[0] for r in references] for k in range(width)]


def bleu_tokenizer(references: Sequence[Sequence[str]]) -> str:
    return "zh" if any(has_cjk(r) for refs in references for r in refs) else "13a"


@dataclass
class Scores:
    """Corpus scores plus the per-example scores of the sentence-level metrics."""

    examples: int
    metrics: dict[str, float]
    bleu_signature: str
    per_example: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "metrics": self.metrics,
                "bleu_signature": self.bleu_signature}


def score(predictions: Sequence[str], references: Sequence[Any]) -> Scores:
    """Every metric of the module docstring over the corpus."""
    import sacrebleu
    from sacrebleu.metrics import BLEU

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    refs = [as_references(r) for r in references]
    preds = [p or "" for p in predictions]
    n = len(preds)
    if n == 0:
        return Scores(0, {m: 0.0 for m in METRICS}, "", {m: [] for m in METRICS})
    streams = transpose(refs)
    t = bleu_tokenizer(refs)
    bleu = sacrebleu.corpus_bleu(preds, streams, tokenize=t).score
    chrf = sacrebleu.corpus_chrf(preds, streams).score
    signer = BLEU(tokenize=t)
    signer.corpus_score(preds, streams)
    per = {"rouge_l": [rouge_l(p, r) for p, r in zip(preds, refs)],
           "exact_match": [exact_match(p, r) for p, r in zip(preds, refs)],
           "token_f1": [token_f1(p, r) for p, r in zip(preds, refs)]}
    metrics = {"bleu": bleu, "chrf": chrf, **{k: sum(v) / n for k, v in per.items()}}
    return Scores(n, metrics, str(signer.get_signature()), per)


def sentence_chrf(predictions: Sequence[str], references: Sequence[Any]) -> list[float]:
    """Per-example chrF (what the win rate compares)."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return [metric.sentence_score(p or "", as_references(r)).score
            for p, r in zip(predictions, references)]


def paired_stats(metric: str, predictions: Sequence[str], references: Sequence[Any]):
    """(per-example statistic rows, rows → score) for bootstrapping corpus BLEU/chrF."""
    from sacrebleu.metrics import BLEU, CHRF

    refs = [as_references(r) for r in references]
    m = BLEU(tokenize=bleu_tokenizer(refs)) if metric == "bleu" else CHRF()
    rows = m._extract_corpus_statistics([p or "" for p in predictions], transpose(refs))

    def compute(selected: list[list[float]]) -> float:
        sums = [sum(col) for col in zip(*selected)] if selected else [0] * len(rows[0])
        return m._compute_score_from_stats(sums).score

    return rows, compute
