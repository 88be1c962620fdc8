"""Token counts for local models resolve offline: the embedded tiny model's own BPE, a folder,
or an honest estimate for a hub id that is not cached (never a download, never an exception)."""
from __future__ import annotations

from unitune import tokens


def test_tiny_chat_counts_exactly_before_the_model_is_built():
    tokens._counter_for_tokenizer.cache_clear()
    counter = tokens.counter_for("local:unitune/tiny-chat")
    assert counter.exact and "exact" in counter.method
    # a 512-entry byte-level BPE: Chinese text costs several tokens per character
    assert counter.count("订单") > 2
    assert counter.count("") == 0


def test_uncached_hub_model_falls_back_to_the_estimate_with_a_reason():
    tokens._counter_for_tokenizer.cache_clear()
    counter = tokens.counter_for("hf:nobody/not-a-cached-model")
    assert not counter.exact
    assert "not available offline" in counter.method
    assert counter.count("hello world") > 0
