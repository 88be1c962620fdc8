"""Validate a dataset file: every problem, not the first, plus token statistics per target.

`validate_file(path, targets=["openai:gpt-4.1-mini-2025-04-14", ...])` streams the file through
`dataset.load_examples` (which reports structural problems: bad JSON, missing or mistyped fields,
mixed formats) and runs on every example:

- generic checks: unknown roles, no assistant turn, `weight` not 0/1 or on a non-assistant
  message, tool messages without a matching earlier `tool_call_id`, control characters, exact and
  normalized (whitespace/case) duplicates, empty file;
- per-target checks driven by the catalog (`ModelInfo.limits` / `.rules`): example counts,
  tokens per example against the limit (truncated or rejected, as the vendor does), strict
  user/assistant alternation, reserved strings, plain-string content, and features the target
  cannot take (tools, images, weights, DPO, multi-turn).

Performance: token counting runs in worker threads over bounded chunks while the main thread
parses and checks (tiktoken releases the GIL). For tiktoken encodings a chunk's texts are joined
with `<|endoftext|>` and encoded in ONE call into a token buffer; the separator's positions give
every text's exact count (a special token splits the text exactly as separate `encode_ordinary`
calls would), which avoids a million GIL round trips and a Python int per token. The counting
thread runs only that GIL-free call; joining and splitting stay on the main thread. Duplicate
keys are 8-byte hashes in compact open-addressing tables (same equivalence as unitune.data.keys);
no text is kept once its chunk is counted, so memory grows by ~70 bytes an example at most.
"""
from __future__ import annotations

import os
import re
from array import array
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import SpecError
from ..tokens import LONG_TEXT_CHARS
from .example import ROLES, PreferenceExample, has_non_text, text_of
from .keys import normalized_parts
from .report import Problem, Report

# C0 controls except tab/newline/carriage return, DEL, and C1 controls.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ROLESET = frozenset(ROLES)
_PLAIN_ROLES = frozenset(("user", "assistant", "system"))
_SEP = "<|endoftext|>"

HINTS = {
    "empty_file": "the file has no examples; check you passed the right file",
    "unknown_role": "roles must be system, user, assistant or tool",
    "no_assistant": "every training example needs at least one assistant reply to learn from",
    "bad_weight": "`weight` is 0 (don't train on this reply) or 1, and only on assistant messages",
    "orphan_tool_message": "a tool message must answer an earlier assistant tool call: give it "
                           "that call's `id` as `tool_call_id`",
    "control_characters": "strip control characters (often left by copy-paste or bad decoding)",
    "duplicate_example": "remove duplicates with `unitune dedupe FILE`",
    "near_duplicate": "the same text up to whitespace/case; `unitune dedupe FILE --normalized`",
    "too_few_examples": "add examples (vendors recommend 50-100 or more for visible effect)",
    "too_many_examples": "split the data or sample it down (`unitune split`)",
    "too_many_tokens": "shorten the example or split the conversation",
    "role_order": "this target needs user/assistant turns strictly alternating, starting with "
                  "user and ending with assistant (one optional system prompt first)",
    "reserved_string": "reword the text: the vendor rejects records containing this marker",
    "plain_string_content": "use plain string content (no content parts) for this target",
    "dropped_field": "the field has no equivalent in this target's format and is dropped on "
                     "conversion",
    "unsupported_feature": "remove the feature or choose a target that supports it "
                           "(`unitune models`)",
    "unsupported_system": "the system prompt is folded into the first prompt on conversion",
    "multi_turn": "this target takes one prompt and one completion; split the conversation",
    "unknown_target": "run `unitune models` for the catalog",
}


# ---------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    spec: str  # "backend:model" as the user wrote it
    info: Any  # catalog ModelInfo
    group: "TokenGroup | None" = None
    over_limit: int = 0
    reserved_re: re.Pattern | None = None
    simple: bool = False  # only feature checks apply (set by the Validator)


