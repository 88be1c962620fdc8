"""Convert canonical examples into each vendor's training-file format, warning about every loss.

`to_format(example, target)` renders one example and returns `(dict | None, warnings)`; each
warning is a `ConvertWarning` (a `str` with a `.code` such as `lossy_system`,
`lossy_tool_calls`, `lossy_weight`, `lossy_images`, `lossy_multi_turn`). `None` means the example
cannot be expressed in the target at all (e.g. an SFT example into a preference format).
`convert_file` streams a whole file and turns those warnings into `Problem`s with line numbers:
nothing is lost silently.

Every target is also a readable input format, so `messages → X → messages` round-trips exactly
wherever X can hold the example (see docs/data-formats.md for the table).

`convert_file` never writes a line that `validate` of the output would reject: each rendered line
is read back in the target's format and given the generic per-example checks
(`validate.ExampleChecker`); a line that fails is listed in `result.errors` instead. A message left
with nothing the target can carry (say, an image-only user turn going to Bedrock) refuses the
example rather than dropping the turn. It also reads CSV/TSV files with a header row, JSON arrays
and pretty-printed JSON (`reader.sniff_shape`), so such files can be turned into JSONL.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import DataError
from .example import Example, Message, PreferenceExample, ToolCall, text_of
from .formats import BEDROCK_SCHEMA, OPENAI_PART_TYPES
from .report import Problem, Report

TARGETS = ("openai", "openai-dpo", "bedrock-converse", "bedrock-prompt-completion",
           "bedrock-claude", "vertex", "messages", "alpaca", "trl-dpo")
TARGET_ALIASES = {"prompt-completion": "bedrock-prompt-completion", "chatml": "messages",
                  "dpo": "trl-dpo", "gemini": "vertex", "converse": "bedrock-converse",
                  "claude": "bedrock-claude"}
# The input format each target is read back as.
READ_BACK_FORMAT = {"openai": "messages", "openai-dpo": "openai-dpo",
                    "bedrock-converse": "bedrock-converse",
                    "bedrock-prompt-completion": "prompt-completion",
                    "bedrock-claude": "bedrock-claude", "vertex": "vertex",
                    "messages": "messages", "alpaca": "alpaca", "trl-dpo": "trl-dpo"}

_OPENAI_PART_TYPES = OPENAI_PART_TYPES


class _Refuse(Exception):
    """Raised by a renderer when the example cannot be written in the target at all (the
    reason is already in the warnings)."""


def _part_types(parts: list) -> str:
    kinds = sorted({str(p.get("type", "text")) if isinstance(p, dict) else "text" for p in parts})
    return ", ".join(kinds)


class ConvertWarning(str):
    """A warning message that also carries a machine-readable `code`."""

    code: str

    def __new__(cls, code: str, message: str) -> "ConvertWarning":
        obj = str.__new__(cls, message)
        obj.code = code
        return obj


class _Warn:
    """Collects one warning per code per example."""

    __slots__ = ("items", "codes")

    def __init__(self) -> None:
        self.items: list[ConvertWarning] = []
        self.codes: set[str] = set()

    def __call__(self, code: str, message: str) -> None:
        if code not in self.codes:
            self.codes.add(code)
            self.items.append(ConvertWarning(code, message))


def canonical_target(name: str) -> str:
    n = name.strip().lower()
    n = TARGET_ALIASES.get(n, n)
    if n not in TARGETS:
        raise DataError(f"unknown conversion target {name!r}",
                        hint="choose one of: " + ", ".join(TARGETS))
    return n


# ---------------------------------------------------------------------------------------------
# OpenAI-shaped output (messages / openai / DPO bodies)

def _call_out(c: ToolCall) -> dict:
    d: dict[str, Any] = {}
    if c.id is not None:
        d["id"] = c.id
    d["type"] = c.type
    d["function"] = {"name": c.name, "arguments": c.arguments}
    return d


def _openai_part(p: Any) -> Any:
    """A content part as OpenAI takes it: text parts typed (`{"type": "text", "text": ...}`)."""
    if isinstance(p, str):
        return {"type": "text", "text": p}
    if isinstance(p, dict) and "type" not in p and "text" in p:
        return {"type": "text", **p}
    return p


def _msg_out(m: Message, openai_only: bool = False, warn: _Warn | None = None,
             where: str = "") -> dict:
    d: dict[str, Any] = {"role": m.role}
    content = m.content
    if openai_only and isinstance(content, list) and warn is not None:
        kept = [_openai_part(p) for p in content if not isinstance(p, dict)
                or p.get("type", "text") in _OPENAI_PART_TYPES]
        if len(kept) != len(content):
            if not kept and not m.tool_calls:
                warn("dropped_content", f"{where or 'a message'} ({m.role}) holds only content "
                                        f"parts OpenAI does not accept ({_part_types(content)})")
                raise _Refuse
            warn("lossy_images", "content parts OpenAI does not accept (e.g. Bedrock/Vertex "
                                 "media references) were dropped")
        content = kept or None
    elif isinstance(content, list):  # typed text parts: a `{"text"}` part would read as Bedrock
        content = [_openai_part(p) for p in content]
    if content is not None or not m.tool_calls:
        d["content"] = content
    if m.name is not None:
        d["name"] = m.name
    if m.tool_calls:
        d["tool_calls"] = [_call_out(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.weight is not None:
        d["weight"] = m.weight
    return d


def _to_messages(ex: Example, openai_only: bool, warn: _Warn) -> dict:
    out: dict[str, Any] = {"messages": [_msg_out(m, openai_only, warn, f"messages[{i}]")
                                        for i, m in enumerate(ex.messages)]}
    if ex.tools is not None:
        out["tools"] = ex.tools
    if ex.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = ex.parallel_tool_calls
    return out


def _to_openai_dpo(ex: PreferenceExample, warn: _Warn) -> dict:
    inp: dict[str, Any] = {"messages": [_msg_out(m, True, warn, f"input.messages[{i}]")
                                        for i, m in enumerate(ex.prompt)]}
    if ex.tools is not None:
        inp["tools"] = ex.tools
    return {"input": inp,
            "preferred_output": [_msg_out(m, True, warn, f"preferred_output[{i}]")
                                 for i, m in enumerate(ex.chosen)],
            "non_preferred_output": [_msg_out(m, True, warn, f"non_preferred_output[{i}]")
                                     for i, m in enumerate(ex.rejected)]}


def _plain(msgs: list[Message], role: str) -> bool:
    return (len(msgs) == 1 and msgs[0].role == role and isinstance(msgs[0].content, str)
            and msgs[0].name is None and not msgs[0].tool_calls and msgs[0].weight is None
            and msgs[0].tool_call_id is None)


def _to_trl_dpo(ex: PreferenceExample, warn: _Warn) -> dict:
    if ex.tools:
        warn("lossy_tools", "TRL preference data has no `tools` field; tool definitions dropped")
    if _plain(ex.prompt, "user") and _plain(ex.chosen, "assistant") \
            and _plain(ex.rejected, "assistant"):
        return {"prompt": ex.prompt[0].content, "chosen": ex.chosen[0].content,
                "rejected": ex.rejected[0].content}
    return {"prompt": [_msg_out(m) for m in ex.prompt],
            "chosen": [_msg_out(m) for m in ex.chosen],
            "rejected": [_msg_out(m) for m in ex.rejected]}


# ---------------------------------------------------------------------------------------------
# Text-only vendor formats: one pass that strips what they cannot hold, warning each time


def _keep_part(p: Any, native: frozenset) -> bool:
    if isinstance(p, str):
        return True
    if not isinstance(p, dict):
        return False
    ptype = p.get("type", "text")
    return ptype == "text" or ptype in native


def _flatten(ex: Example, target: str, warn: _Warn, native_parts: frozenset = frozenset()
             ) -> tuple[list[Any], list[Message]]:
    """(system contents, user/assistant messages) with tools, weights, names, media removed."""
    systems: list[Any] = []
    turns: list[Message] = []
    if ex.tools:
        warn("lossy_tools", f"{target} training data cannot carry tool definitions; `tools` "
                            "dropped")
    for i, m in enumerate(ex.messages):
        if m.name is not None:
            warn("lossy_name", f"{target} has no per-message `name`; names dropped")
        if m.weight == 0:
            warn("lossy_weight", f"messages[{i}] has weight 0 (not trained) but {target} "
                                 "trains on every assistant turn; the turn is kept and WILL be "
                                 "trained")
        content = m.content
        if isinstance(content, list):
            kept = [p for p in content if _keep_part(p, native_parts)]
            if len(kept) != len(content):
                if not kept and not m.tool_calls and m.role in ("user", "assistant", "system"):
                    # dropping the whole turn would leave a conversation that means something
                    # else (e.g. one starting with the assistant): refuse the example instead
                    warn("dropped_content", f"messages[{i}] ({m.role}) holds only content "
                                            f"{target} cannot carry ({_part_types(content)})")
                    raise _Refuse
                warn("lossy_images", f"{target} cannot carry some content parts (images/files "
                                     "from another vendor); they were dropped")
            content = kept or None
        if m.role == "system":
            if turns:
                warn("lossy_system", f"a system message in the middle of the conversation "
                                     f"(messages[{i}]) was moved to {target}'s system prompt")
            if content is not None:
                systems.append(content)
            continue
        if m.role == "tool" or m.role == "function":
            warn("lossy_tool_calls", f"{target} cannot carry tool calls or tool results; they "
                                     "were dropped")
            continue
        if m.tool_calls:
            warn("lossy_tool_calls", f"{target} cannot carry tool calls or tool results; they "
                                     "were dropped")
            if content is None:
                continue
        if content is None:
            continue
        turns.append(Message(m.role, content, weight=m.weight))
    return systems, turns


def _texts_to_blocks(content: Any, key: str = "text") -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}]
    blocks = []
    for p in content:
        if isinstance(p, str):
            blocks.append({"text": p})
        elif p.get("type", "text") == "text":
            blocks.append({"text": p.get("text", "")})
        else:
            kind = p["type"]
            blocks.append({kind: p.get(kind)})
    return blocks


_BEDROCK_NATIVE = frozenset(("image", "video", "document"))
_VERTEX_NATIVE = frozenset(("fileData", "inlineData"))


def _to_bedrock_converse(ex: Example, warn: _Warn) -> dict:
    systems, turns = _flatten(ex, "bedrock-converse", warn, _BEDROCK_NATIVE)
    out: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if systems:
        out["system"] = [b for s in systems for b in _texts_to_blocks(s)]
    out["messages"] = [{"role": m.role, "content": _texts_to_blocks(m.content)} for m in turns]
    return out


def _joined_system(systems: list[Any], target: str, warn: _Warn) -> str | None:
    if not systems:
        return None
    if len(systems) > 1:
        warn("lossy_system", f"{target} takes one system prompt; {len(systems)} system messages "
                             "were joined with blank lines")
    return "\n\n".join(text_of(s) for s in systems)


def _to_bedrock_claude(ex: Example, warn: _Warn) -> dict:
    systems, turns = _flatten(ex, "bedrock-claude", warn)
    out: dict[str, Any] = {}
    system = _joined_system(systems, "bedrock-claude", warn)
    if system is not None:
        out["system"] = system
    out["messages"] = [{"role": m.role, "content": text_of(m.content)} for m in turns]
    return out


def _to_vertex(ex: Example, warn: _Warn) -> dict:
    systems, turns = _flatten(ex, "vertex", warn, _VERTEX_NATIVE)
    out: dict[str, Any] = {}
    if systems:
        out["systemInstruction"] = {"role": "system",
                                    "parts": [b for s in systems for b in _texts_to_blocks(s)]}
    out["contents"] = [{"role": "model" if m.role == "assistant" else m.role,
                        "parts": _texts_to_blocks(m.content)} for m in turns]
    return out


def _pairs(turns: list[Message], target: str, warn: _Warn) -> list[tuple[str, str]]:
    """(user text, assistant text) pairs; odd shapes are merged or dropped with a warning."""
    pairs: list[tuple[str, str]] = []
    user: list[str] = []
    for m in turns:
        text = text_of(m.content)
        if m.role == "assistant":
            if not user:
                if pairs:
                    warn("lossy_merged_turns", f"consecutive assistant turns were joined "
                                               f"({target} needs user/assistant pairs)")
                    pairs[-1] = (pairs[-1][0], pairs[-1][1] + "\n\n" + text)
                    continue
                warn("lossy_empty_prompt", f"the conversation starts with an assistant turn; "
                                           f"{target} gets an empty prompt for it")
            elif len(user) > 1:
                warn("lossy_merged_turns", f"consecutive user turns were joined with blank "
                                           f"lines ({target} needs user/assistant pairs)")
            pairs.append(("\n\n".join(user), text))
            user = []
        else:
            if m.role != "user":
                warn("lossy_roles", f"role {m.role!r} has no place in {target}; treated as user")
            user.append(text)
    if user and pairs:
        warn("lossy_trailing_turns", "user turns after the last assistant reply were dropped")
    return pairs


def _to_alpaca(ex: Example, warn: _Warn) -> dict | None:
    systems, turns = _flatten(ex, "alpaca", warn)
    pairs = _pairs(turns, "alpaca", warn)
    if not pairs:
        warn("no_assistant", "no assistant reply to use as the alpaca `output`")
        return None
    out: dict[str, Any] = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    system = _joined_system(systems, "alpaca", warn)
    if system is not None:
        out["system"] = system
    if len(pairs) > 1:
        warn("multi_turn_history", "earlier turns were written to `history` (the LLaMA-Factory "
                                   "convention); trainers that only read instruction/input/"
                                   "output will ignore them")
        out["history"] = [[u, a] for u, a in pairs[:-1]]
    return out


def _to_prompt_completion(ex: Example, warn: _Warn) -> dict | None:
    systems, turns = _flatten(ex, "bedrock-prompt-completion", warn)
    pairs = _pairs(turns, "bedrock-prompt-completion", warn)
    if not pairs:
        warn("no_assistant", "no assistant reply to use as the `completion`")
        return None
    if len(pairs) == 1:
        prompt = pairs[0][0]
    else:
        warn("lossy_multi_turn", "earlier turns were folded into the prompt as a 'User: … / "
                                 "Assistant: …' transcript; only the last reply is trained")
        lines = []
        for u, a in pairs[:-1]:
            lines.append(f"User: {u}")
            lines.append(f"Assistant: {a}")
        lines.append(f"User: {pairs[-1][0]}")
        prompt = "\n\n".join(lines)
    system = _joined_system(systems, "bedrock-prompt-completion", warn)
    if system is not None:
        warn("lossy_system", "prompt/completion has no system field; the system prompt was "
                             "prepended to the prompt")
        prompt = f"{system}\n\n{prompt}"
    return {"prompt": prompt, "completion": pairs[-1][1]}


_SFT_RENDERERS = {
    "bedrock-converse": _to_bedrock_converse,
    "bedrock-claude": _to_bedrock_claude,
    "vertex": _to_vertex,
    "alpaca": _to_alpaca,
    "bedrock-prompt-completion": _to_prompt_completion,
}


def to_format(example: Example | PreferenceExample, to: str
              ) -> tuple[dict | None, list[ConvertWarning]]:
    """Render one example in target format `to`; `(None, warnings)` when it cannot be."""
    to = canonical_target(to)
    warn = _Warn()
    if isinstance(example, PreferenceExample):
        if to in ("openai", "openai-dpo"):
            try:
                return _to_openai_dpo(example, warn), warn.items
            except _Refuse:
                return None, warn.items
        if to == "trl-dpo":
            return _to_trl_dpo(example, warn), warn.items
        warn("lossy_rejected", f"{to} is a supervised format: the preference pair was written as "
                               "prompt + chosen reply; the rejected reply was dropped")
        example = Example(example.prompt + example.chosen, example.tools, line=example.line)
    elif to in ("openai-dpo", "trl-dpo"):
        warn("not_preference", f"{to} needs preference pairs (chosen and rejected replies); this "
                               "line is a supervised example")
        return None, warn.items
    try:
        if to == "messages":
            return _to_messages(example, False, warn), warn.items
        if to == "openai":
            return _to_messages(example, True, warn), warn.items
        return _SFT_RENDERERS[to](example, warn), warn.items
    except _Refuse:
        return None, warn.items


def from_format(obj: Any, fmt: str = "auto", line: int = 0
                ) -> tuple[Example | PreferenceExample | None, list[Problem]]:
    """The inverse of `to_format`: one parsed line (any input format, or a target's output)
    back to a canonical example, with the problems found; `(None, problems)` when it is not a
    usable example."""
    from .formats import canonical_format, detect_format, normalize

    problems: list[Problem] = []
    # `openai` holds chat lines or DPO lines: tell them apart by their keys
    name = detect_format(obj) if fmt in ("auto", "openai") else (
        canonical_format(READ_BACK_FORMAT.get(fmt, fmt)) or canonical_format(fmt))
    if name is None:
        problems.append(Problem(code="unknown_format", line=line or None,
                                message="cannot tell the data format of this line"))
        return None, problems
    return normalize(obj, name, line, problems), problems


# ---------------------------------------------------------------------------------------------

@dataclass
class ConvertResult:
    """What `convert_file` did. `warnings` has one Problem per (line, code); `errors` lists lines
    that were not written (unreadable, structurally broken or not expressible in the target)."""

    source: str
    target: str
    output: str
    format: str | None = None  # detected input format
    examples: int = 0  # examples read and normalized
    written: int = 0
    warnings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warning_counts: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Lines not written (a line may have several errors)."""
        return len({(p.line, p.file) for p in self.errors})

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "output": self.output,
                "format": self.format, "examples": self.examples, "written": self.written,
                "dropped": self.dropped, "warning_counts": self.warning_counts,
                "warnings": [p.to_dict() for p in self.warnings],
                "errors": [p.to_dict() for p in self.errors]}


