"""The `openai` SDK's exceptions as unitune errors (`retryable` truthful), secrets redacted.

    APIStatusError 429 insufficient_quota      → QuotaExceeded (waiting will not help)
    APIStatusError 429                         → RateLimited, retry_after from Retry-After
    APIStatusError 5xx / 408                   → BackendUnavailable (retryable)
    APIStatusError 400/401/403/404/409/422     → InvalidRequest / AuthError / PermissionDenied /
                                                 NotFound
    APITimeoutError, APIConnectionError        → BackendUnavailable (retryable: the core looks a
                                                 job up by its key before any re-create)
    other OpenAIError (e.g. missing key)       → AuthError

A refusal of `jobs.create` that reads as the fine-tuning gate (OpenAI: HTTP 403 on create, or a
message about self-serve fine-tuning not being available) becomes `FineTuningGated`, a
PermissionDenied whose message names OpenAI's staged closure — the gates and their dates, from
the catalog — and points at `unitune compare`, instead of a generic "the key lacks access". The
exact body OpenAI sends then was not found in the vendor's documents or public issues (only that
it is a permission error, e.g. github.com/ed-donner/llm_engineering issue 3258, 2026-05-26); the
recognised shape is therefore ASSUMED: {"error": {"message", "type", "code"}} with status 403,
or any status whose message matches GATE_WORDS.

Every message goes through `unitune.redact.redact_text`, and the chained original's message is
redacted too (it may be logged with a traceback). The SDK is imported only when a call is made.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, TypeVar

from unitune.backends import import_sdk
import re

from unitune.errors import (AuthError, BackendError, BackendUnavailable, PermissionDenied,
                            QuotaExceeded, UnituneError, from_http_status)
from unitune.redact import redact_text

T = TypeVar("T")
QUOTA_CODES = ("insufficient_quota", "quota_exceeded")
CREATE_ACTION = "create the fine-tuning job"
GATE_WORDS = re.compile(r"self[- ]serve fine[- ]tuning|fine[- ]tuning (is )?(no longer|not) "
                        r"(available|accessible|enabled)|no longer (able|allowed) to create "
                        r"fine[- ]tuning|winding down|wind[- ]down", re.IGNORECASE)


class FineTuningGated(PermissionDenied):
    """OpenAI refused to create a job because the organisation is gated out of fine-tuning."""


def gates_text(backend: str = "openai") -> str:
    """OpenAI's staged closure as one sentence, from the catalog (gates, last day, source)."""
    try:
        from unitune.catalog import models

        lives = [m.lifecycle for m in models(backend) if m.lifecycle and m.lifecycle.gates]
    except Exception:  # noqa: BLE001 - a broken catalog must not hide the vendor's refusal
        lives = []
    if not lives:
        return "OpenAI is closing self-serve fine-tuning in stages"
    life = max(lives, key=lambda lc: lc.new_jobs_until or lc.as_of)
    steps = [f"from {g.since.isoformat()} {g.who}" for g in life.gates]
    last = max((lc.new_jobs_until for lc in lives if lc.new_jobs_until), default=None)
    if last is not None:
        from datetime import timedelta

        steps.append(f"from {(last + timedelta(days=1)).isoformat()} everyone")
    return ("OpenAI is closing self-serve fine-tuning in stages and blocks new jobs for: "
            + "; ".join(steps) + f" [source: {life.source}, as of {life.as_of.isoformat()}]")


def _gated(status: int, message: str, action: str, backend: str) -> bool:
    if backend != "openai" or action != CREATE_ACTION:
        return False
    return status == 403 or bool(GATE_WORDS.search(message or ""))


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
        if _gated(exc.status_code, message, action, backend):
            return FineTuningGated(
                clean(f"{display} refused to create the fine-tuning job (HTTP "
                      f"{exc.status_code}): {message}. Your organisation appears to be gated "
                      f"out of fine-tuning: {gates_text(backend)}."),
                backend=backend, vendor_code=code, status_code=exc.status_code,
                hint="run `unitune compare SPEC` to price the same job elsewhere, then move it "
                     "with one flag (`unitune train SPEC --backend vertex|bedrock|azure|local`)")
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
