"""Calling models over the chat completions API: OpenAI, Azure OpenAI (a deployment) and any
OpenAI-compatible server (vLLM, llama.cpp, Ollama, `unitune serve`) through the `openai` SDK.

Built from what the job stored (its `Location`, its model handle) and the provider's own options
and connection helpers, so the key is read from the environment exactly as training read it and
the SDK's own retries are off (the core's RetryPolicy retries). Tuned models:

    openai   model = the handle's ft:… id
    azure    model = the deployment name (`unitune deploy` records it); a job that was never
             deployed cannot be called: the error says so
    served   an http(s) endpoint registered on the job (see unitune.inference.registry)

Base models: `openai:<model>`; on Azure the base model must be deployed too, under a deployment
named after the model unless `--model azure:<deployment>` names another.
"""
from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

from unitune.errors import InvalidRequest, UnituneError
from unitune.inference.types import GenParams, Generation, Message, normalize_finish, usage
from unitune.options import resolve_options

from .connection import AzureConnection, OpenAIConnection, location_of
from .errors import call
from .options import AzureOptions, OpenAIOptions

DISPLAY = {"openai": "OpenAI", "azure": "Azure OpenAI", "compat": "OpenAI-compatible server"}


class ChatCaller:
    """One model behind a chat completions endpoint."""

    max_concurrency = 8

    def __init__(self, backend: str, model: str, client: Any, *, label: str | None = None,
                 price: tuple[str, str] | None = None, tuned: bool = False,
                 options: Any = None) -> None:
        self.backend = backend
        self.model = model
        self.client = client
        self.label = label or f"{backend}:{model}"
        self.price = price
        self.tuned = tuned
        self.options = options

    def request(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` (tests compare them to the wire)."""
        kw: dict[str, Any] = {"model": self.model, "messages": [
            {"role": m["role"], "content": m.get("content") or ""} for m in messages],
            "max_tokens": params.max_tokens, "temperature": params.temperature}
        if params.top_p is not None:
            kw["top_p"] = params.top_p
        if params.seed is not None:
            kw["seed"] = params.seed
        if params.stop:
            kw["stop"] = list(params.stop)[:4]
        return kw

    def generate(self, messages: list[Message], params: GenParams) -> Generation:
        kw = self.request(messages, params)
        display = DISPLAY.get(self.backend, self.backend)
        started = time.monotonic()
        resp = call("chat completion", lambda: self.client.chat.completions.create(**kw),
                    "openai" if self.backend == "compat" else self.backend, display,
                    self.options)
        latency = time.monotonic() - started
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content or "") if choice is not None and choice.message else ""
        u = resp.usage
        return Generation(text=text, finish_reason=normalize_finish(
            choice.finish_reason if choice is not None else None),
            usage=usage(getattr(u, "prompt_tokens", None), getattr(u, "completion_tokens", None)),
            latency_s=latency, raw=resp.model_dump(mode="json", exclude_none=True),
            model=resp.model or self.model)


def _options(backend: str, options: dict[str, Any] | None) -> Any:
    model = OpenAIOptions if backend == "openai" else AzureOptions
    return resolve_options(model, backend, base=options or {})


def _conn(backend: str):
    return OpenAIConnection() if backend == "openai" else AzureConnection()


def for_model(backend: str, model: str, *, base_url: str | None = None,
              options: dict[str, Any] | None = None) -> ChatCaller:
    """A base (or any named) model: `openai:<model>`, `azure:<deployment>`."""
    if base_url:
        return compatible(base_url, model, options=options)
    opts = _options(backend, options)
    conn = _conn(backend)
    location = conn.locate(opts)
    return ChatCaller(backend, model, conn.client(location, opts), price=(backend, model),
                      options=opts)


def for_job(rec: Any, *, base: bool = False, options: dict[str, Any] | None = None
            ) -> ChatCaller:
    """The job's tuned model (or its base) at the location the job was trained in."""
    backend = rec.backend
    base_model = rec.base_model or (rec.model.base_model if rec.model else None)
    if base:
        if not base_model:
            raise UnituneError(f"job {rec.id} does not record its base model",
                               hint=f"use `unitune generate --model {backend}:MODEL`")
        name, label = base_model, f"{rec.id} base ({base_model})"
    else:
        handle = rec.model
        if handle is None:
            raise UnituneError(f"job {rec.id} has no tuned model yet (status {rec.status})",
                               hint=f"wait for it: `unitune watch {rec.id}`")
        name = handle.model_id
        if backend == "azure":
            name = (handle.artifacts or {}).get("deployment") or ""
            if not name:
                raise InvalidRequest(f"job {rec.id}'s tuned model is not deployed: Azure "
                                     "serves a fine-tune only through a deployment",
                                     backend="azure", hint=f"`unitune deploy {rec.id}` (billed "
                                     "per hour while it exists), then try again")
        label = f"{rec.id} tuned ({name})"
    opts = _options(backend, options)
    conn = _conn(backend)
    ref = rec.ref
    stored = ref is not None and ("location" in ref.extra or "conn" in ref.extra)
    location = rec.location or (location_of(ref) if stored else None) or conn.locate(opts)
    client = conn.client(location, opts)
    if base:
        return ChatCaller(backend, name, client, label=label, price=(backend, name),
                          options=opts)
    return ChatCaller(backend, name, client, label=label,
                      price=(backend, base_model) if base_model else None, tuned=True,
                      options=opts)


def normalize_base_url(url: str) -> str:
    """`http://host:8000` → `http://host:8000/v1` (what vLLM, llama.cpp and Ollama serve);
    a URL with a path is kept as given."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"--base-url {url!r} is not an http(s) URL", backend="openai",
                             hint="e.g. http://127.0.0.1:8000/v1 (vLLM), "
                                  "http://127.0.0.1:11434/v1 (Ollama)")
    return url if parts.path not in ("", "/") else url + "/v1"


def compatible(base_url: str, model: str, *, options: dict[str, Any] | None = None
               ) -> ChatCaller:
    """Any server speaking the chat completions protocol. The key comes from
    `options["api_key_env"]` (a variable name) or OPENAI_API_KEY; servers that need none get a
    placeholder."""
    from unitune.backends import import_sdk

    openai = import_sdk("openai", "openai")
    url = normalize_base_url(base_url)
    env = (options or {}).get("api_key_env") or "OPENAI_API_KEY"
    key = os.environ.get(env) or "unitune-no-key"
    timeout = (options or {}).get("timeout")
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0,
                           **({"timeout": float(timeout)} if timeout else {}))
    return ChatCaller("compat", model, client, label=f"{model} at {url}", price=None)