def _open_out(path: Path, gz: bool):
    if gz:
        return gzip.open(path, "wb")
    return open(path, "wb", buffering=1 << 20)


def _recheck(data: dict, line: int, checker: Any) -> list[Problem]:
    """The errors `validate` would report for one written line: read back in the format it is
    detected as, then the generic per-example checks."""
    from .formats import detect_format, normalize

    problems: list[Problem] = []
    name = detect_format(data)
    if name is None:
        return [Problem(code="unknown_format", line=line,
                        message="the converted line has the keys of no known format")]
    back = normalize(data, name, line, problems)
    errors = [p for p in problems if p.severity == "error"]
    if back is not None and not errors:
        errors = checker.errors(back)
    return errors


def convert_file(src: str | os.PathLike, to: str, dst: str | os.PathLike,
                 report: Report | None = None, fmt: str = "auto",
                 max_warnings: int | None = None) -> ConvertResult:
    """Convert every example of `src` into `to`, written to `dst` (`.gz` compresses).

    Lines with structural errors, examples the target cannot express, and lines that would not
    pass `validate` once converted (read back and re-checked) are skipped and listed in
    `result.errors`; every lossy change, and every warning found while reading (e.g. an unknown
    field, which is not carried over), is a warning with its line. Problems also go to `report`
    when given. `src` may also be CSV/TSV with a header row, a JSON array or pretty-printed JSON.
    The output appears atomically (written to a temp file, then renamed).
    """
    from .dataset import load_examples
    from .validate import ExampleChecker

    to = canonical_target(to)
    src_p, dst_p = Path(src), Path(dst)
    if src_p.exists() and dst_p.exists() and src_p.resolve() == dst_p.resolve():
        raise DataError(f"refusing to overwrite the input file {src_p}",
                        hint="write the converted file somewhere else (-o OUT)")
    read_rep = Report(file=str(src_p))
    result = ConvertResult(source=str(src_p), target=to, output=str(dst_p))
    examples = load_examples(src_p, fmt=fmt, report=read_rep, other_shapes=True)
    checker = ExampleChecker(str(src_p))
    if dst_p.parent and not dst_p.parent.exists():
        dst_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst_p.with_name(dst_p.name + ".tmp")
    counts = result.warning_counts
    dumps = orjson.dumps

    def warning(p: Problem) -> None:
        counts[p.code] = counts.get(p.code, 0) + 1
        if max_warnings is None or len(result.warnings) < max_warnings:
            result.warnings.append(p)
        if report is not None:
            report.add(p)

    try:
        with _open_out(tmp, dst_p.suffix == ".gz") as out:
            for ex in examples:
                result.examples += 1
                data, warns = to_format(ex, to)
                refused: list[Problem] = []
                if data is not None:
                    refused = [Problem(code=e.code, severity="error", line=ex.line,
                                       file=str(src_p), path=e.path, hint=e.hint,
                                       message=f"not written: as {to}, this line would be "
                                               f"invalid: {e.message}")
                               for e in _recheck(data, ex.line, checker)]
                for w in warns:
                    if data is None:
                        hint = ("convert preference data to a preference target (openai-dpo, "
                                "trl-dpo) and SFT data to the others")
                        if w.code == "dropped_content":
                            hint = "choose a target that carries this content, or remove it"
                        p = Problem(code=w.code, message=f"not written: {w}", severity="error",
                                    line=ex.line, file=str(src_p), hint=hint)
                        result.errors.append(p)
                        if report is not None:
                            report.add(p)
                    elif not refused:
                        warning(Problem(code=w.code, message=str(w), severity="warning",
                                        line=ex.line, file=str(src_p)))
                if refused:
                    result.errors.extend(refused)
                    if report is not None:
                        for p in refused:
                            report.add(p)
                    continue
                if data is not None:
                    out.write(dumps(data))
                    out.write(b"\n")
                    result.written += 1
        if result.written or not result.examples or not result.errors:
            os.replace(tmp, dst_p)  # an output with nothing in it (all lines refused) is not kept
    finally:
        if tmp.exists():
            tmp.unlink()
    result.format = read_rep.format
    # problems found while reading: errors mean the line was skipped; warnings (unknown fields,
    # untyped parts) say what the output does not carry
    result.errors.extend(p for p in read_rep.problems if p.severity == "error")
    result.errors.sort(key=lambda p: p.line or 0)
    read_warnings = [p for p in read_rep.problems if p.severity == "warning"]
    if read_warnings:
        for p in read_warnings:
            counts[p.code] = counts.get(p.code, 0) + 1
            if max_warnings is None or len(result.warnings) < max_warnings:
                result.warnings.append(p)
        result.warnings.sort(key=lambda p: p.line or 0)
    if report is not None:
        report.problems.extend(read_rep.problems)
        report.examples += read_rep.examples
        report.format = report.format or read_rep.format
    return result
