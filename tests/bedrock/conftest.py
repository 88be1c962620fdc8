"""Fixtures for the Bedrock tests: moto's server app (S3 + Bedrock) behind a small WSGI front on
an ephemeral loopback port, reached by the real boto3 clients through `AWS_ENDPOINT_URL` with
dummy keys. The front only watches the wire: it records every create request body and every S3
object PUT exactly as they arrived, and on request answers the next Bedrock call with the 429
`ThrottlingException` (plus a `Retry-After` header) that Bedrock's REST protocol uses. moto's
state is reset for every test and advanced through moto's in-process backend (jobs never move by
themselves in moto)."""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "unitune-test-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/unitune-bedrock"
NOVA = "amazon.nova-micro-v1:0:128k"

_SCOPE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Received:
    """One create_model_customization_job request as the fake received it."""

    region: str
    body: dict[str, Any]


@dataclass
class Front:
    """WSGI front on moto's app: records what arrives, throttles on demand."""

    app: Any
    url: str = ""
    creates: list[Received] = field(default_factory=list)
    s3_puts: int = 0
    bedrock_calls: int = 0
    throttles: list[float] = field(default_factory=list)  # Retry-After of the next 429s
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.creates.clear()
            self.throttles.clear()
            self.s3_puts = self.bedrock_calls = 0

    def throttle_next(self, retry_after: float, n: int = 1) -> None:
        with self.lock:
            self.throttles.extend([retry_after] * n)

    def __call__(self, environ, start_response):
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = scope.groups() if scope else (None, None)
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if service == "bedrock":
            with self.lock:
                self.bedrock_calls += 1
                after = self.throttles.pop(0) if self.throttles else None
            if after is not None:
                body = json.dumps({"message": "Too many requests, please wait before trying "
                                              "again."}).encode()
                start_response("429 Too Many Requests", [
                    ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    ("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/"),
                    ("x-amzn-RequestId", "throttled"), ("Retry-After", f"{after:g}")])
                return [body]
            if method == "POST" and path == "/model-customization-jobs":
                raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(raw)
                with self.lock:
                    self.creates.append(Received(region or "", json.loads(raw or b"{}")))
        elif service == "s3" and method == "PUT" and path.strip("/").count("/") >= 1:
            with self.lock:
                self.s3_puts += 1
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def front():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Front(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def moto_url(front) -> str:
    return front.url


def aws_env(url: str, region: str = REGION) -> dict[str, str]:
    """The environment a process needs to reach the fake with dummy credentials."""
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent/unitune-aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/unitune-aws-credentials"}


def set_aws_env(monkeypatch, url: str, region: str = REGION) -> None:
    for k, v in aws_env(url, region).items():
        monkeypatch.setenv(k, v)


_CLIENTS: dict = {}  # the test's own clients: endpoint and dummy keys are the same all session


@dataclass
class Aws:
    url: str
    front: Front
    bucket: str = BUCKET
    role: str = ROLE
    region: str = REGION

    def client(self, service: str, region: str | None = None):
        key = (service, region or self.region)
        if key not in _CLIENTS:
            import boto3

            _CLIENTS[key] = boto3.session.Session().client(service, region_name=key[1])
        return _CLIENTS[key]

    def jobs(self, region: str | None = None) -> dict[str, Any]:
        """moto's in-process job table (name → ModelCustomizationJob) for a region."""
        from moto.bedrock.models import bedrock_backends

        return bedrock_backends[ACCOUNT][region or self.region].model_customization_jobs

    def job(self, name: str, region: str | None = None):
        return self.jobs(region)[name]


@pytest.fixture
def aws(front, monkeypatch) -> Aws:
    urllib.request.urlopen(urllib.request.Request(f"{front.url}/moto-api/reset", method="POST"),
                           timeout=10).read()
    front.reset()
    set_aws_env(monkeypatch, front.url)
    env = Aws(front.url, front)
    env.client("s3").create_bucket(Bucket=BUCKET)
    return env


def chat_lines(n: int, *, system: str | None = "You answer in one word.", prefix: str = "q") -> list[dict]:
    out = []
    for i in range(n):
        msgs = []
        if system:
            msgs.append({"role": "system", "content": system})
        msgs += [{"role": "user", "content": f"{prefix} {i}: what is {i} plus one?"},
                 {"role": "assistant", "content": f"It is {i + 1}."}]
        out.append({"messages": msgs})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_spec(tmp_path: Path, *, model: str = NOVA, n: int = 20, options: dict | None = None,
              hyper: dict | None = None, validation: Any = None, records: list[dict] | None = None,
              name: str = "bedrock-test", metadata: dict | None = None,
              validation_records: list[dict] | None = None):
    from unitune.spec import JobSpec

    train = write_jsonl(tmp_path / "data" / "train.jsonl", records or chat_lines(n))
    opts = {"bucket": BUCKET, "role_arn": ROLE}
    opts.update(options or {})
    raw: dict[str, Any] = {"name": name, "models": {"bedrock": model},
                           "data": {"train": str(train)}, "hyperparameters": hyper or {},
                           "backend_options": {"bedrock": opts}}
    if validation_records is not None:
        validation = str(write_jsonl(tmp_path / "data" / "validation.jsonl", validation_records))
    if validation is not None:
        raw["data"]["validation"] = validation
    if metadata:
        raw["metadata"] = metadata
    return JobSpec.from_dict(raw)
