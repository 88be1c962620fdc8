"""Bootstrap intervals, the judge's position-swap logic, and `diagnose` on scripted curves."""
from __future__ import annotations


import pytest

from unitune.eval import stats
from unitune.eval.diagnose import diagnose, lines
from unitune.eval.judge import combine, parse_verdict, render
from unitune.job import Metrics


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    base = [0.0, 0.1, 0.2, 0.1, 0.0, 0.3, 0.2, 0.1]
    tuned = [b + 0.5 for b in base]
    ci = stats.paired(stats.mean_of(base), stats.mean_of(tuned), len(base))
    assert ci == pytest.approx((0.5, 0.5))
    noisy = [0.9, 0.0, 0.8, 0.1, 0.7, 0.0, 0.9, 0.1]
    ci1 = stats.paired(stats.mean_of(base), stats.mean_of(noisy), len(base))
    ci2 = stats.paired(stats.mean_of(base), stats.mean_of(noisy), len(base))
    assert ci1 == ci2 and ci1[0] < ci1[1]
    assert stats.within_noise((-0.1, 0.2)) and not stats.within_noise((0.01, 0.2))
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5


# -- judge ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("first, second, outcome", [
    ("B", "A", "tuned"),   # tuned preferred in both orders
    ("A", "B", "base"),    # base preferred in both orders
    ("A", "A", "tie"),     # always the first position: position bias, not a preference
    ("B", "B", "tie"),     # always the second position
    ("TIE", "TIE", "tie"),
    ("B", "TIE", "tie"),   # one order undecided: a tie
    (None, "A", "tie"),    # an unreadable verdict is a tie
])
def test_position_swap_combines_two_verdicts(first, second, outcome):
    assert combine(first, second) == outcome


def test_verdict_parsing_takes_the_last_verdict_line():
    assert parse_verdict("A is longer. VERDICT: A\n...on reflection\nVERDICT: b") == "B"
    assert parse_verdict("**Verdict: TIE**") == "TIE"
    assert parse_verdict("VERDICT：A") == "A"  # full-width colon
    assert parse_verdict("I prefer B") is None


def test_judge_prompt_holds_rubric_reference_and_both_answers():
    msgs = render([{"role": "user", "content": "Q?"}], "REF", "ans-a", "ans-b")
    assert msgs[0]["role"] == "system" and "VERDICT: A" in msgs[0]["content"]
    body = msgs[1]["content"]
    assert body.index("REF") < body.index("## Answer A\nans-a") < body.index("## Answer B\nans-b")


def test_judge_end_to_end_through_the_openai_fake(monkeypatch):
    """The judge model answers by position (always "A"): position bias must come out as ties;
    a judge that truly prefers the tuned answer wins both orders."""
    from unitune.eval.holdout import Item
    from unitune.eval.judge import judge_all, judge_caller_for
    from unitune.testing.openai_server import FakeOpenAIServer

    items = [Item(id=str(i), prompt=[{"role": "user", "content": f"q{i}"}], reference="good")
             for i in range(3)]
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-judge")
        caller = judge_caller_for("openai:gpt-4.1-2025-04-14")
        srv.chat.responder = lambda model, msgs, body: "Looks fine.\nVERDICT: A"
        summary, rows = judge_all(caller, items, ["bad"] * 3, ["good"] * 3, concurrency=2)
        assert (summary["tie"], summary["tuned"], summary["base"]) == (3, 0, 0)

        def prefers_good(model, msgs, body):
            text = msgs[-1]["content"]
            a = text.split("## Answer A\n")[1].split("\n")[0]
            return "VERDICT: A" if a == "good" else "VERDICT: B"

        srv.chat.responder = prefers_good
        summary, rows = judge_all(caller, items, ["bad"] * 3, ["good"] * 3, concurrency=2)
        assert summary["tuned"] == 3 and summary["win_rate"] == 1.0
        assert rows[0]["order_1"]["verdict"] == "B" and rows[0]["order_2"]["verdict"] == "A"
        assert len(srv.chat.requests) == 12


# -- diagnose ------------------------------------------------------------------------------------
def curve(train, valid=None):
    valid = valid or {}
    return [Metrics(step=i + 1, train_loss=v, valid_loss=valid.get(i + 1))
            for i, v in enumerate(train)]


def codes(d):
    return [f.code for f in d.findings]


def test_healthy_curve():
    d = diagnose(curve([3.0 * 0.9 ** i for i in range(20)], {10: 1.2, 20: 0.4}))
    assert codes(d) == ["healthy"] and d.healthy


