"""Refit unitune.tokens.ESTIMATE_COEF against o200k_base and print the held-out error.

Training text: natural Chinese sentences and English paragraphs (first halves of the fixtures in
tests/validate/data/), mixed into multi-sentence texts, plus zh/ja/ko/en phrases from
freedesktop's shared-mime-info translations when that file exists. Held out: mixes of the second
halves (the same texts tests/validate/test_tokens.py checks the error bound on).

    python benchmarks/calibrate_estimate.py
"""
from __future__ import annotations

import html
import random
import re
from pathlib import Path

import numpy as np

from unitune import tokens as T

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "validate" / "data"
MIME = Path("/usr/share/mime/packages/freedesktop.org.xml")


def lines(name: str) -> list[str]:
    return [s for s in (DATA / name).read_text(encoding="utf-8").splitlines() if s]


def mixed(zh: list[str], en: list[str], n: int, seed: int) -> list[str]:
    """Texts of 1-5 sentences: Chinese only, English only, and the two mixed."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            out.append("".join(r.sample(zh, r.randint(1, 5))))
        elif k == 1:
            out.append(" ".join(r.sample(en, r.randint(1, 3))))
        elif k == 2:
            out.append(r.choice(en) + "\n" + "".join(r.sample(zh, r.randint(1, 3))))
        else:
            out.append("".join(r.sample(zh, 2)) + " " + r.choice(en)[:120] + " " + r.choice(zh))
    return out


def phrases() -> list[str]:
    if not MIME.exists():
        return []
    xml = MIME.read_text(encoding="utf-8")
    r = random.Random(1)
    out = []
    for lang in ("zh_CN", "zh_TW", "ja", "ko", "en_GB"):
        pool = [html.unescape(s) for s in
                re.findall(rf'<comment xml:lang="{lang}">([^<]*)</comment>', xml)]
        out += ["，".join(r.sample(pool, r.randint(2, 12))) for _ in range(60)]
    return out


def main() -> None:
    zh, en = lines("zh_sentences.txt"), lines("en_paragraphs.txt")
    train = mixed(zh[:20], en[:8], 800, 1) + phrases()
    test = mixed(zh[20:], en[8:], 400, 3)
    coef, err = T.calibrate(train)
    print("coefficients:", coef)
    print("fit error:", err)
    T.ESTIMATE_COEF.update(coef)
    enc = T.load_encoding("o200k_base")
    y = np.array([len(enc.encode_ordinary(t)) for t in test])
    p = np.array([T.estimate_tokens(t) for t in test])
    rel = np.abs(p - y) / y
    c4 = np.array([len(t) / 4 for t in test])
    print(f"held-out: mean |err| {rel.mean():.3f}, p95 {np.quantile(rel, .95):.3f}, "
          f"total {(p.sum() - y.sum()) / y.sum():+.3f}; chars/4 mean |err| "
          f"{(np.abs(c4 - y) / y).mean():.3f}")


if __name__ == "__main__":
    main()