def parse_target(spec: str):
    """`backend:model` → catalog ModelInfo; SpecError listing known models when unknown."""
    from ..catalog import find_model, models

    backend, sep, model = spec.partition(":")
    if not sep or not backend or not model:
        raise SpecError(f"target {spec!r} is not BACKEND:MODEL",
                        hint="e.g. --target openai:gpt-4.1-mini-2025-04-14")
    info = find_model(backend, model)
    if info is None:
        known = [m.model for m in models(backend)]
        if not known:
            backends = sorted({m.backend for m in models()})
            raise SpecError(f"unknown backend {backend!r} in target {spec!r}",
                            hint=f"known backends: {', '.join(backends) or 'none'}")
        raise SpecError(f"unknown {backend} model {model!r}",
                        hint=f"known {backend} models: {', '.join(known)} (`unitune models "
                             f"{backend}`)")
    return info


def resolve_targets(targets: Iterable[Any] | None) -> list[Target]:
    out = []
    for t in targets or ():
        if isinstance(t, str):
            out.append(Target(t, parse_target(t)))
        else:  # a ModelInfo
            out.append(Target(f"{t.backend}:{t.model}", t))
    return out


# ---------------------------------------------------------------------------------------------
# Token counting in worker threads


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _split_counts(buffer: Any, sep_id: int, ntexts: array, assistant: bytearray
                  ) -> tuple[list[int], int]:
    """Per-example token counts and the assistant share from the token buffer of a chunk whose
    texts were joined with the separator token (vectorized; runs on the main thread)."""
    import numpy as np

    toks = np.frombuffer(buffer, dtype=np.uint32)
    pos = np.flatnonzero(toks == sep_id)
    bounds = np.empty(len(pos) + 2, dtype=np.int64)
    bounds[0] = -1
    bounds[1:-1] = pos
    bounds[-1] = len(toks)
    per_text = np.diff(bounds) - 1
    cum = np.zeros(len(per_text) + 1, dtype=np.int64)
    np.cumsum(per_text, out=cum[1:])
    n = np.frombuffer(ntexts, dtype=np.uint32)
    ends = np.cumsum(n, dtype=np.int64)
    totals = (cum[ends] - cum[ends - n]).tolist()
    mask = np.frombuffer(assistant, dtype=np.bool_)
    return totals, int(per_text[mask].sum())


def _count_texts(counter: Any, texts: list[str], ntexts: array, assistant: bytearray
                 ) -> tuple[list[int], int]:
    """Per-example counts one text at a time (estimates, HF tokenizers, odd texts)."""
    count = counter.count
    counts = [count(t) for t in texts]
    totals = []
    i = 0
    for k in ntexts:
        totals.append(sum(counts[i:i + k]))
        i += k
    return totals, sum(c for c, a in zip(counts, assistant) if a)


def _joined(texts: list[str]) -> str | None:
    """The chunk's texts joined by the separator token, or None when a text contains it."""
    joined = _SEP.join(texts)
    return joined if joined.count(_SEP) == len(texts) - 1 else None


def _count_chunk(counter: Any, core: Any, sep_id: int | None, texts: list[str],
                 ntexts: array, assistant: bytearray) -> tuple[list[int], int]:
    """Exact content tokens per example of one chunk and the assistant share."""
    if core is not None and texts:
        joined = _joined(texts)
        if joined is not None:
            buffer = core.encode_to_tiktoken_buffer(joined, {_SEP})
            return _split_counts(buffer, sep_id, ntexts, assistant)  # type: ignore[arg-type]
    return _count_texts(counter, texts, ntexts, assistant)


