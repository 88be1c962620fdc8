"""Paired bootstrap intervals, seeded so a rerun prints the same numbers.

`paired(base_fn, tuned_fn, n)` resamples example indices with replacement `resamples` times
(default 1000, seed 0); each resample scores base and tuned on the SAME indices, so the interval
of the difference accounts for the pairing. The 95% interval is the 2.5th and 97.5th percentile
of the resampled differences; an interval containing 0 means the difference is within noise.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

RESAMPLES = 1000
SEED = 0


def _indices(n: int, resamples: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(n) for _ in range(n)] for _ in range(resamples)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def paired(base: Callable[[list[int]], float], tuned: Callable[[list[int]], float], n: int, *,
           resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """95% interval of tuned − base over paired resamples of n examples."""
    if n == 0:
        return (float("nan"), float("nan"))
    diffs = [tuned(idx) - base(idx) for idx in _indices(n, resamples, seed)]
    return (percentile(diffs, 2.5), percentile(diffs, 97.5))


def single(fn: Callable[[list[int]], float], n: int, *, resamples: int = RESAMPLES,
           seed: int = SEED) -> tuple[float, float]:
    """95% interval of one score."""
    if n == 0:
        return (float("nan"), float("nan"))
    values = [fn(idx) for idx in _indices(n, resamples, seed)]
    return (percentile(values, 2.5), percentile(values, 97.5))


def mean_of(values: Sequence[float]) -> Callable[[list[int]], float]:
    return lambda idx: sum(values[i] for i in idx) / len(idx) if idx else 0.0


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50) if values else None


def within_noise(ci: tuple[float, float]) -> bool:
    lo, hi = ci
    return not (lo > 0 or hi < 0)
