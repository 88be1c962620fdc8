"""`unitune eval` end to end on a local job: the worker trains the tiny model on the demo's data,
then base and tuned answer the job's own validation split (the same seeded split it trained
without), the report has the contract's shape plus assistant-masked perplexity, and the saved
per-example answers reproduce the reported scores."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

pytestmark = pytest.mark.slow


def test_eval_local_job_end_to_end(tiny_home):
    from unitune import demo
    from unitune.client import Client
    from unitune.eval import metrics as M
    from unitune.spec import JobSpec

    spec = JobSpec.load(demo.SPEC)
    spec.hyperparameters.max_steps = 12
    spec.hyperparameters.learning_rate = 2e-2
    job = Client().train(spec, "local", new=True)
    assert str(job.status) == "succeeded", job.error
    out = CliRunner().invoke(app, ["eval", job.id, "--json", "--limit", "6", "--max-tokens",
                                   "24"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert r["examples"] == 6 and r["backend"] == "local"
    assert "validation" in r["holdout"]
    assert set(r["metrics"]) == {"bleu", "chrf", "rouge_l", "exact_match", "token_f1",
                                 "perplexity"}
    for name, m in r["metrics"].items():
        assert set(m) >= {"base", "tuned", "delta", "ci95"}
        assert m["delta"] == pytest.approx(m["tuned"] - m["base"])
    ppl = r["metrics"]["perplexity"]
    assert ppl["lower_is_better"] and ppl["tuned"] < ppl["base"]  # 12 steps already help
    assert 0.0 <= r["win_rate"] <= 1.0
    rows = [json.loads(x) for x in open(r["files"]["examples"], encoding="utf-8")]
    again = M.score([x["tuned"] for x in rows], [x["reference"] for x in rows])
    assert again.metrics["chrf"] == pytest.approx(r["metrics"]["chrf"]["tuned"])
    base = M.score([x["base"] for x in rows], [x["reference"] for x in rows])
    assert base.metrics["bleu"] == pytest.approx(r["metrics"]["bleu"]["base"])
    from unitune.inference.registry import caller_for_job

    # the split is the one the job trained without: none of its prompts is in the train half
    from unitune.eval.holdout import job_validation_file, load

    rec = Client().registry.get_job(job.id)
    val = {json.dumps(it.prompt, ensure_ascii=False) for it in load(job_validation_file(rec))}
    assert len(val) == 15
    assert caller_for_job(job.id).label.endswith("tuned")
    out = CliRunner().invoke(app, ["diagnose", job.id])
    assert out.exit_code == 0 and "diagnosis of" in out.output
