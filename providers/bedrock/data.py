"""Dataset preparation for Bedrock: validate the source, convert it to the family's format,
check the converted file against the family's rules, hash it, and upload it to S3 once.

The S3 key is the SHA-256 of the converted bytes (`<prefix>/data/<sha256>.jsonl`), so the same
data is uploaded once and reused by every job; `head_object` decides whether to skip.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitune.data.report import Problem

from .rules import check_file

SKIPPED_VALIDATE_CODES = frozenset(("too_few_examples", "too_many_examples"))
WARNINGS_PER_CODE = 3


@dataclass
class PreparedFile:
    which: str  # "train" | "validation"
    source: str  # the user's file
    path: Path  # the converted file that would be uploaded
    format: str
    records: int
    bytes: int
    sha256: str


@dataclass
class Prepared:
    train: PreparedFile | None = None
    validation: PreparedFile | None = None
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def files(self) -> list[PreparedFile]:
        return [f for f in (self.train, self.validation) if f is not None]


def _validate_source(src: Path, info, out: Prepared, which: str) -> None:
    """Generic + target checks of the user's file (unitune.data.validate)."""
    from unitune.data.validate import validate_file

    report = validate_file(str(src), targets=[f"bedrock:{info.model}"])
    for p in report.problems:
        # record counts apply to the files actually uploaded (after a fraction split, and with
        # the validation file's own limits): rules.check_file counts those
        if p.code in SKIPPED_VALIDATE_CODES:
            continue
        p.file = p.file or str(src)
        out.problems.append(p)
    if which == "train" and report.stats:
        out.stats.update(report.stats)


def _convert(src: Path, fmt: str, dst: Path, out: Prepared, source_format: str = "auto") -> None:
    from unitune.data.prepared import convert_cached

    # once per content: `check` and `submit` (and `plan`) both prepare, and share the cache
    result = convert_cached(str(src), fmt, str(dst), fmt=source_format or "auto")
    seen = {(p.file, p.line, p.code) for p in out.problems}
    for e in getattr(result, "errors", None) or []:  # lines not written
        e.file = e.file or str(src)
        if (e.file, e.line, e.code) not in seen:
            out.problems.append(e)
    # a lossy change usually hits every line (a system prompt in prompt/completion): keep the
    # first few per code and count the rest, so a 10,000-line file does not print 10,000 warnings
    per_code: dict[str, int] = {}
    for w in getattr(result, "warnings", None) or []:
        if not isinstance(w, Problem):
            w = Problem("convert_warning", str(w), severity="warning")
        w.file = w.file or str(src)
        per_code[w.code] = per_code.get(w.code, 0) + 1
        if per_code[w.code] <= WARNINGS_PER_CODE:
            out.problems.append(w)
    for code, n in per_code.items():
        if n > WARNINGS_PER_CODE:
            out.problems.append(Problem(code, f"… and {n - WARNINGS_PER_CODE} more lines with "
                                        f"the same conversion warning ({code})",
                                        severity="warning", file=str(src)))


def _split(converted: Path, fraction: float, seed: int, train_dst: Path, valid_dst: Path) -> None:
    """Deterministic record-level split of the converted file (unitune.data.split, seeded)."""
    from unitune.data.prepared import split_cached

    split_cached(converted, fraction, seed, train_dst, valid_dst)


def _finish(which: str, src: Path, path: Path, info, out: Prepared,
            tokens: bool = True) -> PreparedFile:
    from unitune.data.hashing import file_sha256

    problems, records = check_file(path, info, which, tokens=tokens)
    out.problems.extend(problems)
    return PreparedFile(which, str(src), path, info.rules.format, records, path.stat().st_size,
                        file_sha256(path))


def prepare(spec, info, work_dir: Path, *, validate: bool = True) -> Prepared:
    """Validate, convert and check the spec's data for model `info`; uploads nothing."""
    out = Prepared()
    work_dir.mkdir(parents=True, exist_ok=True)
    fmt = info.rules.format
    train_src = spec.data_path("train")
    if train_src is None or not train_src.is_file():
        out.problems.append(Problem("file_missing", f"training file not found: {train_src}",
                                    path="data.train", hint="check data.train in the spec "
                                    "(relative paths are relative to the spec file)"))
        return out
    valid_value = spec.data.validation
    valid_src = spec.data_path("validation")
    if valid_src is not None and not valid_src.is_file():
        out.problems.append(Problem("file_missing", f"validation file not found: {valid_src}",
                                    path="data.validation", hint="fix the path or use a fraction "
                                    "such as 0.1"))
        valid_src = None

    if validate:
        _validate_source(train_src, info, out, "train")
        if valid_src is not None:
            _validate_source(valid_src, info, out, "validation")

    converted = work_dir / f"train.{fmt}.jsonl"
    _convert(train_src, fmt, converted, out, spec.data.format)
    if isinstance(valid_value, float):
        seed = spec.hyperparameters.seed if spec.hyperparameters.seed is not None else 0
        train_part = work_dir / f"train-split.{fmt}.jsonl"
        valid_part = work_dir / f"validation-split.{fmt}.jsonl"
        _split(converted, valid_value, seed, train_part, valid_part)
        out.train = _finish("train", train_src, train_part, info, out, not validate)
        out.validation = _finish("validation", train_src, valid_part, info, out, not validate)
    else:
        out.train = _finish("train", train_src, converted, info, out, not validate)
        if valid_src is not None:
            vconv = work_dir / f"validation.{fmt}.jsonl"
            _convert(valid_src, fmt, vconv, out, spec.data.format)
            out.validation = _finish("validation", valid_src, vconv, info, out, not validate)
    return out


def s3_key(prefix: str, sha256: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/data/{sha256}.jsonl" if prefix else f"data/{sha256}.jsonl"


def upload(s3, bucket: str, key: str, path: Path, kms_key_id: str | None) -> bool:
    """Upload `path` to s3://bucket/key unless an object is already there; True when uploaded."""
    from botocore.exceptions import ClientError

    from .aws import aws_call, map_error

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        code = str((exc.response.get("Error") or {}).get("Code"))
        if code not in ("404", "NoSuchKey", "NotFound"):
            raise map_error(exc, f"head_object s3://{bucket}/{key}") from exc
    extra: dict[str, str] = {"ContentType": "application/jsonl"}
    if kms_key_id:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_id)
    with aws_call(f"upload s3://{bucket}/{key}"):
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
    return True
