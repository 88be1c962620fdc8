"""A scripted generator for the synth tests: the fake OpenAI chat route answers each call with
planted samples — valid and unique ones, refusals, near-duplicates of the seeds, wrong-language
outputs, exact repeats, placeholders, echoes — so the test knows exactly what must be kept and
why the rest is dropped. Usage is reported with the o200k tokenizer (what OpenAI bills with)."""
from __future__ import annotations

import json
import random
import re

SEEDS = [
    {"instruction": "客户问订单什么时候发货", "input": "订单号 A1001",
     "output": "您好，订单 A1001 已在今天下午打包，预计明天发出，发货后会短信通知您。"},
    {"instruction": "客户要求退货", "input": "买的鞋子尺码偏小",
     "output": "很抱歉给您带来不便。鞋子尺码不合适可以在七天内申请退货，请在我的订单中点击退货，"
               "我们会安排快递上门取件。"},
    {"instruction": "客户询问发票", "input": "",
     "output": "您可以在订单详情页点击申请发票，填写抬头和税号后，电子发票会在三个工作日内发送到"
               "您的邮箱。"},
    {"instruction": "客户说优惠券不能用", "input": "满两百减三十的券",
     "output": "这张券需要订单实付满两百元才能使用，运费不计入门槛。您可以再添加一件商品后重新结算。"},
]

SUBJECTS = ["仓库", "快递员", "售后专员", "财务同事", "技术团队", "门店店长", "客服主管", "质检部门",
            "物流中心", "会员中心", "安装师傅", "采购部门"]
ACTIONS = ["已经核实了", "正在加急处理", "会在两小时内回电确认", "已为您登记了", "将重新安排",
           "已同步给了", "会优先跟进", "已经补发了", "正在联系", "明天上午会处理"]
THINGS = ["您的换货申请", "这笔退款", "缺少的配件", "包裹的派送路线", "发票抬头的修改",
          "积分补偿", "上门安装时间", "破损商品的照片", "价格保护的差额", "会员续费问题",
          "地址变更", "预售订单的尾款"]
TAILS = ["请留意短信通知。", "如有变化我们会第一时间告诉您。", "给您添麻烦了，非常抱歉。",
         "您也可以在订单页查看进度。", "感谢您的耐心等待。", "需要帮助随时联系我们。"]

REFUSAL = "作为AI助手，我无法提供这类信息，请咨询相关部门。"
ENGLISH = "Your order has been shipped and should arrive within three business days."


def valid_sample(rng: random.Random, tag: int) -> dict[str, str]:
    parts = rng.sample(SUBJECTS, 2), rng.sample(ACTIONS, 2), rng.sample(THINGS, 2)
    out = (f"您好，{parts[0][0]}{parts[1][0]}{parts[2][0]}，{parts[0][1]}{parts[1][1]}"
           f"{parts[2][1]}，{rng.choice(TAILS)}")
    return {"instruction": f"客户咨询{parts[2][0]}的进展（工单 {tag}）", "input": "",
            "output": out}


def near_dup_of_seed(i: int) -> dict[str, str]:
    s = dict(SEEDS[i % len(SEEDS)])
    s["output"] = s["output"].replace("。", "！", 1)
    return s


def plan_call(call: int, k: int) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The samples planted in call `call` and the drop reasons they must get. Layout of one
    call (k = 10): 5 valid, 1 refusal, 1 near-duplicate of a seed, 1 wrong language, 1 exact
    repeat of this call's first valid sample, 1 placeholder."""
    rng = random.Random(call)
    valid = [valid_sample(rng, call * 100 + j) for j in range(5)]
    samples = valid + [
        {"instruction": "客户要求提供内部数据", "input": "", "output": REFUSAL},
        near_dup_of_seed(call),
        {"instruction": "客户问物流", "input": "", "output": ENGLISH},
        dict(valid[0]),
        {"instruction": "客户要求回电", "input": "", "output": f"您好，[Your Name]会在今天联系您，"
                                                             f"工单号 {call}。"},
    ]
    assert len(samples) == k
    return samples, {"refusal": 1, "near_duplicate": 1, "wrong_language": 1, "duplicate": 1,
                     "placeholder": 1}


def call_number(messages: list[dict]) -> int:
    text = messages[-1]["content"]
    m = re.search(r"(?:Batch|批次) #(\d+)", text)
    assert m, text[-200:]
    return int(m.group(1)) - 1


def make_responder(k: int = 10, *, delay_s: float = 0.0, special: dict | None = None):
    """A responder for `srv.chat.responder`. `special` maps a call index to a whole answer
    (e.g. an API refusal or unparsable text) instead of the planted samples."""
    from unitune.tokens import load_encoding

    enc = load_encoding("o200k_base")  # offline (unitune ships the verified ranks)

    def respond(model, messages, body):
        i = call_number(messages)
        prompt = sum(len(enc.encode(m["content"])) for m in messages) + 7
        if special and i in special:
            answer = dict(special[i])
        else:
            samples, _ = plan_call(i, k)
            text = json.dumps({"samples": samples}, ensure_ascii=False)
            answer = {"content": text}
        text = answer.get("content") or ""
        answer["usage"] = {"prompt_tokens": prompt, "completion_tokens": len(enc.encode(text))}
        if delay_s:
            answer["delay_s"] = delay_s
        return answer

    return respond


def write_seeds(path) -> None:
    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in SEEDS),
                    encoding="utf-8")
