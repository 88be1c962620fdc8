"""The chat completions route of the fake OpenAI / Azure OpenAI server (`openai_server.py`).

Served by `FakeOpenAIServer` (it holds one `ChatFake` as `srv.chat`):

    POST /v1/chat/completions                                   OpenAI mode
    POST /openai/deployments/{deployment}/chat/completions      Azure mode (api-version required)

Requests are checked the way the real API answers: a body that is not JSON, an unknown top-level
field ("Unrecognized request argument supplied: …"), a missing `model` (OpenAI) or `messages`,
a message without a known role or with non-text content, `temperature` outside [0, 2],
`max_tokens` below 1, `n` outside [1, 8] and `stream: true` (not emulated) are 400s. An `ft:` model
the server never produced (OpenAI) or a deployment that does not exist (Azure) is a 404, as the
real services answer. Faults injected with `srv.inject(kind, path="/chat/completions")` (Azure:
`path="/deployments/<name>/chat/completions"`) apply to this route like any other.

Scripting the answers (what a test or another tool plants):

    srv.chat.script("first answer", {"content": "second", "finish_reason": "length"},
                    {"status": 429}, model=None)
        queues responses, first in first out; `model=` queues them for that model only (those
        are used before the shared queue). A response is a string (the assistant content) or a
        dict with any of: content, finish_reason ("stop" by default), refusal, usage
        ({"prompt_tokens", "completion_tokens"}), delay_s (sleep first), status + message
        (answer with that HTTP error instead: 400/404/429/500…; 429 sends Retry-After: 0).
    srv.chat.responder = fn(model, messages, body) -> str | dict | None
        answers when no scripted response is queued (None falls through to the default)
    default answer: "echo: <last user message>", cut to max_tokens (≈ 4 characters a token,
        finish_reason "length" when cut).
    srv.chat.deployments.add("name")   an Azure deployment the route accepts (ARM-created
        deployments on the same server are accepted too)
    srv.chat.requests                  every chat request body received, in order

Over HTTP (no auth): `POST /_fake/chat/script {"responses": [...], "model": null}`,
`POST /_fake/chat/reset`, `GET /_fake/chat/requests`.
"""
from __future__ import annotations

import json
import secrets
import time
from collections import deque
from typing import Any, Callable

# the chat completions request body's top-level fields (OpenAI's published CreateChatCompletion
# request, plus Azure's data_sources extension)
KNOWN_FIELDS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
    "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "response_format", "stream", "stream_options", "tools",
    "tool_choice", "parallel_tool_calls", "functions", "function_call", "metadata", "store",
    "service_tier", "modalities", "audio", "prediction", "reasoning_effort", "web_search_options",
    "verbosity", "prompt_cache_key", "safety_identifier",
}
AZURE_FIELDS = {"data_sources"}
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

Response = Any  # str | dict


def _err(status: int, message: str, type_: str = "invalid_request_error", *,
         param: str | None = None, code: str | None = None):
    return status, {}, {"error": {"message": message, "type": type_, "param": param,
                                  "code": code}}


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


