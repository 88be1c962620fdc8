"""The `openai` SDK's exceptions as unitune errors (`retryable` truthful), secrets redacted.

    APIStatusError 429 insufficient_quota      → QuotaExceeded (waiting will not help)
    APIStatusError 429                         → RateLimited, retry_after from Retry-After
    APIStatusError 5xx / 408                   → BackendUnavailable (retryable)
    APIStatusError 400/401/403/404/409/422     → InvalidRequest / AuthError / PermissionDenied /
                                                 NotFound
    APITimeoutError, APIConnectionError        → BackendUnavailable (retryable: the core looks a
                                                 job up by its key before any re-create)
    other OpenAIError (e.g. missing key)       → AuthError

Every message goes through `unitune.redact.redact_text`, and the chained original's message is
redacted too (it may be logged with a traceback). The SDK is imported only when a call is made.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, TypeVar

from unitune.backends import import_sdk
from unitune.errors import (AuthError, BackendError, BackendUnavailable, QuotaExceeded,
                            UnituneError, from_http_status)
from unitune.redact import redact_text

T = TypeVar("T")
QUOTA_CODES = ("insufficient_quota", "quota_exceeded")


def _hint(status: int, backend: str) -> str | None:
    if status >= 500:
        return "the service had a problem; retrying is safe (creation looks the job up first)"
    return {401: "check " + ("OPENAI_API_KEY" if backend == "openai" else "the credentials"),
            403: "the key lacks access to fine-tuning (project/organization permissions)",
            404: "check the id, and that the key belongs to the project that owns it",
            429: "rate limited: unitune waits and retries"}.get(status)


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def map_error(exc: BaseException, action: str, backend: str, display: str,
              options: Any = None) -> UnituneError:
    """`exc` as a unitune error (the caller chains the original with `raise … from exc`)."""
    if isinstance(exc, UnituneError):
        return exc

    def clean(text: str) -> str:
        return redact_text(text, extra=options) or ""

    if isinstance(getattr(exc, "message", None), str):  # the chained original, scrubbed too
        try:
            exc.message = clean(exc.message)  # type: ignore[attr-defined]
            exc.args = tuple(clean(a) if isinstance(a, str) else a for a in exc.args)
        except Exception:  # noqa: BLE001 - a read-only exception stays as it is
            pass
    openai = sys.modules.get("openai")
    if openai is not None and isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        message = (err or {}).get("message") or str(exc)
        code = (err or {}).get("code")
        code = str(code) if code is not None else None
        text = clean(f"{display}: {action} failed (HTTP {exc.status_code}): {message}")
        if exc.status_code == 429 and code in QUOTA_CODES:
            return QuotaExceeded(text, backend=backend, vendor_code=code, status_code=429,
                                 hint="check your plan and billing; waiting will not help")
        return from_http_status(exc.status_code, text, backend=backend, vendor_code=code,
                                retry_after=_retry_after(exc) if exc.status_code == 429 else None,
                                hint=_hint(exc.status_code, backend))
    if openai is not None and isinstance(exc, openai.APITimeoutError):
        return BackendUnavailable(f"{display}: {action} timed out", backend=backend,
                                  hint=f"retry; raise backend_options.{backend}.timeout for "
                                       "slow links")
    if openai is not None and isinstance(exc, openai.APIConnectionError):
        url = getattr(getattr(exc, "request", None), "url", None)
        where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "") if url \
            else "the API"
        return BackendUnavailable(clean(f"{display}: {action} failed: cannot reach {where} "
                                        f"({exc.message})"), backend=backend,
                                  hint="check the network / base URL, then retry")
    if openai is not None and isinstance(exc, openai.OpenAIError):
        return AuthError(clean(f"{display}: {action} failed: {exc}"), backend=backend,
                         hint="set the API key (and the endpoint for Azure)")
    return BackendError(clean(f"{display}: {action} failed: {type(exc).__name__}: {exc}"),
                        backend=backend)


def call(action: str, fn: Callable[[], T], backend: str, display: str,
         options: Any = None) -> T:
    """`fn()` (one SDK call), with what it raises mapped by `map_error`."""
    openai = import_sdk("openai", "openai")
    try:
        return fn()
    except openai.OpenAIError as exc:
        raise map_error(exc, action, backend, display, options) from exc
