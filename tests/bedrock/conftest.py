"""Fixtures for the Bedrock backend tests: moto's ThreadedMotoServer (S3 + Bedrock) on an
ephemeral loopback port, reached by the real boto3 client through `AWS_ENDPOINT_URL` with dummy
keys; the fake's state is reset for every test and can be advanced through moto's in-process
backend (jobs never move by themselves in moto)."""
from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "unitune-test-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/unitune-bedrock"
NOVA = "amazon.nova-micro-v1:0:128k"


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def set_aws_env(monkeypatch, url: str, region: str = REGION) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/unitune-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/unitune-aws-credentials")


_CLIENTS: dict = {}  # the test's own clients: endpoint and dummy keys are the same all session


@dataclass
class Aws:
    url: str
    bucket: str = BUCKET
    role: str = ROLE
    region: str = REGION

    def client(self, service: str, region: str | None = None):
        key = (service, region or self.region)
        if key not in _CLIENTS:
            from unitune.providers.bedrock.aws import session

            _CLIENTS[key] = session({}).client(service, region_name=key[1])
        return _CLIENTS[key]

    def jobs(self, region: str | None = None) -> dict[str, Any]:
        """moto's in-process job table (name → ModelCustomizationJob) for a region."""
        from moto.bedrock.models import bedrock_backends

        return bedrock_backends[ACCOUNT][region or self.region].model_customization_jobs

    def job(self, name: str, region: str | None = None):
        return self.jobs(region)[name]


@pytest.fixture
def aws(moto_url, monkeypatch) -> Aws:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"),
                           timeout=10).read()
    set_aws_env(monkeypatch, moto_url)
    env = Aws(moto_url)
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
              name: str = "bedrock-test"):
    from unitune.spec import JobSpec

    train = write_jsonl(tmp_path / "data" / "train.jsonl", records or chat_lines(n))
    opts = {"bucket": BUCKET, "role_arn": ROLE}
    opts.update(options or {})
    raw: dict[str, Any] = {"name": name, "models": {"bedrock": model},
                           "data": {"train": str(train)}, "hyperparameters": hyper or {},
                           "backend_options": {"bedrock": opts}}
    if validation is not None:
        raw["data"]["validation"] = validation
    return JobSpec.from_dict(raw)


def ctx_for(tmp_path: Path, key: str, log=None):
    from unitune.backends import SubmitContext

    work = tmp_path / "work" / key
    work.mkdir(parents=True, exist_ok=True)
    return SubmitContext(job_id=key, idempotency_key=key, work_dir=work,
                         log=log or (lambda _m: None))
