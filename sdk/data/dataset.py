"""Streaming dataset loading: read a JSONL file (plain or .gz), detect its format, normalize every
line into `Example` / `PreferenceExample`, and record every problem in a `Report`.

`load_examples` never holds the file in memory. With a `report` it collects problems and keeps
going (yielding only structurally sound examples); without one it raises `DataError` at the
first error, naming file, line and field.
"""
from __future__ import annotations

import gzip
import os
import zlib
from itertools import chain
from typing import Iterator

import orjson

from ..errors import DataError
from .example import Example, PreferenceExample
from .formats import FORMATS, NORMALIZERS, TOP_KEYS, Ctx, _type_name, canonical_format, \
    compatible, detect_format
from .reader import RawLine, check_data_file, iter_raw_lines, iter_records, parse_line, \
    shape_problem, sniff_shape
from .report import Problem, Report

# Lines read while the format is still unknown (none of them detectable yet) are held here;
# past this many the file is declared of unknown format.
_MAX_UNDETECTED = 1000

_FORMAT_HINT = ("recognised formats: " + ", ".join(FORMATS) +
                "; pass the format explicitly (e.g. `--format messages`) or fix the keys")


def resolve_format(fmt: str) -> str:
    """`auto` or a canonical format name, from what the user typed; DataError when unknown."""
    if fmt in (None, "", "auto"):
        return "auto"
    name = canonical_format(fmt)
    if name is None:
        raise DataError(f"unknown data format {fmt!r}", hint=_FORMAT_HINT)
    return name


def _check_readable(path: str | os.PathLike) -> None:
    check_data_file(path)


def load_examples(path: str | os.PathLike, fmt: str = "auto", report: Report | None = None,
                  *, other_shapes: bool = False) -> Iterator[Example | PreferenceExample]:
    """Yield the examples of a JSONL file, one line at a time.

    - `fmt="auto"` detects the format from the first line that looks like one; a later line in a
      different (incompatible) format is a `mixed_formats` error naming that line.
    - Every problem goes to `report` (its `format` is set to the detected format and `examples`
      counts the non-blank lines read); lines with an error are skipped.
    - Without a report, the first error raises `DataError` (warnings are dropped).
    - A file that is not JSONL (CSV/TSV, a JSON array, pretty-printed JSON; see
      `reader.sniff_shape`) is one `not_jsonl` error naming the command that converts it, unless
      `other_shapes` (what `unitune convert` passes): then its records are read as lines.
    """
    _check_readable(path)
    fmt = resolve_format(fmt)
    strict = report is None
    rep = report if report is not None else Report(file=str(path))
    if rep.file is None:
        rep.file = str(path)
    return _iterate(path, fmt, rep, strict, other_shapes)


def _source(path, rep: Report, strict: bool, other_shapes: bool) -> Iterator[RawLine]:
    """The file's lines; when its first non-blank line shows it is not JSONL, either its records
    (`other_shapes`) or nothing but one `not_jsonl` problem. (A chain, not a generator: no cost
    per line.)"""
    lines = iter_raw_lines(path)
    first = next(lines, None)
    if first is None:
        return iter(())
    data = first.data
    if data[:1] == b"{" and data[-1:] == b"}":  # an object (or a broken line): no second parse
        obj: object = {}
    else:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
    if type(obj) is not dict:
        kind = sniff_shape(path, first, obj)
        if kind is not None:
            lines.close()  # type: ignore[attr-defined]
            if other_shapes:
                return iter_records(path, kind)
            p = shape_problem(rep.file or path, kind, first.number)
            rep.add(p)
            rep.examples += 1
            if strict:
                _raise(p)
            return iter(())
    return chain((first,), lines)


def _raise(problem: Problem) -> None:
    where = f"{problem.file}:{problem.line}" if problem.line else str(problem.file)
    if problem.path:
        where += f" ({problem.path})"
    raise DataError(f"{where}: {problem.message}", hint=problem.hint)


def _iterate(path, fmt: str, rep: Report, strict: bool, other_shapes: bool = False
             ) -> Iterator[Example | PreferenceExample]:
    file = rep.file
    problems = rep.problems
    file_fmt: str | None = None if fmt == "auto" else fmt
    auto = fmt == "auto"
    first_line = 0
    if file_fmt:
        rep.format = file_fmt
    pending: list[tuple[int, object]] = []  # lines seen before the format is known
    limit = getattr(rep, "max_problems", None)
    ctx = Ctx(0, problems, file)  # reused line after line (hot path: no allocation)
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    file_keys = TOP_KEYS[file_fmt] if file_fmt else frozenset()
    file_norm = NORMALIZERS[file_fmt] if file_fmt else None

    def normalize_line(norm, number: int, obj: dict):
        """Normalize one line; the example, or None when it has a structural error. Raises in
        strict mode and keeps the report within its limit."""
        start = len(problems)
        ctx.line, ctx.failed = number, False
        ex = norm(obj, ctx)
        if len(problems) > start:
            if strict:
                if ctx.failed:
                    _raise(next(p for p in problems[start:] if p.severity == "error"))
                del problems[start:]  # warnings are not kept without a report
            elif limit is not None:
                rep.enforce_limit()
        return None if ctx.failed else ex

    try:
        for raw in _source(path, rep, strict, other_shapes):
            rep.examples += 1
            number = raw.number
            try:
                obj = loads(raw.data)
            except decode_error:
                _, problem = parse_line(raw, file)
                if problem is not None:
                    rep.add(problem)
                    if strict:
                        _raise(problem)
                    continue
            if type(obj) is not dict:
                p = Problem(code="not_an_object", severity="error", line=number, file=file,
                            message=f"line is {_type_name(obj)}, not a JSON object",
                            hint="each line must be one JSON object ({...})")
                rep.add(p)
                if strict:
                    _raise(p)
                continue
            norm = file_norm
            if file_norm is None:  # auto-detect from the first recognisable line
                detected = detect_format(obj)
                if detected is None:
                    if len(pending) >= _MAX_UNDETECTED:
                        break
                    pending.append((number, obj))
                    continue
                file_fmt, first_line = detected, number
                rep.format = file_fmt
                file_keys, file_norm = TOP_KEYS[file_fmt], NORMALIZERS[file_fmt]
                norm = file_norm
                for pnum, pobj in pending:  # earlier unrecognisable lines: report their gaps
                    ex = normalize_line(file_norm, pnum, pobj)
                    if ex is not None:
                        yield ex
                pending = []
            elif auto and not file_keys.issuperset(obj):
                # keys outside the file's format: another format, or just unknown keys?
                detected = detect_format(obj)
                if detected is not None and detected != file_fmt:
                    if compatible(detected, file_fmt):
                        norm = NORMALIZERS[detected]
                    else:
                        p = Problem(
                            code="mixed_formats", severity="error", line=number, file=file,
                            message=f"line {number} is in {detected!r} format but the file is "
                                    f"{file_fmt!r} (detected from line {first_line})",
                            hint="one file must use one format; convert the odd lines with "
                                 "`unitune convert` or split the file")
                        rep.add(p)
                        if strict:
                            _raise(p)
                        continue
            ex = normalize_line(norm, number, obj)
            if ex is not None:
                yield ex
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{file}: cannot read ({exc})",
                        hint="check the file is a complete JSONL or .jsonl.gz file") from exc
    if file_fmt is None and pending:
        first = pending[0][0]
        p = Problem(code="unknown_format", severity="error", line=first, file=file,
                    message=f"cannot tell the data format: no line has the keys of a known "
                            f"format (first such line: {first})", hint=_FORMAT_HINT)
        rep.add(p)
        if strict:
            _raise(p)
