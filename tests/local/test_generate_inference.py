"""The local caller of the inference protocol: a finished local job answers with its adapter on
(tuned) or off (base), greedy and repeatable, with the one Generation shape; perplexity is
measured on the assistant tokens only; the CLI keeps the side-by-side view (`--compare`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unitune.inference import GenParams

from .conftest import make_spec
from .test_recipes import run_recipe

pytestmark = pytest.mark.slow
MSGS = [{"role": "user", "content": "Bonjour !"}]


@pytest.fixture
def trained(tiny_home, fixed_batch_file, tmp_path) -> Path:
    run_recipe(make_spec(fixed_batch_file, steps=6, lr=3e-2), tmp_path / "job")
    return tmp_path / "job"


def test_tuned_and_base_answer_with_the_one_shape(trained):
    from unitune.local.inference import caller_for_dir, forget

    forget()
    tuned, base = caller_for_dir(trained), caller_for_dir(trained, base=True)
    assert tuned.max_concurrency == 1 and tuned.price is None
    g1 = tuned.generate(MSGS, GenParams(max_tokens=12))
    g2 = tuned.generate(MSGS, GenParams(max_tokens=12))
    assert g1.text == g2.text  # greedy: repeatable
    assert g1.finish_reason in ("stop", "length")
    assert g1.usage["input_tokens"] > 0 and 0 < g1.usage["output_tokens"] <= 12
    if g1.finish_reason == "length":
        assert g1.usage["output_tokens"] == 12
    b = base.generate(MSGS, GenParams(max_tokens=12))
    assert b.raw["token_ids"] != g1.raw["token_ids"]  # the adapter changes the answer
    # the base caller borrows the same loaded model with the adapter disabled: tuned is intact
    assert tuned.generate(MSGS, GenParams(max_tokens=12)).text == g1.text


def test_base_equals_the_untouched_base_model(trained):
    from unitune.local.inference import caller_for_dir, for_model

    base = caller_for_dir(trained, base=True).generate(MSGS, GenParams(max_tokens=10))
    plain = for_model("local", "unitune/tiny-chat").generate(MSGS, GenParams(max_tokens=10))
    assert base.raw["token_ids"] == plain.raw["token_ids"]


def test_perplexity_counts_assistant_tokens_only(trained):
    from unitune.local.inference import _assistant_ids, caller_for_dir

    tuned = caller_for_dir(trained)
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Salut"},
            {"role": "assistant", "content": "Bonjour"}]
    ids, mask = _assistant_ids(tuned.loaded.tok, conv)
    answer = tuned.loaded.tok("Bonjour<|im_end|>", add_special_tokens=False)["input_ids"]
    assert sum(mask) == len(answer)  # the answer and its end-of-turn token, nothing else
    assert ids[-len(answer) - 1:-1] == answer or ids[-len(answer):] == answer
    rows = tuned.nll([conv, [{"role": "user", "content": "no answer"}]])
    assert rows[0][1] == len(answer) and rows[1] == (0.0, 0)
    ppl = tuned.perplexity([conv])
    assert ppl == pytest.approx(math.exp(rows[0][0] / rows[0][1]))


def test_cli_generate_json_shape_and_compare(trained):
    from typer.testing import CliRunner

    from unitune.cli.app import app

    runner = CliRunner()
    out = runner.invoke(app, ["generate", str(trained), "Bonjour !", "--json", "--max-tokens",
                              "8"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert set(got) == {"model", "text", "finish_reason", "usage", "latency_s"}
    out = runner.invoke(app, ["generate", str(trained), "Bonjour !", "--compare", "--json",
                              "--max-new-tokens", "8"])
    assert out.exit_code == 0, out.output
    both = json.loads(out.stdout)
    assert set(both) == {"base", "tuned"}
    assert set(both["base"]) == set(got) and both["tuned"]["model"].endswith("adapter")
    out = runner.invoke(app, ["generate", str(trained)])
    assert out.exit_code == 2 and "give a job and a prompt" in out.output
    out = runner.invoke(app, ["generate", "--model", "local:unitune/tiny-chat", "Salut", "--json",
                              "--max-tokens", "4"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["model"] == "unitune/tiny-chat"
