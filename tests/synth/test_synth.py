"""`unitune synth` end to end against the fake OpenAI server's chat route, through the real
`openai` SDK: planted refusals, near-duplicates, wrong-language, placeholder, echo and valid
samples — only the valid, unique ones are kept, with the right count per reason —; resume after
SIGKILL without re-paying journaled calls; the estimate against the tokens actually used."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import ENGLISH, REFUSAL, SEEDS, make_responder, plan_call, write_seeds
from unitune.cli.app import app
from unitune.synth import SynthConfig, plan_synth, run_synth
from unitune.synth.filters import has_placeholder, is_echo, is_refusal, language_ok
from unitune.synth.parse import parse_samples
from unitune.testing.openai_server import FakeOpenAIServer

MODEL = "openai:gpt-4.1-2025-04-14"
TASK = "电商售后客服回复"


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("UNITUNE_RETRY_BASE", "0.001")
        yield srv


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_only_valid_unique_samples_are_kept_with_counts_per_reason(server, tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    special = {2: {"content": None, "refusal": "I'm sorry, I can't help with that."},
               3: {"content": "Sure! Here are some ideas, but no JSON today."}}
    server.chat.responder = make_responder(special=special)
    cfg = SynthConfig(task=TASK, seeds=tmp_path / "seeds.jsonl", n=40, model=MODEL,
                      out=tmp_path / "out.jsonl")
    plan = plan_synth(cfg)
    assert len(plan.calls) == 6  # ⌈1.3 · 40 / 10⌉
    report = run_synth(plan)
    # 4 answered calls × (5 valid + 1 of each planted reason); call 3: an API refusal (10
    # samples refused); call 4: no JSON at all (1 unparsable answer)
    assert report["kept"] == 20
    assert report["dropped"] == {"unparsable": 1, "refusal": 4 + 10, "placeholder": 4,
                                 "wrong_language": 4, "duplicate": 4, "near_duplicate": 4}
    kept = _lines(tmp_path / "out.jsonl")
    expected = [s for i in (0, 1, 4, 5) for s in plan_call(i, 10)[0][:5]]
    assert [line["messages"][-1]["content"] for line in kept] == [s["output"] for s in expected]
    assert all(line["messages"][0]["role"] == "user" for line in kept)  # no shared system
    # structured output was asked for, on every call
    assert len(server.chat.requests) == 6
    assert all(r["response_format"]["type"] == "json_schema" for r in server.chat.requests)
    # provenance: generator, prompt hash, the seed ids behind every sample
    prov = json.loads((tmp_path / "out.provenance.json").read_text(encoding="utf-8"))
    assert prov["generator"]["model"] == MODEL and prov["prompt"]["template_hash"]
    assert prov["seeds"]["ids"] == ["L1", "L2", "L3", "L4"]
    assert len(prov["samples"]) == 20 and prov["samples"][0]["seeds"]
    assert set(prov["samples"][0]["axes"]) == {"scenario", "persona", "difficulty", "tone"}
    # diversity of what was kept
    assert report["diversity"]["distinct_2"] > 0.3
    assert report["diversity"]["reply_chars_histogram"]["counts"]


def test_estimate_against_the_tokens_actually_used(server, tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    server.chat.responder = make_responder()
    plan = plan_synth(SynthConfig(task=TASK, seeds=tmp_path / "seeds.jsonl", n=30, model=MODEL,
                                  out=tmp_path / "o.jsonl"))
    report = run_synth(plan)
    sp = report["spend"]
    # input: the plan counts the very prompts it sends, with the model's tokenizer
    assert sp["input_tokens_actual"] == sp["input_tokens_estimate"]
    # output: estimated from the seeds' sample length × k (+ JSON); here within 35 %
    ratio = sp["output_tokens_actual"] / sp["output_tokens_estimate"]
    assert 0.65 < ratio < 1.35, sp
    assert sp["actual_usd"] == pytest.approx(sp["estimate_usd"] * (
        (sp["input_tokens_actual"] * 3 + sp["output_tokens_actual"] * 12) /
        (sp["input_tokens_estimate"] * 3 + sp["output_tokens_estimate"] * 12)), rel=1e-6)


def test_dry_run_json_and_batch_pricing(tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    runner = CliRunner()
    args = ["synth", "--task", TASK, "--seeds", str(tmp_path / "seeds.jsonl"), "--n", "500",
            "--model", MODEL, "-o", str(tmp_path / "o.jsonl"), "--dry-run", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["calls"] == 65 and doc["input_tokens"] > 0 and doc["output_tokens"] > 0
    assert doc["cost_usd"] > 0 and doc["language"] == "zh"
    batch = json.loads(runner.invoke(app, args + ["--batch"]).stdout)
    assert batch["cost_usd"] <= doc["cost_usd"]
    assert not (tmp_path / "o.jsonl").exists()  # nothing generated
    res = runner.invoke(app, args[:-2] + ["--batch"])
    assert res.exit_code == 2 and "batch API" in res.stderr


def test_cost_gate_refuses_without_yes(server, tmp_path, monkeypatch):
    write_seeds(tmp_path / "seeds.jsonl")
    monkeypatch.setenv("UNITUNE_CONFIRM_USD", "0.0001")
    res = CliRunner().invoke(app, ["synth", "--task", TASK, "--seeds",
                                   str(tmp_path / "seeds.jsonl"), "--n", "20", "--model", MODEL,
                                   "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "not confirmed" in res.stderr
    assert server.chat.requests == []


def _synth_cmd(tmp_path: Path, n: int) -> list[str]:
    return [sys.executable, "-m", "unitune", "synth", "--task", TASK, "--seeds",
            str(tmp_path / "seeds.jsonl"), "--n", str(n), "--model", MODEL, "-o",
            str(tmp_path / "out.jsonl"), "--yes", "--concurrency", "1", "--json"]


@pytest.mark.slow
def test_resume_after_sigkill_does_not_repay_journaled_calls(server, tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    server.chat.responder = make_responder(delay_s=0.3)
    journal = tmp_path / "out.jsonl.journal"
    env = dict(os.environ)
    proc = subprocess.Popen(_synth_cmd(tmp_path, 60), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_text(encoding="utf-8").count('"ok": true') >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the journal never reached 3 calls")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    done = {json.loads(x)["call"] for x in journal.read_text(encoding="utf-8").splitlines()[1:]
            if x.strip()}
    assert 3 <= len(done) < 8 and not (tmp_path / "out.jsonl").exists()
    first_requests = len(server.chat.requests)
    assert first_requests <= len(done) + 1  # at most the one call in flight was lost
    res = subprocess.run(_synth_cmd(tmp_path, 60), env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["calls"]["journaled_before"] == len(done)
    second = server.chat.requests[first_requests:]
    assert len(second) == 8 - len(done)  # ⌈1.3 · 60 / 10⌉ = 8 planned
    from helpers import call_number

    assert not {call_number(r["messages"]) for r in second} & done  # never re-paid
    assert report["kept"] == 40  # 8 calls × 5 valid
    # the same output as a run that was never interrupted
    clean = tmp_path / "clean"
    clean.mkdir()
    write_seeds(clean / "seeds.jsonl")
    server.chat.responder = make_responder()
    res = subprocess.run(_synth_cmd(clean, 60), env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert (clean / "out.jsonl").read_text() == (tmp_path / "out.jsonl").read_text()


def test_a_changed_command_does_not_resume_another_runs_journal(server, tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    server.chat.responder = make_responder()
    cfg = SynthConfig(task=TASK, seeds=tmp_path / "seeds.jsonl", n=10, model=MODEL,
                      out=tmp_path / "o.jsonl")
    run_synth(plan_synth(cfg))
    other = SynthConfig(task=TASK + "（退货）", seeds=tmp_path / "seeds.jsonl", n=10, model=MODEL,
                        out=tmp_path / "o.jsonl")
    from unitune.errors import UnituneError

    with pytest.raises(UnituneError, match="another synth run"):
        run_synth(plan_synth(other))
    assert run_synth(plan_synth(other), restart=True)["calls"]["made"] == 2


def test_filters_and_parsing_units():
    assert is_refusal(REFUSAL) and is_refusal("I'm sorry, but I can't help with that request.")
    assert is_refusal("As an AI language model, I do not have opinions.")
    assert not is_refusal("很抱歉给您带来不便，我们会尽快处理。")
    assert has_placeholder("Dear [Your Name], thanks") and has_placeholder("您好，[插入姓名]")
    assert has_placeholder("Hello {{customer}}") and not has_placeholder("Use a [0, 1] range")
    assert is_echo({"instruction": "What is the refund policy?", "input": "",
                    "output": "What is the refund policy?"})
    assert not is_echo({"instruction": "Translate: hello", "input": "", "output": "你好"})
    assert language_ok(SEEDS[0]["output"], "zh") and not language_ok(ENGLISH, "zh")
    assert language_ok(ENGLISH, "en") and not language_ok(SEEDS[0]["output"], "en")
    fenced = 'Here you go:\n```json\n{"samples": [{"question": "q", "answer": "a"}]}\n```'
    assert parse_samples(fenced) == ([{"instruction": "q", "input": "", "output": "a"}], 0)
    lines = '{"instruction": "a", "output": "b"}\n{"instruction": "c"}'
    assert parse_samples(lines) == ([{"instruction": "a", "input": "", "output": "b"}], 1)
    assert parse_samples("no json") == ([], 1)
    bare = 'Sure: [{"instruction": "x", "input": "y", "output": "z"}] hope it helps'
    assert parse_samples(bare)[0][0]["output"] == "z"


def test_echo_and_length_outliers_are_dropped(server, tmp_path):
    write_seeds(tmp_path / "seeds.jsonl")
    samples = [{"instruction": "客户问怎么修改收货地址", "input": "",
                "output": "客户问怎么修改收货地址"},
               {"instruction": "客户问运费", "input": "", "output": "包邮。"},
               {"instruction": "客户问保修", "input": "", "output": "您好，" + "保修政策说明。" * 60},
               {"instruction": "客户问积分", "input": "",
                "output": "积分可以在会员中心兑换优惠券，每一百积分抵扣一元，下单时勾选使用即可。"}]
    server.chat.script({"content": json.dumps({"samples": samples}, ensure_ascii=False)})
    cfg = SynthConfig(task=TASK, seeds=tmp_path / "seeds.jsonl", n=1, model=MODEL,
                      out=tmp_path / "o.jsonl", per_call=4)
    report = run_synth(plan_synth(cfg))
    assert report["kept"] == 1
    assert report["dropped"] == {"echo": 1, "length_outlier": 2}
