"""The `score` metrics are exactly the definitions of issue 13, checked against direct sacrebleu
and rouge-score calls on English, Chinese and mixed pairs."""
from __future__ import annotations

import json
import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from unitune.eval import metrics as M

EN = (["the cat sat on the mat", "a quick brown fox", "hello world"],
      ["the cat is on the mat", "the quick brown fox jumps", "hello, world!"])
ZH = (["退款会原路退回，一般三天到账。", "请在订单详情页申请退货", "您好"],
      ["退款审核通过后会原路退回，一般1到3个工作日到账。", "签收后7天内可在订单详情页申请退货。", "您好！"])
MIXED = (["请在 App 里点 Settings 修改密码", "Order YX123 已发货"],
         ["请在App的Settings页修改密码。", "订单YX123已经发货了"])


class Direct:
    """TOK written out independently of the module: CJK characters alone, other letter/digit
    runs lowercased."""

    def tokenize(self, text):
        import re

        cjk = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u309f\u30a0-\u30ff\uac00-\ud7af"
        return [t.lower() for t in re.findall(f"[{cjk}]|[^\\W_{cjk}]+", text)]


@pytest.mark.parametrize("pairs", [EN, ZH, MIXED], ids=["english", "chinese", "mixed"])
def test_corpus_metrics_equal_direct_library_calls(pairs):
    preds, refs = pairs
    got = M.score(preds, refs)
    t = "zh" if any(any("\u4e00" <= ch <= "\u9fff" for ch in r) for r in refs) else "13a"
    assert got.metrics["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(preds, [refs], tokenize=t).score, abs=1e-9)
    assert got.metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score,
                                                abs=1e-9)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Direct())
    expect = sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)) / len(preds)
    assert got.metrics["rouge_l"] == pytest.approx(expect, abs=1e-12)
    assert f"tok:{t}" in got.bleu_signature and "nrefs:1" in got.bleu_signature


def test_default_rouge_tokenizer_scores_chinese_zero_but_tok_does_not():
    pred, ref = ZH[0][0], ZH[1][0]
    plain = rouge_scorer.RougeScorer(["rougeL"]).score(ref, pred)["rougeL"].fmeasure
    assert plain == 0.0  # the silent trap
    assert M.rouge_l(pred, [ref]) > 0.3


def test_tok_splits_cjk_characters_and_lowercases_other_runs():
    assert M.tok("Order YX123 已发货, OK!") == ["order", "yx123", "已", "发", "货", "ok"]
    assert M.tok("カタカナとひらがな 한국어") == list("カタカナとひらがな") + list("한국어")
    assert M.tok("Élève_déjà 42") == ["élève", "déjà", "42"]
    assert M.tok("") == []


def test_exact_match_normalizes_nfkc_case_punctuation_and_space():
    assert M.exact_match("Hello,  World!", ["hello world"]) == 1.0
    assert M.exact_match("ＡＢＣ１２３", ["abc123"]) == 1.0  # NFKC folds full-width forms
    assert M.exact_match("您好！", ["您好"]) == 1.0
    assert M.exact_match("您好", ["你好"]) == 0.0
    assert M.exact_match("no", ["yes", "No."]) == 1.0


def test_token_f1_is_squad_style_max_over_references():
    # pred tokens: 退 款 已 到 账 ; ref: 退 款 三 天 到 账  → same 4, P=4/5, R=4/6
    assert M.token_f1("退款已到账", ["退款三天到账"]) == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert M.token_f1("the cat", ["a dog", "the cat"]) == 1.0
    assert M.token_f1("", [""]) == 1.0 and M.token_f1("x", [""]) == 0.0


def test_multiple_references_pad_with_the_first_and_change_nothing():
    preds = ["the cat sat on the mat", "hello there"]
    refs = [["the cat is on the mat", "a cat sat on a mat"], ["hello there"]]
    got = M.score(preds, refs)
    streams = [["the cat is on the mat", "hello there"], ["a cat sat on a mat", "hello there"]]
    assert got.metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, streams).score)
    assert got.metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, streams).score)
    single = M.score(preds[1:], [refs[1]])
    assert single.metrics["exact_match"] == 1.0


def test_paired_stats_rebuild_the_corpus_score():
    preds, refs = ZH
    for name in ("bleu", "chrf"):
        rows, compute = M.paired_stats(name, preds, refs)
        assert compute(rows) == pytest.approx(M.score(preds, refs).metrics[name])


def test_score_cli_json_shape_and_bad_lines(tmp_path):
    from typer.testing import CliRunner

    from unitune.cli.app import app

    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"id": i, "prediction": p, "reference": r}, ensure_ascii=False)
                           for i, (p, r) in enumerate(zip(*ZH))) + "\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["score", str(f), "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert set(got) == {"examples", "metrics", "bleu_signature"} and got["examples"] == 3
    assert set(got["metrics"]) == {"bleu", "chrf", "rouge_l", "exact_match", "token_f1"}
    assert 0 <= got["metrics"]["bleu"] <= 100 and 0 <= got["metrics"]["token_f1"] <= 1
    assert not math.isnan(got["metrics"]["chrf"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prediction": "a", "reference": "a"}\n{"prediction": 3, "reference": "x"}\n'
                   '{"prediction": "a"\n{"prediction": "a", "reference": []}\n', encoding="utf-8")
    out = CliRunner().invoke(app, ["score", str(bad)])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert f"{bad}:2: field prediction" in out.output and f"{bad}:3: not valid JSON" in out.output
    assert f"{bad}:4: field reference" in out.output