class TokenGroup:
    """Targets sharing one tokenizer and framing: texts are counted once for all of them."""

    def __init__(self, counter: Any, framing: Any, chunk_chars: int) -> None:
        self.counter = counter
        self.framing = framing
        self.targets: list[Target] = []
        self.core = None
        self.sep_id = None
        enc = getattr(counter, "encoding", None)
        if enc is not None and hasattr(enc, "_core_bpe") and _SEP in enc.special_tokens_set:
            try:
                import numpy  # noqa: F401

                self.core = enc._core_bpe
                if not hasattr(self.core, "encode_to_tiktoken_buffer"):
                    self.core = None
                self.sep_id = enc.encode_single_token(_SEP)
            except ImportError:
                self.core = None
        self.chunk_chars = chunk_chars
        # text -> tokens for system prompts; dropped (None) when they turn out to be unique
        self.system_cache: dict[str, int] | None = {}
        self._misses = 0
        self.tokens = array("I")  # per example, in file order
        self.assistant_tokens = 0
        self._reset()

    def system_tokens(self, texts: list[str]) -> int:
        """Tokens of system prompts, counted once per distinct text (in this thread)."""
        cache = self.system_cache
        total = 0
        for t in texts:
            n = cache.get(t)  # type: ignore[union-attr]
            if n is None:
                n = self.counter.count(t)
                self._misses += 1
                if self._misses > 256 and self._misses * 2 > len(self.tokens) + len(self.lines):
                    self.system_cache = None  # mostly distinct: count them in the workers
                elif len(cache) < 4096 and len(t) <= 1 << 14:  # type: ignore[arg-type]
                    cache[t] = n  # type: ignore[index]
            total += n
        return total

    def _reset(self) -> None:
        self.texts: list[str] = []
        self.ntexts = array("I")
        self.assistant = bytearray()
        self.overheads = array("I")
        self.lines = array("I")
        self.chars = 0

    def add(self, line: int, texts: list[str], assistant: list[bool], overhead: int) -> bool:
        """Queue one example; True when the chunk is full."""
        chars = 0
        for t in texts:
            chars += len(t)
        if chars > LONG_TEXT_CHARS:
            texts, assistant, overhead = self._count_long(texts, assistant, overhead)
            chars = sum(map(len, texts))
        self.texts.extend(texts)
        self.assistant.extend(assistant)
        self.ntexts.append(len(texts))
        self.overheads.append(overhead)
        self.lines.append(line)
        self.chars += chars
        return self.chars >= self.chunk_chars

    def _count_long(self, texts: list[str], assistant: list[bool], overhead: int
                    ) -> tuple[list[str], list[bool], int]:
        """Count the texts longer than LONG_TEXT_CHARS here, segment by segment (bounded
        memory, see tokens.segments), into the example's overhead; the rest stay queued."""
        keep, flags = [], []
        for t, a in zip(texts, assistant):
            if len(t) > LONG_TEXT_CHARS:
                n = self.counter.count(t)
                overhead += n
                if a:
                    self.assistant_tokens += n
            else:
                keep.append(t)
                flags.append(a)
        return keep, flags, overhead

    def take(self):
        job = (self.texts, self.ntexts, self.assistant, self.overheads, self.lines)
        self._reset()
        return job


# ---------------------------------------------------------------------------------------------
# The validator


def normalized_hash(example: Any) -> int:
    """64-bit key with the equivalence of `keys.normalized_key`: the same parts, hashed as a tuple
    in C instead of joined, encoded and digested (the validator computes one per example, on its
    critical path)."""
    return hash(tuple(normalized_parts(example))) & 0xFFFFFFFFFFFFFFFF


class DigestTable:
    """Open-addressing map from 8-byte digests to the first line they were seen on.

    12 bytes a slot at load 0.375-0.75 (16-32 bytes an example) instead of ~100 for a dict of
    ints, so duplicate detection over millions of lines stays within the memory budget.
    """

    __slots__ = ("keys", "lines", "mask", "n")

    def __init__(self, capacity: int = 1 << 12) -> None:
        self.keys = array("Q", bytes(8 * capacity))
        self.lines = array("I", bytes(4 * capacity))
        self.mask = capacity - 1
        self.n = 0

    def first_line(self, digest: bytes, line: int) -> int:
        """The line `digest` was first seen on, or 0 after recording it for `line`."""
        return self.first_line_int(int.from_bytes(digest[:8], "little"), line)

    def first_line_int(self, key: int, line: int) -> int:
        """`first_line` for a 64-bit integer key."""
        k = key | 1  # 0 marks an empty slot
        keys, mask = self.keys, self.mask
        i = k & mask
        while True:
            cur = keys[i]
            if cur == k:
                return self.lines[i]
            if cur == 0:
                keys[i] = k
                self.lines[i] = line
                self.n += 1
                if self.n * 4 > mask * 3:  # load factor 0.75
                    self._grow()
                return 0
            i = (i + 1) & mask

    def _grow(self) -> None:
        old_keys, old_lines = self.keys, self.lines
        cap = (self.mask + 1) * 2
        keys = array("Q", bytes(8 * cap))
        lines = array("I", bytes(4 * cap))
        mask = cap - 1
        for k, ln in zip(old_keys, old_lines):
            if k:
                i = k & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = k
                lines[i] = ln
        self.keys, self.lines, self.mask = keys, lines, mask


