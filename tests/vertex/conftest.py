"""Fixtures for the Vertex backend tests: the REST fake, the GCS emulator, offline ADC.

Both clients are exercised through their real SDKs. google-genai lives in the main venv; the GAPIC
client (google-cloud-aiplatform, which pins google-genai<3) lives in `.venv-aiplatform`, where
`make test` runs `pytest tests/vertex -m aiplatform`. Tests for a client that is not installed
are skipped with the reason.
"""
from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest

from unitune.job import RemoteRef
from unitune.pipeline import Pipeline
from unitune.provider import Ids
from unitune.retry import RetryPolicy
from unitune.spec import JobSpec
from unitune.testing.vertex_server import UNKNOWN_STATE, UNKNOWN_STATE_NUMBER, VertexFakeServer

BUCKET = "unitune-vertex-test"
PROJECT = "unitune-test"
LOCATION = "us-central1"
FAILURE = "Tuning failed: example 7 has an empty model turn (contents[1].parts[0].text)."


# Gemini 2.5 tuning is past its cut-off by every dated source (Google's page: tuning blocked from
# 2026-05-17, retired 2026-06-17; third-party trackers: 2026-10-20), so today it is refused. This
# suite pins the wire contract of the models it was written against, so it evaluates lifecycle
# dates as of 2026-04-01, before any of those dates; tests that check the refusal set
# UNITUNE_TODAY themselves (test_lifecycle_and_hyperparameters.py, tests/catalog).
SUITE_TODAY = "2026-04-01"


@pytest.fixture(autouse=True)
def _before_gemini_2_5_cutoffs(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", SUITE_TODAY)


def pytest_configure(config):
    config.addinivalue_line("markers", "aiplatform: uses the GAPIC aiplatform_v1 client "
                            "(runs in .venv-aiplatform)")


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _genai_ok() -> bool:
    if not has("google.genai"):
        return False
    from importlib.metadata import version

    return int(version("google-genai").split(".")[0]) >= 3


CLIENTS = [
    pytest.param("genai", id="genai", marks=pytest.mark.skipif(
        not _genai_ok(), reason="google-genai>=3 not installed (the main venv has it)")),
    pytest.param("aiplatform", id="aiplatform", marks=[pytest.mark.aiplatform, pytest.mark.skipif(
        not has("google.cloud.aiplatform_v1"),
        reason="google-cloud-aiplatform is not in this venv; `make test` runs these in "
               ".venv-aiplatform")]),
]


@pytest.fixture(params=CLIENTS)
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def gcs_emulator():
    """gcp-storage-emulator, in-process, in memory, on an ephemeral loopback port."""
    import logging

    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=BUCKET)
    server.start()
    port = server._api._httpd.server_address[1]
    yield f"http://127.0.0.1:{port}"
    server.stop()


def write_adc(path: Path) -> Path:
    """An authorized_user credentials file that needs no network: a token valid until 2099."""
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "unitune-test.apps.googleusercontent.com",
        "client_secret": "not-a-secret", "refresh_token": "not-a-refresh-token",
        "token": "fake-access-token", "expiry": "2099-01-01T00:00:00Z",
        "quota_project_id": PROJECT}))
    return path


