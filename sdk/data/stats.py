"""Dataset statistics: examples, turns, roles, duplicates, and per target the token distribution
(total/mean/p50/p90/p99/max per example, assistant-token share, examples over the limit, a length
histogram). Built by the validator from what it already counted; rendered by `unitune stats`.
"""
from __future__ import annotations

import math
from typing import Any


def percentile(sorted_values: Any, q: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    n = len(sorted_values)
    if not n:
        return 0
    k = max(1, math.ceil(q / 100 * n))
    return int(sorted_values[k - 1])


def _nice_width(span: float, bins: int) -> int:
    raw = max(1.0, span / bins)
    mag = 10 ** int(math.floor(math.log10(raw)))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return int(m * mag)
    return int(10 * mag)


def histogram(sorted_values: Any, bins: int = 12) -> dict[str, list[int]]:
    """Length histogram: `edges` (lower bounds) and `counts`; the last bin is open-ended.

    Lengths spanning less than 3 octaves get ~`bins` linear bins of a round width; wider spreads
    get power-of-two bins (at most `bins`, the low end merged), so long tails stay readable.
    """
    if not len(sorted_values):
        return {"edges": [], "counts": []}
    import bisect

    lo, hi = max(1, int(sorted_values[0])), max(1, int(sorted_values[-1]))
    if hi < 8 * lo:
        width = _nice_width(hi - lo + 1, bins)
        start = (lo // width) * width
        edges = list(range(start, hi + 1, width))
    else:
        edges = []
        e = 2 ** int(math.log2(lo))
        while e <= hi:
            edges.append(e)
            e *= 2
        if len(edges) > bins:  # merge the low end into the first bin
            edges = [edges[0]] + edges[len(edges) - bins + 1:]
        edges[0] = 0
    counts = [0] * len(edges)
    j = 0
    for i in range(len(edges)):
        k = len(sorted_values) if i + 1 == len(edges) else \
            bisect.bisect_left(sorted_values, edges[i + 1], lo=j)
        counts[i] = k - j
        j = k
    return {"edges": edges, "counts": counts}


def _sorted(tokens: Any) -> Any:
    """Ascending copy; a numpy array (4 bytes an example) when numpy is there, not a list of
    Python ints (~36 bytes an example), so a million-example file stays in the memory budget."""
    try:
        import numpy as np
    except ImportError:
        return sorted(tokens)
    return np.sort(np.asarray(tokens, dtype=np.int64) if isinstance(tokens, list)
                   else np.frombuffer(tokens, dtype=np.uint32))


def token_stats(tokens: Any, assistant_tokens: int, info: Any, counter: Any,
                over_limit: int) -> dict[str, Any]:
    values = _sorted(tokens)
    n = len(values)
    total = int(values.sum()) if hasattr(values, "sum") else sum(values)
    return {
        "method": counter.method,
        "exact": counter.exact,
        "total": total,
        "mean": round(total / n, 1) if n else 0,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": int(values[-1]) if n else 0,
        "assistant_share": round(assistant_tokens / total, 4) if total else 0.0,
        "limit": info.limits.tokens_per_example,
        "truncates": info.limits.truncates,
        "over_limit": over_limit,
        "histogram": histogram(values),
    }


def build_stats(v: Any) -> dict[str, Any]:
    """Statistics from a finished `validate.Validator`."""
    out: dict[str, Any] = {
        "examples": v.n,
        "lines": v.report.examples,
        "preference_examples": v.preference,
        "assistant_turns": v.turns,
        "messages": sum(v.role_counts.values()),
        "roles": dict(sorted(v.role_counts.items(), key=lambda kv: -kv[1])),
        "duplicates": {"exact": v.duplicates, "normalized": v.near_duplicates},
        "tokens": {},
    }
    for t in v.targets:
        g = t.group
        out["tokens"][t.spec] = token_stats(g.tokens, g.assistant_tokens, t.info, g.counter,
                                            t.over_limit)
    return out


def render_histogram(hist: dict[str, list[int]], width: int = 40) -> list[str]:
    """Terminal bars, one line per bin: `   256-511 ████████ 1,234`."""
    edges, counts = hist.get("edges", []), hist.get("counts", [])
    if not counts:
        return []
    peak = max(counts) or 1
    labels = []
    for i, e in enumerate(edges):
        labels.append(f"{e:,}-{edges[i + 1] - 1:,}" if i + 1 < len(edges) else f"{e:,}+")
    w = max(map(len, labels))
    lines = []
    for label, c in zip(labels, counts):
        bar = "█" * (round(c / peak * width) if c else 0)
        if c and not bar:
            bar = "▏"
        lines.append(f"  {label:>{w}} {bar} {c:,}")
    return lines


def render_quality(q: dict[str, Any], width: int = 40) -> list[str]:
    """The data-quality section of `unitune stats` (see unitune.data.quality)."""
    lines = []
    if q.get("skipped"):
        lines.append(f"  {q['skipped']}")
    nd = q.get("near_duplicates", {})
    pairs = ", ".join(f"{p['line']}~{p['other_line']}" for p in nd.get("pairs", [])[:8])
    lines.append(f"  near-duplicates   {nd.get('count', 0):,}"
                 + (f" (line pairs {pairs}{' …' if nd.get('count', 0) > 8 else ''})"
                    if pairs else ""))
    inc = q.get("inconsistent_answers", {})
    pairs = ", ".join(f"{p['line']}~{p['other_line']}" for p in inc.get("pairs", [])[:8])
    lines.append(f"  inconsistent      {inc.get('count', 0):,}"
                 + (f" (same question, other answer: {pairs})" if pairs else ""))
    if "leakage" in q:
        lk = q["leakage"]
        lines.append(f"  leakage           {lk['count']:,} of {lk['validation_examples']:,} "
                     "validation examples near-duplicate a training example")
    d = q.get("diversity") or {}
    if d:
        lines.append(f"  diversity         distinct-1 {d['distinct_1']:.2f}, distinct-2 "
                     f"{d['distinct_2']:.2f}")
        for o in d.get("top_openings", [])[:3]:
            lines.append(f"    opening {o['share']:>5.0%}  {o['opening']}")
    v = q.get("volume")
    if v:
        verdict = "enough" if v["enough"] else "below the guide's range"
        lines.append(f"  volume            {v['examples']:,} for {v['task']}: the guide says "
                     f"{v['recommended'][0]:,}-{v['recommended'][1]:,} ({verdict})")
    return lines

