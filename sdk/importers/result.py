"""What an import produced: the unitune spec, and for every field of the source config what
became of it (mapped to a spec field, or not mapped and why), rendered as a commented YAML spec.

The YAML header lists every field that was not carried over, so the spec file itself says what
the original recipe did that this spec does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# Kinds of unmapped fields listed by name only (their reason is the same for all of them).
GROUPED = {
    "infrastructure": "about where the tool writes outputs, logs and uploads, not carried over "
                      "(unitune keeps each job's files in its job folder; `unitune export ID DIR` "
                      "copies the model)",
    "job-state": "describing that one run (id, status, results), not how to train",
    "default": "at the tool's default value, not carried over",
}


@dataclass
class Mapped:
    source: str  # field in the source config, e.g. "lora_r" or "method.dpo.hyperparameters.beta"
    target: str  # spec field, e.g. "adapter.r"
    value: Any  # the value written to the spec
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "target": self.target, "value": self.value}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Unmapped:
    source: str
    value: Any
    reason: str  # why unitune has no equivalent (or why it was not carried over)
    # unsupported | data | equivalent (unitune already does it) | infrastructure (outputs, logs,
    # uploads) | job-state (an OpenAI job's id/status/results) | default (the tool's default)
    kind: str = "unsupported"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "value": self.value, "reason": self.reason,
                "kind": self.kind}


@dataclass
class ImportResult:
    tool: str
    source: str  # the file read
    spec: dict[str, Any] = field(default_factory=dict)
    mapped: list[Mapped] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # keys present with no value (no setting)
    todo: list[str] = field(default_factory=list)  # steps left to the user
    data_steps: dict[str, str] = field(default_factory=dict)  # "train"/"validation" -> step
    notes: list[str] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------------
    def set(self, target: str, value: Any, source: str | None = None,
            note: str | None = None) -> None:
        """Write `value` at the dotted spec path `target`; record the mapping when `source`."""
        node = self.spec
        parts = target.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        if source is not None:
            self.mapped.append(Mapped(source, target, value, note))

    def get(self, target: str, default: Any = None) -> Any:
        node: Any = self.spec
        for part in target.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def skip(self, source: str, value: Any, reason: str, kind: str = "unsupported") -> None:
        self.unmapped.append(Unmapped(source, value, reason, kind))

    def account_for(self, config: dict[str, Any], used: set[str],
                    reasons: dict[str, str] | None = None) -> None:
        """Record the keys that were read but left no trace (a value that switches nothing on:
        `bf16: false`, `max_steps: -1`, `do_train: true`), so every field is accounted for."""
        seen = {_top(m.source) for m in self.mapped} | {_top(u.source) for u in self.unmapped} \
            | {_top(e) for e in self.empty}
        for key in config:
            if key in used and key not in seen:
                why = (reasons or {}).get(key, "nothing to set: this value is unitune's "
                                                "behaviour too")
                self.skip(key, config[key], why, kind="equivalent")

    def steps(self) -> list[str]:
        """What the user must do before training: data steps first."""
        return [self.data_steps[k] for k in sorted(self.data_steps)] + list(self.todo)

    # -- output --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "source": self.source, "spec": self.spec,
                "mapped": [m.to_dict() for m in self.mapped],
                "unmapped": [u.to_dict() for u in self.unmapped],
                "empty": list(self.empty), "todo": self.steps(), "notes": list(self.notes)}

    def to_yaml(self, command: str | None = None) -> str:
        """The spec as YAML, preceded by comments: where it came from, what was not mapped and
        what is left to do."""
        import yaml

        lines = [f"# Imported from {self.tool} config {self.source}"
                 + (f" by `{command}`" if command else "") + "."]
        if self.steps():
            lines.append("#")
            lines.append("# Before training:")
            for step in self.steps():
                lines.extend(_comment_block(f"- {step}", "#   "))
        if self.notes:
            lines.append("#")
            lines.append("# Notes:")
            for note in self.notes:
                lines.extend(_comment_block(f"- {note}", "#   "))
        detailed = [u for u in self.unmapped if u.kind in ("unsupported", "data")]
        if detailed:
            lines.append("#")
            lines.append(f"# Not mapped ({len(detailed)} field(s); unitune has no equivalent or "
                         "does it another way):")
            for u in detailed:
                lines.extend(_comment_block(f"- {u.source}: {_short(u.value)} — {u.reason}",
                                            "#   "))
        same = [u for u in self.unmapped if u.kind == "equivalent"]
        if same:
            lines.append("#")
            lines.append("# Already unitune's behaviour:")
            for u in same:
                lines.extend(_comment_block(f"- {u.source}: {_short(u.value)} — {u.reason}",
                                            "#   "))
        for kind, label in GROUPED.items():
            names = [u.source for u in self.unmapped if u.kind == kind]
            if names:
                lines.append("#")
                lines.append(f"# {len(names)} field(s) {label}: " + ", ".join(names[:40])
                             + (" …" if len(names) > 40 else ""))
        body = yaml.safe_dump(self.spec, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(_wrap_comment_lines(lines)) + "\n\n" + body


def _top(source: str) -> str:
    return source.split(".")[0].split("[")[0]


def _short(value: Any, limit: int = 60) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _comment_block(text: str, indent: str) -> list[str]:
    first, *rest = text.splitlines() or [""]
    return ["#   " + first] + [indent + "  " + r for r in rest]


def _wrap_comment_lines(lines: list[str], width: int = 100) -> list[str]:
    import textwrap

    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        body = line[1:].lstrip()
        lead = len(line) - len(line.lstrip("# ")) if line.startswith("#   ") else 2
        prefix = "#" + " " * (lead - 1)
        out.extend(textwrap.wrap(body, width=width, initial_indent=prefix,
                                 subsequent_indent=prefix + "  ", break_long_words=False,
                                 break_on_hyphens=False))
    return out