class _Features:
    """What the target checks need to know about one example (computed once)."""

    __slots__ = ("has_tools", "has_images", "has_list_content", "weight_zero", "has_system",
                 "has_name", "alternation", "exchanges", "preference", "n_messages", "n_names",
                 "n_calls", "texts", "flags", "system_texts", "all_plain", "plain_contents",
                 "plain_key")

    def __init__(self) -> None:
        self.has_tools = self.has_images = self.has_list_content = False
        self.weight_zero = self.has_system = self.has_name = self.preference = False
        self.alternation: str | None = None  # None: fine; else why not (for strict targets)
        self.exchanges = self.n_messages = self.n_names = self.n_calls = 0
        self.texts: list[str] = []  # tokenized texts, as tokens.example_parts (minus system)
        self.flags: list[bool] = []  # per text: from an assistant message
        # system prompts are counted apart: most datasets repeat a few of them on every line
        self.system_texts: list[str] = []
        self.all_plain = True  # every message took the fast path (role + text only)
        self.plain_contents: list[str] = []
        self.plain_key: int | None = None


def _alternation_problem(roles: list[str]) -> str | None:
    body = roles
    if body and body[0] == "system":
        body = body[1:]
    if "system" in body:
        return f"a system message at position {roles.index('system', 1)}; only one leading " \
               f"system prompt is allowed"
    if len(body) < 2:
        return f"{len(body)} user/assistant message(s); at least one user and one assistant turn"
    if body[0] != "user":
        return f"the conversation starts with {body[0]!r}, not 'user'"
    for i in range(1, len(body)):
        if body[i] == body[i - 1]:
            return f"two {body[i]!r} messages in a row (turns {i} and {i + 1})"
    if body[-1] != "assistant":
        return f"the conversation ends with {body[-1]!r}, not 'assistant'"
    return None


