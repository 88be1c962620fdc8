"""Checks a converted Bedrock JSONL file against its family's documented rules.

Runs on the file that would be uploaded (after conversion), so a converter gap can never ship a
record Bedrock rejects after hours in its queue. Rules come from the catalog (`ModelInfo.rules`
and `ModelInfo.limits`): record counts, tokens per record, strict user/assistant alternation,
Nova's reserved strings, Claude's plain-string content without extra keys, images.
Line numbers refer to the converted file (named in each problem).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from unitune.data.report import Problem

CONVERSE_SCHEMA = "bedrock-conversation-2024"
MAX_PROBLEMS = 200


def token_counter(info) -> Callable[[str], int]:
    """unitune.tokens' counter for the model when available, else the vendor's chars/token hint."""
    try:
        from unitune.tokens import counter_for

        counter = counter_for(info)
        return counter.count
    except Exception:  # tokens module absent or no tokenizer for this model: estimate
        hint = info.tokens_per_char_hint or (1 / 6)  # AWS: ~6 characters per token
        per_char = hint if hint < 1 else 1 / hint
        return lambda text: math.ceil(len(text) * per_char)


class _Collector:
    def __init__(self, file: str, target: str) -> None:
        self.problems: list[Problem] = []
        self.file = file
        self.target = target
        self.dropped = 0

    def add(self, code: str, message: str, line: int | None = None, path: str | None = None,
            hint: str | None = None, severity: str = "error") -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.problems.append(Problem(code, message, severity=severity, line=line, path=path,
                                     hint=hint, file=self.file, target=self.target))


def _alternation(roles: list[str], col: _Collector, line: int, path: str) -> None:
    if len(roles) < 2:
        col.add("bedrock_too_few_messages", "a record needs at least one user and one assistant "
                "message", line, path, hint="drop the record or add the missing turn")
        return
    if roles[0] != "user":
        col.add("bedrock_role_order", f"the first message must be from the user, not {roles[0]!r}",
                line, f"{path}[0].role", hint="move system text into `system`")
    if roles[-1] != "assistant":
        col.add("bedrock_role_order", "the last message must be from the assistant",
                line, f"{path}[{len(roles) - 1}].role", hint="end each record with the answer")
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1]:
            col.add("bedrock_role_order", f"two {roles[i]} messages in a row (Bedrock needs strict "
                    "user/assistant alternation)", line, f"{path}[{i}].role",
                    hint="merge consecutive turns of the same role")
            break
    for i, role in enumerate(roles):
        if role not in ("user", "assistant"):
            col.add("bedrock_role", f"role {role!r} is not allowed (user or assistant only)",
                    line, f"{path}[{i}].role", hint="tool turns cannot be tuned on Bedrock")


def _reserved(text: str, reserved: list[str], col: _Collector, line: int, path: str) -> None:
    for word in reserved:
        if word in text:
            col.add("bedrock_reserved_string", f"text contains {word!r}, which this model "
                    "reserves", line, path, hint=f"rephrase or remove {word!r}")


def _messages(obj: dict, col: _Collector, line: int,
              check_message: Callable[[str, dict], None]) -> None:
    """The `messages` of a Converse or Claude record: a list of objects, each passed to
    `check_message(path, message)` (the formats differ in what a message holds), then the strict
    user/assistant alternation of their roles."""
    messages = obj.get("messages")
    if not isinstance(messages, list):
        col.add("bedrock_messages_missing", "messages must be a list", line, "messages")
        return
    roles = []
    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(msg, dict):
            col.add("bedrock_message_shape", "a message must be an object", line, path)
            continue
        roles.append(str(msg.get("role")))
        check_message(path, msg)
    _alternation(roles, col, line, "messages")


def _converse(obj: dict, rules, col: _Collector, line: int) -> list[str]:
    texts: list[str] = []
    if obj.get("schemaVersion") != CONVERSE_SCHEMA:
        col.add("bedrock_schema_version", f"schemaVersion must be {CONVERSE_SCHEMA!r}", line,
                "schemaVersion")
    extra = set(obj) - {"schemaVersion", "system", "messages"}
    if extra:
        col.add("bedrock_extra_keys", f"unexpected keys {sorted(extra)}", line, hint="remove them")
    system = obj.get("system")
    if system is not None:
        if not isinstance(system, list) or not all(isinstance(s, dict) and isinstance(
                s.get("text"), str) for s in system):
            col.add("bedrock_system_shape", 'system must be a list of {"text": ...}', line, "system")
        else:
            for j, s in enumerate(system):
                texts.append(s["text"])
                _reserved(s["text"], rules.reserved_strings, col, line, f"system[{j}].text")
            if not rules.system:
                col.add("bedrock_system_unsupported", "this model takes no system prompt",
                        line, "system")

    def check_message(path: str, msg: dict) -> None:
        content = msg.get("content")
        if not isinstance(content, list) or not content:
            col.add("bedrock_content_shape", "content must be a non-empty list of blocks",
                    line, f"{path}.content")
            return
        for j, block in enumerate(content):
            bpath = f"{path}.content[{j}]"
            if not isinstance(block, dict):
                col.add("bedrock_content_shape", "a content block must be an object", line, bpath)
            elif "text" in block:
                text = block["text"]
                if not isinstance(text, str) or not text.strip():
                    col.add("bedrock_empty_text", "text must not be empty", line, f"{bpath}.text",
                            hint="drop the empty turn")
                else:
                    texts.append(text)
                    _reserved(text, rules.reserved_strings, col, line, f"{bpath}.text")
            elif "image" in block or "video" in block:
                if not rules.images:
                    col.add("bedrock_images_unsupported", "this model cannot be tuned on images",
                            line, bpath, hint="remove image turns or pick a multimodal model")
            else:
                col.add("bedrock_content_block", f"unsupported content block {sorted(block)}",
                        line, bpath, hint="only text (and images where the model allows) "
                        "can be tuned")

    _messages(obj, col, line, check_message)  # the converse schema always requires alternation
    return texts


def _prompt_completion(obj: dict, rules, col: _Collector, line: int) -> list[str]:
    extra = set(obj) - {"prompt", "completion"}
    if extra:
        col.add("bedrock_extra_keys", f"unexpected keys {sorted(extra)}", line,
                hint="prompt/completion records hold exactly those two keys")
    texts = []
    for key in ("prompt", "completion"):
        value = obj.get(key)
        if not isinstance(value, str):
            col.add("bedrock_field_missing", f"{key} must be a string", line, key)
        elif key == "completion" and not value.strip():
            col.add("bedrock_empty_text", "completion must not be empty", line, key)
        else:
            texts.append(value)
            _reserved(value, rules.reserved_strings, col, line, key)
    return texts


def _claude(obj: dict, rules, col: _Collector, line: int) -> list[str]:
    texts = []
    extra = set(obj) - {"system", "messages"}
    if extra:
        col.add("bedrock_extra_keys", f"unexpected keys {sorted(extra)} (Claude on Bedrock takes "
                "only system and messages)", line, hint="remove them")
    system = obj.get("system")
    if system is not None:
        if not isinstance(system, str):
            col.add("bedrock_system_shape", "system must be a plain string", line, "system")
        else:
            texts.append(system)

    def check_message(path: str, msg: dict) -> None:
        extra = set(msg) - {"role", "content"}
        if extra:
            col.add("bedrock_extra_keys", f"unexpected message keys {sorted(extra)}", line, path)
        content = msg.get("content")
        if not isinstance(content, str):
            col.add("bedrock_plain_content", "content must be a plain string for Claude on "
                    "Bedrock", line, f"{path}.content", hint="flatten text parts; images and "
                    "tool blocks cannot be tuned")
        elif not content.strip():
            col.add("bedrock_empty_text", "content must not be empty", line, f"{path}.content")
        else:
            texts.append(content)
            _reserved(content, rules.reserved_strings, col, line, f"{path}.content")

    _messages(obj, col, line, check_message)
    return texts


_CHECKERS = {
    "bedrock-converse": _converse,
    "bedrock-prompt-completion": _prompt_completion,
    "bedrock-claude": _claude,
}


def check_file(path: str | Path, info, which: str = "train",
               count_tokens: Callable[[str], int] | None = None,
               tokens: bool = True) -> tuple[list[Problem], int]:
    """Problems of the converted file `path` for model `info`, and its record count.

    `tokens=False` skips the per-record token limit (when the source file was already checked
    for it by unitune.data.validate, whose line numbers point into the user's file)."""
    path = Path(path)
    fmt = info.rules.format
    target = f"bedrock:{info.model}"
    col = _Collector(str(path), target)
    checker = _CHECKERS.get(fmt)
    if checker is None:
        col.add("bedrock_format_unknown", f"no Bedrock rules for format {fmt!r}")
        return col.problems, 0
    count = count_tokens or (token_counter(info) if tokens else None)
    limits = info.limits
    records = 0
    with path.open("r", encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                col.add("bedrock_blank_line", "blank line (Bedrock rejects it)", line_no,
                        hint="remove blank lines")
                continue
            records += 1
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                col.add("bedrock_json", f"not valid JSON: {exc.msg}", line_no)
                continue
            if not isinstance(obj, dict):
                col.add("bedrock_json", "each line must be a JSON object", line_no)
                continue
            texts = checker(obj, info.rules, col, line_no)
            if tokens and limits.tokens_per_example:
                n = sum(count(t) for t in texts)
                if n > limits.tokens_per_example:
                    col.add("bedrock_record_too_long",
                            f"record has ~{n} tokens; {info.model} allows "
                            f"{limits.tokens_per_example} per record"
                            + (" (the rest is truncated)" if limits.truncates else ""),
                            line_no, severity="warning" if limits.truncates else "error",
                            hint="shorten or split the conversation")
    _counts(records, which, info, col)
    size = path.stat().st_size
    cap = limits.train_file_bytes if which == "train" else limits.validation_file_bytes
    if cap and size > cap:
        col.add("bedrock_file_too_large", f"{which} file is {size} bytes; the limit is {cap}",
                hint="sample the data down")
    if col.dropped:
        col.problems.append(Problem("bedrock_more_problems", f"{col.dropped} more problems not "
                                    "shown", severity="warning", file=str(path), target=target))
    return col.problems, records


def _counts(records: int, which: str, info, col: _Collector) -> None:
    limits = info.limits
    if which == "train":
        lo, hi = limits.min_examples, limits.max_examples
    else:
        lo, hi = limits.min_validation_examples, limits.max_validation_examples
    if lo is not None and records < lo:
        col.add("bedrock_too_few_records", f"{which} file has {records} records; {info.model} "
                f"needs at least {lo}", hint="add examples")
    if hi is not None and records > hi:
        col.add("bedrock_too_many_records", f"{which} file has {records} records; {info.model} "
                f"takes at most {hi}", hint="sample the data down (`unitune split`)")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL file (tests and small tools)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(x) for x in fh if x.strip()]
