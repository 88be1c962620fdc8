"""Input formats: detect which one a JSONL line is written in and normalize it into the canonical
`Example` / `PreferenceExample` types, recording STRUCTURAL problems (missing, empty or wrongly
typed fields, with their JSON path) in a list of `Problem`s.

Semantic checks (unknown roles, role order, weights, tool-call matching, duplicates, per-vendor
rules) are the validator's job: a line with a structural error is not normalized at all (`None`),
so every example the validator sees is well-formed.

Format names (used everywhere): `messages` (OpenAI chat / ChatML), `alpaca`, `prompt-completion`
(also Bedrock's Llama 3.1/Titan/Cohere format), `sharegpt`, `openai-dpo`, `trl-dpo`,
`bedrock-converse`, `bedrock-claude`, `vertex`.

This module is on the validator's hot path (hundreds of thousands of lines): the common shapes
take a fast path with no per-field error bookkeeping; the careful checks run only when the fast
path does not match.
"""
from __future__ import annotations

from typing import Any, Callable

import orjson

from .example import Example, Message, PreferenceExample, ToolCall
from .report import Problem

FORMATS = ("messages", "alpaca", "prompt-completion", "sharegpt", "openai-dpo", "trl-dpo",
           "bedrock-converse", "bedrock-claude", "vertex")

# Other names people use for the same formats.
ALIASES = {"openai": "messages", "chatml": "messages", "chat": "messages",
           "bedrock-prompt-completion": "prompt-completion", "completion": "prompt-completion",
           "dpo": "trl-dpo", "gemini": "vertex", "converse": "bedrock-converse",
           "claude": "bedrock-claude"}

# Formats whose lines can share one file: a Claude-on-Bedrock line without a system prompt is
# indistinguishable from an OpenAI chat line.
COMPATIBLE = {frozenset(("messages", "bedrock-claude"))}

_MISSING = object()
_STR = str
_DICT = dict
_LIST = list


def canonical_format(name: str) -> str | None:
    """The canonical format name for `name` (aliases accepted), or None when unknown."""
    name = name.strip().lower()
    if name in FORMATS:
        return name
    return ALIASES.get(name)


def compatible(a: str, b: str) -> bool:
    return a == b or frozenset((a, b)) in COMPATIBLE


def detect_format(obj: Any) -> str | None:
    """The format of one parsed JSONL line, from its keys; None when it looks like none of them."""
    if type(obj) is not _DICT:
        return None
    if "messages" in obj:
        if "schemaVersion" in obj:
            return "bedrock-converse"
        system = obj.get("system")
        if type(system) is _STR:
            return "bedrock-claude"
        if type(system) is _LIST:
            return "bedrock-converse"
        msgs = obj["messages"]
        if type(msgs) is _LIST and msgs and type(msgs[0]) is _DICT:
            content = msgs[0].get("content")
            if (type(content) is _LIST and content and type(content[0]) is _DICT
                    and "type" not in content[0]):
                return "bedrock-converse"
        return "messages"
    if "contents" in obj or "systemInstruction" in obj or "system_instruction" in obj:
        return "vertex"
    if "conversations" in obj:
        return "sharegpt"
    if "preferred_output" in obj or "non_preferred_output" in obj:
        return "openai-dpo"
    if "chosen" in obj or "rejected" in obj:
        return "trl-dpo"
    if "instruction" in obj or "output" in obj:
        return "alpaca"
    if "prompt" in obj or "completion" in obj:
        return "prompt-completion"
    if "schemaVersion" in obj:
        return "bedrock-converse"
    return None


# ---------------------------------------------------------------------------------------------
# Problem bookkeeping


_HINTS = {
    "missing_field": "add the field; `unitune validate --help` lists each format's fields",
    "empty_field": "remove the example or fill in the text",
    "wrong_type": "fix the value's JSON type (strings must be quoted, lists use [ ])",
    "unknown_field": "vendors may reject unknown keys; `unitune convert` writes clean files",
    "not_an_object": "each line must be one JSON object ({...}), not an array, string or number",
}


