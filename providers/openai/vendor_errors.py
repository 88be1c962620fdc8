"""The `openai` SDK's exceptions as unitune errors, with secrets scrubbed from every message.

`VendorErrorsMixin` gives the backends `_map` (an exception → a unitune error) and `_call` (run an
SDK call, mapping what it raises). The SDK is imported only when a call is made."""
from __future__ import annotations

import re
import sys
from typing import Any, Callable, Iterable

from unitune.backends import import_sdk
from unitune.errors import (AuthError, BackendError, BackendUnavailable, QuotaExceeded,
                            UnituneError, from_http_status)

SECRET_PATTERNS = (re.compile(r"sk-[A-Za-z0-9_\-*]{6,}"), re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-~+/=]{8,}"))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secret values and key-looking strings from a message."""
    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(0)[:3] + "***" if m.group(0).startswith("sk-")
                           else "Bearer ***", text)
    return text


class VendorErrorsMixin:
    """Error mapping for `OpenAIBackend` (uses its `name`, `display`, `key_env` and `_secrets`)."""

    def _map(self, exc: BaseException, action: str, conn: dict[str, Any] | None = None) -> UnituneError:
        """A vendor exception as a unitune error (the caller chains the original with `from`)."""
        if isinstance(exc, UnituneError):
            return exc
        secrets = self._secrets(conn)
        openai = sys.modules.get("openai")
        # scrub the original too: it stays chained and may be logged with a traceback
        if getattr(exc, "message", None) and isinstance(exc.message, str):  # type: ignore[attr-defined]
            try:
                exc.message = scrub(exc.message, secrets)  # type: ignore[attr-defined]
                exc.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
            except Exception:
                pass
        who = self.display
        if openai is not None and isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            err = body.get("error") if isinstance(body.get("error"), dict) else body
            msg = (err or {}).get("message") or str(exc)
            code = (err or {}).get("code")
            code = str(code) if code is not None else None
            retry_after = None
            try:
                ra = exc.response.headers.get("retry-after")
                retry_after = float(ra) if ra is not None else None
            except (TypeError, ValueError, AttributeError):
                pass
            text = scrub(f"{who}: {action} failed (HTTP {exc.status_code}): {msg}", secrets)
            if exc.status_code == 429 and code in ("insufficient_quota", "quota_exceeded"):
                return QuotaExceeded(text, backend=self.name, vendor_code=code, status_code=429,
                                     hint="check your plan and billing; waiting will not help")
            hint = {401: f"check {self.key_env if self.name == 'openai' else 'the credentials'}",
                    403: "the key lacks access to fine-tuning (project/organization permissions)",
                    404: "check the id, and that the key belongs to the project that owns it",
                    429: "rate limited: retry later"}.get(exc.status_code)
            if exc.status_code >= 500:
                hint = "the service had a problem; retrying is safe (submission looks the job up first)"
            return from_http_status(exc.status_code, text, backend=self.name, vendor_code=code,
                                    retry_after=retry_after, hint=hint)
        if openai is not None and isinstance(exc, openai.APITimeoutError):
            return BackendUnavailable(f"{who}: {action} timed out", backend=self.name,
                                      hint="retry; raise backend_options timeout for slow links")
        if openai is not None and isinstance(exc, openai.APIConnectionError):
            where = conn.get("base_url") or conn.get("endpoint") if conn else None
            return BackendUnavailable(scrub(f"{who}: {action} failed: could not reach "
                                            f"{where or 'the API'} ({exc.message})", secrets),
                                      backend=self.name, hint="check the network / base URL, then retry")
        if openai is not None and isinstance(exc, openai.OpenAIError):
            return AuthError(scrub(f"{who}: {action} failed: {exc}", secrets), backend=self.name,
                             hint=f"set {self.key_env} (and the endpoint for Azure)")
        return BackendError(scrub(f"{who}: {action} failed: {type(exc).__name__}: {exc}", secrets),
                            backend=self.name)

    def _call(self, action: str, conn: dict[str, Any], fn: Callable[[], Any]) -> Any:
        openai = import_sdk("openai", "openai")
        try:
            return fn()
        except (openai.OpenAIError,) as exc:
            raise self._map(exc, action, conn) from exc
