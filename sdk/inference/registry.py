"""Which caller serves a model: `BACKEND:MODEL` strings and jobs, resolved lazily.

    caller_for("openai:gpt-4.1-mini-2025-04-14")          a base model on a backend
    caller_for("openai:llama3", base_url="http://…/v1")   any OpenAI-compatible server
    caller_for_job(job_id)                                the job's tuned model
    caller_for_job(job_id, base=True)                     the model it was tuned from

Each backend's caller lives in its own module (`CALLERS`: module path + the pip extra), imported
only when used, so `unitune --help` never imports a vendor SDK. A module exposes
`for_model(backend, model, *, base_url, options) -> Caller` and
`for_job(record, *, base, options) -> Caller`.

A job whose model handle names an OpenAI-compatible endpoint (registered by `unitune serve`
through `Registry.set_model(job_id, ModelHandle(endpoint=URL, …))`) is called there: see
`served_endpoint`.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency, SpecError, UnituneError

if TYPE_CHECKING:
    from ..job import ModelHandle
    from ..registry import JobRecord
    from .types import Caller

# backend → (module with for_model / for_job, pip extra)
CALLERS: dict[str, tuple[str, str | None]] = {
    "openai": ("unitune.providers.openai.inference", "openai"),
    "azure": ("unitune.providers.openai.inference", "openai"),
    "bedrock": ("unitune.providers.bedrock.inference", "bedrock"),
    "vertex": ("unitune.providers.vertex.inference", "vertex"),
    "local": ("unitune.local.inference", "local"),
}


def parse_model(text: str) -> tuple[str, str]:
    """"BACKEND:MODEL" → (backend, model); the model may itself contain ':' (Bedrock ids)."""
    backend, sep, model = (text or "").partition(":")
    backend = backend.strip().lower()
    if not sep or not model.strip() or backend not in CALLERS:
        raise SpecError(f"model {text!r} is not BACKEND:MODEL",
                        field="--model",
                        hint=f"e.g. openai:gpt-4.1-mini-2025-04-14, bedrock:amazon.nova-micro-v1:0, "
                             f"vertex:gemini-2.5-flash, local:unitune/tiny-chat; backends: "
                             f"{', '.join(CALLERS)}")
    return backend, model.strip()


def _module(backend: str):
    path, extra = CALLERS[backend]
    try:
        return importlib.import_module(path)
    except ImportError as exc:
        raise MissingDependency(f"calling {backend} models needs {exc.name or 'an SDK'}",
                                hint=f"pip install 'unitune[{extra}]'" if extra else None) from exc


def caller_for(model: str, *, base_url: str | None = None,
               options: dict[str, Any] | None = None) -> "Caller":
    """A caller for `BACKEND:MODEL`. With `base_url`, an OpenAI-compatible server (vLLM,
    llama.cpp, Ollama…): the backend part may be omitted (`"llama3"`) or be `openai`."""
    if base_url:
        backend, _, name = model.partition(":") if ":" in model else ("openai", "", model)
        if backend.lower() not in ("openai", "compat", "local", "vllm", "ollama"):
            name = model  # e.g. "qwen2.5:7b" for Ollama: the whole string is the model name
        from ..providers.openai.inference import compatible

        return compatible(base_url, name or model, options=options)
    backend, name = parse_model(model)
    return _module(backend).for_model(backend, name, base_url=None, options=options)


def served_endpoint(handle: "ModelHandle | None", backend: str) -> str | None:
    """The OpenAI-compatible base URL a job's model is served at, or None.

    `unitune serve` registers one (docs/serve.md): the handle's `endpoint` (an http(s) base URL)
    with `artifacts["serve_protocol"] == "openai"`, the model to send in
    `artifacts["serve_model"]` and the key's variable in `artifacts["serve_api_key_env"]`.
    Azure's deployment URL and Vertex's endpoint resource name are the vendors' own endpoints,
    called through their own callers, so they count only when marked so (`serve_protocol` or
    `protocol` == "openai"); on a local job any http(s) endpoint is a served one."""
    if handle is None or not handle.endpoint:
        return None
    url = handle.endpoint
    if not url.startswith(("http://", "https://")):
        return None
    art = handle.artifacts or {}
    if "openai" in (art.get("serve_protocol"), art.get("protocol")) or backend == "local":
        return url
    return None


def caller_for_job(job: "str | JobRecord", *, base: bool = False, registry: Any = None,
                   options: dict[str, Any] | None = None) -> "Caller":
    """The tuned model of `job` (or, with `base`, the model it was tuned from)."""
    from ..registry import Registry

    rec = job if not isinstance(job, str) else (registry or Registry()).get_job(job)
    if rec.backend not in CALLERS:
        raise UnituneError(f"job {rec.id} ran on {rec.backend!r}, which has no inference caller",
                           hint=f"callers exist for {', '.join(CALLERS)}")
    url = None if base else served_endpoint(rec.model, rec.backend)
    if url is not None:
        from ..providers.openai.inference import compatible

        assert rec.model is not None
        art = rec.model.artifacts or {}
        opts = dict(options or {})
        if art.get("serve_api_key_env"):
            opts.setdefault("api_key_env", art["serve_api_key_env"])
        caller = compatible(url, art.get("serve_model") or rec.model.name or rec.model.model_id,
                            options=opts)
        caller.label = f"{rec.id} tuned (served at {url})"
        return caller
    return _module(rec.backend).for_job(rec, base=base, options=options)


def job_label(rec: "JobRecord", base: bool) -> str:
    return f"{rec.id} {'base' if base else 'tuned'}"
