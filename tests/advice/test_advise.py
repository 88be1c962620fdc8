"""`unitune advise` on fixtures: the guide's decision rules, the evidence they used and the cost
of each route (deterministic; no model call)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unitune.advice import CALLS, FEW_SHOT, RETRIEVED_TOKENS, advise, read_goal
from unitune.catalog import find_model
from unitune.cli.app import app

FIX = Path(__file__).parent / "fixtures"
SUPPORT = Path(__file__).resolve().parents[2] / "examples/data/support_zh.jsonl"
OPENAI = "openai:gpt-4.1-mini-2025-04-14"


def fired(advice) -> set[str]:
    return {r.id for r in advice.rules if r.fired}


def test_structured_replies_with_enough_data_mean_fine_tuning():
    a = advise(FIX / "tickets_json.jsonl", goal="sort incoming tickets", targets=[OPENAI])
    assert a.recommendation == "fine-tuning"
    rule = next(r for r in a.rules if r.id == "format-style-behaviour")
    assert rule.fired and any("100% of the replies are JSON" in e for e in rule.evidence)
    assert a.data.examples == 150 and a.data.json_reply_share == 1.0


def test_too_few_examples_mean_few_shot_prompting_first():
    a = advise(FIX / "tickets_few.jsonl", goal="classify tickets as JSON", targets=[OPENAI])
    assert a.recommendation == "prompting"
    assert {"format-style-behaviour", "too-few-examples"} <= fired(a)
    assert "30 example(s)" in a.summary and "100+" in a.summary


def test_changing_knowledge_means_retrieval_in_english_and_chinese():
    en = advise(SUPPORT, goal="answer questions about our latest prices and stock levels")
    zh = advise(SUPPORT, goal="根据最新的产品价格和库存回答客户问题")
    assert en.recommendation == zh.recommendation == "retrieval"
    assert "latest" in en.goal.hits["knowledge"] and "价格" in zh.goal.hits["knowledge"]


def test_context_in_the_data_and_a_style_goal_mean_both():
    a = advise(FIX / "rag_zh.jsonl", goal="回答要保持礼貌的客服语气", targets=[OPENAI])
    assert a.recommendation == "retrieval+fine-tuning"
    assert a.data.context_share == 1.0 and a.data.language == "zh"
    assert {"knowledge-changes", "format-style-behaviour"} <= fired(a)


def test_prototype_or_no_data_means_prompting():
    assert advise(SUPPORT, goal="a quick prototype of a support bot").recommendation == \
        "prompting"
    nodata = advise(None, goal="reply in our brand voice", targets=[OPENAI])
    assert nodata.recommendation == "prompting" and nodata.data is None
    assert nodata.costs[OPENAI]["fine-tuning"]["one_off_usd"] is None


def test_task_sets_the_guides_volume():
    a = advise(FIX / "tickets_json.jsonl", goal="generate code from tickets", task="code")
    assert a.minimum_examples == 2000 and a.recommendation == "prompting"
    with pytest.raises(Exception, match="unknown task"):
        advise(FIX / "tickets_json.jsonl", goal="x", task="astrology")


def test_costs_follow_the_catalog_prices():
    a = advise(FIX / "tickets_json.jsonl", goal="classify tickets", targets=[OPENAI])
    info = find_model("openai", "gpt-4.1-mini-2025-04-14")
    p, r = a.data.prompt_tokens_mean, a.data.reply_tokens_mean
    pin, pout = info.inference.input_per_1m, info.inference.output_per_1m
    row = a.costs[OPENAI]
    expect_prompt = CALLS * ((p + FEW_SHOT * (p + r)) * pin + r * pout) / 1e6
    assert row["prompting"]["per_calls_usd"] == pytest.approx(expect_prompt, abs=1e-4)
    expect_rag = CALLS * ((p + RETRIEVED_TOKENS) * pin + r * pout) / 1e6
    assert row["retrieval"]["per_calls_usd"] == pytest.approx(expect_rag, abs=1e-4)
    assert row["fine-tuning"]["one_off_usd"] > 0
    assert row["fine-tuning"]["per_calls_usd"] < row["prompting"]["per_calls_usd"]


def test_goal_words_match_on_word_boundaries():
    assert not read_goal("we need more information").has("behaviour")  # "format" in it
    assert read_goal("Always answer in JSON").has("behaviour")


def test_cli_json_and_text():
    runner = CliRunner()
    res = runner.invoke(app, ["advise", str(FIX / "tickets_json.jsonl"), "--goal",
                              "classify tickets", "--target", OPENAI, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["recommendation"] in ("prompting", "retrieval", "fine-tuning",
                                     "retrieval+fine-tuning")
    assert doc["recommendation"] == "fine-tuning"
    assert doc["evidence"]["rules"] and doc["costs"][OPENAI]["prompting"]["per_calls_usd"] > 0
    assert doc["model_opinion"] is None
    res = runner.invoke(app, ["advise", str(FIX / "tickets_json.jsonl"), "--goal", "classify"])
    assert res.exit_code == 0 and "recommendation: fine-tuning" in res.stdout
    res = runner.invoke(app, ["advise", "nope.jsonl", "--goal", "x"])
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_model_opinion_is_labelled_and_never_changes_the_recommendation(monkeypatch):
    from unitune.testing.openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        srv.chat.script('{"route": "retrieval", "why": "Ticket labels change often."}')
        res = CliRunner().invoke(app, ["advise", str(FIX / "tickets_json.jsonl"), "--goal",
                                       "classify tickets", "--target", OPENAI, "--model",
                                       "openai:gpt-4.1-mini-2025-04-14", "--json"])
        sent = srv.chat.requests[0]["messages"][0]["content"]
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["recommendation"] == "fine-tuning"  # the rules decide
    op = doc["model_opinion"]
    assert op["route"] == "retrieval" and op["agrees"] is False
    assert "model's opinion" in op["label"] and op["why"] == "Ticket labels change often."
    assert "Deterministic recommendation: fine-tuning" in sent
