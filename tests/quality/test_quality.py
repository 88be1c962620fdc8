"""Data quality beyond format (unitune.data.quality): near-duplicates and train/validation
leakage by MinHash LSH over character shingles — in English and in Chinese —, inconsistent
answers to near-identical prompts, diversity and the guide's volume rule of thumb."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.data.quality import (check_quality, diversity, distinct_n, quality_problems,
                                  shingles, tokens, volume_tier)

EN_TOPICS = ["reset my password", "track a parcel", "cancel an order", "change my address",
             "update a payment card", "download an invoice", "return a damaged item",
             "apply a coupon", "close my account", "contact a human agent", "change delivery day",
             "report a missing item", "split a payment", "gift wrap an order",
             "pause a subscription", "merge two accounts", "export my data", "enable 2FA",
             "unsubscribe from emails", "find my order number"]
ZH_TOPICS = ["修改收货地址", "申请退款", "查询物流", "开具发票", "取消订单", "更换手机号", "找回密码",
             "使用优惠券", "申请换货", "注销账户", "联系人工客服", "修改支付方式", "延迟发货",
             "商品缺件", "会员续费", "积分兑换", "预约安装", "价格保护", "催促发货", "评价晒单"]


def chat(user: str, reply: str) -> dict:
    return {"messages": [{"role": "system", "content": "You are the shop's support assistant."},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}]}


def en_rows() -> list[dict]:
    return [chat(f"How do I {t}?", f"To {t}, open Settings, choose '{t.split()[0]}', and follow "
                 f"the {len(t)} steps shown; it takes about {i + 2} minutes.")
            for i, t in enumerate(EN_TOPICS)]


def zh_rows() -> list[dict]:
    return [chat(f"请问怎么{t}？", f"您好，{t}请进入“我的-设置”，按页面提示操作，"
                 f"大约需要{i + 2}分钟完成。如有问题可随时联系我们。") for i, t in enumerate(ZH_TOPICS)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def codes(q) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in quality_problems(q):
        out[p.code] = out.get(p.code, 0) + 1
    return out


def test_clean_data_has_no_findings(tmp_path):
    for rows in (en_rows(), zh_rows()):
        q = check_quality(write(tmp_path / "d.jsonl", rows))
        assert q.near_duplicate_count == 0 and q.inconsistent_count == 0, q.to_dict()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_near_duplicates_with_line_pairs(tmp_path, lang):
    rows = en_rows() if lang == "en" else zh_rows()
    if lang == "en":
        twin = chat("How do I reset my password please?", rows[0]["messages"][2]["content"])
    else:
        twin = chat("你好，请问怎么修改收货地址？", rows[0]["messages"][2]["content"])
    rows.append(twin)  # line 21 rewords line 1
    q = check_quality(write(tmp_path / f"{lang}.jsonl", rows))
    assert q.near_duplicate_count == 1
    pair = q.near_duplicates[0]
    assert (pair.line, pair.other) == (21, 1) and pair.similarity >= 0.8
    p = [x for x in quality_problems(q, "f") if x.code == "similar_examples"][0]
    assert p.severity == "warning" and p.line == 21 and "line 1" in p.message


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_train_validation_leakage(tmp_path, lang):
    rows = en_rows() if lang == "en" else zh_rows()
    train = write(tmp_path / "train.jsonl", rows[:15])
    leaked = dict(rows[3])  # a training example, re-punctuated, in the validation file
    msgs = [dict(m) for m in leaked["messages"]]
    msgs[2]["content"] = msgs[2]["content"].replace("," if lang == "en" else "，", ";")
    valid = write(tmp_path / "valid.jsonl", rows[15:] + [{"messages": msgs}])
    q = check_quality(train, validation=valid)
    assert q.validation_examples == 6 and q.leakage_count == 1
    p = q.leakage[0]
    assert (p.line, p.other) == (6, 4) and p.file == str(valid)
    assert codes(q)["validation_leakage"] == 1


def test_inconsistent_answers_to_the_same_question(tmp_path):
    rows = zh_rows()
    rows.append(chat("请问怎么修改收货地址？", "抱歉，地址一经提交无法修改，请取消订单后重新下单。"))
    rows.append(chat("How much is the yearly membership?", "The membership costs 99 dollars a "
                     "year and includes free shipping."))
    rows.append(chat("How much is the yearly membership?", "The membership costs 88 dollars a "
                     "year and includes free shipping."))
    q = check_quality(write(tmp_path / "c.jsonl", rows))
    got = {(p.line, p.other, p.reason) for p in q.inconsistent}
    assert (21, 1, "different") in got and (23, 22, "numbers") in got
    assert q.inconsistent_count == 2


def test_different_numbers_in_prompts_are_different_questions(tmp_path):
    rows = [chat(f"Where is order {1000 + i}?", f"Order {1000 + i} ships on day {i + 1}.")
            for i in range(5)]
    q = check_quality(write(tmp_path / "o.jsonl", rows))
    assert q.inconsistent_count == 0


def test_diversity_and_openings():
    same = ["Thank you for contacting us. " + "We will reply soon." for _ in range(30)]
    d = diversity(same)
    assert d["distinct_2"] < 0.1 and d["top_openings"][0]["share"] == 1.0
    varied = [f"Answer {i}: " + " ".join(f"w{i}x{j}" for j in range(8)) for i in range(30)]
    assert diversity(varied)["distinct_2"] > 0.9
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)
    assert tokens("你好world 42") == ["你", "好", "world", "42"]
    assert all(len(s) == 3 for s in shingles("这是一个中文句子，用来测试")), "CJK: 3-grams"
    assert all(len(s) == 5 for s in shingles("an English sentence for testing"))


def test_low_diversity_and_repeated_openings_warn(tmp_path):
    rows = [chat(f"Question {i}?", "Thank you for your message. We will get back to you.")
            for i in range(25)]
    found = codes(check_quality(write(tmp_path / "r.jsonl", rows)))
    assert found.get("low_diversity") == 1 and found.get("repeated_openings") == 1


def test_volume_against_the_guides_table(tmp_path):
    q = check_quality(write(tmp_path / "v.jsonl", en_rows()), task="style")
    assert q.volume == {"task": "style", "tier": "style", "recommended": [100, 500],
                        "guide": volume_tier("style").guide, "examples": 20, "enough": False}
    assert codes(q)["low_volume"] == 1
    assert volume_tier("classification").low == 50 and volume_tier("code").low == 2000
    with pytest.raises(ValueError, match="unknown task"):
        volume_tier("astrology")


def test_large_files_are_skipped_unless_asked(tmp_path):
    path = write(tmp_path / "big.jsonl", en_rows())
    q = check_quality(path, limit=10)
    assert q.skipped and q.near_duplicate_count == 0
    assert codes(q)["quality_skipped"] == 1
    assert check_quality(path, limit=None).skipped is None


def test_bundled_example_data_contradicts_itself():
    """The quickstart data has the same membership question answered with different prices."""
    root = Path(__file__).resolve().parents[2]
    q = check_quality(root / "examples/data/support_zh.jsonl")
    assert any(p.reason == "numbers" for p in q.inconsistent)


def test_without_datasketch_diversity_and_volume_still_run(tmp_path, monkeypatch):
    """datasketch is the `quality` extra: without it validate/stats say so instead of failing."""
    import builtins

    real = builtins.__import__

    def no_datasketch(name, *args, **kw):
        if name == "datasketch" or name.startswith("datasketch."):
            raise ImportError("No module named 'datasketch'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_datasketch)
    q = check_quality(write(tmp_path / "d.jsonl", en_rows()), task="style")
    assert q.examples == 20 and q.diversity["distinct_2"] > 0 and q.volume["enough"] is False
    skipped = [p for p in quality_problems(q) if p.code == "quality_skipped"]
    assert skipped and "unitune[quality]" in skipped[0].hint
