"""The generateContent route of the fake Vertex AI server (`vertex_server.py`).

Served by `VertexFakeServer` (it holds one `GenerateFake` as `srv.generate`):

    POST /{v1|v1beta1}/projects/{p}/locations/{l}/endpoints/{id}:generateContent
                                                         a tuned model's endpoint
    POST /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
                                                         a base model

A request body is checked against google-genai's own types (read at request time): `contents`
items and `systemInstruction` as `types.Content`, `generationConfig` as `types.GenerationConfig`;
an unknown name anywhere is 400 INVALID_ARGUMENT as the service answers, as are empty `contents`,
a turn whose role is not user/model, `temperature` outside [0, 2] and `maxOutputTokens` < 1. An
endpoint no tuning job of this server produced is 404 NOT_FOUND (`srv.generate.endpoints.add(name)`
adds one). Every response is checked against `types.GenerateContentResponse` before it is sent.

Answers: scripted (`srv.generate.script("text", {"content": …, "finish_reason": "MAX_TOKENS"},
{"status": 429}, model=None)`, first in first out; `model=` takes the endpoint / model resource
name), then `srv.generate.responder(model, body) -> str | dict | None`, else
"echo: <last user text>" cut to maxOutputTokens (≈ 4 characters a token, MAX_TOKENS when cut).
`srv.generate.requests` holds every request (`model`, `body`).
"""
from __future__ import annotations

import re
import time
from collections import deque
from typing import Any, Callable

ROUTE = re.compile(r"^/(?P<version>v1|v1beta1)/(?P<model>projects/[^/]+/locations/[^/]+/"
                   r"(?:endpoints/[^/:]+|publishers/[^/]+/models/[^/:]+)):generateContent$")
TOP_LEVEL = {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
             "toolConfig", "labels", "cachedContent", "model"}


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def _error(code: int, status: str, message: str):
    return code, {"error": {"code": code, "message": message, "status": status}}


class GenerateFake:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.endpoints: set[str] = set()
        self.queue: deque[Any] = deque()
        self.by_model: dict[str, deque[Any]] = {}
        self.responder: Callable[[str, dict], Any] | None = None
        self.requests: list[dict[str, Any]] = []

    def script(self, *responses: Any, model: str | None = None) -> None:
        target = self.queue if model is None else self.by_model.setdefault(model, deque())
        target.extend(responses)

    def matches(self, path: str) -> bool:
        return ROUTE.match(path) is not None

    def serve(self, method: str, path: str, headers: Any, body: bytes):
        """The server's answer for a generateContent path: auth, the server's queued 429s and
        JSON parsing as for every other route, then `handle`."""
        import json

        srv = self.server
        if srv.require_auth and not (headers.get("Authorization") or "").startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication "
                          "credential. Expected OAuth 2 access token.")
        with srv._lock:
            if srv._throttle:
                after = srv._throttle.pop(0)
                code, payload = _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted "
                                       "(e.g. check requests per minute).")
                return code, payload, [("Retry-After", f"{after:g}")]
            try:
                payload = json.loads(body) if body else {}
            except ValueError:
                return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            if not isinstance(payload, dict):
                return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            return self.handle(method, path, payload)

    def handle(self, method: str, path: str, payload: dict):
        """(status, body) for a generateContent request (the caller checked auth and JSON)."""
        m = ROUTE.match(path)
        if m is None or method != "POST":
            return _error(404, "NOT_FOUND", f"no route for {method} {path}")
        model = m["model"]
        self.requests.append({"model": model, "body": payload})
        problem = self._check(payload)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        if "/endpoints/" in model and model not in self._known_endpoints():
            return _error(404, "NOT_FOUND", f"Endpoint `{model}` not found.")
        answer = self._next(model, payload)
        answer = {"content": answer} if isinstance(answer, str) else dict(answer)
        if answer.get("status"):
            status = int(answer["status"])
            name = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 404: "NOT_FOUND"}.get(
                status, "INVALID_ARGUMENT")
            return _error(status, name, answer.get("message") or "Scripted error.")
        text = answer.get("content") or ""
        config = payload.get("generationConfig") or {}
        limit = config.get("maxOutputTokens")
        finish = answer.get("finish_reason") or "STOP"
        if limit and "finish_reason" not in answer and _tokens(text) > int(limit):
            text, finish = text[:int(limit) * 4], "MAX_TOKENS"
        prompt = " ".join(p.get("text", "") for c in payload.get("contents", [])
                          for p in c.get("parts", []))
        u_in, u_out = _tokens(prompt), _tokens(text)
        out = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                               "finishReason": finish, "index": 0}],
               "usageMetadata": {"promptTokenCount": u_in, "candidatesTokenCount": u_out,
                                 "totalTokenCount": u_in + u_out},
               "modelVersion": model.rsplit("/", 1)[-1],
               "createTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
               "responseId": f"fake-{time.monotonic_ns()}"}
        bad = self._check_response(out)
        if bad:
            return _error(500, "INTERNAL", f"fake response does not fit "
                          f"GenerateContentResponse: {bad}")
        return 200, out

    def _known_endpoints(self) -> set[str]:
        names = set(self.endpoints)
        for job in self.server.jobs.values():
            names.add(f"{job.name.split('/tuningJobs/')[0]}/endpoints/{job.name.rsplit('/', 1)[-1]}")
        return names

    def _next(self, model: str, payload: dict) -> Any:
        own = self.by_model.get(model)
        if own:
            return own.popleft()
        if self.queue:
            return self.queue.popleft()
        if self.responder is not None:
            got = self.responder(model, payload)
            if got is not None:
                return got
        users = [c for c in payload.get("contents", []) if c.get("role", "user") == "user"]
        last = " ".join(p.get("text", "") for p in (users[-1].get("parts", []) if users else []))
        return f"echo: {last}"

    def _check(self, payload: dict) -> str | None:
        from google.genai import types

        from .vertex_server import unknown_field

        for key in payload:
            if key not in TOP_LEVEL:
                return (f'Invalid JSON payload received. Unknown name "{key}": Cannot find '
                        "field.")
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            return "Unable to submit request because it has an empty contents field. Add " \
                   "content and try again."
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                return f"contents[{i}]: expected an object"
            found = unknown_field(content, types.Content, f"contents[{i}]")
            if found:
                return found
            if content.get("role", "user") not in ("user", "model"):
                return f"Please use a valid role: user, model. (contents[{i}].role)"
        for key, model in (("systemInstruction", types.Content),
                           ("generationConfig", types.GenerationConfig)):
            value = payload.get(key)
            if value is not None:
                found = unknown_field(value, model, key) if isinstance(value, dict) else \
                    f"{key}: expected an object"
                if found:
                    return found
        config = payload.get("generationConfig") or {}
        t = config.get("temperature")
        if t is not None and not 0 <= float(t) <= 2:
            return f"generationConfig.temperature: {t} is out of range [0, 2]."
        n = config.get("maxOutputTokens")
        if n is not None and int(n) < 1:
            return "generationConfig.maxOutputTokens must be positive."
        return None

    @staticmethod
    def _check_response(out: dict) -> str | None:
        from google.genai import types

        from .vertex_server import unknown_field

        found = unknown_field(out, types.GenerateContentResponse, "response")
        if found:
            return found
        try:
            types.GenerateContentResponse.model_validate(out)
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, said as text
            return str(exc).splitlines()[0]
        return None
