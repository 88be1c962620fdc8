"""Golden-file conversions: every target, from a chat file and a preference file.

The expected outputs live in tests/data/golden/<input>.<target>.jsonl and the expected warnings
(line, code) in ...<target>.problems.json. Regenerate after an intended change with
`UNITUNE_UPDATE_GOLDEN=1 pytest tests/data/test_convert_golden.py` and review the diff.
"""
import json
import os
from pathlib import Path

import pytest

from unitune.data.convert import TARGETS, convert_file
from unitune.data.dataset import load_examples

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UNITUNE_UPDATE_GOLDEN") == "1"


def _problems(result):
    return {"warnings": [[p.line, p.code] for p in result.warnings],
            "errors": [[p.line, p.code] for p in result.errors],
            "written": result.written}


@pytest.mark.parametrize("source", ["sft_input", "pref_input"])
@pytest.mark.parametrize("target", TARGETS)
def test_golden_conversion(tmp_path, source, target):
    out = tmp_path / "out.jsonl"
    result = convert_file(GOLDEN / f"{source}.jsonl", target, out)
    got = out.read_text("utf-8") if out.exists() else ""
    expected_out = GOLDEN / f"{source}.{target}.jsonl"
    expected_problems = GOLDEN / f"{source}.{target}.problems.json"
    if UPDATE:
        expected_out.write_text(got, "utf-8")
        expected_problems.write_text(json.dumps(_problems(result), indent=1) + "\n")
    assert got == expected_out.read_text("utf-8")
    assert _problems(result) == json.loads(expected_problems.read_text())
    # whatever was written reads back cleanly in the target's own format
    if result.written:
        back = list(load_examples(out))  # auto-detect: every output is a readable format
        assert len(back) == result.written


def test_golden_messages_are_lossless():
    """Spot-check the goldens say what we claim (a regression in the goldens must be deliberate)."""
    msgs = (GOLDEN / "sft_input.messages.jsonl").read_text("utf-8").splitlines()
    src = (GOLDEN / "sft_input.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(a) for a in msgs] == [json.loads(b) for b in src]
    probs = json.loads((GOLDEN / "sft_input.bedrock-converse.problems.json").read_text())
    codes = {tuple(w) for w in probs["warnings"]}
    assert (3, "lossy_tool_calls") in codes and (3, "lossy_tools") in codes
    assert (4, "lossy_weight") in codes and (5, "lossy_images") in codes
    assert (5, "lossy_name") in codes
    pc = json.loads((GOLDEN / "sft_input.bedrock-prompt-completion.problems.json").read_text())
    assert [1, "lossy_system"] in pc["warnings"] and [2, "lossy_multi_turn"] in pc["warnings"]
    dpo = json.loads((GOLDEN / "sft_input.openai-dpo.problems.json").read_text())
    assert dpo["written"] == 0 and len(dpo["errors"]) == 6
