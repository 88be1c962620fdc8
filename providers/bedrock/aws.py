"""boto3 plumbing: clients with botocore's own retries OFF (unitune's one retry policy decides),
and botocore errors mapped into unitune's hierarchy with the original chained.

Clients are cached by what makes them differ: service, region, profile and a fingerprint of the
`AWS_*` environment (credentials, endpoint, config files) — never by anything a later process
would not have. Endpoints are never set here: boto3 honours `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_BEDROCK` / `AWS_ENDPOINT_URL_S3` itself, which is how the tests reach moto.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Any, Iterator

from unitune.backends import import_sdk
from unitune.errors import (AuthError, BackendError, BackendUnavailable, InvalidRequest, NotFound,
                            PermissionDenied, QuotaExceeded, RateLimited, from_http_status)
from unitune.redact import redact_text

BACKEND = "bedrock"
CONFLICT_CODES = ("ResourceInUseException", "ConflictException")
MISSING_S3_CODES = ("404", "NoSuchKey", "NotFound")

# botocore error code -> (unitune class, hint)
_CODES: dict[str, tuple[type[BackendError], str]] = {
    "ThrottlingException": (RateLimited, "Bedrock throttled the call; unitune retries it "
                            "(UNITUNE_RETRY_MAX / UNITUNE_RETRY_DEADLINE)"),
    "TooManyRequestsException": (RateLimited, "slow down and retry"),
    "SlowDown": (RateLimited, "S3 asked to slow down; retry later"),
    "RequestLimitExceeded": (RateLimited, "retry later"),
    "AccessDeniedException": (PermissionDenied, "the caller needs bedrock:* customization "
                              "permissions and iam:PassRole on the job role (docs/backends/bedrock.md)"),
    "AccessDenied": (PermissionDenied, "the caller or the job role lacks S3 permissions on the "
                     "bucket (s3:GetObject/PutObject/ListBucket; see docs/backends/bedrock.md)"),
    "UnrecognizedClientException": (AuthError, "check your AWS credentials (profile, "
                                    "AWS_ACCESS_KEY_ID, role)"),
    "InvalidClientTokenId": (AuthError, "check your AWS credentials"),
    "InvalidSignatureException": (AuthError, "check the secret key and the machine's clock"),
    "SignatureDoesNotMatch": (AuthError, "check the secret key and the machine's clock"),
    "ExpiredTokenException": (AuthError, "refresh your session (aws sso login / new role credentials)"),
    "ExpiredToken": (AuthError, "refresh your session credentials"),
    "ValidationException": (InvalidRequest, "fix the parameter named in the message; "
                            "`unitune plan` shows what is sent"),
    "ResourceNotFoundException": (NotFound, "check the id and the region (backend_options.bedrock.region)"),
    "NoSuchKey": (NotFound, "the S3 object does not exist"),
    "NoSuchBucket": (NotFound, "create the bucket or set backend_options.bedrock.bucket / "
                     "UNITUNE_BEDROCK_BUCKET"),
    "404": (NotFound, "the S3 object does not exist"),
    "NotFound": (NotFound, "the S3 object does not exist"),
    "403": (PermissionDenied, "the caller needs s3:GetObject/PutObject on the prefix and "
            "s3:ListBucket on the bucket (without ListBucket S3 answers 403 for a missing object)"),
    "Forbidden": (PermissionDenied, "the caller needs s3:GetObject/PutObject on the prefix and "
                  "s3:ListBucket on the bucket"),
    "ServiceQuotaExceededException": (QuotaExceeded, "request a quota increase in Service Quotas "
                                      "(Bedrock) or wait for running jobs to finish"),
    "TooManyTagsException": (QuotaExceeded, "remove tags"),
    "ResourceInUseException": (InvalidRequest, "a resource with that name already exists"),
    "ConflictException": (InvalidRequest, "a resource with that name already exists"),
    "InternalServerException": (BackendUnavailable, "AWS had an internal error; retry later"),
    "ServiceUnavailableException": (BackendUnavailable, "Bedrock is unavailable; retry later"),
    "ServiceUnavailable": (BackendUnavailable, "retry later"),
    "InternalError": (BackendUnavailable, "retry later"),
}

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, ...], Any] = {}


def boto3():
    return import_sdk("boto3", BACKEND)


def _fingerprint() -> str:
    """A hash of the `AWS_*` environment: a new key, profile or endpoint gets a new client."""
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


def client(service: str, region: str | None, profile: str | None = None):
    """A boto3 client with botocore's retries off (one attempt per call)."""
    key = (service, region or "", profile or "", _fingerprint())
    with _LOCK:
        if key not in _CLIENTS:
            sdk = boto3()
            from botocore.config import Config

            with aws_call(f"client {service}"):
                session = sdk.session.Session(profile_name=profile or None,
                                                  region_name=region or None)
                _CLIENTS[key] = session.client(service, config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    user_agent_extra="unitune"))
        return _CLIENTS[key]


