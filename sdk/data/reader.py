"""Streaming JSONL reader: UTF-8 with or without BOM, CRLF, blank lines, `.jsonl.gz`.

Never loads a whole file. Each non-blank line is yielded as `RawLine(number, offset, data)`
with the raw bytes; `parse_line` turns one into a Python object or a Problem (bad JSON, bad
UTF-8 with its byte offset), so a broken line is reported, never a crash.

Only regular files are read (`check_data_file`): a device such as `/dev/zero`, a named pipe or a
socket would be read forever or block, so every place that opens a user's data file refuses them
with one line. Files that are not JSONL at all (CSV/TSV, a JSON array, pretty-printed objects
spanning several lines) are recognised from their first line (`sniff_shape`) and reported once;
`iter_records` reads them as records for `unitune convert`.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from ..errors import DataError
from .report import Problem

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def check_data_file(path: str | os.PathLike) -> Path:
    """`path` as a Path when it names a regular file (symlinks followed); DataError otherwise:
    missing, a directory, or a device/pipe/socket, which would be read forever or block."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError(f"{p}: no such file", hint="check the path (relative paths are resolved "
                                                   "from the current directory)") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror or exc})",
                        hint="check the path and its permissions") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise DataError(f"{p} is a directory, not a JSONL file", hint="name one .jsonl file")
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
        raise DataError(f"{p} is {kind}, not a regular file: unitune reads datasets from "
                        f"regular JSONL files only",
                        hint="save the data to a file first (e.g. `cat SOURCE > data.jsonl`) "
                             "and pass that file")
    return p

BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawLine:
    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's start (in the decompressed stream for .gz); -1:
    # unknown (a record of a CSV file or a JSON array, re-encoded as a line)
    data: bytes  # without the line ending


def open_binary(path: str | os.PathLike) -> io.BufferedIOBase:
    """Open a dataset for binary reading, transparently gunzipping `.gz` files."""
    p = check_data_file(path)
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
            at = raw.offset + uexc.start if raw.offset >= 0 else None  # -1: offset unknown
            return None, Problem(
                code="bad_encoding", severity="error", line=raw.number, file=file,
                byte_offset=at,
                message=f"invalid UTF-8 byte 0x{raw.data[uexc.start]:02x}"
                        + (f" at byte offset {at}" if at is not None else ""),
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


# ---------------------------------------------------------------------------------------------
# Files that are not JSONL: recognised once from their first line, read as records by `convert`

SHAPES = {"csv": "CSV", "tsv": "TSV (tab-separated values)", "json-array": "a JSON array",
          "json-objects": "JSON objects spanning several lines (pretty-printed JSON)"}

# Columns of a CSV file that hold JSON structures rather than text (decoded when a cell starts
# with `[` or `{`); every other cell is a string.
STRUCTURED_COLUMNS = frozenset(("messages", "conversations", "contents", "tools", "history",
                                "preferred_output", "non_preferred_output", "systemInstruction",
                                "system_instruction"))
_SNIFF_BYTES = 4 << 20  # how much of a file is decoded to recognise a multi-line JSON value
_MAX_RECORD_CHARS = 256 << 20  # one record of a JSON array/stream may not be longer than this


def _decode_first_value(path: Path) -> tuple[Any, bool] | bool:
    """`(value, spans_lines)`: the first JSON value of the file, decoded from its first
    `_SNIFF_BYTES`, and whether it spans several lines; True when it does not decode because the
    window ends first, False when it is broken."""
    with open_binary(path) as fh:
        head = fh.read(_SNIFF_BYTES)
        more = bool(fh.read(1))
    if head.startswith(BOM):
        head = head[3:]
    text = head.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip())
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return more
    return value, "\n" in text[start:end]


def _only_line(path: Path, first: RawLine) -> bool:
    """True when nothing but blank lines follows `first`."""
    it = iter_raw_lines(path)
    try:
        for raw in it:
            if raw.number > first.number:
                return False
        return True
    finally:
        it.close()  # type: ignore[attr-defined]


