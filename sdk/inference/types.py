"""The shapes every inference backend shares: `GenParams` in, `Generation` out, and the
`Caller` protocol a backend implements (one method, `generate(messages, params)`).

A caller is built for ONE model (a tuned model's handle, or a base model by name) and is
stateless between calls apart from its SDK client; retries, concurrency and cost checks live
once in `unitune.inference.batch` / `unitune.inference.cost`, never in a caller.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

Message = dict[str, Any]  # {"role": "system" | "user" | "assistant", "content": str}

# vendor stop reasons → the one vocabulary: stop | length | content_filter | tool_calls | other
_FINISH = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "eos": "stop",
    "finish_reason_stop": "stop", "STOP": "stop", "FINISH_REASON_STOP": "stop",
    "length": "length", "max_tokens": "length", "MAX_TOKENS": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter", "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "tool_calls": "tool_calls", "tool_use": "tool_calls", "function_call": "tool_calls",
}


def normalize_finish(raw: Any) -> str:
    """A vendor's finish/stop reason in the one vocabulary ("other" when unknown, None → "stop"
    is never assumed: unknown stays "other")."""
    if raw is None:
        return "other"
    value = getattr(raw, "value", raw)
    return _FINISH.get(str(value), _FINISH.get(str(value).lower(), "other"))


@dataclass
class GenParams:
    """Sampling settings. Defaults are the evaluation defaults: greedy (temperature 0) with a
    fixed seed, which vendors that take one use."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = 0
    stop: list[str] = field(default_factory=list)


@dataclass
class Generation:
    """One answer. `usage` holds `input_tokens` / `output_tokens` (None when not reported);
    `raw` the vendor's response (JSON-safe, secrets never included)."""

    text: str
    finish_reason: str
    usage: dict[str, int | None]
    latency_s: float
    raw: Any = None
    model: str = ""

    def to_dict(self, raw: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not raw:
            out.pop("raw", None)
        return out


@runtime_checkable
class Caller(Protocol):
    """One model, callable. `label` names it for people ("openai:gpt-4o-mini", "job 2026… tuned");
    `price` is the catalog's (backend, model) used for cost estimates (None: not priced, e.g. a
    local model or a self-hosted server); `max_concurrency` caps parallel calls (1 for
    in-process models)."""

    backend: str
    model: str
    label: str
    price: tuple[str, str] | None
    max_concurrency: ClassVar[int] | int

    def generate(self, messages: list[Message], params: GenParams) -> Generation: ...


def usage(input_tokens: Any, output_tokens: Any) -> dict[str, int | None]:
    def num(v: Any) -> int | None:
        try:
            return int(v) if v is not None else None
        except (TypeError, ValueError):
            return None

    return {"input_tokens": num(input_tokens), "output_tokens": num(output_tokens)}
