"""One inference call for every model unitune can reach: tuned or base, on any backend.

    from unitune.inference import generate, GenParams
    g = generate("openai:gpt-4.1-mini-2025-04-14", [{"role": "user", "content": "hi"}],
                 GenParams(max_tokens=64))
    g.text, g.finish_reason, g.usage, g.latency_s, g.raw

    generate("openai:llama3", msgs, base_url="http://127.0.0.1:8000/v1")   # vLLM, llama.cpp, Ollama
    generate_job("2026…-abcd", msgs)                 # a job's tuned model (base=True: its base)

Pieces: `types` (GenParams, Generation, the Caller protocol), `registry` (which caller serves a
`BACKEND:MODEL` string or a job; lazy), `batch` (bounded concurrency + the core's RetryPolicy),
`cost` (pre-flight estimate from the catalog, and the confirmation gate). The callers live beside
each provider: providers/openai/inference.py (OpenAI, Azure, any OpenAI-compatible server),
providers/bedrock/inference.py (bedrock-runtime converse), providers/vertex/inference.py
(google-genai generate_content), local/inference.py (transformers + PEFT).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import Caller, GenParams, Generation, Message, normalize_finish

if TYPE_CHECKING:
    from ..retry import RetryPolicy

__all__ = ["Caller", "GenParams", "Generation", "Message", "normalize_finish", "generate",
           "generate_job", "caller_for", "caller_for_job", "run_batch", "estimate"]


def generate(model: str, messages: list[Message], params: GenParams | None = None, *,
             base_url: str | None = None, options: dict[str, Any] | None = None,
             policy: "RetryPolicy | None" = None) -> Generation:
    """One answer from `model` ("BACKEND:MODEL"), retried by the core's policy."""
    from .batch import call_once
    from .registry import caller_for

    caller = caller_for(model, base_url=base_url, options=options)
    return call_once(caller, messages, params or GenParams(), policy=policy)


def generate_job(job: str, messages: list[Message], params: GenParams | None = None, *,
                 base: bool = False, policy: "RetryPolicy | None" = None) -> Generation:
    """One answer from a job's tuned model (or, with `base`, the model it was tuned from)."""
    from .batch import call_once
    from .registry import caller_for_job

    return call_once(caller_for_job(job, base=base), messages, params or GenParams(),
                     policy=policy)


def __getattr__(name: str) -> Any:  # lazy re-exports: importing unitune.inference stays cheap
    if name in ("caller_for", "caller_for_job", "parse_model"):
        from . import registry

        return getattr(registry, name)
    if name == "run_batch":
        from .batch import run_batch

        return run_batch
    if name == "estimate":
        from .cost import estimate

        return estimate
    raise AttributeError(name)
