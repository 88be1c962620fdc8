"""Many calls to one model: bounded concurrency, the core's retry policy, results in order.

`run_batch(caller, conversations, params)` sends each conversation once (retrying only what
`unitune.retry.RetryPolicy` calls retryable: 429s with their Retry-After, 5xx, timeouts), at most
`concurrency` at a time (never more than the caller's own `max_concurrency`: an in-process model
takes one call at a time), and returns one `Outcome` per conversation in input order: the
Generation, or the error that ended its retries. One failed call does not stop the batch.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import UnituneError
from ..retry import RetryPolicy

if TYPE_CHECKING:
    from .types import Caller, GenParams, Generation, Message

DEFAULT_CONCURRENCY = 4


@dataclass
class Outcome:
    generation: "Generation | None" = None
    error: UnituneError | None = None

    @property
    def ok(self) -> bool:
        return self.generation is not None


def call_once(caller: "Caller", messages: "list[Message]", params: "GenParams", *,
              policy: RetryPolicy | None = None, log: Callable[[str], None] = lambda _m: None,
              sleep: Callable[[float], None] = time.sleep) -> "Generation":
    """One call with retries (raises the final error)."""
    policy = policy or RetryPolicy.from_env()
    return policy.call(f"generate with {caller.label}", lambda: caller.generate(messages, params),
                       log=log, sleep=sleep)


def run_batch(caller: "Caller", conversations: "Sequence[list[Message]]", params: "GenParams", *,
              concurrency: int = DEFAULT_CONCURRENCY, policy: RetryPolicy | None = None,
              log: Callable[[str], None] = lambda _m: None,
              progress: Callable[[int, int], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> list[Outcome]:
    """Outcomes in input order; see the module docstring."""
    policy = policy or RetryPolicy.from_env()
    limit = max(1, min(concurrency, int(getattr(caller, "max_concurrency", concurrency) or 1)))
    total = len(conversations)
    done = 0

    def one(messages: "list[Message]") -> Outcome:
        try:
            return Outcome(call_once(caller, messages, params, policy=policy, log=log,
                                     sleep=sleep))
        except UnituneError as exc:
            return Outcome(error=exc)

    out: list[Outcome] = []
    if limit == 1:
        for messages in conversations:
            out.append(one(messages))
            done += 1
            if progress:
                progress(done, total)
        return out
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="unitune-gen") as pool:
        for result in pool.map(one, conversations):
            out.append(result)
            done += 1
            if progress:
                progress(done, total)
    return out
