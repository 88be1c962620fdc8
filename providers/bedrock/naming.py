"""Deterministic Bedrock names and tokens derived from unitune's job id (idempotency key).

The job name and `clientRequestToken` are functions of the key alone, so `find(key)` can look a
job up without the spec, and a re-run after a crash can never create a second job: AWS ignores a
repeated token, and job names are unique per account and region.
"""
from __future__ import annotations

import hashlib
import re

TAG_JOB_ID = "unitune-job-id"
TAG_SPEC = "unitune-spec"

_JOB_NAME_MAX = 63  # botocore: jobName 1-63, [a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*
_MODEL_NAME_MAX = 63  # customModelName / deployment names: ([0-9a-zA-Z][_-]?){1,63}


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _alnum_dash(text: str) -> str:
    """Letters, digits and single dashes, no leading/trailing dash."""
    out = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
    return re.sub(r"-{2,}", "-", out)


def _fit(base: str, key: str, limit: int) -> str:
    """`base` if it fits in `limit`, else a truncation plus a hash of `key` (stays unique)."""
    if len(base) <= limit:
        return base
    tail = _digest(key)
    return base[: limit - len(tail) - 1].rstrip("-_") + "-" + tail


def job_name_for(key: str) -> str:
    """The Bedrock job name for a unitune job id, e.g. ``ut-20261128-ab12cd``."""
    base = _alnum_dash(key) or "job"
    if not base[0].isalnum():
        base = "u" + base
    return _fit(base, key, _JOB_NAME_MAX)


def token_for(key: str) -> str:
    """clientRequestToken ([a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?) derived from the key."""
    return "unitune-" + hashlib.sha256(key.encode()).hexdigest()[:48]


def model_name_for(spec_name: str, key: str) -> str:
    """customModelName: the spec's name plus the job id, within the vendor's pattern."""
    base = _alnum_dash(f"{spec_name}-{key}") or "model"
    return _fit(base, key, _MODEL_NAME_MAX)


def deployment_name_for(model_name: str, kind: str) -> str:
    """On-demand deployment ("od") or provisioned throughput ("pt") name for a custom model."""
    base = _alnum_dash(f"{model_name}-{kind}")
    return _fit(base, model_name + kind, _MODEL_NAME_MAX)


def job_id_from_arn(arn: str) -> str:
    """The `{jobId}` of the metrics path: the last segment of the job ARN."""
    return arn.rsplit("/", 1)[-1]


_TAG_BAD = re.compile(r"[^a-zA-Z0-9\s._:/=+@-]")


def tag(key: str, value: str) -> dict[str, str]:
    """A Bedrock tag: characters outside [a-zA-Z0-9 space ._:/=+@-] become "_", lengths capped."""
    return {"key": _TAG_BAD.sub("_", str(key))[:128] or "_",
            "value": _TAG_BAD.sub("_", str(value))[:256]}