class Validator:
    def __init__(self, path: Any, targets: list[Target], report: Report,
                 workers: int | None = None, chunk_chars: int = 2 << 20) -> None:
        self.path = path
        self.file = str(path)
        self.targets = targets
        self.report = report
        self.exact = DigestTable()  # exact key -> first line
        self.normal = DigestTable()  # normalized key -> first line
        self.turns = 0
        self.role_counts: Counter = Counter()
        self.duplicates = 0
        self.near_duplicates = 0
        self.n = 0
        self.preference = 0
        # More than 4 counting threads only cost memory: the main thread (parsing, checks,
        # duplicate keys) is the bottleneck by then.
        self.workers = workers or max(1, min(4, usable_cpus()))
        from .. import tokens as tk

        self.groups: list[TokenGroup] = []
        by_key: dict[tuple, TokenGroup] = {}
        for t in targets:
            tokenizer = t.info.tokenizer
            framing = tk.framing_for(t.info)
            key = (tokenizer, framing)
            g = by_key.get(key)
            if g is None:
                g = by_key[key] = TokenGroup(tk.counter_for(t.info), framing, chunk_chars)
                self.groups.append(g)
            g.targets.append(t)
            t.group = g
            rules = t.info.rules
            if rules.reserved_strings:
                t.reserved_re = re.compile("|".join(map(re.escape, rules.reserved_strings)))
            t.simple = (t.reserved_re is None and not rules.strict_alternation and rules.system
                        and rules.multi_turn)
        self._tool_text = tk.tool_text
        self.strict_targets = any(t.info.rules.strict_alternation for t in targets)
        self.pool = None
        self.pending: deque = deque()
        self.max_pending = self.workers + 1

    # problems ----------------------------------------------------------------------------------
    def _p(self, severity: str, code: str, line: int | None, message: str, path: str | None = None,
           target: str | None = None, hint: str | None = None) -> None:
        self.report.add(Problem(code=code, message=message, severity=severity,  # type: ignore
                                line=line, path=path, file=self.file, target=target,
                                hint=hint or HINTS.get(code)))

    # main loop ---------------------------------------------------------------------------------
    def run(self) -> Report:
        from .dataset import load_examples
        from .keys import exact_key

        report = self.report
        exact_first = self.exact.first_line
        exact_first_int = self.exact.first_line_int
        normal_first_int = self.normal.first_line_int
        if self.groups:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="unitune-tokens")
        import sys

        switch = sys.getswitchinterval()
        if self.groups:
            sys.setswitchinterval(min(switch, 0.001))  # hand the GIL to finished encodes sooner
        try:
            for ex in load_examples(self.path, report=report):
                self.n += 1
                feats = self._generic(ex)
                line = ex.line
                if feats.plain_key is not None:
                    first = exact_first_int(feats.plain_key, line)
                else:
                    first = exact_first(exact_key(ex), line)
                if first:
                    self.duplicates += 1
                    self._p("warning", "duplicate_example", line,
                            f"exact duplicate of line {first}")
                else:
                    first = normal_first_int(normalized_hash(ex), line)
                    if first:
                        self.near_duplicates += 1
                        self._p("warning", "near_duplicate", line,
                                f"same as line {first} up to whitespace and case")
                if self.targets:
                    self._targets(ex, feats)
            self._drain(0)
        finally:
            sys.setswitchinterval(switch)
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
        self._finish()
        return report

    # generic checks ----------------------------------------------------------------------------
    def _generic(self, ex: Any) -> _Features:
        f = _Features()
        line = ex.line
        if type(ex) is PreferenceExample:
            self.preference += 1
            f.preference = True
            groups = (("prompt", ex.prompt), ("chosen", ex.chosen), ("rejected", ex.rejected))
            for side in ("chosen", "rejected"):
                msgs = getattr(ex, side)
                if not any(m.role == "assistant" for m in msgs):
                    self._p("error", "no_assistant", line, f"the {side} side has no assistant "
                                                           f"message", path=side)
        else:
            groups = (("messages", ex.messages),)
        texts = f.texts
        flags = f.flags
        system_texts = f.system_texts
        roles_all: list[str] = []
        add_role = roles_all.append
        add_plain = f.plain_contents.append
        plain = _PLAIN_ROLES
        slow = self._slow_message
        state: dict = {}
        for gname, msgs in groups:
            for i, m in enumerate(msgs):
                role = m.role
                add_role(role)
                c = m.content
                # fast path: a plain text message, nothing else to check
                if type(c) is str and role in plain and m.weight is None and m.name is None \
                        and m.tool_calls is None and m.tool_call_id is None:
                    add_plain(c)
                    if c:
                        if role == "system":
                            system_texts.append(c)
                        else:
                            texts.append(c)
                            flags.append(role == "assistant")
                    continue
                f.all_plain = False
                slow(m, i, gname, line, f, state)
            f.n_messages += len(msgs)
        if ex.tools is not None or getattr(ex, "parallel_tool_calls", None) is not None:
            f.all_plain = False
        if ex.tools:
            f.has_tools = True
            texts.append(self._tool_text(ex.tools))
            flags.append(False)
        self.role_counts.update(roles_all)
        if system_texts:
            f.has_system = True
        control = _CONTROL_RE.search
        if any(map(control, texts)) or any(map(control, system_texts)):
            self._control_problems(groups, line)
        if f.all_plain and not f.preference:
            # the exact-duplicate key of an example of plain (role, text) messages: hashing the
            # pairs in C gives the same equivalence as keys.exact_key for such examples, cheaper
            f.plain_key = hash((*roles_all, *f.plain_contents)) & 0xFFFFFFFFFFFFFFFF
        if not f.preference:
            if "assistant" not in roles_all:
                self._p("error", "no_assistant", line, "no assistant message to learn from",
                        path="messages")
            self.turns += roles_all.count("assistant")
            if self.strict_targets:
                f.alternation = _alternation_problem(roles_all)
            f.exchanges = roles_all.count("user")
        else:
            self.turns += 1
        return f

    def _slow_message(self, m: Any, i: int, gname: str, line: int, f: _Features,
                      state: dict) -> None:
        """Every check on a message that is not plain text (tools, weights, parts, odd roles)."""
        role = m.role
        texts, flags = f.texts, f.flags
        if role not in _ROLESET:
            self._p("error", "unknown_role", line, f"unknown role {role!r}",
                    path=f"{gname}[{i}].role")
        elif role == "assistant":
            if m.tool_calls:
                f.has_tools = True
                ids = state.setdefault("call_ids", set())
                for c in m.tool_calls:
                    if c.id:
                        ids.add(c.id)
        elif role == "tool":
            f.has_tools = True
            if not m.tool_call_id:
                self._p("error", "orphan_tool_message", line,
                        "tool message without `tool_call_id`", path=f"{gname}[{i}].tool_call_id")
            elif m.tool_call_id not in state.get("call_ids", ()):
                self._p("error", "orphan_tool_message", line,
                        f"tool_call_id {m.tool_call_id!r} matches no earlier assistant "
                        f"tool call", path=f"{gname}[{i}].tool_call_id")
        w = m.weight
        if w is not None:
            if role != "assistant":
                self._p("error", "bad_weight", line,
                        f"`weight` on a {role} message (only assistant messages take one)",
                        path=f"{gname}[{i}].weight")
            elif w != 0 and w != 1:
                self._p("error", "bad_weight", line, f"`weight` is {w!r}, not 0 or 1",
                        path=f"{gname}[{i}].weight")
            elif w == 0:
                f.weight_zero = True
        is_a = role == "assistant"
        c = m.content
        if c is not None:
            if type(c) is str:
                text = c
            else:
                f.has_list_content = True
                if has_non_text(c):
                    f.has_images = True
                text = text_of(c)
            if text:
                if role == "system":
                    f.system_texts.append(text)
                else:
                    texts.append(text)
                    flags.append(is_a)
        # same order as tokens.example_parts: content, name, each call's name + args
        if m.name:
            f.has_name = True
            f.n_names += 1
            texts.append(m.name)
            flags.append(is_a)
        if m.tool_calls:
            for call in m.tool_calls:
                f.n_calls += 1
                texts.append(call.name or "")
                args = call.arguments
                texts.append(args if type(args) is str else str(args))
                flags.append(is_a)
                flags.append(is_a)

    def _control_problems(self, groups: Any, line: int) -> None:
        control = _CONTROL_RE.search
        for gname, msgs in groups:
            for i, m in enumerate(msgs):
                for where, text in (("content", text_of(m.content)), ("name", m.name or ""),
                                    *((f"tool_calls[{k}].function.arguments", c.arguments)
                                      for k, c in enumerate(m.tool_calls or ()))):
                    hit = control(text) if type(text) is str else None
                    if hit is not None:
                        self._p("warning", "control_characters", line,
                                f"control character U+{ord(hit.group()):04X} at offset "
                                f"{hit.start()}", path=f"{gname}[{i}].{where}")

    # target checks -----------------------------------------------------------------------------
    def _targets(self, ex: Any, f: _Features) -> None:
        line = ex.line
        plain = not (f.preference or f.has_tools or f.has_images or f.weight_zero
                     or f.has_list_content or f.has_name)
        for t in self.targets:
            if plain and t.simple:  # nothing in a plain example can break this target's rules
                continue
            rules = t.info.rules
            spec = t.spec
            if f.preference and "dpo" not in t.info.methods:
                self._p("error", "unsupported_feature", line,
                        f"{spec} does not train on preference pairs (DPO)", target=spec,
                        hint="use an SFT dataset, or a target whose methods include dpo")
            if f.has_tools and not rules.tools:
                self._p("error", "unsupported_feature", line,
                        f"{spec} cannot train on tool definitions or tool calls (its "
                        f"{rules.format} format has no place for them)", target=spec)
            if f.has_images and not rules.images:
                self._p("error", "unsupported_feature", line,
                        f"{spec} cannot train on images or other non-text content", target=spec)
            if f.weight_zero and not rules.weights:
                self._p("error", "unsupported_feature", line,
                        f"{spec} has no per-message `weight`: a weight-0 reply would be trained "
                        f"on", target=spec,
                        hint="drop the weight-0 assistant turn, or train on OpenAI")
            if f.has_system and not rules.system:
                self._p("warning", "unsupported_system", line,
                        f"{spec} has no system prompt ({rules.format})", target=spec)
            if rules.strict_alternation and f.alternation and not f.preference:
                self._p("error", "role_order", line, f"{spec}: {f.alternation}", target=spec,
                        path="messages")
            if not rules.multi_turn and f.exchanges > 1:
                self._p("error", "multi_turn", line,
                        f"{spec} takes one prompt and one completion; this example has "
                        f"{f.exchanges} user turns", target=spec)
            if rules.plain_string_content and f.has_list_content and not f.has_images:
                self._p("warning", "plain_string_content", line,
                        f"{spec} takes plain string content; text parts will be joined",
                        target=spec)
            if rules.no_extra_keys and f.has_name:
                self._p("warning", "dropped_field", line,
                        f"{spec} takes no extra keys: message `name` is dropped", target=spec)
            if t.reserved_re is not None:
                search = t.reserved_re.search
                for text in (*f.system_texts, *f.texts):
                    hit = search(text)
                    if hit is not None:
                        self._p("error", "reserved_string", line,
                                f"{spec} rejects records containing {hit.group()!r}", target=spec)
                        break
        for g in self.groups:
            overhead = g.framing.overhead(f.n_messages, f.n_names, f.n_calls)
            texts, flags = f.texts, f.flags
            if f.system_texts:
                if g.system_cache is not None:
                    overhead += g.system_tokens(f.system_texts)
                else:
                    texts = texts + f.system_texts
                    flags = flags + [False] * len(f.system_texts)
            if g.add(line, texts, flags, overhead):
                self._submit(g)

    def _submit(self, g: TokenGroup) -> None:
        """Hand a full chunk to a counting thread. For tiktoken the thread runs ONLY the encode
        call (which releases the GIL): joining and splitting stay on this thread, so a worker
        needs the GIL about three times per chunk and never waits long for it."""
        self.report.enforce_limit()
        texts, ntexts, assistant, overheads, lines = g.take()
        joined = _joined(texts) if g.core is not None and texts else None
        if joined is not None:
            fut = self.pool.submit(g.core.encode_to_tiktoken_buffer, joined, {_SEP})
        else:
            fut = self.pool.submit(_count_texts, g.counter, texts, ntexts, assistant)
        self.pending.append((g, fut, joined, ntexts, assistant, overheads, lines))
        self._drain(self.max_pending)

    def _drain(self, keep: int) -> None:
        if keep == 0:
            for g in self.groups:
                if g.lines:
                    self._submit(g)
        while len(self.pending) > keep:
            g, fut, joined, ntexts, assistant, overheads, lines = self.pending.popleft()
            if joined is not None:
                try:
                    buffer = fut.result()
                except UnicodeEncodeError:  # lone surrogates: replace them as tiktoken does
                    joined = joined.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                    buffer = g.core.encode_to_tiktoken_buffer(joined, {_SEP})
                del joined
                totals, assistant_tokens = _split_counts(buffer, g.sep_id, ntexts, assistant)
            else:
                totals, assistant_tokens = fut.result()
            g.assistant_tokens += assistant_tokens
            for total, overhead, line in zip(totals, overheads, lines):
                n = total + overhead
                g.tokens.append(n)
                for t in g.targets:
                    limit = t.info.limits.tokens_per_example
                    if limit and n > limit:
                        t.over_limit += 1
                        if t.info.limits.truncates:
                            self._p("warning", "too_many_tokens", line,
                                    f"{n} tokens > {t.spec}'s limit of {limit}: the vendor "
                                    f"truncates it (the end is not trained on)", target=t.spec)
                        else:
                            self._p("error", "too_many_tokens", line,
                                    f"{n} tokens > {t.spec}'s limit of {limit}: the vendor "
                                    f"rejects it", target=t.spec)

    # end of file -------------------------------------------------------------------------------
    def _finish(self) -> None:
        report = self.report
        report.enforce_limit()
        report.targets = [t.spec for t in self.targets]
        if report.examples == 0:
            self._p("error", "empty_file", None, f"{self.file} holds no examples")
        n = self.n
        for t in self.targets:
            lim = t.info.limits
            if n and lim.min_examples and n < lim.min_examples:
                self._p("error", "too_few_examples", None,
                        f"{n} valid examples; {t.spec} needs at least {lim.min_examples}",
                        target=t.spec)
            if lim.max_examples and n > lim.max_examples:
                self._p("error", "too_many_examples", None,
                        f"{n} examples; {t.spec} takes at most {lim.max_examples}",
                        target=t.spec)
        # stable order: file-level problems first, then by line
        report.problems.sort(key=lambda p: (p.line or 0))
        from .stats import build_stats

        report.stats = build_stats(self)


