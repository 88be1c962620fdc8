"""The one retry policy: bounded, exponential with full jitter, honouring `retry_after`.

Providers never retry (their SDKs' own retries are turned off); every retry in unitune happens
here, so the number of attempts a user can get is one figure, not a product of nested loops.
`create_once` adds the rule that makes creation idempotent: before any re-create, the job is
looked up by its idempotency key, and a lookup that fails never leads to a blind create.

Settings come from the environment when not given: UNITUNE_RETRY_MAX (attempts after the first),
UNITUNE_RETRY_BASE (first back-off, s), UNITUNE_RETRY_CAP (longest back-off, s),
UNITUNE_RETRY_DEADLINE (give up after this many seconds of retrying, s), UNITUNE_CONNECT_DEADLINE
(the same when the service cannot be reached at all, 60 s by default).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

from .errors import BackendError, BackendUnavailable, QuotaExceeded

T = TypeVar("T")


@dataclass
class RetryPolicy:
    max_retries: int = 8  # attempts after the first
    base: float = 1.0  # first back-off without retry_after (s)
    cap: float = 60.0  # longest back-off (s)
    deadline: float = 600.0  # stop retrying after this long (s)
    connect_deadline: float = 60.0  # stop sooner when the service cannot be reached at all (s)
    jitter: bool = True  # False: exactly base·2^attempt (tests that check the schedule)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RetryPolicy":
        from .options import env_number

        p = cls()
        p.max_retries = int(env_number("UNITUNE_RETRY_MAX", p.max_retries, env))
        p.base = env_number("UNITUNE_RETRY_BASE", p.base, env)
        p.cap = env_number("UNITUNE_RETRY_CAP", p.cap, env)
        p.deadline = env_number("UNITUNE_RETRY_DEADLINE", p.deadline, env)
        p.connect_deadline = env_number("UNITUNE_CONNECT_DEADLINE", p.connect_deadline, env)
        return p

    def deadline_for(self, exc: BackendError) -> float:
        """No answer at all (connection refused, DNS, timeout: a BackendUnavailable without an
        HTTP status) is given `connect_deadline`; a service that answers, `deadline`."""
        if isinstance(exc, BackendUnavailable) and exc.status_code is None:
            return min(self.deadline, self.connect_deadline)
        return self.deadline

    def wait(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based): the vendor's retry_after when
        it sent one, else a full-jitter draw in [base·2^attempt / 2, base·2^attempt], capped."""
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return max(0.0, min(float(after), self.cap))
        ceiling = min(self.cap, self.base * (2 ** attempt))
        if not self.jitter:
            return ceiling
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, BackendError) and exc.retryable and not isinstance(exc, QuotaExceeded)

    def call(self, what: str, fn: Callable[[], T], *, log: Callable[[str], None] = lambda _m: None,
             sleep: Callable[[float], None] = time.sleep) -> T:
        """fn(), retrying retryable BackendErrors within the attempt and time bounds."""
        clock = _Clock()
        attempt = 0
        while True:
            try:
                return fn()
            except BackendError as exc:
                if not self.retryable(exc) or attempt >= self.max_retries:
                    raise
                wait = self.wait(attempt, exc)
                if clock.elapsed() + wait > self.deadline_for(exc):
                    raise _gave_up(what, exc, clock.elapsed()) from exc
                log(f"{what}: {exc.message} — retry {attempt + 1}/{self.max_retries} in {wait:.2f}s")
                attempt += 1
                clock.sleep(sleep, wait)

    def create_once(self, create: Callable[[], T], lookup: Callable[[], T | None], *,
                    log: Callable[[str], None] = lambda _m: None,
                    sleep: Callable[[float], None] = time.sleep) -> T:
        """Create a remote job exactly once: after an answer that leaves it unknown whether the
        job exists (timeout, 5xx, 429), look it up by its key before trying again — and once
        more before giving up, so a create that went through is returned, not an error."""
        clock = _Clock()
        attempt = 0
        while True:
            try:
                return create()
            except BackendError as exc:
                if not self.retryable(exc):
                    raise
                wait = self.wait(attempt, exc)
                if attempt >= self.max_retries or clock.elapsed() + wait > self.deadline_for(exc):
                    found = _last_look(lookup)
                    if found is not None:
                        log("the job was created although the answer was lost; using it")
                        return found
                    if attempt >= self.max_retries:
                        raise
                    raise _gave_up("create", exc, clock.elapsed()) from exc
                log(f"create did not answer cleanly ({exc.message}); looking the job up before "
                    f"retrying in {wait:.2f}s")
                attempt += 1
                clock.sleep(sleep, wait)
                found = self.call("look the job up", lookup, log=log, sleep=sleep)
                if found is not None:
                    log("the job was created although the answer was lost; using it")
                    return found


def _last_look(lookup: Callable[[], T | None]) -> T | None:
    try:
        return lookup()
    except BackendError:
        return None


class _Clock:
    """Time spent retrying: the wall clock, or the waits asked for when `sleep` is not real
    (so an injected sleep in tests still meets the deadline)."""

    def __init__(self) -> None:
        self.started, self.waited = time.monotonic(), 0.0

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, self.waited)

    def sleep(self, sleep: Callable[[float], None], seconds: float) -> None:
        sleep(seconds)
        self.waited += seconds


def _gave_up(what: str, exc: BackendError, elapsed: float) -> BackendError:
    unreachable = isinstance(exc, BackendUnavailable) and exc.status_code is None
    knob = "UNITUNE_CONNECT_DEADLINE" if unreachable else "UNITUNE_RETRY_DEADLINE"
    err = BackendUnavailable(f"{what}: gave up after {elapsed:.0f}s of retries: {exc.message}",
                             backend=exc.backend, vendor_code=exc.vendor_code,
                             status_code=exc.status_code,
                             hint=(exc.hint or "") + ("; " if exc.hint else "")
                             + f"raise {knob} to wait longer")
    return err  # still retryable in kind: the caller keeps the job's row for a later lookup
