"""boto3 plumbing: a session from the standard AWS chain, clients with botocore's retry modes,
and botocore errors mapped into unitune's hierarchy with the original chained.

Endpoints are never set here: boto3 honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_BEDROCK` /
`AWS_ENDPOINT_URL_S3` and profile settings itself, which is how the tests point at moto.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from unitune.backends import import_sdk
from unitune.errors import (AuthError, BackendError, BackendUnavailable, InvalidRequest, NotFound,
                            PermissionDenied, QuotaExceeded, RateLimited)

BACKEND = "bedrock"

# botocore error code -> (unitune class, hint)
_CODES: dict[str, tuple[type[BackendError], str]] = {
    "ThrottlingException": (RateLimited, "Bedrock throttled the call; unitune retries with "
                            "backoff — raise `max_attempts` or use retry_mode: adaptive"),
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
    "403": (PermissionDenied, "the caller needs s3:GetObject/PutObject on the prefix and "
            "s3:ListBucket on the bucket (without ListBucket S3 answers 403 for a missing object)"),
    "Forbidden": (PermissionDenied, "the caller needs s3:GetObject/PutObject on the prefix and "
                  "s3:ListBucket on the bucket"),
    "NotFound": (NotFound, "the S3 object does not exist"),
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


def boto3():
    return import_sdk("boto3", "bedrock")


def retry_config(options: dict[str, Any]):
    """botocore Config with a retry mode (standard | adaptive) and attempt count.

    Options win over AWS_RETRY_MODE / AWS_MAX_ATTEMPTS, which win over the defaults."""
    from botocore.config import Config

    mode = str(options.get("retry_mode") or os.environ.get("AWS_RETRY_MODE") or "standard")
    attempts = int(options.get("max_attempts") or os.environ.get("AWS_MAX_ATTEMPTS") or 8)
    return Config(retries={"mode": mode, "total_max_attempts": attempts},
                  user_agent_extra="unitune")


_LOADER: Any = None  # botocore's service-model loader: read-only data, shared across sessions


def session(options: dict[str, Any]):
    """A boto3 session from the standard chain; `profile` and `region` options override it.

    Sessions share one botocore data loader, so service models (large JSON files) are parsed
    once per process instead of once per backend instance."""
    global _LOADER
    import botocore.session

    core = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return boto3().session.Session(botocore_session=core,
                                   profile_name=options.get("profile") or None,
                                   region_name=options.get("region") or None)


def map_error(exc: BaseException, operation: str) -> BackendError:
    """A unitune BackendError for a botocore exception (the caller chains it with `from`)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or exc)
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if message.lstrip().startswith("<") or code == str(status):
            # no JSON error body (an HTML page from a proxy or a fake that lacks the call)
            message = (f"HTTP {status} without an AWS error body — does the endpoint "
                       "(AWS_ENDPOINT_URL) implement this call?")
        message = message.strip().splitlines()[0][:500] if message.strip() else code
        cls, hint = _CODES.get(code, (None, None))  # type: ignore[assignment]
        if cls is None:
            from unitune.errors import from_http_status

            out = from_http_status(int(status or 500), f"bedrock {operation}: {code}: {message}",
                                   backend=BACKEND, vendor_code=code)
            return out
        return cls(f"bedrock {operation}: {code}: {message}", backend=BACKEND, vendor_code=code,
                   status_code=status, hint=hint)
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
        return InvalidRequest(f"bedrock {operation}: {exc}", backend=BACKEND,
                              hint="this is a unitune bug if the spec passed `unitune plan`")
    return BackendError(f"bedrock {operation}: {type(exc).__name__}: {exc}", backend=BACKEND)


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
        if isinstance(cause, (ClientError, BotoCoreError)):
            raise map_error(cause, operation) from exc
        raise map_error(exc, operation) from exc


def error_code(exc: BaseException) -> str | None:
    """The vendor code of a mapped error or a botocore ClientError."""
    code = getattr(exc, "vendor_code", None)
    if code:
        return code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code")
    return None