class ExampleChecker:
    """The generic per-example checks of `validate_file` (roles, assistant turn, weights, tool
    messages), one example at a time: `convert` re-checks what it writes with it and `dedupe`
    uses it to prefer a valid example over an invalid duplicate. File-level checks (duplicates,
    empty file, targets) are not part of it."""

    def __init__(self, file: str | None = None) -> None:
        self.report = Report(file=file)
        self._validator = Validator(file or "-", [], self.report)

    def problems(self, example: Any) -> list[Problem]:
        """Every problem the generic checks find in `example` (errors and warnings)."""
        problems = self.report.problems
        start = len(problems)
        self._validator._generic(example)
        found = problems[start:]
        del problems[start:]
        return found

    def errors(self, example: Any) -> list[Problem]:
        return [p for p in self.problems(example) if p.severity == "error"]


def validate_file(path: Any, targets: Iterable[Any] | None = None,
                  max_problems: int | None = None, report: Report | None = None,
                  workers: int | None = None, *, quality: bool = False,
                  task: str | None = None, validation: Any = None,
                  quality_limit: int | None = None) -> Report:
    """Validate `path` against the generic checks and each `backend:model` target.

    Returns the Report (problems sorted by line, `report.stats` filled). Unknown targets raise
    SpecError (listing the known models) before the file is read; an unreadable file raises
    DataError. `max_problems` caps the problems kept (the summary still counts them all).

    With `quality` (or a `task` / `validation` file) the data-quality checks of
    `unitune.data.quality` run too: their findings are added as warnings (never errors) and their
    figures go to `report.stats["quality"]` (see `add_quality`).
    """
    resolved = resolve_targets(targets)
    if report is None:
        report = Report(file=str(path))
    if report.file is None:
        report.file = str(path)
    if max_problems is not None:
        report.max_problems = max_problems
    Validator(path, resolved, report, workers=workers).run()
    if quality or task or validation is not None:
        q = add_quality(report, path, task=task, validation=validation, limit=quality_limit)
        report.stats["quality"] = q.to_dict()
    return report


