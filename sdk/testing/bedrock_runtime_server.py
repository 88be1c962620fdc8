"""A fake of Amazon Bedrock's runtime `Converse` API (moto has none), checked against botocore's
own service model.

    POST /model/{modelId}/converse          (rest-json, SigV4-signed by boto3)

Point boto3 at it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=srv.url` (the service-specific variable,
so `AWS_ENDPOINT_URL` can keep pointing at moto for the control plane). Every request body is
validated against the `Converse` input shape of the botocore installed here (read at request
time, not a copy): unknown members, missing required ones, wrong types, enum values, numeric
ranges and string lengths are answered `ValidationException` (400) as the service does. Every
response the fake builds is validated against the output shape before it is sent (a mismatch is a
500 naming the fake's bug), so the shapes cannot drift from the SDK's.

Model ids: foundation-model ids (`amazon.nova-micro-v1:0`, inference profiles such as
`us.amazon.nova-micro-v1:0`) are accepted; an ARN must have been registered with
`srv.add_model(arn)` (what a deployment or provisioned throughput creates), else the answer is
`ValidationException: The provided model identifier is invalid.`, as Bedrock answers.

Answers: scripted first (`srv.script("text", {"content": …, "stop_reason": "max_tokens"},
{"status": 429}, model=None)`, first in first out; `model=` for one model), then
`srv.responder(model_id, request) -> str | dict | None`, else "echo: <last user text>" cut to
`maxTokens` (≈ 4 characters a token, stopReason `max_tokens` when cut). `srv.requests` holds
every request (`model_id`, `body`). Requests without a SigV4 `Authorization` header get 403.

    python -m unitune.testing.bedrock_runtime_server --port 8090
"""
from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from .loopback import FakeHandler, LoopbackServer

ROUTE = re.compile(r"^/model/(?P<model>.+)/converse$")
FOUNDATION = re.compile(r"^([a-z]{2,4}\.)?[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})*$")


class ShapeError(ValueError):
    pass


def service_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("bedrock-runtime")