class ChatFake:
    """State and handler of the chat route for one fake server (see the module docstring)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.queue: deque[Response] = deque()
        self.by_model: dict[str, deque[Response]] = {}
        self.responder: Callable[[str, list, dict], Response | None] | None = None
        self.deployments: set[str] = set()
        self.requests: list[dict[str, Any]] = []

    # -- scripting -----------------------------------------------------------------------------
    def script(self, *responses: Response, model: str | None = None) -> None:
        """Queue responses (see the module docstring), for `model` only when given."""
        target = self.queue if model is None else self.by_model.setdefault(model, deque())
        for r in responses:
            if not isinstance(r, (str, dict)):
                raise TypeError("a scripted response is a string or a dict")
            target.append(r)

    def reset(self) -> None:
        self.queue.clear()
        self.by_model.clear()
        self.requests.clear()
        self.responder = None

    def _next(self, model: str, messages: list, body: dict) -> Response:
        own = self.by_model.get(model)
        if own:
            return own.popleft()
        if self.queue:
            return self.queue.popleft()
        if self.responder is not None:
            got = self.responder(model, messages, body)
            if got is not None:
                return got
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        return f"echo: {_text(last.get('content'))}"

    # -- routing (called by FakeOpenAIServer._route under its lock) --------------------------------
    def route(self, method: str, parts: list[str], body: bytes):
        """The answer for a chat route, or None when `parts` is not one."""
        azure = self.server.azure
        if not azure and parts == ["chat", "completions"]:
            deployment = None
        elif azure and len(parts) == 4 and parts[0] == "deployments" and \
                parts[2:] == ["chat", "completions"]:
            deployment = parts[1]
        else:
            return None
        if method != "POST":
            return _err(405, f"Method {method} not allowed on chat completions")
        return self._complete(body, deployment)

    def admin(self, method: str, path: str, body: bytes):
        data = json.loads(body or b"{}") if method == "POST" else {}
        if path == "/_fake/chat/script" and method == "POST":
            self.script(*data.get("responses", []), model=data.get("model"))
            return 200, {}, {"queued": len(self.queue) + sum(map(len, self.by_model.values()))}
        if path == "/_fake/chat/reset" and method == "POST":
            self.reset()
            return 200, {}, {"ok": True}
        if path == "/_fake/chat/requests" and method == "GET":
            return 200, {}, {"requests": self.requests}
        return 404, {}, {"error": {"message": "unknown admin path"}}

    def _complete(self, raw: bytes, deployment: str | None):
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return _err(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _err(400, "The request body must be a JSON object.")
        self.requests.append(body)
        problem = self._check(body, deployment)
        if problem:
            return problem
        model = deployment or body["model"]
        messages = body["messages"]
        n = int(body.get("n") or 1)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        choices, prompt_tokens, completion_tokens = [], _tokens(
            " ".join(_text(m.get("content")) for m in messages)), 0
        for i in range(n):
            r = self._next(model, messages, body)
            r = {"content": r} if isinstance(r, str) else dict(r)
            if r.get("delay_s"):
                time.sleep(float(r["delay_s"]))
            if r.get("status"):
                status = int(r["status"])
                kind = {429: "requests", 500: "server_error"}.get(status, "invalid_request_error")
                msg = r.get("message") or {429: "Rate limit reached for requests.",
                                           500: "The server had an error while processing your "
                                                "request."}.get(status, "Scripted error.")
                extra = {"Retry-After": "0"} if status == 429 else {}
                code, _, payload = _err(status, msg, kind, code=r.get("code"))
                return code, extra, payload
            text = r.get("content")
            finish = r.get("finish_reason") or "stop"
            if text is not None and limit and "finish_reason" not in r and \
                    _tokens(text) > int(limit):
                text, finish = text[:int(limit) * 4], "length"
            u = r.get("usage") or {}
            completion_tokens += int(u.get("completion_tokens", _tokens(text or "")))
            if "prompt_tokens" in u:
                prompt_tokens = int(u["prompt_tokens"])
            choices.append({"index": i, "message": {"role": "assistant", "content": text,
                                                    "refusal": r.get("refusal")},
                            "finish_reason": finish, "logprobs": None})
        out: dict[str, Any] = {
            "id": f"chatcmpl-{secrets.token_hex(12)}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_unitune_fake"}
        if self.server.azure:
            out["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
        return 200, {}, out

    def _check(self, b: dict[str, Any], deployment: str | None):
        allowed = KNOWN_FIELDS | (AZURE_FIELDS if self.server.azure else set())
        for key in b:
            if key not in allowed:
                return _err(400, f"Unrecognized request argument supplied: {key}", param=key)
        if deployment is None and not isinstance(b.get("model"), str):
            return _err(400, "you must provide a model parameter", param="model")
        msgs = b.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return _err(400, "Missing required parameter: 'messages'." if msgs is None else
                        "Invalid 'messages': empty array. Expected an array with minimum length "
                        "1.", param="messages", code="missing_required_parameter"
                        if msgs is None else "empty_array")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                return _err(400, f"Invalid value for 'messages[{i}].role'.",
                            param=f"messages[{i}].role", code="invalid_value")
            content = m.get("content")
            if m["role"] != "assistant" and not isinstance(content, (str, list)):
                return _err(400, f"Invalid type for 'messages[{i}].content': expected a string "
                            "or an array of content parts.", param=f"messages[{i}].content",
                            code="invalid_type")
        t = b.get("temperature")
        if t is not None and (not isinstance(t, (int, float)) or not 0 <= t <= 2):
            return _err(400, f"Invalid 'temperature': {t!r}. Expected a value between 0 and 2.",
                        param="temperature", code="invalid_value")
        for key in ("max_tokens", "max_completion_tokens"):
            v = b.get(key)
            if v is not None and (not isinstance(v, int) or v < 1):
                return _err(400, f"Invalid '{key}': integer below minimum value. Expected a "
                            "value >= 1.", param=key, code="integer_below_min_value")
        n = b.get("n")
        if n is not None and (not isinstance(n, int) or not 1 <= n <= 8):
            return _err(400, "Invalid 'n': expected an integer between 1 and 8.", param="n")
        if b.get("stream"):
            return _err(400, "stream=true is not emulated by the fake server", param="stream")
        if self.server.azure:
            known = self.deployments | {d.get("name") for d in self.server.deployments.values()}
            if deployment not in known:
                return 404, {}, {"error": {"code": "DeploymentNotFound", "message": "The API "
                                           "deployment for this resource does not exist. If you "
                                           "created the deployment within the last 5 minutes, "
                                           "please wait a moment and try again."}}
            return None
        model = b["model"]
        if model.startswith("ft:") and model not in self._fine_tuned():
            return _err(404, f"The model `{model}` does not exist or you do not have access "
                        "to it.", code="model_not_found")
        if self.server.models is not None and not model.startswith("ft:") and \
                model not in self.server.models:
            return _err(404, f"The model `{model}` does not exist or you do not have access "
                        "to it.", code="model_not_found")
        return None

    def _fine_tuned(self) -> set[str]:
        return {j.fine_tuned_model for j in self.server.jobs.values() if j.fine_tuned_model}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
