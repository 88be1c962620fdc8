"""Cost pre-flight: what a batch of calls will cost, from the dated price catalog, before any
paid call is made.

`estimate(caller, conversations, params)` counts the prompt tokens with the model's tokenizer
(`unitune.tokens`, exact where the catalog names one, else the calibrated estimate) and bounds the
output by `max_tokens` per call, then prices both with the catalog's per-million rates. A base
model is priced at the catalog's `base_inference` rates when the catalog has them, else at its
`inference` rates (which for OpenAI are the fine-tuned model's rates: the estimate says so).
`confirm(est, yes=..., ask=...)` is the gate: free or unpriced calls pass, a priced batch above
`UNITUNE_CONFIRM_USD` (default $0.50) needs `yes` or an interactive "y".
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import UnituneError

if TYPE_CHECKING:
    from .types import Caller, GenParams, Message

DEFAULT_CONFIRM_USD = 0.50


@dataclass
class CostEstimate:
    label: str
    calls: int
    input_tokens: int
    max_output_tokens: int
    usd: float | None  # upper bound (every answer at max_tokens); None: not priced
    usd_expected: float | None  # with answers at a quarter of max_tokens
    price: str  # where the rates come from, or why there are none
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.usd is None:
            return f"{self.label}: {self.calls} call(s), ~{self.input_tokens:,} input tokens; " \
                   f"cost not estimated ({self.price})"
        return (f"{self.label}: {self.calls} call(s), ~{self.input_tokens:,} input + ≤ "
                f"{self.max_output_tokens:,} output tokens ≈ ${self.usd_expected:,.4f} "
                f"(at most ${self.usd:,.4f}; {self.price})")


def _rates(backend: str, model: str, tuned: bool) -> tuple[Any, str] | tuple[None, str]:
    from ..catalog import find_model

    info = find_model(backend, model)
    if info is None:
        return None, f"{backend}:{model} is not in the price catalog"
    base_rates = info.base_inference
    rates = info.inference if tuned or base_rates is None else base_rates
    if rates is None or rates.input_per_1m is None:
        return None, f"the catalog has no inference price for {backend}:{info.model}"
    src = f"catalog {backend}:{info.model}, as of {rates.as_of}"
    if not tuned and base_rates is None and backend in ("openai", "azure"):
        src += "; priced at the fine-tuned rate (the catalog has no base rate): an upper bound"
    return rates, src


def text_of(messages: "list[Message]") -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def estimate(caller: "Caller", conversations: "Sequence[list[Message]]",
             params: "GenParams") -> CostEstimate:
    """The cost of sending every conversation once to `caller`'s model (see module docstring)."""
    from ..tokens import counter_for

    price = getattr(caller, "price", None)
    calls = len(conversations)
    out_tokens = calls * params.max_tokens
    if price is None:
        counter = counter_for("estimate")
        tokens = sum(counter.count(text_of(c)) for c in conversations)
        return CostEstimate(caller.label, calls, tokens, out_tokens, None, None,
                            "no per-token price: a local model or a self-hosted server")
    backend, model = price
    counter = counter_for(f"{backend}:{model}")
    tokens = sum(counter.count(text_of(c)) + 4 * len(c) for c in conversations)
    rates, src = _rates(backend, model, tuned=bool(getattr(caller, "tuned", False)))
    if rates is None:
        return CostEstimate(caller.label, calls, tokens, out_tokens, None, None, src)
    inp = tokens * rates.input_per_1m / 1e6
    outp = (rates.output_per_1m or 0.0) / 1e6
    return CostEstimate(caller.label, calls, tokens, out_tokens, inp + out_tokens * outp,
                        inp + out_tokens * outp / 4, src)


def threshold() -> float:
    try:
        return float(os.environ.get("UNITUNE_CONFIRM_USD", DEFAULT_CONFIRM_USD))
    except ValueError:
        return DEFAULT_CONFIRM_USD


def confirm(estimates: "Sequence[CostEstimate]", *, yes: bool = False,
            ask: Callable[[str], bool] | None = None,
            log: Callable[[str], None] = lambda _m: None) -> None:
    """Log every estimate; refuse (UnituneError) a priced total above the threshold unless `yes`
    or `ask(question)` answers True."""
    for est in estimates:
        log(est.line())
    priced = [e.usd for e in estimates if e.usd is not None]
    total = sum(priced)
    if not priced or total <= threshold() or yes:
        return
    question = f"these calls may cost up to ${total:,.2f}; go on?"
    if ask is not None and ask(question):
        return
    raise UnituneError(f"not confirmed: the calls may cost up to ${total:,.2f} (above "
                       f"UNITUNE_CONFIRM_USD=${threshold():.2f})",
                       hint="add --yes to go ahead, --limit N for fewer examples, or raise "
                            "UNITUNE_CONFIRM_USD")
