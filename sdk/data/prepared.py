"""Converted and split dataset files, made once per content and cached.

A backend's `check` and its `submit` both need the vendor-format file (and `plan`, and the next
job on the same data). `convert_cached(src, to, dst)` keys the conversion on the source file's
SHA-256 (`hashing.file_sha256`), the target, the input format, the warning cap and
`CONVERTER_VERSION`; `split_cached` keys a train/validation split on the source's SHA-256, the
fraction, the seed and `SPLITTER_VERSION`. Entries live under
`unitune_home()/cache/converted/`: `<key>.jsonl` (the output) beside `<key>.json` (counts,
warnings and errors with their line numbers, and the output's size and SHA-256), so a hit returns
exactly what the conversion returned, naming the file asked about.

Every file is written under a temporary name and renamed, the data before its sidecar, and a hit
re-checks the data's size and SHA-256: a half-written, truncated or altered entry is never served,
it is rebuilt. Change `CONVERTER_VERSION` whenever `convert.to_format` would write different
bytes or warnings for the same input. The cache has no eviction; deleting the folder is always
safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import convert as _convert
from . import split as _split
from .hashing import file_sha256
from .report import Problem

CONVERTER_VERSION = 2  # 2: lines that would not validate once converted are refused
SPLITTER_VERSION = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder (`unitune_home()/cache/converted` unless `cache_dir`), created."""
    if cache_dir is None:
        from ..paths import unitune_home

        root = unitune_home() / "cache" / "converted"
    else:
        root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _tmp_name(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = _tmp_name(path.parent, path.name)
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _intact(path: Path, size: Any, sha256: Any) -> bool:
    """The cached data file is there, whole and unaltered."""
    try:
        if path.stat().st_size != size:
            return False
        return file_sha256(path) == sha256
    except OSError:
        return False


def _place(cached: Path, dst: Path) -> None:
    """Make `dst` a copy of the cached file, atomically (a hard link where the filesystem
    allows: entries are never written in place, so sharing the inode is safe)."""
    if dst.exists() and dst.resolve() == cached.resolve():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dst.parent, dst.name)
    try:
        tmp.unlink()
        try:
            os.link(cached, tmp)
        except OSError:
            shutil.copyfile(cached, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def _problems(items: list[dict[str, Any]], old_source: str, source: str) -> list[Problem]:
    out = []
    for d in items:
        p = Problem(**d)
        if p.file == old_source:
            p.file = source
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------

def convert_cached(src: str | os.PathLike, to: str, dst: str | os.PathLike | None = None, *,
                   fmt: str = "auto", max_warnings: int | None = None,
                   cache_dir: str | os.PathLike | None = None) -> _convert.ConvertResult:
    """`convert.convert_file(src, to, dst, fmt=fmt, max_warnings=max_warnings)`, done once per
    source content: a hit places the cached output at `dst` and returns the stored counts,
    warnings and errors (same lines, codes and messages; `file` names `src`). With `dst` None the
    result's `output` is the cached file itself (read it, never write it). A `.gz` `dst` and a
    conversion that writes no file (every line refused) are not cached."""
    to = _convert.canonical_target(to)
    src_p = Path(src)
    dst_p = Path(dst) if dst is not None else None
    root = cache_root(cache_dir)
    if not src_p.is_file() or dst_p is not None and (dst_p.suffix == ".gz" or (
            dst_p.exists() and dst_p.resolve() == src_p.resolve())):
        # convert_file reports the missing file, compresses or refuses to overwrite the input
        return _convert.convert_file(src_p, to, dst_p if dst_p is not None else
                                     root / ".no-source.jsonl", fmt=fmt, max_warnings=max_warnings)
    key = _key(kind="convert", v=CONVERTER_VERSION, src=file_sha256(src_p), to=to, fmt=fmt,
               max_warnings=max_warnings)
    data_p, meta_p = root / f"{key}.jsonl", root / f"{key}.json"
    meta = _read_json(meta_p)
    if meta is not None and meta.get("version") == CONVERTER_VERSION and \
            _intact(data_p, meta.get("size"), meta.get("sha256")):
        try:
            result = _convert.ConvertResult(
                source=str(src_p), target=to, output=str(dst_p or data_p),
                format=meta["format"], examples=meta["examples"], written=meta["written"],
                warnings=_problems(meta["warnings"], meta["source"], str(src_p)),
                errors=_problems(meta["errors"], meta["source"], str(src_p)),
                warning_counts=dict(meta["warning_counts"]))
        except (KeyError, TypeError):
            result = None  # a sidecar from elsewhere: rebuild
        if result is not None:
            if dst_p is not None:
                _place(data_p, dst_p)
            return result
    # a miss (or a damaged entry): convert into the cache, then place it
    tmp = _tmp_name(root, f"{key}.jsonl")
    tmp.unlink()  # a unique name; convert_file creates the file only when it keeps an output
    try:
        result = _convert.convert_file(src_p, to, tmp, fmt=fmt, max_warnings=max_warnings)
        if not tmp.exists():  # nothing kept (every line refused): nothing to cache
            result.output = str(dst_p or data_p)
            return result
        size, sha = tmp.stat().st_size, file_sha256(tmp)
        os.replace(tmp, data_p)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_json(meta_p, {"version": CONVERTER_VERSION, "source": str(src_p), "target": to,
                         "format": result.format, "examples": result.examples,
                         "written": result.written, "warning_counts": result.warning_counts,
                         "warnings": [p.to_dict() for p in result.warnings],
                         "errors": [p.to_dict() for p in result.errors],
                         "size": size, "sha256": sha})
    result.output = str(dst_p or data_p)
    if dst_p is not None:
        _place(data_p, dst_p)
    return result


def split_cached(src: str | os.PathLike, validation_fraction: float, seed: int,
                 train_out: str | os.PathLike | None = None,
                 valid_out: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None) -> _split.SplitResult:
    """`split.split_file(src, validation_fraction, seed, train_out, valid_out)`, done once per
    (source content, fraction, seed): a hit places the cached halves at the two outputs. With no
    outputs the result names the cached halves themselves (read them, never write them).
    `.gz` outputs are not cached."""
    src_p = Path(src)
    root = cache_root(cache_dir)
    in_cache = train_out is None or valid_out is None
    train_p = Path(train_out) if not in_cache else root / ".no-source.train.jsonl"
    valid_p = Path(valid_out) if not in_cache else root / ".no-source.validation.jsonl"
    if train_p.suffix == ".gz" or valid_p.suffix == ".gz" or not src_p.is_file() or any(
            p.exists() and p.resolve() == src_p.resolve() for p in (train_p, valid_p)) or \
            train_p.resolve() == valid_p.resolve():
        # split_file compresses, or refuses the file / the outputs with its own message
        return _split.split_file(src_p, validation_fraction, seed, train_p, valid_p)
    key = _key(kind="split", v=SPLITTER_VERSION, src=file_sha256(src_p),
               fraction=repr(float(validation_fraction)), seed=int(seed))
    parts = {"train": root / f"{key}.train.jsonl", "validation": root / f"{key}.validation.jsonl"}
    if in_cache:
        train_p, valid_p = parts["train"], parts["validation"]
    meta_p = root / f"{key}.json"
    meta = _read_json(meta_p)
    if meta is None or meta.get("version") != SPLITTER_VERSION or not all(
            _intact(parts[w], (meta.get(w) or {}).get("size"), (meta.get(w) or {}).get("sha256"))
            for w in parts):
        tmps = {w: _tmp_name(root, p.name) for w, p in parts.items()}
        try:
            r = _split.split_file(src_p, validation_fraction, seed, tmps["train"],
                                  tmps["validation"])
            info = {w: {"lines": n, "size": tmps[w].stat().st_size,
                        "sha256": file_sha256(tmps[w])}
                    for w, n in (("train", r.train), ("validation", r.validation))}
            for w in parts:
                os.replace(tmps[w], parts[w])
        finally:
            for t in tmps.values():
                if t.exists():
                    t.unlink()
        meta = {"version": SPLITTER_VERSION, **info}
        _write_json(meta_p, meta)
    if not in_cache:
        _place(parts["train"], train_p)
        _place(parts["validation"], valid_p)
    return _split.SplitResult(str(train_p), str(valid_p), meta["train"]["lines"],
                              meta["validation"]["lines"], seed)
