"""What the user's goal says, by keyword (English and Chinese): knowledge that changes (→
retrieval), format / style / behaviour (→ tuning), a quick prototype or general Q&A (→
prompting). Deterministic: the same goal always gives the same signals, each with the words
that triggered it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# signal → (English phrases matched on word boundaries, Chinese phrases matched as substrings)
KEYWORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "knowledge": (
        ("latest", "up to date", "up-to-date", "real-time", "realtime", "real time", "news",
         "prices", "price list", "pricing", "inventory", "stock levels", "documentation",
         "docs", "knowledge base", "manual", "manuals", "policy", "policies", "catalog",
         "catalogue", "faq", "facts", "our documents", "internal documents", "changes often",
         "updated", "changing", "look up", "search", "wiki", "database"),
        ("最新", "实时", "知识库", "文档", "资料", "手册", "政策", "价格", "库存", "新闻", "更新",
         "产品信息", "查询", "检索", "规章", "制度"),
    ),
    "behaviour": (
        ("format", "formatting", "style", "tone", "voice", "brand", "json", "schema",
         "structured", "consistent", "consistency", "persona", "terminology", "jargon",
         "classify", "classification", "categorize", "extract", "extraction", "label",
         "labels", "always respond", "always answer", "follow instructions", "shorter prompts",
         "fewer tokens", "latency", "template", "register", "politely", "empathetic"),
        ("格式", "风格", "语气", "语调", "品牌", "一致", "术语", "分类", "抽取", "提取", "结构化",
         "指令", "人设", "口吻", "模板", "话术", "礼貌", "同理心"),
    ),
    "prototype": (
        ("prototype", "proof of concept", "poc", "quick test", "quickly", "demo", "experiment",
         "hackathon", "mvp"),
        ("原型", "快速验证", "试一试", "演示", "尝试"),
    ),
    "general": (
        ("general questions", "general-purpose", "general purpose", "chit-chat", "chitchat",
         "small talk", "anything"),
        ("通用问答", "闲聊", "通用"),
    ),
}


@dataclass
class GoalSignals:
    goal: str
    hits: dict[str, list[str]] = field(default_factory=dict)  # signal → matched phrases

    def has(self, signal: str) -> bool:
        return bool(self.hits.get(signal))

    def to_dict(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.hits.items() if v}


def read_goal(goal: str) -> GoalSignals:
    text = (goal or "").lower()
    out = GoalSignals(goal=goal or "")
    for signal, (english, chinese) in KEYWORDS.items():
        found = [w for w in english if re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", text)]
        found += [w for w in chinese if w in text]
        out.hits[signal] = found
    # "format" inside "information" is excluded by the word boundary; "通用" inside "通用问答" is
    # counted once
    if "通用问答" in out.hits["general"] and "通用" in out.hits["general"]:
        out.hits["general"].remove("通用")
    return out
