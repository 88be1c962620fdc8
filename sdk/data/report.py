"""Validation report: every problem with file, line, JSON path, code, severity and a fix hint.

The same Report drives `unitune validate`, backend `check` and `plan`. JSON shape contract:
`{"file", "problems": [{line, severity, code, message, path, hint, file}], "summary":
{"examples", "errors", "warnings", "by_code"}}`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass
class Problem:
    code: str
    message: str
    severity: Severity = "error"
    line: int | None = None  # 1-based; None for file- or spec-level problems
    path: str | None = None  # JSON path inside the line, e.g. "messages[2].content"
    hint: str | None = None
    file: str | None = None
    target: str | None = None  # "backend:model" for target checks
    byte_offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Report:
    file: str | None = None
    problems: list[Problem] = field(default_factory=list)
    examples: int = 0
    format: str | None = None
    targets: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    # Keep at most this many problems (None: all); the rest are only counted in `omitted`, so a
    # file broken on every line cannot fill memory, and the summary still counts everything.
    max_problems: int | None = None
    omitted: dict[tuple[str, str], int] = field(default_factory=dict)  # (code, severity) -> n

    def add(self, problem: Problem) -> None:
        if problem.file is None:
            problem.file = self.file
        if self.max_problems is not None and len(self.problems) >= self.max_problems:
            key = (problem.code, problem.severity)
            self.omitted[key] = self.omitted.get(key, 0) + 1
            return
        self.problems.append(problem)

    def enforce_limit(self) -> None:
        """Move problems beyond `max_problems` (appended directly to `problems`) into `omitted`."""
        if self.max_problems is None or len(self.problems) <= self.max_problems:
            return
        for p in self.problems[self.max_problems:]:
            key = (p.code, p.severity)
            self.omitted[key] = self.omitted.get(key, 0) + 1
        del self.problems[self.max_problems:]

    def error(self, code: str, message: str, **kw) -> None:
        self.add(Problem(code=code, message=message, severity="error", **kw))

    def warning(self, code: str, message: str, **kw) -> None:
        self.add(Problem(code=code, message=message, severity="warning", **kw))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and not any(s == "error" for _, s in self.omitted)

    def by_code(self) -> dict[str, int]:
        counts = Counter(p.code for p in self.problems)
        for (code, _), n in self.omitted.items():
            counts[code] += n
        return dict(counts.most_common())

    def summary(self) -> dict[str, Any]:
        out = {"examples": self.examples,
               "errors": len(self.errors) + sum(n for (_, s), n in self.omitted.items()
                                                if s == "error"),
               "warnings": len(self.warnings) + sum(n for (_, s), n in self.omitted.items()
                                                    if s == "warning"),
               "by_code": self.by_code()}
        if self.omitted:
            out["omitted"] = sum(self.omitted.values())
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "format": self.format, "targets": self.targets,
                               "problems": [p.to_dict() for p in self.problems],
                               "summary": self.summary()}
        if self.stats:
            out["stats"] = self.stats
        return out
