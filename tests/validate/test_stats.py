"""Percentiles, the power-of-two histogram and its terminal rendering."""
from __future__ import annotations

from unitune.data.stats import histogram, percentile, render_histogram


def test_percentile_nearest_rank():
    v = list(range(1, 101))
    assert (percentile(v, 50), percentile(v, 90), percentile(v, 99), percentile(v, 100)) == \
        (50, 90, 99, 100)
    assert percentile([], 50) == 0 and percentile([7], 99) == 7


def test_histogram_bins_cover_every_value():
    v = sorted([1, 3, 5, 17, 40, 1000, 5000, 5001])
    h = histogram(v)
    assert sum(h["counts"]) == len(v)
    assert h["edges"][0] == 0 and h["edges"] == sorted(h["edges"])
    assert h["counts"][-1] == 2  # 4096+ holds 5000 and 5001
    wide = histogram(sorted([1, 2 ** 30]), bins=12)
    assert len(wide["edges"]) == 12 and sum(wide["counts"]) == 2
    assert histogram([]) == {"edges": [], "counts": []}
    narrow = histogram(sorted(range(64, 208)))  # under 3 octaves: round linear bins
    assert narrow["edges"][:3] == [60, 80, 100] and sum(narrow["counts"]) == 144
    assert 6 <= len(narrow["edges"]) <= 13
    assert histogram([5])["counts"] == [1]


def test_render_histogram():
    lines = render_histogram({"edges": [0, 16, 32], "counts": [1, 0, 4]}, width=8)
    assert len(lines) == 3
    assert lines[0].split()[0] == "0-15" and lines[2].split()[0] == "32+"
    assert lines[2].count("█") == 8 and lines[0].count("█") == 2
    assert lines[1].strip().endswith("0")