@pytest.fixture
def fake(gcs_emulator, tmp_path, monkeypatch):
    """The fake tuning API plus the environment a user would set: ADC file, emulator, endpoint."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json")))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    server = VertexFakeServer(gcs_endpoint=gcs_emulator, metrics_bucket=BUCKET,
                              check_datasets=True, failure_message=FAILURE, total_steps=4)
    server.start()
    monkeypatch.setenv("UNITUNE_VERTEX_ENDPOINT", server.url)
    yield server
    server.stop()


def write_chat(path: Path, n: int = 12, tag: str = "") -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"messages": [
                {"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": f"{tag}question {i}: what is {i} + {i}?"},
                {"role": "assistant", "content": f"{tag}{i + i}"}]}) + "\n")
    return path


def make_spec(tmp_path: Path, kind: str, **over) -> JobSpec:
    train = write_chat(tmp_path / "train.jsonl", tag=over.pop("tag", ""))
    raw = {"name": "vertex-test", "backend": "vertex", "models": {"vertex": "gemini-2.5-flash"},
           "data": {"train": str(train)},
           "adapter": {"type": "lora", "r": 8},
           "hyperparameters": {"epochs": 2, "learning_rate_multiplier": 0.5},
           "backend_options": {"vertex": {"project": PROJECT, "location": LOCATION,
                                          "bucket": BUCKET, "client": kind}}}
    for key, value in over.items():
        raw[key] = value
    return JobSpec.from_dict(raw, source_dir=str(tmp_path))


def pipeline() -> Pipeline:
    """The core pipeline around a fresh provider, with a fast retry policy."""
    from unitune.providers.vertex import VertexProvider

    return Pipeline(VertexProvider(), policy=RetryPolicy(max_retries=3, base=0.01, cap=0.05,
                                                         deadline=30))


def submit(spec: JobSpec, key: str | None = None, job_id: str | None = None,
           logs: list[str] | None = None) -> RemoteRef:
    """Submit through the core pipeline, as the Client does (prepare, upload, create once)."""
    pipe = pipeline()
    if logs is not None:
        pipe.log = logs.append
    key = key or f"ut-{uuid.uuid4().hex[:10]}"
    sub = pipe.prepare_submission(spec)
    return pipe.submit(sub, Ids(job_id=job_id or key, key=key, spec_hash=spec.spec_hash()))


class Harness:
    """What tests/conformance/suite.py asks of a provider's test module."""

    failure_message = FAILURE
    timeout_s = 20

    def __init__(self, fake: VertexFakeServer, kind: str, gcs: str, adc: Path) -> None:
        from unitune.providers.vertex import VertexProvider

        self.fake = fake
        self.kind = kind
        self.gcs = gcs
        self.provider = VertexProvider()
        # GAPIC decodes enums as numbers and keeps one it does not know as that number
        self.unknown_raw = UNKNOWN_STATE if kind == "genai" else str(UNKNOWN_STATE_NUMBER)
        self.spawn = ("unitune.providers.vertex:VertexProvider", {}, {
            "UNITUNE_VERTEX_ENDPOINT": fake.url, "STORAGE_EMULATOR_HOST": gcs,
            "GOOGLE_APPLICATION_CREDENTIALS": str(adc), "UNITUNE_VERTEX_PROJECT": PROJECT,
            "UNITUNE_VERTEX_CLIENT": kind})

    def make_spec(self, tmp_path: Path) -> JobSpec:
        return make_spec(tmp_path, self.kind)

    def arrange(self, scenario: str) -> None:
        self.fake.arrange(scenario)  # the fake knows every scenario name the suite uses

    def advance(self, ref) -> None:
        pass  # the fake moves a job one tick per GET, like a job progressing between polls

    def last_request(self) -> dict | None:
        """The last POST …/tuningJobs body, in one encoding (GAPIC's "2" and enum numbers are
        the same proto3 values as google-genai's 2 and names)."""
        creates = self.fake.creates(canonical=True)
        return creates[-1] if creates else None

    def uploads(self) -> int:
        from google.cloud import storage

        return sum(1 for _ in storage.Client(project=PROJECT).list_blobs(
            BUCKET, prefix="unitune/datasets/"))

    def missing_ref(self) -> RemoteRef:
        return RemoteRef(backend="vertex", remote_id=f"projects/{PROJECT}/locations/{LOCATION}/"
                         "tuningJobs/404404", extra={"client": self.kind,
                                                      "endpoint": self.fake.url})

    def rate_limit_next(self, retry_after: float) -> None:
        self.fake.rate_limit_next(retry_after)


@pytest.fixture
def harness(fake, kind, gcs_emulator, tmp_path) -> Harness:
    return Harness(fake, kind, gcs_emulator, tmp_path / "adc.json")
