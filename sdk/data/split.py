"""Deterministic train/validation split and duplicate removal for JSONL files.

Both stream: `split_file` reads the file twice (count, then copy) and holds only the set of
validation line indices; `dedupe_file` reads it twice too (choose, then copy) and holds one
16-byte key per distinct example. Lines are copied byte for byte (a BOM and CRLF endings are
normalized away), so the output keeps the input's format and nothing is re-serialized.

Both refuse what they cannot copy line by line: a device or pipe instead of a file, and a file
that is not JSONL (CSV, a JSON array: `unitune convert` turns those into JSONL first).
"""
from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from .reader import check_data_file, iter_raw_lines


@dataclass
class SplitResult:
    train_path: str
    validation_path: str
    train: int
    validation: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DedupeResult:
    output: str
    kept: int = 0
    removed: int = 0
    unparsed: int = 0  # lines that are not valid examples: kept as they are
    normalized: bool = True
    # (removed line, the line kept in its place), first `max_pairs` only
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    # groups whose first line fails validation and a later valid duplicate was kept instead
    preferred_valid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "kept": self.kept, "removed": self.removed,
                "unparsed": self.unparsed, "normalized": self.normalized,
                "preferred_valid": self.preferred_valid,
                "duplicates": [{"line": a, "duplicate_of": b} for a, b in self.duplicates]}


