"""The generation prompt: the guide's recipe (4.4 合成数据生成: "generate 10 high-quality samples;
task type; style; cover different scenarios, users in different moods; …") made systematic.

Every call gets `k` samples to write, a few seed examples (rotated through a seeded shuffle, so
every seed is shown about equally often) and one point on four diversity axes (scenario, persona,
difficulty, tone), rotated independently so calls differ. The prompt is in the target language.
`PROMPT_VERSION` and the template text are hashed into the provenance, so a change of template
is visible in every sidecar file.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from .seeds import Seeds

PROMPT_VERSION = "synth-v1"

AXES: dict[str, dict[str, list[str]]] = {
    "en": {
        "scenario": ["a typical, everyday case", "an unusual but realistic case",
                     "a case where something went wrong", "a request with several parts",
                     "an ambiguous request that needs a clarifying answer",
                     "a case with specific numbers, names or dates"],
        "persona": ["a first-time user", "an experienced expert", "a busy professional",
                    "a non-native speaker", "a student", "an older person"],
        "difficulty": ["easy", "medium", "hard", "edge case"],
        "tone": ["neutral", "friendly", "frustrated", "formal", "casual"],
    },
    "zh": {
        "scenario": ["典型的日常情况", "少见但真实的情况", "出了问题的情况", "包含多个要求的请求",
                     "需要澄清的模糊请求", "带具体数字、名称或日期的情况"],
        "persona": ["第一次使用的用户", "经验丰富的专家", "忙碌的上班族", "外语为母语的用户", "学生",
                    "年长的用户"],
        "difficulty": ["简单", "中等", "困难", "边界情况"],
        "tone": ["中性", "友好", "不满", "正式", "随意"],
    },
}

TEMPLATES = {
    "en": (
        "You are a data generation expert. Write {k} new, high-quality training samples for "
        "this task.\n\n"
        "Task: {task}\n"
        "Style: like the examples below (same format, length and register).\n\n"
        "Examples:\n{examples}\n\n"
        "Requirements:\n"
        "1. Cover this scenario: {scenario}; the user is {persona}; difficulty: {difficulty}; "
        "the user's tone: {tone}.\n"
        "2. Every sample must differ from the examples and from each other (topic, wording, "
        "details); do not copy or paraphrase the examples.\n"
        "3. Write complete, realistic content: no placeholders such as [name] or <...>.\n"
        "4. Write in English.\n"
        "5. The output answers the instruction (and input) correctly and does not repeat it.\n\n"
        "Answer with JSON only: {{\"samples\": [{{\"instruction\": \"...\", \"input\": \"...\", "
        "\"output\": \"...\"}}, ...]}} with exactly {k} samples (\"input\" may be empty). "
        "Batch #{call}."
    ),
    "zh": (
        "你是一个数据生成专家。请为下面的任务生成 {k} 个新的高质量训练样本。\n\n"
        "任务类型:{task}\n"
        "风格要求:与下面的示例一致(相同的格式、长度和语气)。\n\n"
        "示例:\n{examples}\n\n"
        "请确保:\n"
        "1. 涵盖这种场景:{scenario};用户是{persona};难度:{difficulty};用户语气:{tone}。\n"
        "2. 每个样本都与示例和彼此不同(话题、措辞、细节),不要照抄或改写示例。\n"
        "3. 内容完整、真实,不要使用 [姓名]、<...> 之类的占位符。\n"
        "4. 使用中文。\n"
        "5. output 正确回应 instruction(和 input),不要重复提问内容。\n\n"
        "只输出 JSON:{{\"samples\": [{{\"instruction\": \"...\", \"input\": \"...\", "
        "\"output\": \"...\"}}, ...]}},恰好 {k} 个样本(\"input\" 可以为空)。批次 #{call}。"
    ),
}

# The JSON schema of an answer, for vendors with structured output.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"samples": {"type": "array", "items": {
        "type": "object",
        "properties": {"instruction": {"type": "string"}, "input": {"type": "string"},
                       "output": {"type": "string"}},
        "required": ["instruction", "input", "output"], "additionalProperties": False}}},
    "required": ["samples"], "additionalProperties": False,
}


@dataclass
class CallPlan:
    index: int
    seed_ids: list[str]
    axes: dict[str, str]
    messages: list[dict[str, str]]

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.messages, ensure_ascii=False,
                                         sort_keys=True).encode()).hexdigest()[:16]


def template_hash(language: str) -> str:
    text = PROMPT_VERSION + TEMPLATES[language] + json.dumps(AXES[language], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_calls(task: str, seeds: Seeds, calls: int, k: int, language: str,
                seeds_per_call: int = 3, seed: int = 0) -> list[CallPlan]:
    """The prompt of every call, deterministic for the same inputs."""
    lang = "zh" if language == "zh" else "en"
    template, axes = TEMPLATES[lang], AXES[lang]
    rng = random.Random(f"unitune-synth:{seed}")
    order = list(range(len(seeds.items)))
    rng.shuffle(order)
    per = max(1, min(seeds_per_call, len(order)))
    offsets = {name: rng.randrange(len(values)) for name, values in axes.items()}
    steps = {"scenario": 1, "persona": 5, "difficulty": 3, "tone": 7}  # co-prime-ish strides
    out = []
    for i in range(calls):
        start = (i * per) % len(order)
        chosen = [seeds.items[order[(start + j) % len(order)]] for j in range(per)]
        point = {name: values[(offsets[name] + i * steps[name]) % len(values)]
                 for name, values in axes.items()}
        examples = "\n".join(json.dumps(s.sample(), ensure_ascii=False) for s in chosen)
        text = template.format(k=k, task=task, examples=examples, call=i + 1, **point)
        out.append(CallPlan(index=i, seed_ids=[s.id for s in chosen], axes=point,
                            messages=[{"role": "user", "content": text}]))
    return out
