"""Vendor exceptions → unitune errors, the original always chained (`raise … from exc`).

Covers google-genai (`google.genai.errors.APIError`: `.code` HTTP status, `.status`, `.message`,
`.response`), google-api-core (`GoogleAPICallError`, what the GAPIC client and
google-cloud-storage raise; `.response` for REST), google-auth (credential errors) and transport
failures (httpx, requests), which become BackendUnavailable: a lost answer may still have
created something, and the core looks the job up before any re-create. A 429 carries the
vendor's Retry-After as `retry_after`; a 429 about a quota is QuotaExceeded (not retried).
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

from unitune.errors import (AuthError, BackendError, BackendUnavailable, QuotaExceeded,
                            RateLimited, UnituneError, from_http_status)
from unitune.redact import redact_text

_HINTS = {
    401: "check your Application Default Credentials (`gcloud auth application-default login` "
         "or GOOGLE_APPLICATION_CREDENTIALS)",
    403: "grant the caller roles/aiplatform.user on the project and storage access to the bucket",
    404: "check project, location and the job name; `unitune list` shows known jobs",
    429: "Vertex tuning quota is per project and region: wait, or request more quota",
}
_GRPC_TO_HTTP = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
                 "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
                 "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
                 "UNAVAILABLE": 503, "INTERNAL": 500, "DEADLINE_EXCEEDED": 504}


_RATE_QUOTA = re.compile(r"per[ _-]?(minute|second|hour|day|min)(?![a-z])|PerMinute|PerSecond|\brate\b",
                         re.IGNORECASE)


def is_hard_quota(message: str) -> bool:
    """A quota that waiting will not lift (e.g. concurrent tuning jobs), as opposed to a rate
    quota ("Quota exceeded for … requests per minute"), which the core retries with back-off."""
    return "quota" in message.lower() and not _RATE_QUOTA.search(message)


def retry_after(response: Any) -> float | None:
    """Seconds from a response's Retry-After header (a number of seconds), if any."""
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _build(status: int | None, vendor_status: str | None, message: str, action: str,
           response: Any = None) -> BackendError:
    text = redact_text(f"Vertex AI {action} failed: {message}".strip()) or ""
    if status == 429 or vendor_status == "RESOURCE_EXHAUSTED":
        after = retry_after(response)
        if is_hard_quota(message):
            return QuotaExceeded(text, backend="vertex", vendor_code=vendor_status,
                                 status_code=status or 429, retry_after=after, hint=_HINTS[429])
        if after is None and _RATE_QUOTA.search(message):
            after = 60.0 if "minute" in message.lower() else None  # the window the quota names
        return RateLimited(text, backend="vertex", vendor_code=vendor_status,
                           status_code=status or 429, retry_after=after,
                           hint="a per-minute rate quota: unitune waits and retries")
    if status is None:
        return BackendUnavailable(text, backend="vertex", vendor_code=vendor_status)
    return from_http_status(status, text, backend="vertex", vendor_code=vendor_status,
                            hint=_HINTS.get(status))


@contextlib.contextmanager
def translate(action: str) -> Iterator[None]:
    """Run a vendor call; re-raise anything it throws as a unitune error."""
    try:
        yield
    except UnituneError:
        raise
    except Exception as exc:  # classified below; unknown ones are re-raised untouched
        mapped = classify(exc, action)
        if mapped is None:
            raise
        raise mapped from exc


def classify(exc: BaseException, action: str) -> UnituneError | None:
    mod = type(exc).__module__ or ""
    if mod.startswith("google.genai"):
        code = getattr(exc, "code", None)
        return _build(code if isinstance(code, int) else None, getattr(exc, "status", None),
                      getattr(exc, "message", None) or str(exc), action,
                      getattr(exc, "response", None))
    if mod.startswith("google.api_core"):
        from google.api_core import exceptions as core

        if isinstance(exc, core.GoogleAPICallError):
            status = exc.code if isinstance(exc.code, int) else None
            grpc_status = getattr(exc, "grpc_status_code", None)
            vendor = getattr(grpc_status, "name", None) or getattr(exc, "reason", None)
            if status is not None and status < 100:  # a gRPC code number, not HTTP
                status = None
            return _build(status or _GRPC_TO_HTTP.get(vendor or ""), vendor,
                          exc.message or str(exc), action, getattr(exc, "response", None))
        if isinstance(exc, core.RetryError):
            return BackendUnavailable(f"Vertex AI {action} failed: {exc}", backend="vertex")
    if mod.startswith("google.auth"):
        return AuthError(f"Vertex AI {action}: credentials were rejected or could not be "
                         f"refreshed ({type(exc).__name__})", backend="vertex", hint=_HINTS[401])
    if mod.startswith(("httpx", "httpcore", "requests", "urllib3")) or isinstance(
            exc, (ConnectionError, TimeoutError)):
        return BackendUnavailable(redact_text(f"Vertex AI {action}: no answer from the service "
                                              f"({type(exc).__name__}: {exc})") or "",
                                  backend="vertex",
                                  hint="check the network or UNITUNE_VERTEX_ENDPOINT")
    return None