def sniff_shape(path: str | os.PathLike, first: RawLine, obj: Any = None) -> str | None:
    """What a file is when its first non-blank line `first` is not a JSON object (`obj`: that
    line parsed, when it parses): "csv", "tsv", "json-array" or "json-objects" (see SHAPES), or
    None when it is just a broken JSONL line."""
    p = Path(path)
    data = first.data.strip()
    if isinstance(obj, list):  # a whole JSON array on one line: only when it is the only line
        if obj and all(isinstance(x, dict) for x in obj) and _only_line(p, first):
            return "json-array"
        return None
    if obj is not None:
        return None
    if data[:1] in (b"[", b"{"):
        decoded = _decode_first_value(p)
        if isinstance(decoded, tuple):
            value, spans_lines = decoded
            if isinstance(value, list):
                return "json-array" if all(isinstance(x, dict) for x in value) else None
            # an object on one line followed by junk (`{...},`) is a broken JSONL line
            return "json-objects" if isinstance(value, dict) and spans_lines else None
        if not decoded:  # broken JSON, not a pretty-printed file
            return None
        # too long to decode here: trust a lone opening bracket
        if data in (b"[", b"[{"):
            return "json-array"
        if data == b"{":
            return "json-objects"
        return None
    text = data.decode("utf-8", "replace")
    if any(c in text for c in "{}[]"):
        return None  # a broken JSON line, not a header row
    best, kind = 1, None
    for delim, name in ((",", "csv"), ("\t", "tsv"), (";", "csv")):
        if delim in text:
            try:
                fields = next(csv.reader([text], delimiter=delim))
            except csv.Error:
                continue
            if len(fields) > best and all(f.strip() for f in fields):
                best, kind = len(fields), name
    return kind


def shape_problem(path: str | os.PathLike, kind: str, line: int | None) -> Problem:
    """The one problem reported for a file that is not JSONL, naming the command that converts
    it (which really takes such files: `unitune convert` reads CSV/TSV with a header row, JSON
    arrays and pretty-printed JSON)."""
    import shlex

    p = Path(path)
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    out = p.with_name(f"{stem}.jsonl")
    if out.name == p.name:
        out = p.with_name(f"{stem}.messages.jsonl")
    cmd = f"unitune convert {shlex.quote(str(p))} --to messages -o {shlex.quote(str(out))}"
    what = SHAPES[kind]
    extra = " with a header row naming the fields (e.g. instruction,input,output)" \
        if kind in ("csv", "tsv") else ""
    return Problem(code="not_jsonl", severity="error", line=line, file=str(p),
                   message=f"this looks like {what}, not JSONL (one JSON object per line), "
                           f"which is what unitune reads: convert it with `{cmd}`",
                   hint=f"`unitune convert` reads {what}{extra}; `--to` may also name a vendor "
                        f"format directly (openai, bedrock-converse, vertex, …)")


def _decoded_lines(path: Path, state: dict) -> Iterator[str]:
    """The file's lines as text, line endings kept (what `csv` wants); stops at the first line
    that is not UTF-8, leaving its number and bytes in `state["bad"]`."""
    with open_binary(path) as fh:
        for number, line in enumerate(fh, start=1):
            if number == 1 and line.startswith(BOM):
                line = line[3:]
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                state["bad"] = (number, line[exc.start:exc.end] or b"\xff")
                return
            state["line"] = number
            yield text