def chain_region(profile: str | None = None) -> str | None:
    """The region the AWS chain names (AWS_REGION, AWS_DEFAULT_REGION, the profile's config);
    None when botocore is not installed or names none."""
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        return botocore.session.Session(profile=profile or None).get_config_variable("region")
    except BotoCoreError:
        return None


def _retry_after(headers: dict[str, Any]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):  # an HTTP date: leave the wait to the policy
        return None


def map_error(exc: BaseException, operation: str) -> BackendError:
    """A unitune BackendError for a botocore exception (the caller chains it with `from`)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata") or {}
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or exc)
        status = meta.get("HTTPStatusCode")
        if message.lstrip().startswith("<") or code == str(status):
            # no JSON error body (an HTML page from a proxy or a fake that lacks the call)
            message = (f"HTTP {status} without an AWS error body — does the endpoint "
                       "(AWS_ENDPOINT_URL) implement this call?")
        message = message.strip().splitlines()[0][:500] if message.strip() else code
        text = redact_text(f"bedrock {operation}: {code}: {message}") or ""
        after = _retry_after(meta.get("HTTPHeaders") or {})
        cls, hint = _CODES.get(code, (None, None))  # type: ignore[assignment]
        if cls is None:
            return from_http_status(int(status or 500), text, backend=BACKEND, vendor_code=code,
                                    retry_after=after)
        return cls(text, backend=BACKEND, vendor_code=code, status_code=status, hint=hint,
                   retry_after=after)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AuthError(f"bedrock {operation}: no AWS credentials found", backend=BACKEND,
                         hint="configure the AWS chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/"
                              "AWS_SECRET_ACCESS_KEY, or an instance/role")
    if isinstance(exc, bx.NoRegionError):
        return InvalidRequest(f"bedrock {operation}: no AWS region", backend=BACKEND,
                              hint="set backend_options.bedrock.region or AWS_REGION")
    if isinstance(exc, bx.ProfileNotFound):
        return AuthError(f"bedrock {operation}: {exc}", backend=BACKEND,
                         hint="check AWS_PROFILE / backend_options.bedrock.profile")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError,
                        bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return BackendUnavailable(f"bedrock {operation}: cannot reach AWS ({type(exc).__name__})",
                                  backend=BACKEND, hint="check the network / AWS_ENDPOINT_URL")
    if isinstance(exc, bx.ParamValidationError):
        return InvalidRequest(redact_text(f"bedrock {operation}: {exc}") or "", backend=BACKEND,
                              hint="this is a unitune bug if the spec passed `unitune plan`")
    return BackendError(redact_text(f"bedrock {operation}: {type(exc).__name__}: {exc}") or "",
                        backend=BACKEND)


@contextlib.contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Run botocore calls, re-raising their errors as unitune errors (original chained)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise map_error(exc, operation) from exc
    except Boto3Error as exc:  # S3UploadFailedError wraps the ClientError it failed with
        cause = exc.__cause__ or exc.__context__
        raise map_error(cause if isinstance(cause, (ClientError, BotoCoreError)) else exc,
                        operation) from exc


def is_missing(exc: BaseException) -> bool:
    """A botocore ClientError saying the S3 object is not there."""
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code")) in MISSING_S3_CODES