def test_overfitting_names_the_best_step():
    train = [3.0 * 0.85 ** i for i in range(30)]
    d = diagnose(curve(train, {5: 1.5, 10: 1.1, 15: 1.2, 20: 1.4, 25: 1.6, 30: 1.9}))
    f = next(f for f in d.findings if f.code == "overfitting")
    assert f.evidence["best_step"] == 10 and f.evidence["last_valid_loss"] == 1.9
    assert "fewer epochs" in f.remedy and "step 10" in f.remedy
    assert not d.healthy


def test_spikes_and_divergence_point_to_the_learning_rate():
    train = [2.0, 1.9, 1.8, 1.7, 1.65, 1.6, 5.0, 1.55, 1.5, 1.45, 1.4, 1.35]
    d = diagnose(curve(train, {12: 1.3}))
    f = next(f for f in d.findings if f.code == "spikes")
    assert f.evidence["spikes"][0]["step"] == 7 and "learning rate" in f.remedy
    d = diagnose(curve([2.0, 2.1, 2.5, 3.0, 4.0, 6.0, 9.0, 12.0], {8: 12.0}))
    assert "divergence" in codes(d)
    d = diagnose(curve([2.0, 1.5, float("nan"), 1.0]))
    f = next(f for f in d.findings if f.code == "divergence")
    assert f.evidence["step"] == 3


def test_flat_curve_and_missing_validation():
    d = diagnose(curve([6.24, 6.23, 6.24, 6.22, 6.23, 6.22, 6.21, 6.22]))
    assert codes(d)[:2] == ["no_validation", "flat"]
    flat = d.findings[1]
    assert "raise the learning rate" in flat.remedy


def test_eval_regression_is_forgetting():
    report = {"metrics": {
        "chrf": {"base": 40.0, "tuned": 30.0, "delta": -10.0, "ci95": [-14.0, -6.0]},
        "bleu": {"base": 10.0, "tuned": 11.0, "delta": 1.0, "ci95": [-2.0, 4.0]},
        "perplexity": {"base": 5.0, "tuned": 9.0, "delta": 4.0, "ci95": [2.0, 6.0],
                       "lower_is_better": True}}}
    d = diagnose(curve([3.0 * 0.9 ** i for i in range(10)], {10: 1.0}), report)
    regs = [f for f in d.findings if f.code == "regression"]
    assert sorted(f.evidence["metric"] for f in regs) == ["chrf", "perplexity"]
    assert "mix general-purpose examples" in regs[0].remedy
    assert any("regression" in line for line in lines(d))


def test_diagnose_reads_scripted_curves_from_the_fake_backend(tmp_path):
    """A fake backend whose vendor reports a scripted curve (train falls, validation turns up);
    `diagnose JOB` reads it from the registry like any backend's metrics."""
    import json as _json

    from typer.testing import CliRunner

    from unitune.cli.app import app
    from unitune.client import Client
    from unitune.eval.diagnose import diagnose_job
    from unitune.spec import JobSpec
    from unitune.testing.fake import FakeProvider

    train = [3.0 * 0.85 ** i for i in range(12)]
    valid = {4: 1.5, 8: 1.2, 12: 1.8}

    class ScriptedCurve(FakeProvider):
        def metrics(self, ref):
            return [Metrics(step=i + 1, train_loss=v, valid_loss=valid.get(i + 1))
                    for i, v in enumerate(train)]

    data = tmp_path / "d.jsonl"
    data.write_text("".join(_json.dumps({"messages": [
        {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}) + "\n"
        for i in range(12)))
    spec = JobSpec.from_dict({"name": "d", "backend": "fake", "base_model": "fake-model",
                              "data": {"train": str(data)}}, source_dir=str(tmp_path))
    from unitune.client import PollPolicy

    client = Client(backends={"fake": ScriptedCurve()}, poll=PollPolicy(initial=0.01,
                                                                         maximum=0.02))
    job = client.train(spec, "fake")
    d = diagnose_job(job.id, client)
    f = next(f for f in d.findings if f.code == "overfitting")
    assert f.evidence["best_step"] == 8 and f.evidence["last_valid_loss"] == 1.8
    out = CliRunner().invoke(app, ["diagnose", job.id, "--json"])
    assert out.exit_code == 0 and "Traceback" not in out.output
    assert "overfitting" in [x["code"] for x in _json.loads(out.stdout)["findings"]]