def add_quality(report: Report, path: Any, *, task: str | None = None, validation: Any = None,
                limit: int | None = None, fmt: str | None = None) -> Any:
    """Run the data-quality checks on `path` (leakage against `validation`; the guide's volume
    for `task`) and add their findings to `report` as warnings; returns the QualityReport.
    `limit` (default 100,000 examples) skips the similarity checks on larger files; 0 = none."""
    from .quality import (MAX_QUALITY_EXAMPLES, QualityReport, check_quality, quality_problems,
                          skipped_message)

    if task:
        from .quality import volume_tier

        try:
            volume_tier(task)
        except ValueError as exc:
            raise SpecError(str(exc), field="--task", hint="e.g. --task classification") \
                from None
    cap = MAX_QUALITY_EXAMPLES if limit is None else (None if limit == 0 else limit)
    known = report.stats.get("examples")
    if cap is not None and known is not None and known > cap:  # skip without reading it again
        q = QualityReport(examples=known, skipped=skipped_message(cap))
    else:
        q = check_quality(path, validation=validation, task=task,
                          fmt=fmt or report.format or "auto", limit=cap)
    for problem in quality_problems(q, file=report.file):
        report.add(problem)
    report.problems.sort(key=lambda p: (p.line or 0))
    return q


def target_problems(path: Any, target: str, max_problems: int = 500) -> list[Problem]:
    """The problems of `path` for one `backend:model` target, each naming the file: what a
    backend's own check refuses a job on. A model the catalog does not list gets the generic
    checks only."""
    try:
        report = validate_file(path, targets=[target], max_problems=max_problems)
    except SpecError:  # a model the catalog does not list: generic checks only
        report = validate_file(path, targets=None, max_problems=max_problems)
    for p in report.problems:
        if p.file is None:
            p.file = str(path)
    return list(report.problems)
