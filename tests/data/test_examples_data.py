"""The bundled example data: reproducible, and valid for every vendor the quickstart targets."""
import re
import subprocess
import sys
from pathlib import Path

from unitune.data.dataset import load_examples
from unitune.data.example import PreferenceExample
from unitune.data.keys import exact_key, normalized_key
from unitune.data.report import Report

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
NOVA_RESERVED = ("System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:",
                 "ASSISTANT:", "Thought:", "[EOS]", "<image>", "<video>")
CJK = re.compile(r"[\u4e00-\u9fff]")


def load(name):
    rep = Report()
    examples = list(load_examples(DATA / name, report=rep))
    return examples, rep


def test_generator_reproduces_the_committed_files():
    res = subprocess.run([sys.executable, str(DATA / "make_examples.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_support_zh_fits_every_vendor():
    examples, rep = load("support_zh.jsonl")
    assert rep.problems == [] and rep.format == "messages"
    assert len(examples) >= 120
    multi = 0
    for ex in examples:
        roles = [m.role for m in ex.messages]
        assert roles[0] == "system"
        body = roles[1:]
        assert body == ["user", "assistant"] * (len(body) // 2), roles
        multi += len(body) > 2
        for m in ex.messages:
            assert isinstance(m.content, str) and m.content.strip()
            assert not any(r in m.content for r in NOVA_RESERVED)
        assert CJK.search(ex.messages[1].content)
    assert multi >= 20
    assert len({exact_key(e) for e in examples}) == len(examples)
    assert len({normalized_key(e) for e in examples}) == len(examples)


def test_alpaca_is_bilingual():
    examples, rep = load("instructions_alpaca.jsonl")
    assert rep.problems == [] and rep.format == "alpaca" and len(examples) >= 100
    zh = sum(bool(CJK.search(e.messages[-2].content)) for e in examples)
    assert 30 <= zh <= len(examples) - 30
    assert len({normalized_key(e) for e in examples}) == len(examples)


def test_preferences():
    examples, rep = load("preferences_dpo.jsonl")
    assert rep.problems == [] and rep.format == "trl-dpo" and len(examples) >= 40
    assert all(isinstance(e, PreferenceExample) and e.chosen != e.rejected for e in examples)


def test_broken_file_shows_the_typical_mistakes():
    examples, rep = load("broken.jsonl")
    found = {(p.line, p.code) for p in rep.problems}
    assert {(2, "invalid_json"), (6, "bad_encoding"), (7, "wrong_type"), (7, "empty_field"),
            (8, "not_an_object")} <= found
    # the semantic mistakes (no assistant, unknown role, weight on user) are well-formed
    # structurally and reach the validator
    by_line = {e.line: e for e in examples}
    assert [m.role for m in by_line[3].messages] == ["system", "user"]
    assert by_line[4].messages[0].role == "customer"
    assert by_line[5].messages[0].weight == 1
