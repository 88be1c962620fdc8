"""Issue 12, item 2: the work on one huge line is bounded. Counting the tokens of a 20 MB line for
an OpenAI target used to peak at ~1.1 GB (tiktoken encodes one giant piece in one call); texts
longer than `tokens.LONG_TEXT_CHARS` are now counted in segments cut where the tokenizer splits
anyway, so the count stays exact and memory stays flat."""
from __future__ import annotations

import json
import random
import resource
import subprocess
import sys

import pytest

TARGET = "openai:gpt-4.1-mini-2025-04-14"

_CHILD = """
import json, resource, sys
from unitune.data.validate import validate_file
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
validate_file(sys.argv[1], [sys.argv[3]] if sys.argv[3] != "-" else [])  # tokenizer loaded
before = rss()
report = validate_file(sys.argv[2], [sys.argv[3]] if sys.argv[3] != "-" else [])
print(json.dumps({"before": before, "after": rss(),
                  "tokens": {k: v["total"] for k, v in report.stats["tokens"].items()},
                  "codes": report.by_code()}))
"""


def _line(text: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": text},
                                    {"role": "assistant", "content": "ok"}]}) + "\n"


def _measure(tmp_path, text: str, target: str) -> dict:
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_text(_line("hello"))
    big.write_text(_line(text))
    limit = 1 << 30

    def pre():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    r = subprocess.run([sys.executable, "-c", _CHILD, str(small), str(big), target],
                       capture_output=True, text=True, timeout=300, preexec_fn=pre,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("target", [TARGET, "-"])
def test_an_8mb_line_without_word_breaks_stays_within_bounded_memory(tmp_path, target):
    size = 8 << 20
    got = _measure(tmp_path, "x" * size, target)
    grown = got["after"] - got["before"]
    # reading the line costs a few copies of it (bytes, str); counting must not add ~50x
    assert grown < 10 * size, f"peak RSS grew by {grown >> 20} MiB for an {size >> 20} MiB line"
    if target != "-":
        # 'xxxxxxxx' is one o200k token; 2 messages x 4 + 3 priming + 'ok' (1)
        assert got["tokens"][TARGET] == size // 8 + 12


def test_segmented_counts_are_exact_on_mixed_text():
    from unitune import tokens

    words = ["hello", "world,", "naïve", "e\u0301t\u00e9", "don't", "你好。", "世界", "1234",
             "x" * 50, "\n", "  ", "Ünïcode!", "—", "Привет", "the", "a.b", "\t", "한국어",
             "_y"]
    r = random.Random(7)
    text = "".join(r.choice(words) + r.choice(["", " ", " ", "\n"]) for _ in range(60000))
    assert len(text) > tokens.LONG_TEXT_CHARS
    pieces = list(tokens.segments(text))
    assert "".join(pieces) == text and len(pieces) > 3
    assert max(map(len, pieces)) <= tokens.SEGMENT_CHARS
    for name in ("o200k_base", "cl100k_base"):
        enc = tokens.load_encoding(name)
        assert tokens.TiktokenCounter(name).count(text) == len(enc.encode_ordinary(text))
    whole = tokens.estimate_features(text)
    assert tokens.estimate_tokens(text) == max(1, round(sum(
        tokens.ESTIMATE_COEF[k] * v for k, v in whole.items())))


def test_long_texts_keep_their_duplicate_equivalence():
    from unitune.data.keys import _LONG, _normalized_long, normalize_text

    r = random.Random(3)
    for _ in range(20):
        parts = ["Ab", "c", " ", "  ", "\n", "ΣΑΣ", "x" * r.randint(1, 3000), "\u00a0"]
        text = "".join(r.choice(parts) for _ in range(r.randint(20000, 40000)))
        if len(text) <= _LONG:
            continue
        full, got = normalize_text(text), _normalized_long(text)
        if len(full) <= _LONG:
            assert got == full
        else:
            from hashlib import blake2b
            assert got == "\x00" + blake2b(full.encode("utf-8", "surrogatepass"),
                                           digest_size=16).hexdigest()


def test_validator_total_equals_count_example_for_a_long_text(tmp_path):
    from unitune.catalog import find_model
    from unitune.data.dataset import load_examples
    from unitune.data.validate import validate_file
    from unitune.tokens import LONG_TEXT_CHARS, count_example

    text = ("Lorem ipsum dolor sit amet, 你好世界。 " * (LONG_TEXT_CHARS // 20))
    p = tmp_path / "long.jsonl"
    p.write_text(_line(text) + _line("short one"), encoding="utf-8")
    info = find_model("openai", "gpt-4.1-mini-2025-04-14")
    report = validate_file(p, [info])
    expect = sum(count_example(ex, info) for ex in load_examples(p))
    assert report.stats["tokens"][f"openai:{info.model}"]["total"] == expect
