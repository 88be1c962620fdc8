"""Where the job's files live in S3, and the content-addressed upload.

A prepared file goes to `s3://<bucket>/<prefix>/data/<sha256>.jsonl`: the key is a function of
the converted bytes, so the uri is known before the upload (`plan` shows it) and the same data
is uploaded once for any number of jobs — `HeadObject` decides (S3 is the truth, no cache).
The job's output (model artifacts, metrics CSVs) goes under `<prefix>/output/<job name>/`.
"""
from __future__ import annotations

from pathlib import Path


def _prefixed(prefix: str, rest: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rest}" if prefix else rest


def data_key(prefix: str, sha256: str) -> str:
    return _prefixed(prefix, f"data/{sha256}.jsonl")


def output_uri(bucket: str, prefix: str, job_name: str) -> str:
    return f"s3://{bucket}/{_prefixed(prefix, f'output/{job_name}/')}"


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def upload(s3, bucket: str, key: str, path: Path, kms_key_id: str | None) -> bool:
    """Upload `path` to s3://bucket/key unless an object is already there; True when uploaded."""
    from botocore.exceptions import ClientError

    from .aws import aws_call, is_missing, map_error

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if not is_missing(exc):
            raise map_error(exc, f"head_object s3://{bucket}/{key}") from exc
    extra: dict[str, str] = {"ContentType": "application/jsonl"}
    if kms_key_id:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_id)
    with aws_call(f"upload s3://{bucket}/{key}"):
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
    return True
