"""Regenerate the bundled example datasets (deterministic: same script, same bytes).

    python examples/data/make_examples.py            # writes next to this file
    python examples/data/make_examples.py --check    # exit 1 if the committed files differ

- support_zh.jsonl        Chinese customer-service chat (ChatML `messages`), 150 examples: a
                          system prompt, then strictly alternating user/assistant turns (some
                          multi-turn). Valid for every vendor: no Nova reserved strings, >= 100
                          examples, no duplicates.
- instructions_alpaca.jsonl  Alpaca instruction data in English and Chinese (>= 100), with answers
                          computed or looked up, never made up.
- preferences_dpo.jsonl   TRL preference pairs (prompt/chosen/rejected), English and Chinese.
- sdk/demo/support_zh_short.jsonl  The demo's narrower task (shipped inside the package for
                          `unitune demo`): the same shop, one short fixed reply per intent.
- broken.jsonl            Typical mistakes, for the validator demo (bad JSON, missing assistant,
                          unknown role, weight on a user turn, bad UTF-8 bytes, ...).

Only the standard library is used, so the script runs anywhere.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_DIR = HERE.parent.parent / "sdk" / "demo"  # package data of `unitune demo`
SHOP = "优选商城"

SYSTEMS = [
    f"你是{SHOP}的在线客服助手。请用简洁、礼貌的中文回答顾客关于订单、退款、物流、账户和发票的问题；"
    "需要人工处理时，说明下一步怎么做。",
    f"你是{SHOP}客服“小优”。回答要准确、友好，不编造订单信息；涉及退款和发票时说明办理时限。",
    f"你是{SHOP}的售后客服，负责订单查询、退换货、发票和账户问题。语气耐心，答复控制在三句话以内。",
]

PRODUCTS = ["无线蓝牙耳机", "电热水壶", "羽绒服", "运动跑鞋", "空气炸锅", "机械键盘", "保温杯",
            "儿童绘本套装", "电动牙刷", "瑜伽垫", "咖啡豆", "床上四件套", "扫地机器人", "移动电源",
            "护眼台灯", "登山背包"]
CITIES = ["上海", "杭州", "广州", "成都", "武汉", "西安", "南京", "天津", "郑州", "长沙", "重庆",
          "苏州", "青岛", "沈阳", "昆明", "厦门"]
COURIERS = ["顺丰速运", "中通快递", "圆通速递", "京东物流", "韵达快递", "EMS"]
PAYMENTS = ["微信支付", "支付宝", "银行卡", "信用卡"]
NAMES = ["张女士", "李先生", "王女士", "刘先生", "陈女士", "杨先生", "赵女士", "黄先生"]


def order_no(rng: random.Random) -> str:
    return f"YX2026{rng.randint(1, 11):02d}{rng.randint(1, 28):02d}{rng.randint(10000, 99999)}"


def money(rng: random.Random, lo: int = 29, hi: int = 1999) -> str:
    return f"{rng.randint(lo, hi)}.{rng.choice(['00', '90', '50', '99'])}"


# Each intent: (user openers, assistant reply, optional follow-ups [(user, assistant)]).
def intents(rng: random.Random) -> list:
    o, p, c, k = order_no(rng), rng.choice(PRODUCTS), rng.choice(CITIES), rng.choice(COURIERS)
    d = rng.randint(2, 9)
    amount, pay, name = money(rng), rng.choice(PAYMENTS), rng.choice(NAMES)
    eta = rng.choice(["明天", "后天", "两天内", "本周五前"])
    return [
        ("shipping",
         [f"我的订单{o}怎么还没到？已经{d}天了。", f"请帮我查一下订单{o}的物流，{p}到哪了？",
          f"{p}下单{d}天了还没收到，订单号是{o}。"],
         f"您好，已为您查询到订单{o}：{p}由{k}承运，目前在{c}转运中心，预计{eta}送达。"
         "如超过预计时间仍未收到，请再联系我们，我们会帮您催件。",
         [("能不能让快递直接送到家门口？",
           f"可以的。我们已给{k}留言要求送货上门，您也可以在物流详情页点“联系快递员”直接沟通。")]),
        ("refund_progress",
         [f"订单{o}的退款什么时候到账？", f"我申请退款好几天了，订单{o}，钱还没退回来。"],
         f"您好，订单{o}的退款{amount}元已于{rng.randint(1, 3)}天前审核通过，将原路退回您的{pay}账户，"
         f"通常1到{rng.choice([3, 5, 7])}个工作日到账，请留意账户通知。",
         [("如果超过时间还没到账怎么办？",
           "如超时未到账，请提供支付流水截图，我们会联系支付渠道核查，并在24小时内给您回复。")]),
        ("return",
         [f"买的{p}不想要了，可以退货吗？订单{o}。", f"订单{o}里的{p}尺寸不合适，想退货。"],
         f"可以的。{p}签收后7天内、商品完好且不影响二次销售即可无理由退货。请在“我的订单-{o}-申请售后”"
         f"提交申请，审核通过后按页面提示寄回，我们收到退货后{rng.randint(1, 3)}个工作日内退款。",
         [("退货运费谁出？",
           "无理由退货的寄回运费由您承担；如果是商品质量问题，运费由我们承担，寄回后凭单号申请运费补偿。")]),
        ("defect",
         [f"收到的{p}有质量问题，用了一次就坏了。订单{o}。", f"{p}有破损，订单号{o}，怎么处理？"],
         f"非常抱歉给您带来不便。请在“我的订单-{o}-申请售后”选择“质量问题”，上传商品问题照片，"
         "我们会在24小时内审核，您可以选择换新或全额退款，来回运费由我们承担。",
         [("我想换新的，要多久能收到？",
           f"换货审核通过后，我们收到您寄回的商品当天安排发出新品，{c}地区一般2到3天送达。")]),
        ("address",
         [f"订单{o}的收货地址写错了，能改吗？", f"我想把订单{o}改成寄到{c}的新地址。"],
         f"订单{o}目前还未出库，可以修改。请在订单详情页点击“修改地址”填写新地址；"
         "如果页面提示无法修改，说明商品已在打包，请回复新地址，我们帮您联系仓库拦截。",
         None),
        ("invoice",
         [f"订单{o}能开增值税普通发票吗？", f"我需要订单{o}的电子发票，抬头是公司。"],
         f"可以的。请在“我的订单-{o}-申请开票”选择发票类型并填写抬头和税号，电子发票会在"
         f"{rng.randint(1, 3)}个工作日内发送到您的邮箱，也可在订单详情页下载。",
         [("发票抬头填错了还能重开吗？",
           "可以。在开票记录里点“申请换开”，填写正确的抬头和税号，原发票作废后会重新开具。")]),
        ("account_login",
         ["我的账号登录不上去，一直提示密码错误。", "忘记登录密码了怎么办？"],
         "请在登录页点击“忘记密码”，通过绑定的手机号接收验证码后设置新密码。如果连续输错5次，"
         "账号会锁定30分钟，请稍后再试。",
         [("绑定的手机号已经停用了，收不到验证码。",
           "请在登录页选择“手机号已停用”，上传身份证照片进行人工验证，审核通过后即可换绑新手机号，"
           "一般1个工作日内完成。")]),
        ("account_phone",
         ["怎么修改账号绑定的手机号？", "我换手机号了，账号要怎么换绑？"],
         "请打开“我的-设置-账户与安全-手机号”，先验证原手机号，再输入新手机号和验证码即可完成换绑。",
         None),
        ("cancel",
         [f"订单{o}还能取消吗？我不想要了。", f"刚下的订单{o}拍错了，帮我取消一下。"],
         f"订单{o}尚未发货，您可以在订单详情页直接点击“取消订单”，款项{amount}元会原路退回您的"
         f"{pay}账户，一般1到3个工作日到账。",
         None),
        ("coupon",
         ["我的优惠券为什么用不了？", f"买{p}的时候满减券不能用，是怎么回事？"],
         "优惠券用不了通常有三个原因：订单金额未达到使用门槛、商品不在券的适用范围内、或券已过期。"
         "您可以在“我的-优惠券”点开券查看使用条件。",
         [("那过期的券还能恢复吗？",
           "很抱歉，过期的优惠券无法恢复。您可以关注店铺活动页，近期会有新的领券活动。")]),
        ("payment",
         [f"付款时一直提示支付失败，用的是{pay}。", f"下单{p}付不了款，{pay}显示交易失败。"],
         f"支付失败多数是网络波动或{pay}单笔限额导致的。请检查网络后重试，或更换其他支付方式；"
         "如果已经扣款但订单仍显示未支付，款项会在24小时内自动退回。",
         None),
        ("delivery_time",
         [f"现在下单{p}，什么时候能发货？", f"寄到{c}的{p}一般几天能到？"],
         f"现货商品在下单后48小时内发货，寄往{c}一般{rng.randint(2, 4)}天送达，偏远地区会多1到2天。"
         "发货后您可以在订单详情页查看物流。",
         None),
        ("membership",
         ["会员有什么权益？", "怎么开通会员，多少钱一年？"],
         f"{SHOP}会员每年{rng.choice([88, 99, 128])}元，权益包括每月4张免运费券、会员专享价和退货优先处理。"
         "在“我的-会员中心”即可开通，支持随时取消自动续费。",
         None),
        ("price_protect",
         [f"我昨天买的{p}今天降价了，能退差价吗？订单{o}。"],
         f"可以申请价格保护。订单{o}在签收后7天内降价的，请在订单详情页点击“价格保护”，"
         "差价会以原支付方式退回，一般1到3个工作日到账。",
         None),
    ], name


def make_support(n: int = 150, seed: int = 20261128) -> list[dict]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        table, name = intents(rng)
        _, openers, reply, follow = rng.choice(table)
        user = rng.choice(openers)
        if rng.random() < 0.3:
            user = rng.choice(["你好，", "在吗？", "您好，"]) + user
        messages = [{"role": "system", "content": rng.choice(SYSTEMS)},
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": reply}]
        if follow and rng.random() < 0.45:
            for q, a in follow:
                messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if rng.random() < 0.12:
            messages += [{"role": "user", "content": rng.choice(["好的，谢谢！", "明白了，谢谢。",
                                                                  "知道了，辛苦了。"])},
                         {"role": "assistant",
                          "content": rng.choice(["不客气，祝您购物愉快！",
                                                 f"不客气{name}，还有其他问题随时联系我们。",
                                                 "很高兴能帮到您，祝您生活愉快！"])}]
        key = json.dumps(messages[1:], ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        out.append({"messages": messages})
    return out


# ---------------------------------------------------------------------------------------------
# The demo's narrower task (`unitune demo`, shipped in the package as sdk/demo/): the same shop,
# one short fixed reply per intent, so a tiny model visibly learns it within a minute on a CPU.

DEMO_SYSTEM = f"你是{SHOP}客服，用一句话回答顾客。"
DEMO_INTENTS = [
    ("shipping", ["我的订单{o}怎么还没到？", "请帮我查一下{p}的物流。", "{p}下单{d}天了还没收到。",
                  "我的订单还没有发货，能帮我查一下吗？", "寄到{c}的包裹到哪了？"],
     "您好，包裹正在运输中，请在订单详情页查看物流进度。"),
    ("refund", ["订单{o}的退款什么时候到账？", "我申请退款好几天了，钱还没退回来。",
                "{p}的退款怎么还没到？"],
     "退款审核通过后会原路退回，一般1到3个工作日到账。"),
    ("return", ["买的{p}不想要了，可以退货吗？", "{p}尺寸不合适，想退货。", "订单{o}能退货吗？"],
     "签收后7天内，可在订单详情页申请无理由退货。"),
    ("defect", ["收到的{p}有质量问题，用了一次就坏了。", "{p}有破损，怎么处理？",
                "订单{o}里的{p}是坏的。"],
     "很抱歉！请上传问题照片申请售后，我们24小时内处理。"),
    ("address", ["订单{o}的收货地址写错了，能改吗？", "我想把地址改成{c}的新地址。"],
     "商品出库前可在订单详情页点击“修改地址”。"),
    ("invoice", ["订单{o}能开发票吗？", "我需要{p}的电子发票，抬头是公司。"],
     "请在订单详情页点击“申请开票”，电子发票会发到您的邮箱。"),
    ("password", ["我的账号登录不上去，一直提示密码错误。", "忘记登录密码了怎么办？"],
     "请在登录页点击“忘记密码”，用手机验证码重设。"),
    ("cancel", ["订单{o}还能取消吗？", "刚下的{p}拍错了，帮我取消一下。"],
     "未发货的订单可在订单详情页直接取消，款项原路退回。"),
    ("coupon", ["我的优惠券为什么用不了？", "买{p}的时候满减券不能用。"],
     "请在“我的-优惠券”查看使用门槛和适用范围。"),
    ("payment", ["付款时一直提示支付失败。", "下单{p}付不了款，{pay}显示交易失败。"],
     "请检查网络后重试或更换支付方式，重复扣款会自动退回。"),
    ("membership", ["会员有什么权益？", "怎么开通会员，多少钱一年？"],
     "会员每年99元，享免运费券和会员专享价。"),
    ("thanks", ["好的，谢谢！", "明白了，谢谢你。", "知道了，辛苦了。"],
     "不客气，祝您购物愉快！"),
]


def make_demo(n: int = 150, seed: int = 20261204) -> list[dict]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        _, openers, reply = rng.choice(DEMO_INTENTS)
        user = rng.choice(openers).format(o=order_no(rng), p=rng.choice(PRODUCTS),
                                          c=rng.choice(CITIES), d=rng.randint(2, 9),
                                          pay=rng.choice(PAYMENTS))
        if rng.random() < 0.3:
            user = rng.choice(["你好，", "在吗？", "您好，"]) + user
        if user in seen:
            continue
        seen.add(user)
        out.append({"messages": [{"role": "system", "content": DEMO_SYSTEM},
                                 {"role": "user", "content": user},
                                 {"role": "assistant", "content": reply}]})
    return out


# ---------------------------------------------------------------------------------------------
# Alpaca: tasks whose answers are computed or looked up, so every output is correct.

TRANSLATIONS = [
    ("Your order has been shipped.", "您的订单已发货。"),
    ("Please keep the original packaging when returning an item.", "退货时请保留商品原包装。"),
    ("The refund will arrive within three business days.", "退款将在三个工作日内到账。"),
    ("Our customer service is available from 9 a.m. to 9 p.m.", "我们的客服服务时间为早上9点到晚上9点。"),
    ("This coupon cannot be combined with other offers.", "此优惠券不能与其他优惠同时使用。"),
    ("Please check your spam folder for the invoice email.", "请在垃圾邮件文件夹中查找发票邮件。"),
    ("The item is out of stock.", "该商品已售罄。"),
    ("Thank you for your patience.", "感谢您的耐心等待。"),
    ("Free shipping on orders over 99 yuan.", "订单满99元包邮。"),
    ("Your account has been locked for security reasons.", "出于安全原因，您的账户已被锁定。"),
    ("Please enter the verification code sent to your phone.", "请输入发送到您手机的验证码。"),
    ("We apologize for the delay in delivery.", "对于配送延误，我们深表歉意。"),
]

REVIEWS = [
    ("The headphones sound great and the battery lasts all day.", "positive"),
    ("Arrived broken and customer service never replied.", "negative"),
    ("It works as described, nothing special.", "neutral"),
    ("Best kettle I have ever owned, boils water in two minutes.", "positive"),
    ("The size runs small and the return process was a hassle.", "negative"),
    ("物流很快，包装也很仔细，非常满意。", "positive"),
    ("用了三天就坏了，质量太差。", "negative"),
    ("东西还行，和图片差不多。", "neutral"),
    ("客服态度很好，很快就解决了我的问题。", "positive"),
    ("等了十天才到货，而且少发了一件。", "negative"),
]
SENTIMENT_ZH = {"positive": "正面", "negative": "负面", "neutral": "中性"}


def make_alpaca(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    for en, zh in TRANSLATIONS:
        rows.append({"instruction": "Translate the following sentence into Chinese.", "input": en,
                     "output": zh})
        rows.append({"instruction": "把下面的句子翻译成英文。", "input": zh, "output": en})
    for text, label in REVIEWS:
        rows.append({"instruction": "Classify the sentiment of this product review as positive, "
                                    "negative or neutral.", "input": text, "output": label})
        rows.append({"instruction": "判断这条商品评价的情感倾向（正面、负面或中性）。", "input": text,
                     "output": SENTIMENT_ZH[label]})
    for _ in range(14):  # extract the order number from a message
        o = order_no(rng)
        msg = rng.choice([f"你好，我的订单{o}一直没有发货，麻烦看一下。",
                          f"Hi, order {o} arrived damaged, what should I do?",
                          f"订单号是{o}，我想开发票。",
                          f"Can I still cancel order {o}? I placed it by mistake."])
        instr = rng.choice(["Extract the order number from the customer message.",
                            "从顾客消息中提取订单号。"])
        rows.append({"instruction": instr, "input": msg, "output": o})
    for _ in range(14):  # price arithmetic with a discount
        price = rng.randint(50, 900)
        pct = rng.choice([10, 15, 20, 25, 30])
        qty = rng.randint(1, 4)
        total = price * qty * (100 - pct) / 100
        if rng.random() < 0.5:
            rows.append({"instruction": "Compute the amount the customer pays.",
                         "input": f"{qty} item(s) at {price} yuan each, with a {pct}% discount.",
                         "output": f"{qty} × {price} = {price * qty} yuan; after the {pct}% discount "
                                   f"the customer pays {total:.2f} yuan."})
        else:
            rows.append({"instruction": "计算顾客实际需要支付的金额。",
                         "input": f"单价{price}元，购买{qty}件，打{(100 - pct) / 10:g}折。",
                         "output": f"{qty} × {price} = {price * qty}元，打{(100 - pct) / 10:g}折后"
                                   f"实付{total:.2f}元。"})
    for _ in range(12):  # weight unit conversion
        g = rng.randint(120, 9800)
        rows.append({"instruction": rng.choice(["Convert the parcel weight from grams to "
                                                "kilograms.", "把包裹重量从克换算成千克。"]),
                     "input": f"{g} g", "output": f"{g / 1000:g} kg"})
    for _ in range(12):  # date reformatting
        y, m, d = 2026, rng.randint(1, 12), rng.randint(1, 28)
        if rng.random() < 0.5:
            rows.append({"instruction": "Rewrite the date in ISO 8601 format (YYYY-MM-DD).",
                         "input": f"{m}/{d}/{y}", "output": f"{y}-{m:02d}-{d:02d}"})
        else:
            rows.append({"instruction": "把日期改写成“YYYY年M月D日”的中文格式。",
                         "input": f"{y}-{m:02d}-{d:02d}", "output": f"{y}年{m}月{d}日"})
    for _ in range(10):  # sort items by price
        items = rng.sample(PRODUCTS, 4)
        prices = rng.sample(range(20, 800), 4)
        pairs = list(zip(items, prices))
        listing = "，".join(f"{i}{p}元" for i, p in pairs)
        ordered = "、".join(i for i, _ in sorted(pairs, key=lambda t: t[1]))
        rows.append({"instruction": "按价格从低到高排列以下商品，只输出商品名。", "input": listing,
                     "output": ordered})
    system = "You are a concise assistant for an online shop's support team."
    for i, row in enumerate(rows):
        if i % 9 == 0:
            row["system"] = system
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------

BAD_REPLIES_ZH = ["不知道，你自己去订单页面看吧。", "这个不归我们管。", "等着就行了，别催。",
                  "系统就是这样，没办法。"]
BAD_REPLIES_EN = ["Not sure, check the website.", "That's not our problem.",
                  "Just wait, it will come eventually.", "We can't do anything about that."]
EN_PROMPTS = [
    ("Where is my order {o}? It has been {d} days.",
     "I'm sorry for the wait. Order {o} is with {k} and is expected to arrive within two days; "
     "if it hasn't arrived by then, reply here and we'll open a delivery investigation."),
    ("Can I return a {p} I bought last week?",
     "Yes. Items can be returned within 7 days of delivery if they are unused and in the original "
     "packaging. Start the return from My Orders → Request after-sales service."),
    ("I was charged twice for order {o}.",
     "I'm sorry about that. The duplicate charge is usually reversed automatically within 24 "
     "hours; if it is still there tomorrow, send us the two payment records and we will refund it."),
    ("How do I get an invoice for order {o}?",
     "Open order {o}, choose Request invoice, and enter the invoice title and tax ID. The e-invoice "
     "is emailed within 1-3 business days."),
]


def make_dpo(n: int = 48, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        if rng.random() < 0.6:
            table, _ = intents(rng)
            _, openers, reply, _ = rng.choice(table)
            prompt, chosen, rejected = rng.choice(openers), reply, rng.choice(BAD_REPLIES_ZH)
        else:
            tpl, good = rng.choice(EN_PROMPTS)
            slots = {"o": order_no(rng), "d": rng.randint(3, 9), "k": rng.choice(
                ["SF Express", "ZTO Express", "JD Logistics"]), "p": rng.choice(
                ["pair of running shoes", "kettle", "backpack", "desk lamp"])}
            prompt, chosen = tpl.format(**slots), good.format(**slots)
            rejected = rng.choice(BAD_REPLIES_EN)
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def make_broken() -> bytes:
    """A small file with one of each common mistake (and two good lines around them)."""
    sys_msg = {"role": "system", "content": SYSTEMS[0]}
    good = {"messages": [sys_msg, {"role": "user", "content": "订单YX2026031500123到哪了？"},
                         {"role": "assistant",
                          "content": "您的订单已由顺丰速运发出，预计明天送达。"}]}
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),
        # trailing comma: invalid JSON
        b'{"messages": [{"role": "user", "content": "How do I reset my password?"},]}',
        # no assistant turn
        json.dumps({"messages": [sys_msg, {"role": "user", "content": "我想退货。"}]},
                   ensure_ascii=False).encode(),
        # unknown role
        json.dumps({"messages": [{"role": "customer", "content": "Where is my refund?"},
                                 {"role": "assistant", "content": "It was sent on Monday."}]}
                   ).encode(),
        # weight on a user message
        json.dumps({"messages": [{"role": "user", "content": "Cancel my order.", "weight": 1},
                                 {"role": "assistant", "content": "Done, it is cancelled."}]}
                   ).encode(),
        # text saved as GBK instead of UTF-8
        '{"messages": [{"role": "user", "content": "发票"}, {"role": "assistant", "content": '
        '"已开具"}]}'.encode("gbk"),
        # content is a number, and an empty assistant reply
        b'{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": ""}]}',
        # not an object
        b'["user", "assistant"]',
        json.dumps(good, ensure_ascii=False).replace("YX2026031500123", "YX2026031500456")
        .encode(),
    ]
    return b"\n".join(lines) + b"\n"


RESERVED = ("System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:",
            "Thought:", "[EOS]", "<image>", "<video>")


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def build() -> dict[str, bytes]:
    support = make_support()
    for row in support:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[1::2] == ["user"] * len(roles[1::2])
        assert roles[2::2] == ["assistant"] * len(roles[2::2]) and roles[-1] == "assistant"
        for m in row["messages"]:
            assert not any(r in m["content"] for r in RESERVED), m["content"]
    alpaca = make_alpaca()
    assert len(alpaca) >= 100 and len({json.dumps(r) for r in alpaca}) == len(alpaca)
    dpo = make_dpo()
    demo = make_demo()
    for row in demo:
        for m in row["messages"]:
            assert not any(r in m["content"] for r in RESERVED), m["content"]
    return {"support_zh.jsonl": _jsonl(support), "instructions_alpaca.jsonl": _jsonl(alpaca),
            "preferences_dpo.jsonl": _jsonl(dpo), "broken.jsonl": make_broken(),
            str(DEMO_DIR / "support_zh_short.jsonl"): _jsonl(demo)}


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = [n for n, data in files.items() if (HERE / n).read_bytes() != data]
        for n in stale:
            print(f"{n} differs from what make_examples.py generates", file=sys.stderr)
        return 1 if stale else 0
    for name, data in files.items():
        (HERE / name).write_bytes(data)
        lines = data.count(b"\n")
        print(f"wrote {HERE / name} ({lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
