"""Calling Vertex AI models: google-genai's `models.generate_content` (vertexai=True), with the
SDK's retries off (the core's RetryPolicy retries) and errors mapped by `vendor_errors`.

A tuned Gemini model is served by the endpoint the tuning job created (the handle's `endpoint`,
`projects/…/locations/…/endpoints/…`); a base model by its publisher name (`gemini-2.5-flash`).
The connection (project, region, API root, key file) is the job's stored `Location`, or the
`VertexOptions` + environment for a base model, exactly as training reads them.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

from unitune.errors import UnituneError
from unitune.inference.types import GenParams, Generation, Message, normalize_finish, usage
from unitune.options import resolve_options

from .connection import Conn, credentials
from .options import VertexOptions, locate
from .vendor_errors import translate


class GenerateCaller:
    """One Vertex model (endpoint or publisher model), called with generate_content."""

    max_concurrency = 8

    def __init__(self, conn: Conn, model: str, *, label: str | None = None,
                 price: tuple[str, str] | None = None, tuned: bool = False) -> None:
        self.backend = "vertex"
        self.conn = conn
        self.model = model
        self.label = label or f"vertex:{model}"
        self.price = price
        self.tuned = tuned
        self._client = None

    def client(self):
        if self._client is None:
            from unitune.backends import import_sdk

            genai = import_sdk("google.genai", "vertex")
            types = import_sdk("google.genai.types", "vertex")
            base_url = self.conn.endpoint.rstrip("/") + "/" if self.conn.endpoint else None
            http = types.HttpOptions(api_version=self.conn.api_version, base_url=base_url,
                                     timeout=120_000,
                                     retry_options=types.HttpRetryOptions(attempts=1))
            with translate("client setup"):
                self._client = genai.Client(vertexai=True, project=self.conn.project,
                                            location=self.conn.location,
                                            credentials=credentials(self.conn),
                                            http_options=http)
        return self._client

    def request(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        """`generate_content` arguments: contents (user/model turns), and a config carrying the
        system instruction and sampling settings."""
        system = "\n\n".join(str(m.get("content") or "") for m in messages
                             if m.get("role") == "system" and m.get("content"))
        contents = [{"role": "model" if m["role"] == "assistant" else "user",
                     "parts": [{"text": str(m.get("content") or "")}]}
                    for m in messages if m.get("role") in ("user", "assistant")]
        config: dict[str, Any] = {"max_output_tokens": params.max_tokens,
                                  "temperature": params.temperature}
        if params.top_p is not None:
            config["top_p"] = params.top_p
        if params.seed is not None:
            config["seed"] = params.seed
        if params.stop:
            config["stop_sequences"] = list(params.stop)[:5]
        if system:
            config["system_instruction"] = system
        return {"model": self.model, "contents": contents, "config": config}

    def generate(self, messages: list[Message], params: GenParams) -> Generation:
        kw = self.request(messages, params)
        client = self.client()
        started = time.monotonic()
        with translate("generate content"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resp = client.models.generate_content(**kw)
        latency = time.monotonic() - started
        cand = resp.candidates[0] if resp.candidates else None
        parts = (cand.content.parts or []) if cand is not None and cand.content else []
        text = "".join(p.text or "" for p in parts if getattr(p, "text", None))
        meta = resp.usage_metadata
        return Generation(text=text, finish_reason=normalize_finish(
            cand.finish_reason if cand is not None else None),
            usage=usage(getattr(meta, "prompt_token_count", None),
                        getattr(meta, "candidates_token_count", None)),
            latency_s=latency,
            raw=resp.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}),
            model=self.model)


def _conn(location: Any, options: Any) -> Conn:
    return Conn.from_location(location, options)


def for_model(backend: str, model: str, *, base_url: str | None = None,
              options: dict[str, Any] | None = None) -> GenerateCaller:
    opts = resolve_options(VertexOptions, "vertex", base=options or {})
    return GenerateCaller(_conn(locate(opts), opts), model, price=("vertex", model))


def for_job(rec: Any, *, base: bool = False, options: dict[str, Any] | None = None
            ) -> GenerateCaller:
    opts = resolve_options(VertexOptions, "vertex", base=options or {})
    if rec.location is not None:
        conn = _conn(rec.location, opts)
    elif rec.ref is not None:
        conn = Conn.from_ref(rec.ref)
    else:
        conn = _conn(locate(opts), opts)
    base_model = rec.base_model or (rec.model.base_model if rec.model else None)
    if base:
        if not base_model:
            raise UnituneError(f"job {rec.id} does not record its base model",
                               hint="use `unitune generate --model vertex:MODEL`")
        return GenerateCaller(conn, base_model, label=f"{rec.id} base ({base_model})",
                              price=("vertex", base_model))
    handle = rec.model
    if handle is None or not (handle.endpoint or handle.model_id):
        raise UnituneError(f"job {rec.id} has no tuned model yet (status {rec.status})",
                           hint=f"wait for it: `unitune watch {rec.id}`")
    target = handle.endpoint or handle.model_id
    return GenerateCaller(conn, target, label=f"{rec.id} tuned ({target.rsplit('/', 1)[-1]})",
                          price=("vertex", base_model) if base_model else None, tuned=True)