class Ctx:
    """Where problems for one line go, and whether an error was recorded."""

    __slots__ = ("line", "file", "problems", "failed")

    def __init__(self, line: int, problems: list[Problem], file: str | None = None) -> None:
        self.line = line
        self.file = file
        self.problems = problems
        self.failed = False

    def error(self, code: str, path: str | None, message: str, hint: str | None = None) -> None:
        self.failed = True
        self.problems.append(Problem(code=code, message=message, severity="error",
                                     line=self.line, path=path, file=self.file,
                                     hint=hint or _HINTS.get(code)))

    def warning(self, code: str, path: str | None, message: str,
                hint: str | None = None) -> None:
        self.problems.append(Problem(code=code, message=message, severity="warning",
                                     line=self.line, path=path, file=self.file,
                                     hint=hint or _HINTS.get(code)))

    # shorthands -----------------------------------------------------------------------------
    def missing(self, path: str, what: str = "") -> None:
        self.error("missing_field", path, f"missing required field `{path}`{what}")

    def wrong(self, path: str, expected: str, value: Any) -> None:
        self.error("wrong_type", path,
                   f"`{path}` must be {expected}, got {_type_name(value)}")

    def empty(self, path: str, value: Any = "") -> None:
        if type(value) is _STR and value:
            self.error("empty_field", path, f"`{path}` holds only whitespace",
                       hint="write the text, or remove the example")
        else:
            self.error("empty_field", path, f"`{path}` is empty")

    def unknown_keys(self, obj: dict, allowed: frozenset, prefix: str = "") -> None:
        """Keys outside `allowed`: a warning each, or an error when the key is a misspelling of
        an allowed key the object lacks (`inpqt` for `input`: as written its value is lost)."""
        if allowed.issuperset(obj):
            return
        for key in obj:
            if key not in allowed:
                path = f"{prefix}.{key}" if prefix else str(key)
                meant = _misspelling_of(str(key), allowed, obj)
                if meant is not None:
                    where = f"{prefix}.{meant}" if prefix else meant
                    self.error("misspelled_field", path,
                               f"unknown field `{path}`: did you mean `{where}`? (as written, "
                               f"its value is ignored)",
                               hint=f"rename `{key}` to `{meant}`")
                else:
                    self.warning("unknown_field", path,
                                 f"unknown field `{path}` (ignored by unitune)")