def check(shape: Any, value: Any, path: str = "") -> None:
    """Raise ShapeError when `value` (decoded JSON) does not fit botocore `shape`."""
    kind = shape.type_name
    where = path or shape.name
    if shape.metadata.get("document"):
        return
    if kind == "structure":
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected an object")
        members = shape.members
        for key in value:
            if key not in members:
                raise ShapeError(f"{where}: unknown member {key!r}")
        for key in shape.required_members:
            if key not in value and members[key].serialization.get("location") is None:
                raise ShapeError(f"{where}: missing required member {key!r}")
        if getattr(shape, "is_tagged_union", False) and len(value) != 1:
            raise ShapeError(f"{where}: a union takes exactly one member, got {len(value)}")
        for key, item in value.items():
            check(members[key], item, f"{where}.{key}" if path else key)
        return
    meta = shape.metadata
    if kind == "list":
        if not isinstance(value, list):
            raise ShapeError(f"{where}: expected a list")
        if "min" in meta and len(value) < meta["min"]:
            raise ShapeError(f"{where}: at least {meta['min']} item(s)")
        if "max" in meta and len(value) > meta["max"]:
            raise ShapeError(f"{where}: at most {meta['max']} item(s)")
        for i, item in enumerate(value):
            check(shape.member, item, f"{where}[{i}]")
        return
    if kind == "map":
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected a map")
        for k, item in value.items():
            check(shape.value, item, f"{where}.{k}")
        return
    if kind == "string":
        if not isinstance(value, str):
            raise ShapeError(f"{where}: expected a string")
        if shape.enum and value not in shape.enum:
            raise ShapeError(f"{where}: {value!r} is not one of {list(shape.enum)}")
        if "min" in meta and len(value) < meta["min"]:
            raise ShapeError(f"{where}: shorter than {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            raise ShapeError(f"{where}: longer than {meta['max']}")
        return
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShapeError(f"{where}: expected an integer")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ShapeError(f"{where}: expected a number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ShapeError(f"{where}: expected a boolean")
        return
    else:  # blob, timestamp: base64 / epoch, not checked further
        return
    if "min" in meta and value < meta["min"]:
        raise ShapeError(f"{where}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ShapeError(f"{where}: {value} is above the maximum {meta['max']}")


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


class BedrockRuntimeFake(LoopbackServer):
    """The fake, on 127.0.0.1 and an ephemeral port by default. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, require_auth: bool = True
                 ) -> None:
        self.host, self.port = host, port
        self.require_auth = require_auth
        self.models: set[str] = set()
        self.queue: deque[Any] = deque()
        self.by_model: dict[str, deque[Any]] = {}
        self.responder: Callable[[str, dict], Any] | None = None
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()

    def start(self) -> "BedrockRuntimeFake":
        self._serve_http(self.host, self.port, _Handler, "bedrock-runtime-fake")
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        self._close_http()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_model(self, arn: str) -> None:
        """Accept this ARN (a custom-model deployment, provisioned model, …) as a modelId."""
        with self._lock:
            self.models.add(arn)

    def script(self, *responses: Any, model: str | None = None) -> None:
        with self._lock:
            target = self.queue if model is None else self.by_model.setdefault(model, deque())
            target.extend(responses)

    # -- handling --------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
        path = urlsplit(raw_path).path
        m = ROUTE.match(path)
        if method != "POST" or not m:
            return _error(404, "UnknownOperationException", f"no route for {method} {path}")
        if self.require_auth and not (headers.get("Authorization") or "").startswith("AWS4-"):
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication "
                          "Token")
        model_id = unquote(m["model"])
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "SerializationException", "Could not parse the request body")
        op = service_model().operation_model("Converse")
        with self._lock:
            self.requests.append({"model_id": model_id, "body": request})
            try:
                check(op.input_shape, {"modelId": model_id, **request}, "")
            except ShapeError as exc:
                return _error(400, "ValidationException", f"1 validation error detected: {exc}")
            if model_id.startswith("arn:") and model_id not in self.models:
                return _error(400, "ValidationException", "The provided model identifier is "
                              "invalid.")
            if not model_id.startswith("arn:") and not FOUNDATION.match(model_id):
                return _error(400, "ValidationException", "The provided model identifier is "
                              "invalid.")
            if request.get("messages", [{}])[0].get("role") != "user":
                return _error(400, "ValidationException", "A conversation must start with a user "
                              "message. Try again with a conversation that starts with a user "
                              "message.")
            started = time.monotonic()
            answer = self._next(model_id, request)
        answer = {"content": answer} if isinstance(answer, str) else dict(answer)
        if answer.get("status"):
            status = int(answer["status"])
            code = answer.get("code") or {429: "ThrottlingException", 500:
                                          "InternalServerException"}.get(status,
                                                                         "ValidationException")
            return _error(status, code, answer.get("message") or "Scripted error.")
        text = answer.get("content") or ""
        limit = (request.get("inferenceConfig") or {}).get("maxTokens")
        stop = answer.get("stop_reason") or "end_turn"
        if limit and "stop_reason" not in answer and _tokens(text) > limit:
            text, stop = text[:limit * 4], "max_tokens"
        prompt = " ".join(b.get("text", "") for msg in request.get("messages", [])
                          for b in msg.get("content", []))
        prompt += " ".join(s.get("text", "") for s in request.get("system") or [])
        u_in, u_out = _tokens(prompt), _tokens(text)
        out = {"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
               "stopReason": stop,
               "usage": {"inputTokens": u_in, "outputTokens": u_out, "totalTokens": u_in + u_out},
               "metrics": {"latencyMs": int((time.monotonic() - started) * 1000) + 1}}
        try:
            check(op.output_shape, out, "")
        except ShapeError as exc:  # the fake's own bug: say so loudly
            return _error(500, "InternalServerException", f"fake response does not fit the "
                          f"ConverseResponse shape: {exc}")
        return 200, out, {}

    def _next(self, model_id: str, request: dict) -> Any:
        own = self.by_model.get(model_id)
        if own:
            return own.popleft()
        if self.queue:
            return self.queue.popleft()
        if self.responder is not None:
            got = self.responder(model_id, request)
            if got is not None:
                return got
        users = [m for m in request.get("messages", []) if m.get("role") == "user"]
        last = " ".join(b.get("text", "") for b in (users[-1].get("content", []) if users else []))
        return f"echo: {last}"


def _error(status: int, code: str, message: str):
    return status, {"message": message}, {"x-amzn-ErrorType": f"{code}:http://internal.amazon."
                                           "com/coral/com.amazon.bedrock/"}


class _Handler(FakeHandler):
    fake: BedrockRuntimeFake

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        status, payload, headers = self.fake.handle(method, self.path, self.headers,
                                                    self.read_body())
        self.answer(status, json.dumps(payload).encode(), "application/json",
                    [("x-amzn-RequestId", f"fake-{time.monotonic_ns()}"), *headers.items()])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Fake Bedrock runtime Converse API (loopback only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--no-auth", action="store_true")
    args = p.parse_args(argv)
    fake = BedrockRuntimeFake(args.host, args.port, require_auth=not args.no_auth).start()
    print(f"fake bedrock-runtime on {fake.url} (AWS_ENDPOINT_URL_BEDROCK_RUNTIME={fake.url})",
          flush=True)
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