def _csv_records(path: Path, delimiter: str) -> Iterator[RawLine]:
    old_limit = csv.field_size_limit()
    csv.field_size_limit(_MAX_RECORD_CHARS)
    state: dict[str, Any] = {"line": 0, "bad": None}
    try:
        rows = csv.reader(_decoded_lines(path, state), delimiter=delimiter)
        header: list[str] = []
        start = 1
        try:
            for header in rows:  # the header row: the first non-blank one
                start = state["line"] + 1
                if any(h.strip() for h in header):
                    break
            for row in rows:
                if state["bad"] is not None:
                    break  # a row cut short by bytes that are not UTF-8
                if any(cell.strip() for cell in row):
                    record: dict[str, Any] = {}
                    for i, value in enumerate(row):
                        key = header[i].strip() if i < len(header) else "_extra_columns"
                        if key == "_extra_columns":
                            record.setdefault(key, []).append(value)
                            continue
                        if key in STRUCTURED_COLUMNS and value.lstrip()[:1] in ("[", "{"):
                            try:
                                record[key] = json.loads(value)
                                continue
                            except ValueError:
                                pass  # left as text: reported as the wrong type
                        record[key] = value
                    for key in header[len(row):]:  # a short row: the missing cells are null
                        record.setdefault(key.strip(), None)
                    yield RawLine(start, -1, _dump(record))
                start = state["line"] + 1
        except csv.Error as exc:
            raise DataError(f"{path}:{state['line']}: cannot read the CSV ({exc})",
                            hint="check the quoting of that row") from None
        if state["bad"] is not None:  # reported as bad_encoding on its line
            yield RawLine(state["bad"][0], -1, state["bad"][1])
    finally:
        csv.field_size_limit(old_limit)


def _dump(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _json_records(path: Path) -> Iterator[RawLine]:
    """The objects of a JSON array (`[{...}, {...}]`) or of a stream of JSON values
    (pretty-printed objects one after another), one record each, streamed in bounded chunks."""
    import codecs

    decode = json.JSONDecoder().raw_decode
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    buf = ""
    pos = 0  # next unread character of buf
    line = 1  # line number at buf[pos]
    depth = 0  # 1 inside the outer array
    eof = False
    bad: bytes | None = None  # bytes that are not UTF-8, where reading stopped
    chunk = 1 << 20
    with open_binary(path) as fh:

        def more(n: int) -> bool:
            nonlocal buf, pos, eof, bad
            if eof:
                return False
            data = fh.read(n)
            try:
                text = utf8.decode(data, final=not data)
            except UnicodeDecodeError as exc:  # keep what decodes; the bad bytes end the file
                text = data[:max(0, exc.start)].decode("utf-8", "ignore")
                bad = exc.object[exc.start:exc.end] or b"\xff"
                data = b""
            if not data:
                eof = True
            buf = buf[pos:] + text
            pos = 0
            return bool(data) or bool(text)

        while True:
            # skip whitespace and separating commas, counting lines
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n,":
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < len(buf) or not more(chunk):
                    break
            if pos >= len(buf):
                if bad is not None:
                    yield RawLine(line, -1, bad)  # reported as bad_encoding on its line
                return
            c = buf[pos]
            if c == "[" and depth == 0:
                depth, pos = 1, pos + 1
                continue
            if c == "]" and depth == 1:
                depth, pos = 0, pos + 1
                continue
            while True:
                try:
                    value, end = decode(buf, pos)
                    break
                except ValueError:
                    if len(buf) - pos > _MAX_RECORD_CHARS or not more(max(chunk, len(buf))):
                        if bad is not None:
                            line += buf.count("\n", pos)
                            yield RawLine(line, -1, bad)  # reported as bad_encoding
                        else:
                            broken = buf[pos:pos + 200].split("\n", 1)[0]
                            yield RawLine(line, -1, broken.encode("utf-8", "replace"))
                        return
            yield RawLine(line, -1, _dump(value))
            line += buf.count("\n", pos, end)
            pos = end


def iter_records(path: str | os.PathLike, kind: str) -> Iterator[RawLine]:
    """The records of a file of shape `kind` (see `sniff_shape`) as JSONL lines: `data` is one
    JSON object's bytes, `number` the line it starts on."""
    p = check_data_file(path)
    if kind in ("csv", "tsv"):
        first = next(iter_raw_lines(p), None)
        text = first.data.decode("utf-8", "replace") if first is not None else ""
        delim = "\t" if kind == "tsv" else max((",", ";"), key=text.count)
        return _csv_records(p, delim)
    return _json_records(p)
