"""Streaming JSONL reader: UTF-8 with or without BOM, CRLF, blank lines, `.jsonl.gz`.

Never loads a whole file. Each non-blank line is yielded as `RawLine(number, offset, data)`
with the raw bytes; `parse_line` turns one into a Python object or a Problem (bad JSON, bad
UTF-8 with its byte offset), so a broken line is reported, never a crash.
"""
from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from .report import Problem

BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawLine:
    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's start (in the decompressed stream for .gz)
    data: bytes  # without the line ending


def open_binary(path: str | os.PathLike) -> io.BufferedIOBase:
    """Open a dataset for binary reading, transparently gunzipping `.gz` files."""
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rb")  # type: ignore[return-value]
    return open(p, "rb", buffering=1 << 20)


def iter_raw_lines(path: str | os.PathLike) -> Iterator[RawLine]:
    """Yield every non-blank line with its number and byte offset."""
    offset = 0
    with open_binary(path) as fh:
        for number, line in enumerate(fh, start=1):
            size = len(line)
            if number == 1 and line.startswith(BOM):
                line = line[3:]
                offset += 3
                size -= 3
            data = line.rstrip(b"\r\n")
            if data.strip():
                yield RawLine(number, offset, data)
            offset += size


def parse_line(raw: RawLine, file: str | None = None) -> tuple[Any, Problem | None]:
    """Parse one line: `(obj, None)` or `(None, problem)`; bad bytes report their offset."""
    try:
        return orjson.loads(raw.data), None
    except orjson.JSONDecodeError as exc:
        try:
            raw.data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return None, Problem(
                code="bad_encoding", severity="error", line=raw.number, file=file,
                byte_offset=raw.offset + uexc.start,
                message=f"invalid UTF-8 byte 0x{raw.data[uexc.start]:02x} at byte offset "
                        f"{raw.offset + uexc.start}",
                hint="re-save the file as UTF-8 (e.g. `iconv -f GBK -t UTF-8 in.jsonl > out.jsonl`)")
        return None, Problem(code="invalid_json", severity="error", line=raw.number, file=file,
                             message=f"invalid JSON: {exc}",
                             hint="each line must be one complete JSON object; check quotes, "
                                  "commas and that no object spans several lines")


def iter_objects(path: str | os.PathLike) -> Iterator[tuple[RawLine, Any, Problem | None]]:
    """Convenience: raw line, parsed object (or None) and its problem (or None)."""
    file = str(path)
    for raw in iter_raw_lines(path):
        obj, problem = parse_line(raw, file)
        yield raw, obj, problem