# Keys never taken for a misspelling: metadata whose loss changes nothing that is trained.
_NOT_MISSPELT = frozenset(("id",))
_misspelling_cache: dict[tuple[str, frozenset], str | None] = {}


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), or
    `limit + 1` as soon as it is certainly over `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _misspelling_of(key: str, allowed: frozenset, obj: dict) -> str | None:
    """The allowed key (absent from `obj`) that `key` is a typo of, or None: the same up to
    case and `-`/`_`, or one edit away (two for keys longer than six characters)."""
    cache_key = (key, allowed)
    if cache_key in _misspelling_cache:
        meant = _misspelling_cache[cache_key]
    else:
        meant = None
        folded = key.lower().replace("-", "").replace("_", "")
        for cand in sorted(allowed):
            if cand in _NOT_MISSPELT or len(cand) < 4:
                continue
            if folded == cand.lower().replace("_", ""):
                meant = cand
                break
            limit = 1 if len(cand) <= 6 else 2
            if _edit_distance(key.lower(), cand.lower(), limit) <= limit:
                meant = cand
                break
        if len(_misspelling_cache) < 4096:
            _misspelling_cache[cache_key] = meant
    return meant if meant is not None and meant not in obj else None


def _blank(text: str) -> bool:
    """Empty or only whitespace."""
    return not text or text.isspace()


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------------------------------------
# OpenAI chat messages (also the body of bedrock-claude, openai-dpo and TRL conversational data)

_MSG_KEYS = frozenset(("role", "content", "name", "tool_calls", "tool_call_id", "weight",
                       "function_call", "refusal"))
_TOP_MESSAGES = frozenset(("messages", "tools", "parallel_tool_calls", "functions"))


# Content-part types a message may hold: OpenAI's, and the media parts the Bedrock and Vertex
# readers produce (so `messages` data converted from them reads back). The value under the type's
# own key is an object (a string for `refusal`).
OPENAI_PART_TYPES = frozenset(("text", "image_url", "input_audio", "file", "refusal"))
VENDOR_PART_TYPES = frozenset(("image", "video", "document", "fileData", "inlineData"))
PART_TYPES = OPENAI_PART_TYPES | VENDOR_PART_TYPES
_PART_HINT = ("content parts are text, image_url, input_audio, file or refusal (OpenAI); image, "
              "video, document (Bedrock); fileData, inlineData (Vertex)")


def _content_parts(parts: list, path: str, ctx: Ctx) -> list | None:
    if not parts:
        ctx.empty(path)
        return None
    for j, part in enumerate(parts):
        if type(part) is not _DICT:
            if type(part) is _STR:  # a bare string part: tolerated, text_of reads it
                continue
            ctx.wrong(f"{path}[{j}]", "an object", part)
            continue
        ptype = part.get("type", _MISSING)
        if ptype is _MISSING:
            if "text" not in part:
                ctx.missing(f"{path}[{j}].type")
                continue
            ctx.warning("missing_part_type", f"{path}[{j}]",
                        "content part has no `type`; OpenAI expects {\"type\": \"text\", ...}",
                        hint='add "type": "text" (or convert the file with `unitune convert`)')
            ptype = "text"
        if ptype == "text":
            text = part.get("text", _MISSING)
            if text is _MISSING:
                ctx.missing(f"{path}[{j}].text")
            elif type(text) is not _STR:
                ctx.wrong(f"{path}[{j}].text", "a string", text)
        elif type(ptype) is not _STR:
            ctx.wrong(f"{path}[{j}].type", "a string", ptype)
        elif ptype not in PART_TYPES:
            ctx.error("unknown_part_type", f"{path}[{j}].type",
                      f"unknown content part type {ptype!r}", hint=_PART_HINT)
        else:
            ppath = f"{path}[{j}].{ptype}"
            value = part.get(ptype, _MISSING)
            if value is _MISSING or value is None:
                ctx.missing(ppath, f" (a {ptype} part)")
            elif ptype == "refusal":
                if type(value) is not _STR:
                    ctx.wrong(ppath, "a string", value)
            elif type(value) is not _DICT:
                ctx.wrong(ppath, "an object", value)
            elif ptype == "image_url":
                url = value.get("url", _MISSING)
                if url is _MISSING or url is None:
                    ctx.missing(f"{ppath}.url")
                elif type(url) is not _STR:
                    ctx.wrong(f"{ppath}.url", "a string", url)
                elif not url.strip():
                    ctx.empty(f"{ppath}.url", url)
    return parts


def _blank_parts(parts: list) -> bool:
    """True when content parts hold no media and their text is blank."""
    for part in parts:
        if type(part) is _STR:
            if not _blank(part):
                return False
        elif type(part) is _DICT:
            ptype = part.get("type", "text")
            if ptype != "text":
                return False
            text = part.get("text")
            if type(text) is _STR and not _blank(text):
                return False
    return True


def _tool_calls(calls: Any, path: str, ctx: Ctx) -> list[ToolCall] | None:
    if type(calls) is not _LIST:
        ctx.wrong(path, "a list", calls)
        return None
    out = []
    for k, call in enumerate(calls):
        cpath = f"{path}[{k}]"
        if type(call) is not _DICT:
            ctx.wrong(cpath, "an object", call)
            continue
        fn = call.get("function", _MISSING)
        if fn is _MISSING:
            ctx.missing(f"{cpath}.function")
            continue
        if type(fn) is not _DICT:
            ctx.wrong(f"{cpath}.function", "an object", fn)
            continue
        name = fn.get("name")
        if type(name) is not _STR:
            if name is None:
                ctx.missing(f"{cpath}.function.name")
            else:
                ctx.wrong(f"{cpath}.function.name", "a string", name)
            continue
        if not name:
            ctx.empty(f"{cpath}.function.name")
        args = fn.get("arguments", "{}")
        if type(args) is not _STR:
            if type(args) is _DICT:
                ctx.warning("wrong_type", f"{cpath}.function.arguments",
                            "`arguments` is an object; OpenAI expects a JSON string (unitune "
                            "converts it)", hint="write arguments as a JSON-encoded string")
                args = _dumps(args)
            else:
                ctx.wrong(f"{cpath}.function.arguments", "a JSON string", args)
                continue
        cid = call.get("id")
        if cid is not None and type(cid) is not _STR:
            ctx.wrong(f"{cpath}.id", "a string", cid)
            continue
        ctype = call.get("type", "function")
        out.append(ToolCall(cid, name, args, ctype if type(ctype) is _STR else "function"))
    return out


def _message_slow(m: dict, path: str, ctx: Ctx) -> Message | None:
    role = m.get("role", _MISSING)
    if role is _MISSING or role is None:
        ctx.missing(f"{path}.role")
        return None
    if type(role) is not _STR:
        ctx.wrong(f"{path}.role", "a string", role)
        return None
    if not role:
        ctx.empty(f"{path}.role")
        return None
    tool_calls = None
    raw_calls = m.get("tool_calls")
    if raw_calls is not None:
        tool_calls = _tool_calls(raw_calls, f"{path}.tool_calls", ctx) or None
    elif type(m.get("function_call")) is _DICT:  # legacy single function call
        fc = m["function_call"]
        tool_calls = _tool_calls([{"function": fc}], f"{path}.function_call", ctx) or None
    content = m.get("content", _MISSING)
    if content is _MISSING or content is None:
        if not (role == "assistant" and (tool_calls or raw_calls is not None)):
            ctx.missing(f"{path}.content", f" ({role} message)" if role else "")
        content = None
    elif type(content) is _STR:
        if _blank(content) and not tool_calls:
            ctx.empty(f"{path}.content", content)
    elif type(content) is _LIST:
        failed = ctx.failed
        ctx.failed = False
        content = _content_parts(content, f"{path}.content", ctx)
        if content is not None and not ctx.failed and not tool_calls and _blank_parts(content):
            ctx.error("empty_field", f"{path}.content",
                      f"`{path}.content` has no text (its parts are empty or only whitespace)",
                      hint="write the text, or remove the example")
        ctx.failed = ctx.failed or failed
    else:
        ctx.wrong(f"{path}.content", "a string or a list of content parts", content)
        content = None
    name = m.get("name")
    if name is not None and type(name) is not _STR:
        ctx.wrong(f"{path}.name", "a string", name)
        name = None
    tcid = m.get("tool_call_id")
    if tcid is not None and type(tcid) is not _STR:
        ctx.wrong(f"{path}.tool_call_id", "a string", tcid)
        tcid = None
    weight = m.get("weight", _MISSING)
    if weight is _MISSING:
        weight = None
    elif weight is None:
        ctx.error("bad_weight", f"{path}.weight", "`weight` is null, not 0 or 1",
                  hint="write 0 (do not train on this reply) or 1, or leave `weight` out")
    elif type(weight) is not int:
        if type(weight) is float and weight in (0.0, 1.0):
            weight = int(weight)
        else:
            ctx.wrong(f"{path}.weight", "0 or 1", weight)
            weight = None
    ctx.unknown_keys(m, _MSG_KEYS, path)
    return Message(role, content, name, tool_calls, tcid, weight)


def parse_messages(lst: Any, path: str, ctx: Ctx) -> list[Message]:
    """A list of OpenAI-style chat messages; problems recorded under `path`."""
    if type(lst) is not _LIST:
        if lst is None:
            ctx.missing(path)
        else:
            ctx.wrong(path, "a list of messages", lst)
        return []
    if not lst:
        ctx.empty(path)
        return []
    out = []
    append = out.append
    for i, m in enumerate(lst):
        if type(m) is _DICT:
            if len(m) == 2:
                role = m.get("role")
                content = m.get("content")
                if type(role) is _STR and type(content) is _STR and role and content \
                        and not content.isspace():
                    append(Message(role, content))
                    continue
            msg = _message_slow(m, f"{path}[{i}]", ctx)
            if msg is not None:
                append(msg)
        else:
            ctx.wrong(f"{path}[{i}]", "an object", m)
    return out


def _tools(obj: dict, path: str, ctx: Ctx) -> list | None:
    tools = obj.get("tools")
    if tools is None:
        return None
    if type(tools) is _STR:  # LLaMA-Factory writes tools as a JSON string
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError:
            ctx.wrong(path, "a list of tool definitions", "a non-JSON string")
            return None
    if type(tools) is not _LIST or any(type(t) is not _DICT for t in tools):
        ctx.wrong(path, "a list of tool definition objects", tools)
        return None
    return tools


def _parallel(obj: dict, ctx: Ctx) -> bool | None:
    ptc = obj.get("parallel_tool_calls")
    if ptc is not None and type(ptc) is not bool:
        ctx.wrong("parallel_tool_calls", "true or false", ptc)
        return None
    return ptc


def norm_messages(obj: dict, ctx: Ctx) -> Example | None:
    msgs = parse_messages(obj.get("messages"), "messages", ctx)
    if len(obj) == 1 and "messages" in obj:
        return Example(msgs, line=ctx.line)
    tools = _tools(obj, "tools", ctx)
    ptc = _parallel(obj, ctx)
    ctx.unknown_keys(obj, _TOP_MESSAGES)
    return Example(msgs, tools, ptc, ctx.line)


_TOP_CLAUDE = frozenset(("system", "messages"))


def norm_bedrock_claude(obj: dict, ctx: Ctx) -> Example | None:
    system = obj.get("system")
    msgs = parse_messages(obj.get("messages"), "messages", ctx)
    if system is not None:
        if type(system) is not _STR:
            ctx.wrong("system", "a string", system)
        elif system:
            if system.isspace():
                ctx.empty("system", system)
            msgs.insert(0, Message("system", system))
    ctx.unknown_keys(obj, _TOP_CLAUDE)
    return Example(msgs, line=ctx.line)


# ---------------------------------------------------------------------------------------------
# Single-turn formats

def _req_str(obj: dict, key: str, ctx: Ctx, allow_empty: bool = False) -> str | None:
    value = obj.get(key, _MISSING)
    if type(value) is _STR:
        if _blank(value) and not (allow_empty and not value):
            ctx.empty(key, value)
        return value
    if value is _MISSING or value is None:
        ctx.missing(key)
    else:
        ctx.wrong(key, "a string", value)
    return None


def _opt_str(obj: dict, key: str, ctx: Ctx) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is _STR:
        if value and value.isspace():
            ctx.empty(key, value)
        return value
    ctx.wrong(key, "a string", value)
    return None


_TOP_ALPACA = frozenset(("instruction", "input", "output", "system", "history"))


def norm_alpaca(obj: dict, ctx: Ctx) -> Example | None:
    instruction = _req_str(obj, "instruction", ctx, allow_empty=True)
    inp = _opt_str(obj, "input", ctx)
    output = _req_str(obj, "output", ctx)
    system = _opt_str(obj, "system", ctx)
    if instruction is not None and not instruction and not inp:
        ctx.empty("instruction")
    msgs: list[Message] = []
    if system:
        msgs.append(Message("system", system))
    history = obj.get("history")
    if history:
        if type(history) is not _LIST:
            ctx.wrong("history", "a list of [instruction, response] pairs", history)
        else:
            for i, pair in enumerate(history):
                if (type(pair) is not _LIST or len(pair) != 2 or type(pair[0]) is not _STR
                        or type(pair[1]) is not _STR):
                    ctx.wrong(f"history[{i}]", "a [instruction, response] pair of strings", pair)
                    continue
                for k in (0, 1):
                    if _blank(pair[k]):
                        ctx.empty(f"history[{i}][{k}]", pair[k])
                msgs.append(Message("user", pair[0]))
                msgs.append(Message("assistant", pair[1]))
    if instruction is not None:
        user = f"{instruction}\n\n{inp}" if inp and instruction else (instruction or inp or "")
        msgs.append(Message("user", user))
    if output is not None:
        msgs.append(Message("assistant", output))
    ctx.unknown_keys(obj, _TOP_ALPACA)
    return Example(msgs, line=ctx.line)


_TOP_PC = frozenset(("prompt", "completion"))


def norm_prompt_completion(obj: dict, ctx: Ctx) -> Example | None:
    prompt = obj.get("prompt", _MISSING)
    completion = obj.get("completion", _MISSING)
    if type(prompt) is _LIST or type(completion) is _LIST:  # TRL conversational prompt/completion
        msgs = parse_messages(None if prompt is _MISSING else prompt, "prompt", ctx)
        msgs += parse_messages(None if completion is _MISSING else completion, "completion", ctx)
    else:
        p = _req_str(obj, "prompt", ctx)
        c = _req_str(obj, "completion", ctx)
        msgs = [Message("user", p or ""), Message("assistant", c or "")]
    ctx.unknown_keys(obj, _TOP_PC)
    return Example(msgs, line=ctx.line)


# ---------------------------------------------------------------------------------------------
# ShareGPT

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
                  "model": "assistant", "system": "system", "observation": "tool",
                  "tool": "tool", "function_response": "tool", "function_call": "assistant"}
_TOP_SHAREGPT = frozenset(("conversations", "system", "tools", "id"))
_TURN_KEYS = frozenset(("from", "value", "weight", "role", "content"))


def _sharegpt_call(value: str, path: str, ctx: Ctx, counter: list[int]) -> list[ToolCall]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        ctx.wrong(path, "a JSON object {\"name\", \"arguments\"}", "text that is not JSON")
        return []
    items = data if type(data) is _LIST else [data]
    calls = []
    for item in items:
        if type(item) is not _DICT or type(item.get("name")) is not _STR:
            ctx.wrong(path, "a JSON object with a string `name`", item)
            return []
        args = item.get("arguments", item.get("parameters", {}))
        calls.append(ToolCall(f"call_{counter[0]}", item["name"],
                              args if type(args) is _STR else _dumps(args)))
        counter[0] += 1
    return calls


def norm_sharegpt(obj: dict, ctx: Ctx) -> Example | None:
    conv = obj.get("conversations")
    if type(conv) is not _LIST:
        if conv is None:
            ctx.missing("conversations")
        else:
            ctx.wrong("conversations", "a list of {from, value} turns", conv)
        return None
    if not conv:
        ctx.empty("conversations")
    msgs: list[Message] = []
    system = obj.get("system")
    if system is not None:
        if type(system) is not _STR:
            ctx.wrong("system", "a string", system)
        elif system:
            if system.isspace():
                ctx.empty("system", system)
            msgs.append(Message("system", system))
    pending: list[str] = []
    counter = [0]
    for i, turn in enumerate(conv):
        path = f"conversations[{i}]"
        if type(turn) is not _DICT:
            ctx.wrong(path, "an object", turn)
            continue
        src = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content", _MISSING))
        if type(src) is not _STR:
            if src is None:
                ctx.missing(f"{path}.from")
            else:
                ctx.wrong(f"{path}.from", "a string", src)
            continue
        if type(value) is not _STR:
            if value is _MISSING or value is None:
                ctx.missing(f"{path}.value")
            else:
                ctx.wrong(f"{path}.value", "a string", value)
            continue
        if _blank(value):
            ctx.empty(f"{path}.value", value)
        ctx.unknown_keys(turn, _TURN_KEYS, path)
        role = SHAREGPT_ROLES.get(src, src)
        weight = turn.get("weight", _MISSING)
        if weight is _MISSING:
            weight = None
        elif weight is None:
            ctx.error("bad_weight", f"{path}.weight", "`weight` is null, not 0 or 1",
                      hint="write 0 (do not train on this reply) or 1, or leave `weight` out")
        elif type(weight) is not int:
            ctx.wrong(f"{path}.weight", "0 or 1", weight)
            weight = None
        if src == "function_call":
            calls = _sharegpt_call(value, f"{path}.value", ctx, counter)
            pending = [c.id for c in calls if c.id]
            msgs.append(Message("assistant", None, tool_calls=calls or None, weight=weight))
        elif role == "tool":
            msgs.append(Message("tool", value, tool_call_id=pending.pop(0) if pending else None))
        else:
            msgs.append(Message(role, value, weight=weight))
    tools = _tools(obj, "tools", ctx)
    ctx.unknown_keys(obj, _TOP_SHAREGPT)
    return Example(msgs, tools, line=ctx.line)


# ---------------------------------------------------------------------------------------------
# Preference pairs

_TOP_ODPO = frozenset(("input", "preferred_output", "non_preferred_output"))
_INPUT_KEYS = frozenset(("messages", "tools", "parallel_tool_calls"))


def norm_openai_dpo(obj: dict, ctx: Ctx) -> PreferenceExample | None:
    inp = obj.get("input")
    tools = None
    if type(inp) is not _DICT:
        if inp is None:
            ctx.missing("input")
        else:
            ctx.wrong("input", "an object {\"messages\": [...]}", inp)
        prompt: list[Message] = []
    else:
        prompt = parse_messages(inp.get("messages"), "input.messages", ctx)
        tools = _tools(inp, "input.tools", ctx)
        ctx.unknown_keys(inp, _INPUT_KEYS, "input")
    chosen = parse_messages(obj.get("preferred_output"), "preferred_output", ctx)
    rejected = parse_messages(obj.get("non_preferred_output"), "non_preferred_output", ctx)
    ctx.unknown_keys(obj, _TOP_ODPO)
    return PreferenceExample(prompt, chosen, rejected, tools, ctx.line)


_TOP_TRL = frozenset(("prompt", "chosen", "rejected"))


def _trl_side(obj: dict, key: str, role: str, ctx: Ctx) -> list[Message]:
    value = obj.get(key, _MISSING)
    if type(value) is _STR:
        if _blank(value):
            ctx.empty(key, value)
        return [Message(role, value)]
    if type(value) is _LIST:
        return parse_messages(value, key, ctx)
    if value is _MISSING or value is None:
        ctx.missing(key)
    else:
        ctx.wrong(key, "a string or a list of messages", value)
    return []


def norm_trl_dpo(obj: dict, ctx: Ctx) -> PreferenceExample | None:
    chosen = _trl_side(obj, "chosen", "assistant", ctx)
    rejected = _trl_side(obj, "rejected", "assistant", ctx)
    if "prompt" in obj:
        prompt = _trl_side(obj, "prompt", "user", ctx)
    elif type(obj.get("chosen")) is _LIST and type(obj.get("rejected")) is _LIST:
        # implicit prompt: the shared leading messages of chosen and rejected
        n = 0
        while n < len(chosen) - 1 and n < len(rejected) - 1 and chosen[n] == rejected[n]:
            n += 1
        if n == 0:
            ctx.missing("prompt", " (and chosen/rejected share no leading messages)")
        prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
    else:
        ctx.missing("prompt")
        prompt = []
    ctx.unknown_keys(obj, _TOP_TRL)
    return PreferenceExample(prompt, chosen, rejected, line=ctx.line)


# ---------------------------------------------------------------------------------------------
# Content-block lists (Bedrock Converse `content`, Vertex `parts`): the same walk, other key names


class _BlockKeys:
    """What one vendor calls the fields of a content-block list, and its wording in problems.

    (A plain class with slots, not a NamedTuple: its attributes are read on the hot path.)
    """

    __slots__ = ("wrong_str", "wrong", "call", "call_id", "call_args", "result", "to_result",
                 "other", "media", "media_hint")

    def __init__(self, *, wrong_str: str, wrong: str, call: str, call_id: str, call_args: str,
                 result: str, to_result: Callable[[dict], Message], other: str,
                 media: frozenset, media_hint: str) -> None:
        self.wrong_str = wrong_str  # what a plain string in place of the list should have been
        self.wrong = wrong  # what any other non-list should have been
        self.call = call  # the tool-call block ("toolUse" / "functionCall")
        self.call_id = call_id  # the call's id field
        self.call_args = call_args  # the call's arguments field
        self.result = result  # the tool-result block ("toolResult" / "functionResponse")
        self.to_result = to_result  # that block as a tool message
        self.other = other  # what a block with several keys should have been
        self.media = media  # the media block kinds (kept as content parts)
        self.media_hint = media_hint  # what an unknown block kind should have been


def _content_blocks(blocks: Any, path: str, ctx: Ctx, keys: _BlockKeys
                    ) -> tuple[Any, list, list]:
    """(content, tool_calls, tool_results) from a list of content blocks named as in `keys`."""
    if type(blocks) is not _LIST:
        if blocks is None:
            ctx.missing(path)
        else:
            ctx.wrong(path, keys.wrong_str if type(blocks) is _STR else keys.wrong, blocks)
        return None, [], []
    if len(blocks) == 1:
        b = blocks[0]
        if type(b) is _DICT and len(b) == 1:
            text = b.get("text")
            if type(text) is _STR and text and not text.isspace():
                return text, [], []
    if not blocks:
        ctx.empty(path)
        return None, [], []
    call_key, result_key = keys.call, keys.result
    parts: list = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, b in enumerate(blocks):
        bpath = f"{path}[{j}]"
        if type(b) is not _DICT:
            ctx.wrong(bpath, "an object", b)
            continue
        if "text" in b:
            text = b["text"]
            if type(text) is not _STR:
                ctx.wrong(f"{bpath}.text", "a string", text)
            elif _blank(text):
                ctx.empty(f"{bpath}.text", text)
            else:
                parts.append({"type": "text", "text": text})
        elif type(b.get(call_key)) is _DICT:
            call = b[call_key]
            if type(call.get("name")) is not _STR:
                ctx.missing(f"{bpath}.{call_key}.name")
                continue
            args = call.get(keys.call_args, {})
            cid = call.get(keys.call_id)
            calls.append(ToolCall(cid if type(cid) is _STR else None, call["name"],
                                  args if type(args) is _STR else _dumps(args)))
        elif type(b.get(result_key)) is _DICT:
            results.append(keys.to_result(b[result_key]))
        elif len(b) == 1:
            kind = next(iter(b))
            if kind not in keys.media:
                ctx.error("unknown_part_type", f"{bpath}.{kind}",
                          f"unknown content block {kind!r}", hint=keys.media_hint)
            elif type(b[kind]) is not _DICT:
                ctx.wrong(f"{bpath}.{kind}", "an object", b[kind])
            else:
                parts.append({"type": kind, kind: b[kind]})
        else:
            ctx.wrong(bpath, keys.other, b)
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"], calls, results
    return (parts or None), calls, results


# ---------------------------------------------------------------------------------------------
# Bedrock converse

BEDROCK_SCHEMA = "bedrock-conversation-2024"
_TOP_CONVERSE = frozenset(("schemaVersion", "system", "messages"))


def _converse_result(tr: dict) -> Message:
    """A Converse `toolResult` block as a tool message (its text and json blocks joined)."""
    inner = tr.get("content", [])
    texts = []
    for blk in inner if type(inner) is _LIST else []:
        if type(blk) is _DICT:
            if type(blk.get("text")) is _STR:
                texts.append(blk["text"])
            elif "json" in blk:
                texts.append(_dumps(blk["json"]))
    tid = tr.get("toolUseId")
    return Message("tool", "".join(texts), tool_call_id=tid if type(tid) is _STR else None)


_CONVERSE_BLOCKS = _BlockKeys(
    wrong_str="a list of content blocks [{\"text\": ...}]", wrong="a list of content blocks",
    call="toolUse", call_id="toolUseId", call_args="input",
    result="toolResult", to_result=_converse_result,
    other="one content block ({\"text\": ...}, {\"image\": ...}, ...)",
    media=frozenset(("image", "video", "document")),
    media_hint="Bedrock content blocks are text, image, video, document, toolUse or toolResult")


def norm_bedrock_converse(obj: dict, ctx: Ctx) -> Example | None:
    sv = obj.get("schemaVersion")
    if sv is not None and sv != BEDROCK_SCHEMA:
        ctx.warning("unknown_schema_version", "schemaVersion",
                    f"schemaVersion is {sv!r}; Bedrock expects {BEDROCK_SCHEMA!r}",
                    hint=f'set "schemaVersion": "{BEDROCK_SCHEMA}"')
    msgs: list[Message] = []
    system = obj.get("system")
    if system is not None:
        if type(system) is not _LIST:
            ctx.wrong("system", "a list of {\"text\": ...} blocks", system)
        elif system:
            content, _, _ = _content_blocks(system, "system", ctx, _CONVERSE_BLOCKS)
            if content is not None:
                msgs.append(Message("system", content))
    raw = obj.get("messages")
    if type(raw) is not _LIST:
        if raw is None:
            ctx.missing("messages")
        else:
            ctx.wrong("messages", "a list of messages", raw)
        return None
    if not raw:
        ctx.empty("messages")
    for i, m in enumerate(raw):
        path = f"messages[{i}]"
        if type(m) is not _DICT:
            ctx.wrong(path, "an object", m)
            continue
        role = m.get("role")
        if type(role) is not _STR:
            if role is None:
                ctx.missing(f"{path}.role")
            else:
                ctx.wrong(f"{path}.role", "a string", role)
            continue
        content, calls, results = _content_blocks(m.get("content"), f"{path}.content", ctx,
                                                  _CONVERSE_BLOCKS)
        if results:
            msgs.extend(results)
            if content is not None:
                msgs.append(Message(role, content))
        elif content is not None or calls:
            msgs.append(Message(role, content, tool_calls=calls or None))
        ctx.unknown_keys(m, frozenset(("role", "content")), path)
    ctx.unknown_keys(obj, _TOP_CONVERSE)
    return Example(msgs, line=ctx.line)


# ---------------------------------------------------------------------------------------------
# Vertex AI / Gemini

VERTEX_ROLES = {"user": "user", "model": "assistant", "assistant": "assistant",
                "function": "tool", "tool": "tool", "system": "system"}
_TOP_VERTEX = frozenset(("contents", "systemInstruction", "system_instruction", "tools"))


def _vertex_result(fr: dict) -> Message:
    """A Vertex `functionResponse` part as a tool message."""
    resp = fr.get("response", {})
    name = fr.get("name")
    return Message("tool", resp if type(resp) is _STR else _dumps(resp),
                   name=name if type(name) is _STR else None,
                   tool_call_id=fr.get("id") if type(fr.get("id")) is _STR else None)


_VERTEX_PARTS = _BlockKeys(
    wrong_str="a list of parts [{\"text\": ...}]", wrong="a list of parts [{\"text\": ...}]",
    call="functionCall", call_id="id", call_args="args",
    result="functionResponse", to_result=_vertex_result,
    other="one part ({\"text\": ...}, {\"fileData\": ...}, ...)",
    media=frozenset(("fileData", "inlineData")),
    media_hint="Vertex parts are text, fileData, inlineData, functionCall or functionResponse")


def norm_vertex(obj: dict, ctx: Ctx) -> Example | None:
    msgs: list[Message] = []
    si = obj.get("systemInstruction", obj.get("system_instruction"))
    if si is not None:
        if type(si) is _STR:
            if si:
                if si.isspace():
                    ctx.empty("systemInstruction", si)
                msgs.append(Message("system", si))
        elif type(si) is not _DICT:
            ctx.wrong("systemInstruction", "an object {\"parts\": [...]}", si)
        else:
            content, _, _ = _content_blocks(si.get("parts"), "systemInstruction.parts", ctx,
                                            _VERTEX_PARTS)
            if content is not None:
                msgs.append(Message("system", content))
    contents = obj.get("contents")
    if type(contents) is not _LIST:
        if contents is None:
            ctx.missing("contents")
        else:
            ctx.wrong("contents", "a list of {role, parts}", contents)
        return None
    if not contents:
        ctx.empty("contents")
    for i, c in enumerate(contents):
        path = f"contents[{i}]"
        if type(c) is not _DICT:
            ctx.wrong(path, "an object", c)
            continue
        role = c.get("role")
        if type(role) is not _STR:
            if role is None:
                ctx.missing(f"{path}.role")
            else:
                ctx.wrong(f"{path}.role", "a string", role)
            continue
        content, calls, results = _content_blocks(c.get("parts"), f"{path}.parts", ctx,
                                                  _VERTEX_PARTS)
        if results:
            msgs.extend(results)
        if content is not None or calls:
            msgs.append(Message(VERTEX_ROLES.get(role, role), content,
                                tool_calls=calls or None))
        ctx.unknown_keys(c, frozenset(("role", "parts")), path)
    tools = obj.get("tools") if type(obj.get("tools")) is _LIST else None
    ctx.unknown_keys(obj, _TOP_VERTEX)
    return Example(msgs, tools, line=ctx.line)


# ---------------------------------------------------------------------------------------------

# The top-level keys each format defines: a line whose keys all belong to the file's format is
# normalized as that format (so a missing key is reported as missing, not as another format).
TOP_KEYS: dict[str, frozenset] = {
    "messages": _TOP_MESSAGES, "alpaca": _TOP_ALPACA, "prompt-completion": _TOP_PC,
    "sharegpt": _TOP_SHAREGPT, "openai-dpo": _TOP_ODPO, "trl-dpo": _TOP_TRL,
    "bedrock-converse": _TOP_CONVERSE, "bedrock-claude": _TOP_CLAUDE, "vertex": _TOP_VERTEX,
}


NORMALIZERS: dict[str, Callable[[dict, Ctx], Example | PreferenceExample | None]] = {
    "messages": norm_messages,
    "alpaca": norm_alpaca,
    "prompt-completion": norm_prompt_completion,
    "sharegpt": norm_sharegpt,
    "openai-dpo": norm_openai_dpo,
    "trl-dpo": norm_trl_dpo,
    "bedrock-converse": norm_bedrock_converse,
    "bedrock-claude": norm_bedrock_claude,
    "vertex": norm_vertex,
}


def normalize(obj: Any, fmt: str, line: int = 0, problems: list[Problem] | None = None,
              file: str | None = None) -> Example | PreferenceExample | None:
    """Normalize one parsed line written in `fmt`.

    Structural problems are appended to `problems`; when any of them is an error the result is
    None (the line is not a usable example). Warnings (e.g. unknown fields) keep the example.
    """
    if problems is None:
        problems = []
    ctx = Ctx(line, problems, file)
    if type(obj) is not _DICT:
        ctx.error("not_an_object", None,
                  f"line is {_type_name(obj)}, not a JSON object")
        return None
    example = NORMALIZERS[fmt](obj, ctx)
    return None if ctx.failed else example