def _open_out(path: Path, gz: bool | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz if gz is not None else path.suffix == ".gz":
        return gzip.open(path, "wb")
    return open(path, "wb", buffering=1 << 20)


def _check(src: Path, *outs: Path) -> None:
    check_data_file(src)
    _refuse_other_shapes(src)
    for out in outs:
        if out.exists() and out.resolve() == src.resolve():
            raise DataError(f"refusing to overwrite the input file {src}",
                            hint="choose another output path (-o)")


def _refuse_other_shapes(src: Path) -> None:
    """DataError when `src` is CSV, a JSON array or pretty-printed JSON rather than JSONL: its
    lines are not examples, and copying them apart would only break it further."""
    import orjson

    from .reader import shape_problem, sniff_shape

    lines = iter_raw_lines(src)
    try:
        first = next(lines, None)
    finally:
        lines.close()  # type: ignore[attr-defined]
    if first is None or first.data[:1] == b"{" and first.data[-1:] == b"}":
        return
    try:
        obj = orjson.loads(first.data)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is dict:
        return
    kind = sniff_shape(src, first, obj)
    if kind is not None:
        p = shape_problem(src, kind, first.number)
        raise DataError(f"{src}:{first.number}: {p.message}", hint=p.hint)


def validation_count(total: int, validation: float) -> int:
    """How many of `total` lines go to validation: a fraction in (0, 1), or a count (>= 1)."""
    if validation < 0:
        raise DataError(f"--validation must be positive, got {validation}",
                        hint="a fraction such as 0.1, or a number of examples such as 200")
    if validation >= 1:
        if validation != int(validation):
            raise DataError(f"--validation {validation} is neither a fraction below 1 nor a "
                            "whole number of examples", hint="e.g. 0.1 or 200")
        k = int(validation)
    else:
        k = round(total * validation)
        if validation > 0 and total >= 2:
            k = max(k, 1)
    if total and k >= total:
        raise DataError(f"a validation set of {k} would leave no training examples "
                        f"({total} lines in the file)", hint="use a smaller --validation")
    return k


def split_file(src: str | os.PathLike, validation_fraction: float, seed: int,
               train_out: str | os.PathLike, valid_out: str | os.PathLike) -> SplitResult:
    """Copy each non-blank line of `src` to `train_out` or `valid_out`.

    The validation lines are `random.Random(seed).sample` of the line indices, so the same file,
    fraction and seed always give the same split (on any machine), and the validation size is
    exact: `round(n * fraction)` (at least 1), or the count itself when >= 1. Line order is kept.
    """
    src_p, train_p, valid_p = Path(src), Path(train_out), Path(valid_out)
    _check(src_p, train_p, valid_p)
    if train_p.resolve() == valid_p.resolve():
        raise DataError("train and validation outputs are the same file",
                        hint="give two different paths")
    total = sum(1 for _ in iter_raw_lines(src_p))
    if total == 0:
        raise DataError(f"{src_p} has no examples to split", hint="check the file is not empty")
    k = validation_count(total, validation_fraction)
    chosen = set(random.Random(seed).sample(range(total), k))
    n_train = n_valid = 0
    with _open_out(train_p) as train, _open_out(valid_p) as valid:
        for i, raw in enumerate(iter_raw_lines(src_p)):
            if i in chosen:
                valid.write(raw.data)
                valid.write(b"\n")
                n_valid += 1
            else:
                train.write(raw.data)
                train.write(b"\n")
                n_train += 1
    return SplitResult(str(train_p), str(valid_p), n_train, n_valid, seed)


def dedupe_file(src: str | os.PathLike, dst: str | os.PathLike, normalized: bool = True,
                fmt: str = "auto", max_pairs: int = 1000) -> DedupeResult:
    """Copy `src` to `dst` keeping one example of each group of duplicates.

    The one kept is the first that passes validation's per-example checks
    (`validate.ExampleChecker`), or the first of the group when none does: an invalid line never
    displaces a valid duplicate. `normalized=True` treats examples that differ only in
    whitespace or case as duplicates (`keys.normalized_key`); `False` removes exact duplicates
    only. Duplicates are recognised across formats' surface details (key order, JSON spacing)
    because keys are computed on the normalized example. Lines that are not valid examples
    (structurally) are kept untouched (run `unitune validate` for those). Reads the file twice:
    once to choose, once to copy.
    """
    from .dataset import resolve_format
    from .formats import Ctx, NORMALIZERS, detect_format
    from .keys import exact_key, normalized_key
    from .reader import parse_line
    from .validate import ExampleChecker

    src_p, dst_p = Path(src), Path(dst)
    _check(src_p, dst_p)
    fmt = resolve_format(fmt)
    key_of = normalized_key if normalized else exact_key
    checker = ExampleChecker(str(src_p))
    # key -> the line kept for it: positive when that line is valid, negative when not (yet)
    chosen: dict[bytes, int] = {}
    drop: set[int] = set()
    pairs: list[tuple[int, bytes]] = []  # (removed line, its key), resolved at the end
    result = DedupeResult(str(dst_p), normalized=normalized)
    file_fmt = None if fmt == "auto" else fmt
    for raw in iter_raw_lines(src_p):
        obj, problem = parse_line(raw)
        example = None
        if problem is None and type(obj) is dict:
            use = file_fmt or detect_format(obj)
            if use is not None:
                ctx = Ctx(raw.number, [])
                example = NORMALIZERS[use](obj, ctx)
                if ctx.failed:
                    example = None
        if example is None:
            result.unparsed += 1
            continue
        key = key_of(example)
        first = chosen.get(key)
        if first is None:
            chosen[key] = raw.number if not checker.errors(example) else -raw.number
            continue
        if first < 0 and not checker.errors(example):  # a valid one replaces the invalid first
            chosen[key] = raw.number
            drop.add(-first)
            result.preferred_valid += 1
            removed = -first
        else:
            drop.add(raw.number)
            removed = raw.number
        if len(pairs) < max_pairs:
            pairs.append((removed, key))
    result.duplicates = sorted((line, abs(chosen[key])) for line, key in pairs)
    tmp = dst_p.with_name(dst_p.name + ".tmp")
    try:
        with _open_out(tmp, dst_p.suffix == ".gz") as out:
            for raw in iter_raw_lines(src_p):
                if raw.number in drop:
                    result.removed += 1
                    continue
                out.write(raw.data)
                out.write(b"\n")
                result.kept += 1
        os.replace(tmp, dst_p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return result
