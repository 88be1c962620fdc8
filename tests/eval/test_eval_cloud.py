"""`unitune eval` on a cloud job, end to end against the OpenAI fake through the real SDK: the
cost pre-flight gates paid calls, base and tuned answer the same prompts, the judge runs with
swapped positions, per-example diffs are saved beside the job, and several jobs compare."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

REFS = ["退款会在3个工作日内原路退回。", "请在订单详情页申请退货。", "您好，包裹正在运输中。",
        "请在登录页点击忘记密码。", "会员每年99元。", "不客气，祝您购物愉快！"]


class _TunedJobs:
    """Fine-tunes on the fake (through the openai SDK) and records them as finished jobs."""

    base_model = "gpt-4.1-mini-2025-04-14"

    def __init__(self, srv) -> None:
        self.srv = srv

    def tuned_record(self):
        from openai import OpenAI

        from unitune.job import ModelHandle, RemoteRef
        from unitune.provider import Location
        from unitune.registry import Registry

        client = OpenAI(base_url=self.srv.base_url, api_key="sk-test-eval")
        rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                {"role": "assistant", "content": f"a{i}"}]})
                       + "\n" for i in range(12))
        f = client.files.create(file=("t.jsonl", rows.encode()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=self.base_model, training_file=f.id)
        self.srv.advance(job.id, ticks=20)
        ft = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
        reg = Registry()
        rec, _ = reg.claim(backend="openai", spec={"name": "t", "base_model": self.base_model,
                                                   "data": {"train": "/nonexistent.jsonl"}},
                           spec_hash="h", data_hash=None, name="t", base_model=self.base_model,
                           location=Location(backend="openai", endpoint=self.srv.base_url),
                           new=True)
        reg.mark_submitted(rec.id, RemoteRef(backend="openai", remote_id=job.id))
        reg.set_model(rec.id, ModelHandle(backend="openai", model_id=ft,
                                          base_model=self.base_model))
        return reg.get_job(rec.id), ft


@pytest.fixture
def world(tmp_path, monkeypatch):
    from unitune.testing.openai_server import FakeOpenAIServer

    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"问题{i}"}, {"role": "assistant", "content": r}]},
        ensure_ascii=False) + "\n" for i, r in enumerate(REFS)), encoding="utf-8")
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-eval")
        h = _TunedJobs(srv)
        rec, ft = h.tuned_record()
        answers = {f"问题{i}": r for i, r in enumerate(REFS)}

        def respond(model, messages, body):
            q = messages[-1]["content"]
            if model == "gpt-4.1-2025-04-14":  # the judge: prefers the answer equal to the reference
                text = q.split("## Answer A\n")[1].split("\n")[0]
                ref = q.split("## Reference answer\n")[1].split("\n")[0]
                return "VERDICT: A" if text == ref else "VERDICT: B"
            return answers.get(q, "?") if model.startswith("ft:") else "我不知道。"

        srv.chat.responder = respond
        yield srv, rec, ft, holdout, h


def test_eval_json_shape_and_saved_diffs(world):
    srv, rec, ft, holdout, _ = world
    out = CliRunner().invoke(app, ["eval", rec.id, "--holdout", str(holdout), "--json", "--yes",
                                   "--judge", "openai:gpt-4.1-2025-04-14", "--plot"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert r["examples"] == len(REFS) and r["failed"] == 0
    assert set(r["metrics"]) == {"bleu", "chrf", "rouge_l", "exact_match", "token_f1"}
    for m in r["metrics"].values():
        assert m["delta"] == pytest.approx(m["tuned"] - m["base"])
        assert m["ci95"][0] <= m["delta"] <= m["ci95"][1]
    assert r["metrics"]["exact_match"] == {"base": 0.0, "tuned": 1.0, "delta": 1.0,
                                           "ci95": [1.0, 1.0], "within_noise": False}
    assert r["metrics"]["chrf"]["tuned"] == pytest.approx(100.0)
    assert r["win_rate"] == 1.0 and r["wins"] == {"tuned": 6, "base": 0, "tie": 0}
    assert r["judge"]["tuned"] == 6 and r["judge"]["win_rate"] == 1.0
    sent = {b["model"] for b in srv.chat.requests}
    assert {ft, rec.base_model, "gpt-4.1-2025-04-14"} <= sent
    assert all(b["temperature"] == 0.0 and b["seed"] == 0 for b in srv.chat.requests)
    rows = [json.loads(x) for x in open(r["files"]["examples"], encoding="utf-8")]
    assert [x["tuned"] for x in rows] == REFS and rows[0]["base"] == "我不知道。"
    assert rows[0]["chrf"]["delta"] > 0
    table = open(r["files"]["table"], encoding="utf-8").read()
    assert "| chrf |" in table and "per example" in table
    assert len(open(r["files"]["judge"], encoding="utf-8").readlines()) == 6
    assert r["files"]["examples"].startswith(str(__import__("unitune.paths").paths.unitune_home()))
    import os

    assert os.path.getsize(r["files"]["plot"]) > 1000


def test_cost_preflight_refuses_priced_calls_until_confirmed(world, monkeypatch):
    srv, rec, ft, holdout, _ = world
    monkeypatch.setenv("UNITUNE_CONFIRM_USD", "0")
    before = len(srv.chat.requests)
    out = CliRunner().invoke(app, ["eval", rec.id, "--holdout", str(holdout), "--json"])
    assert out.exit_code == 1 and "not confirmed" in out.output and "--yes" in out.output
    assert len(srv.chat.requests) == before  # nothing was called
    from unitune.inference.cost import estimate
    from unitune.inference.registry import caller_for_job
    from unitune.inference.types import GenParams

    est = estimate(caller_for_job(rec.id), [[{"role": "user", "content": "问题"}]] * 10,
                   GenParams(max_tokens=100))
    # tuned gpt-4.1-mini: $0.80 in / $3.20 out per 1M tokens (catalog); output bounds the cost
    assert est.usd == pytest.approx(est.input_tokens * 0.80e-6 + 1000 * 3.20e-6)
    assert est.usd_expected < est.usd


def test_several_jobs_compare_on_the_same_prompts(world):
    srv, rec, ft, holdout, h = world
    rec2, _ = h.tuned_record()
    out = CliRunner().invoke(app, ["eval", rec.id, rec2.id, "--holdout", str(holdout), "--json",
                                   "--yes"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert [j["job"] for j in r["jobs"]] == [rec.id, rec2.id]
    for j in r["jobs"]:
        assert j["metrics"]["chrf"]["value"] == pytest.approx(100.0)
        assert j["inference_usd_per_1k_requests"] > 0 and j["median_latency_s"] > 0
        assert j["training_cost_usd"] is None
    second = r["jobs"][1]["metrics"]["chrf"]["vs_best"]
    assert second["delta"] == 0 and second["within_noise"]
    out = CliRunner().invoke(app, ["eval", rec.id, rec2.id, "--holdout", str(holdout), "--yes"])
    assert out.exit_code == 0 and "within noise of best" in out.output
    assert "inference / 1k requests" in out.output


def test_job_without_validation_data_says_to_pass_a_holdout(world):
    _srv, rec, _ft, _holdout, _ = world
    out = CliRunner().invoke(app, ["eval", rec.id, "--json"])
    assert out.exit_code == 1 and "--holdout FILE" in out.output and "Traceback" not in out.output
