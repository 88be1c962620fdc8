"""One error hierarchy for unitune; vendor exceptions are mapped into it with the original chained.

    UnituneError                      base of everything unitune raises on purpose
    ├── SpecError                     the job spec is invalid (names the field and the fix)
    ├── DataError                     the dataset is unusable (carries the validation report)
    ├── MissingDependency             an optional extra is not installed (carries the pip hint)
    ├── JobNotFound                   no such job in the local registry
    ├── RegistryError                 the local registry is corrupt or lost rows (names the fix)
    ├── Unsupported                   the backend cannot run this spec (refused before upload)
    └── BackendError                  the vendor said no, or could not be reached
        ├── AuthError                 credentials missing or rejected (401)
        ├── PermissionDenied          authenticated but not allowed (403)
        ├── QuotaExceeded             account quota or limit reached (not retried)
        ├── RateLimited               429 / throttling: retryable, may carry retry_after
        ├── NotFound                  the remote object does not exist (404)
        ├── InvalidRequest            the vendor rejected the request (400/422)
        ├── BackendUnavailable        5xx, timeouts, connection errors: retryable
        └── MetricsUnavailable        the vendor keeps the curves elsewhere (e.g. Vertex AI
                                      Experiments): says where instead of an empty table

Every error carries `hint` (what the user can do next). `BackendError.retryable` tells the
polling and retry loops what they may try again. Messages never contain secrets.
"""
from __future__ import annotations


class UnituneError(Exception):
    """Base class; `hint` tells the user what to do next."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class SpecError(UnituneError):
    """The job spec is invalid. `field` is the dotted path of the offending field."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None,
                 file: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.file = file


class DataError(UnituneError):
    """The dataset cannot be used; `report` (a data.report.Report) lists every problem."""

    def __init__(self, message: str, *, report=None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class MissingDependency(UnituneError):
    """An optional dependency is missing; the hint is the exact pip command."""


class JobNotFound(UnituneError):
    """No job with that id (or prefix) in the local registry."""


class RegistryError(UnituneError):
    """The local job registry cannot be trusted as it is: its file is corrupt, or it lost rows of
    jobs that still have folders (submitting now could pay for a second job)."""


class Unsupported(UnituneError):
    """The backend cannot run what the spec asks for; raised before anything is uploaded."""

    def __init__(self, message: str, *, feature: str | None = None, backend: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.feature = feature
        self.backend = backend


class BackendError(UnituneError):
    """A vendor-side failure. `vendor_code` / `status_code` keep what the vendor said."""

    retryable: bool = False

    def __init__(self, message: str, *, backend: str | None = None, vendor_code: str | None = None,
                 status_code: int | None = None, retry_after: float | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.backend = backend
        self.vendor_code = vendor_code
        self.status_code = status_code
        self.retry_after = retry_after


class AuthError(BackendError):
    """Credentials are missing or were rejected."""


class PermissionDenied(BackendError):
    """The credentials are valid but lack permission."""


class QuotaExceeded(BackendError):
    """An account quota or hard limit was reached; waiting will not help."""


class RateLimited(BackendError):
    """Throttled; try again after `retry_after` seconds when given."""

    retryable = True


class NotFound(BackendError):
    """The remote object does not exist."""


class InvalidRequest(BackendError):
    """The vendor rejected the request as invalid."""


class BackendUnavailable(BackendError):
    """Server error, timeout or connection failure; retryable."""

    retryable = True


class MetricsUnavailable(BackendError):
    """The job's training curves cannot be read through this API (the message says where they
    live, e.g. Vertex AI Experiments); not retryable, and not an empty table."""


_BY_STATUS: dict[int, type[BackendError]] = {
    400: InvalidRequest, 401: AuthError, 403: PermissionDenied, 404: NotFound,
    408: BackendUnavailable, 409: InvalidRequest, 422: InvalidRequest, 429: RateLimited,
}


def from_http_status(status: int, message: str, **kwargs) -> BackendError:
    """Build the right BackendError subclass for an HTTP status (5xx → BackendUnavailable)."""
    cls = _BY_STATUS.get(status) or (BackendUnavailable if status >= 500 else BackendError)
    return cls(message, status_code=status, **kwargs)
