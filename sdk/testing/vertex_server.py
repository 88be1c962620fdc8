"""A stateful REST fake of Vertex AI's tuningJobs API, for tests and offline demos.

It speaks the wire protocol both real clients use — google-genai (`client.tunings`) and the GAPIC
`aiplatform_v1.GenAiTuningServiceClient` over its REST transport — so a backend is tested through
the vendor SDK, with nothing patched inside it:

    POST /{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs            create
    GET  /{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs            list (filter=labels.k="v")
    GET  /{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs/{id}       get (advances one tick)
    POST /{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs/{id}:cancel
    POST …/endpoints/{id}:generateContent, …/publishers/google/models/{m}:generateContent
                                                                        (vertex_generate.py)

JSON is camelCase, int64 values are strings, enums are names, or numbers when the request asks
for `$alt=json;enum-encoding=int` (what GAPIC REST sends). Errors use Google's body
`{"error": {"code", "message", "status"}}`. Requests without `Authorization: Bearer …` get 401.

A create body is checked against the REST schema as google-genai's own types describe it
(`google.genai.types.TuningJob`, read at request time, not a copy kept here): a field those types
do not have is refused with 400 INVALID_ARGUMENT, as the real service refuses an unknown name.
`canonical(body)` is the body in one encoding (proto3 JSON: int64 as numbers, enums as names),
so a GAPIC request and a google-genai request for the same job compare equal; `creates()` gives
the bodies as sent, `creates(canonical=True)` in that one encoding. `rate_limit_next(seconds)`
answers the next API request 429 RESOURCE_EXHAUSTED with a Retry-After header.

Scenario control (for the next created job, first in first out; default "success"):
`success`, `failure` (FAILED with `failure_message`), `slow` (RUNNING until cancelled),
`unknown_state` or `unknown_status` (reports a state nobody documented), `experiments_only`
(succeeds, curves only in Vertex Experiments: no gcsMetricsUri), `state:<NAME>` (goes to
JOB_STATE_<NAME> and stays; `state:PARTIALLY_SUCCEEDED:nomodel` without a tuned model),
`lost_response` (creates the job, then drops the connection without answering), and
`error:<http code>:<STATUS>:<message>` (refuses the create). In-process through
`VertexFakeServer.arrange(...)`, or over HTTP: `POST /_fake/arrange {"scenario": "..."}`,
`POST /_fake/advance {"name": ...}`, `GET /_fake/requests`.

With `gcs_endpoint` and `metrics_bucket` set, a succeeding job writes a JSONL metrics file to that
(emulated) bucket and reports it as `gcsMetricsUri`; with `check_datasets` it also reads the
training file from GCS to fill `tuningDataStats` (and fails the create when it is missing).

    python -m unitune.testing.vertex_server --port 8089 [--gcs http://127.0.0.1:9023 --bucket b]
"""
from __future__ import annotations

import argparse
import enum
import json
import re
import threading
import types as pytypes
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .loopback import FakeHandler, LoopbackServer

JOB_STATES = ("JOB_STATE_UNSPECIFIED", "JOB_STATE_QUEUED", "JOB_STATE_PENDING",
              "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
              "JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED", "JOB_STATE_PAUSED",
              "JOB_STATE_EXPIRED", "JOB_STATE_UPDATING", "JOB_STATE_PARTIALLY_SUCCEEDED")
STATE_NUMBER = {name: i for i, name in enumerate(JOB_STATES)}
# AdapterSize numbers as google.cloud.aiplatform.v1 defines them: not in size order.
ADAPTER_NUMBER = {"ADAPTER_SIZE_UNSPECIFIED": 0, "ADAPTER_SIZE_ONE": 1, "ADAPTER_SIZE_FOUR": 2,
                  "ADAPTER_SIZE_EIGHT": 3, "ADAPTER_SIZE_SIXTEEN": 4,
                  "ADAPTER_SIZE_THIRTY_TWO": 5, "ADAPTER_SIZE_TWO": 6}
ADAPTER_NAME = {v: k for k, v in ADAPTER_NUMBER.items()}
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
# google.rpc.Code numbers for the error statuses the fake emits
RPC_CODE = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "FAILED_PRECONDITION": 9,
            "RESOURCE_EXHAUSTED": 8, "UNAUTHENTICATED": 16, "PERMISSION_DENIED": 7,
            "INTERNAL": 13, "UNAVAILABLE": 14}

UNKNOWN_STATE = "JOB_STATE_WARMING_UP"  # what the unknown_state scenario reports by name …
UNKNOWN_STATE_NUMBER = 42  # … and by number (GAPIC's enum-encoding=int)
DEFAULT_FAILURE = ("Tuning failed: the training dataset has 3 examples with no model turn "
                   "(contents[-1].role must be 'model').")
_PATH = re.compile(r"^/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/"
                   r"(?P<location>[^/]+)/tuningJobs(?:/(?P<job>[^/:]+))?(?::(?P<verb>\w+))?$")
_FILTER_TERM = re.compile(r'^\s*labels\.(?P<key>[\w-]+)\s*[:=]\s*"?(?P<value>[^"]*)"?\s*$')


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class FakeJob:
    name: str
    scenario: str
    body: dict[str, Any]
    state: str = "JOB_STATE_QUEUED"
    ticks: int = 0
    steps_done: int = 0
    total_steps: int = 6
    cancel_requested: bool = False
    created: str = field(default_factory=_now)
    started: str | None = None
    ended: str | None = None
    updated: str = field(default_factory=_now)
    error: dict[str, Any] | None = None
    metrics_uri: str | None = None
    example_count: int | None = None
    billable_tokens: int | None = None


class VertexFakeServer(LoopbackServer):
    """The fake, on 127.0.0.1 and an ephemeral port by default. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, gcs_endpoint: str | None = None,
                 metrics_bucket: str | None = None, check_datasets: bool = False,
                 require_auth: bool = True, failure_message: str = DEFAULT_FAILURE,
                 total_steps: int = 6) -> None:
        self.host, self.port = host, port
        self.gcs_endpoint = gcs_endpoint
        self.metrics_bucket = metrics_bucket
        self.check_datasets = check_datasets
        self.require_auth = require_auth
        self.failure_message = failure_message
        self.total_steps = total_steps
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[dict[str, Any]] = []  # every API request: method, path, query, body
        self._scenarios: list[str] = []
        self._throttle: list[float] = []
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        from .vertex_generate import GenerateFake  # generateContent (issue 13)

        self.generate = GenerateFake(self)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "VertexFakeServer":
        self._thread = self._serve_http(self.host, self.port, _Handler, "vertex-fake")
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        self._close_http()

    @property
    def url(self) -> str:
        """Scheme, host and port (what UNITUNE_VERTEX_ENDPOINT takes)."""
        return f"http://{self.host}:{self.port}"

    # -- scenario control ------------------------------------------------------------------------
    def arrange(self, scenario: str) -> None:
        """Queue the scenario the next created job follows (see the module docstring)."""
        with self._lock:
            self._scenarios.append(scenario)

    def advance(self, name: str | None = None) -> None:
        """Move one job (or every job) one tick forward."""
        with self._lock:
            for job in ([self.jobs[name]] if name else list(self.jobs.values())):
                self._tick(job)

    def job(self, name: str) -> FakeJob:
        return self.jobs[name]

    def rate_limit_next(self, retry_after: float = 1.0) -> None:
        """Answer the next API request 429 RESOURCE_EXHAUSTED with `Retry-After: retry_after`."""
        with self._lock:
            self._throttle.append(retry_after)

    def creates(self, canonical: bool = False) -> list[dict[str, Any]]:
        """The bodies of every create request, as sent (or in the canonical encoding)."""
        return [canonical_body(r["body"]) if canonical else r["body"] for r in self.requests
                if r["verb"] == "create"]

    # -- state machine ---------------------------------------------------------------------------
    def _tick(self, job: FakeJob) -> None:
        job.ticks += 1
        job.updated = _now()
        scenario = job.scenario
        if job.state in TERMINAL:
            return
        if job.state == "JOB_STATE_CANCELLING":
            self._end(job, "JOB_STATE_CANCELLED",
                      {"code": 1, "message": "CANCELED: the tuning job was cancelled by the user."})
            return
        if scenario.startswith("state:"):
            _, name, *flags = scenario.split(":")
            target = "JOB_STATE_" + name.upper()
            if target in TERMINAL:
                err = None
                if target == "JOB_STATE_FAILED":
                    err = {"code": 3, "message": self.failure_message}
                elif target == "JOB_STATE_EXPIRED":
                    err = {"code": 4, "message": "DEADLINE_EXCEEDED: the job expired in the queue."}
                elif target == "JOB_STATE_PARTIALLY_SUCCEEDED":
                    err = {"code": 13, "message": "Some checkpoints could not be exported."}
                self._end(job, target, err, model=target == "JOB_STATE_SUCCEEDED" or (
                    target == "JOB_STATE_PARTIALLY_SUCCEEDED" and "nomodel" not in flags))
            else:
                job.state = target
            return
        if job.state == "JOB_STATE_QUEUED":
            job.state = "JOB_STATE_PENDING"
            return
        if job.state == "JOB_STATE_PENDING":
            if scenario in ("unknown_state", "unknown_status"):
                job.state = UNKNOWN_STATE
                return
            job.state, job.started = "JOB_STATE_RUNNING", _now()
            return
        if job.state == UNKNOWN_STATE:
            return
        if job.state == "JOB_STATE_RUNNING":
            if scenario == "slow":
                job.steps_done = min(job.steps_done + 1, job.total_steps - 1)
                return
            if scenario == "failure" and job.steps_done >= 2:
                self._end(job, "JOB_STATE_FAILED", {"code": 3, "message": self.failure_message})
                return
            job.steps_done += 1
            if job.steps_done >= job.total_steps:
                if scenario != "experiments_only":
                    self._write_metrics(job)
                self._end(job, "JOB_STATE_SUCCEEDED", None, model=True)

    def _end(self, job: FakeJob, state: str, error: dict | None, model: bool = False) -> None:
        job.state, job.ended, job.error = state, _now(), error
        if model:
            job.body["_model"] = True

    def _write_metrics(self, job: FakeJob) -> None:
        if not (self.gcs_endpoint and self.metrics_bucket):
            return
        rows = []
        for step in range(1, job.total_steps + 1):
            row = {"step": step, "/train_total_loss": round(2.0 / (1 + 0.35 * step), 4),
                   "/train_fraction_of_correct_next_step_preds": round(0.4 + 0.08 * step, 4),
                   "/train_num_predictions": 512 * step}
            if step % 3 == 0:
                row["/eval_total_loss"] = round(2.2 / (1 + 0.3 * step), 4)
                row["/eval_fraction_of_correct_next_step_preds"] = round(0.38 + 0.07 * step, 4)
            rows.append(row)
        job_id = job.name.rsplit("/", 1)[1]
        path = f"tuning-metrics/{job_id}/metrics.jsonl"
        _gcs_client(self.gcs_endpoint).bucket(self.metrics_bucket).blob(path).upload_from_string(
            "".join(json.dumps(r) + "\n" for r in rows), content_type="application/jsonl")
        job.metrics_uri = f"gs://{self.metrics_bucket}/{path}"

    def _read_dataset_stats(self, uri: str) -> tuple[int, int] | str:
        """(examples, billable tokens ~ chars/4) of a gs:// JSONL, or an error message."""
        bucket, _, path = uri[len("gs://"):].partition("/")
        blob = _gcs_client(self.gcs_endpoint).bucket(bucket).blob(path)
        if not blob.exists():
            return f"Training dataset {uri} does not exist."
        lines = [ln for ln in blob.download_as_text().splitlines() if ln.strip()]
        return len(lines), sum(max(1, len(ln) // 4) for ln in lines)

    # -- JSON rendering --------------------------------------------------------------------------
    def render(self, job: FakeJob, enum_int: bool) -> dict[str, Any]:
        body = job.body
        out: dict[str, Any] = {
            "name": job.name,
            "baseModel": body.get("baseModel"),
            "state": job.state,
            "createTime": job.created,
            "updateTime": job.updated,
            "labels": dict(body.get("labels") or {}),
            "supervisedTuningSpec": json.loads(json.dumps(body.get("supervisedTuningSpec", {}))),
        }
        for key in ("tunedModelDisplayName", "description"):
            if body.get(key):
                out[key] = body[key]
        if job.started:
            out["startTime"] = job.started
        if job.ended:
            out["endTime"] = job.ended
        if job.error:
            out["error"] = job.error
        if job.state not in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING"):
            job_id = job.name.rsplit("/", 1)[1]
            project_path = job.name.split("/tuningJobs/")[0]
            out["experiment"] = f"{project_path}/metadataStores/default/contexts/tuning-experiment-{job_id}"
            examples = job.example_count if job.example_count is not None else 20
            tokens = job.billable_tokens if job.billable_tokens is not None else 4000
            out["tuningDataStats"] = {"supervisedTuningDataStats": {
                "tuningDatasetExampleCount": str(examples),
                "totalBillableTokenCount": str(tokens),
                "tuningStepCount": str(job.total_steps),
                "totalTruncatedExampleCount": "0",
            }}
            out["tuningJobMetadata"] = {"completedStepCount": str(job.steps_done)}
        if body.get("_model"):
            job_id = job.name.rsplit("/", 1)[1]
            project_path = job.name.split("/tuningJobs/")[0]
            out["tunedModel"] = {"model": f"{project_path}/models/{job_id}@1",
                                 "endpoint": f"{project_path}/endpoints/{job_id}"}
        if job.metrics_uri:
            out["gcsMetricsUri"] = job.metrics_uri
        if enum_int:
            out["state"] = STATE_NUMBER.get(job.state, UNKNOWN_STATE_NUMBER)
            hp = out["supervisedTuningSpec"].get("hyperParameters") or {}
            if isinstance(hp.get("adapterSize"), str):
                hp["adapterSize"] = ADAPTER_NUMBER.get(hp["adapterSize"], 0)
        return out

    # -- request handling (called by the handler thread) ----------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes):
        """Return (status, json body[, headers]) or None to drop the connection unanswered."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        if self.generate.matches(path):  # see vertex_generate.py
            return self.generate.serve(method, path, headers, body)
        m = _PATH.match(path)
        if not m:
            return _error(404, "NOT_FOUND", f"no route for {method} {path}")
        if self.require_auth and not (headers.get("Authorization") or "").startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication "
                          "credential. Expected OAuth 2 access token.")
        enum_int = "enum-encoding=int" in query.get("$alt", "")
        with self._lock:
            if self._throttle:
                after = self._throttle.pop(0)
                self.requests.append({"verb": "throttled", "method": method, "path": path,
                                      "query": query, "version": m["version"], "body": {}})
                code, payload = _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted "
                                       "(e.g. check requests per minute). Please try again later.")
                return code, payload, [("Retry-After", f"{after:g}")]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        job_id, verb = m["job"], m["verb"]
        parent = f"projects/{m['project']}/locations/{m['location']}"
        kind = ("create" if method == "POST" and not job_id else
                "list" if method == "GET" and not job_id else
                "get" if method == "GET" else "cancel" if verb == "cancel" else "other")
        with self._lock:
            self.requests.append({"verb": kind, "method": method, "path": path, "query": query,
                                  "version": m["version"], "body": json.loads(body) if body else {}})
            if kind == "create":
                return self._create(parent, payload, enum_int)
            if kind == "list":
                return self._list(parent, query, enum_int)
            name = f"{parent}/tuningJobs/{job_id}"
            job = self.jobs.get(name)
            if job is None:
                return _error(404, "NOT_FOUND", f"TuningJob {name} not found.")
            if kind == "get":
                self._tick(job)
                return 200, self.render(job, enum_int)
            if kind == "cancel":
                if job.state in TERMINAL:
                    return _error(400, "FAILED_PRECONDITION",
                                  f"Cannot cancel tuning job {name} in state {job.state}.")
                job.cancel_requested = True
                job.state = "JOB_STATE_CANCELLING"
                return 200, {}
        return _error(404, "NOT_FOUND", f"no route for {method} {path}")

    def _create(self, parent: str, payload: dict, enum_int: bool):
        scenario = self._scenarios.pop(0) if self._scenarios else "success"
        if scenario.startswith("error:"):
            _, code, status, message = scenario.split(":", 3)
            return _error(int(code), status, message)
        problem = unknown_field(payload) or _validate_create(payload)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        hp = payload.get("supervisedTuningSpec", {}).get("hyperParameters")
        if hp and isinstance(hp.get("adapterSize"), int):  # normalize GAPIC's enum numbers
            hp["adapterSize"] = ADAPTER_NAME.get(hp["adapterSize"], "ADAPTER_SIZE_UNSPECIFIED")
        job = FakeJob(name=f"{parent}/tuningJobs/{uuid.uuid4().int % 10**19}", scenario=scenario,
                      body=payload, total_steps=self.total_steps)
        if self.check_datasets and self.gcs_endpoint:
            stats = self._read_dataset_stats(payload["supervisedTuningSpec"]["trainingDatasetUri"])
            if isinstance(stats, str):
                return _error(400, "INVALID_ARGUMENT", stats)
            job.example_count, tokens = stats
            job.billable_tokens = tokens  # per pass over the data, as Vertex reports it
        self.jobs[job.name] = job
        if scenario == "lost_response":
            return None
        return 200, self.render(job, enum_int)

    def _list(self, parent: str, query: dict, enum_int: bool):
        wanted: dict[str, str] = {}
        for term in filter(None, re.split(r"\s+AND\s+", query.get("filter", "").strip())):
            fm = _FILTER_TERM.match(term)
            if not fm:
                return _error(400, "INVALID_ARGUMENT", f"Unsupported filter: {term!r}")
            wanted[fm["key"]] = fm["value"]
        jobs = [j for j in self.jobs.values() if j.name.startswith(parent + "/")
                and all((j.body.get("labels") or {}).get(k) == v for k, v in wanted.items())]
        size = int(query.get("pageSize") or 50)
        start = int(query.get("pageToken") or 0)
        page = jobs[start:start + size]
        out: dict[str, Any] = {"tuningJobs": [self.render(j, enum_int) for j in page]}
        if start + size < len(jobs):
            out["nextPageToken"] = str(start + size)
        return 200, out

    def _control(self, method: str, path: str, body: bytes):
        payload = json.loads(body) if body else {}
        if path == "/_fake/arrange" and method == "POST":
            self.arrange(payload["scenario"])
            return 200, {"queued": list(self._scenarios)}
        if path == "/_fake/advance" and method == "POST":
            self.advance(payload.get("name"))
            return 200, {}
        if path == "/_fake/requests" and method == "GET":
            return 200, {"requests": self.requests}
        return _error(404, "NOT_FOUND", f"no control route {path}")


def _schema():
    """google-genai's TuningJob model (the REST resource as the SDK knows it), or None."""
    try:
        from google.genai import types
    except ImportError:
        return None
    return types.TuningJob


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional[...] / Union[...] / list[...]."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, list, pytypes.UnionType):
        return [t for a in args for t in _unwrap(a)]
    return [annotation]


def _field_model(annotation: Any):
    from pydantic import BaseModel

    for t in _unwrap(annotation):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def unknown_field(payload: dict, model: Any = None, where: str = "tuning_job") -> str | None:
    """Google's message for the first field of `payload` that the REST schema lacks, else None.
    The schema is google-genai's types (camelCase names map to their snake_case fields)."""
    model = model or _schema()
    if model is None:
        return None
    for key, value in payload.items():
        name = _snake(key)
        field = model.model_fields.get(name)
        if field is None:
            return (f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': '
                    "Cannot find field.")
        sub = _field_model(field.annotation)
        if sub is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found = unknown_field(item, sub, f"{where}.{name}")
                if found:
                    return found
    return None


def canonical_body(payload: dict, model: Any = None) -> dict:
    """`payload` in one proto3 JSON encoding: int64 strings as numbers, enum numbers as names
    (typed by google-genai's schema; enum numbers by the aiplatform v1 proto's numbering)."""
    model = model or _schema()
    out: dict[str, Any] = {}
    for key, value in payload.items():
        field = model.model_fields.get(_snake(key)) if model is not None else None
        kinds = _unwrap(field.annotation) if field is not None else []
        sub = _field_model(field.annotation) if field is not None else None
        if sub is not None and isinstance(value, dict):
            value = canonical_body(value, sub)
        elif int in kinds and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        elif isinstance(value, int) and not isinstance(value, bool) and any(
                isinstance(t, type) and issubclass(t, enum.Enum) for t in kinds):
            names = {"adapterSize": ADAPTER_NAME, "state": dict(enumerate(JOB_STATES))}
            value = names.get(key, {}).get(value, value)
        out[key] = value
    return out


def _validate_create(payload: dict) -> str | None:
    if not payload.get("baseModel"):
        return "baseModel is required."
    sts = payload.get("supervisedTuningSpec") or {}
    uri = sts.get("trainingDatasetUri", "")
    if not uri.startswith("gs://"):
        return f"supervisedTuningSpec.trainingDatasetUri must be a gs:// URI, got {uri!r}."
    val = sts.get("validationDatasetUri")
    if val is not None and not val.startswith("gs://"):
        return f"supervisedTuningSpec.validationDatasetUri must be a gs:// URI, got {val!r}."
    hp = sts.get("hyperParameters") or {}
    if "epochCount" in hp:
        try:
            if int(hp["epochCount"]) < 1:
                raise ValueError
        except (TypeError, ValueError):
            return f"hyperParameters.epochCount must be a positive integer, got {hp['epochCount']!r}."
    size = hp.get("adapterSize")
    if size is not None and size not in ADAPTER_NUMBER and size not in ADAPTER_NAME:
        return f"hyperParameters.adapterSize: invalid value {size!r}."
    for key, value in (payload.get("labels") or {}).items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) or not re.fullmatch(r"[a-z0-9_-]{0,63}",
                                                                              str(value)):
            return f"labels: invalid label {key}={value!r} (lowercase letters, digits, _ and -)."
    return None


def _error(code: int, status: str, message: str):
    return code, {"error": {"code": code, "message": message, "status": status}}


def _gcs_client(endpoint: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="fake", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": endpoint})


class _Handler(FakeHandler):
    fake: VertexFakeServer

    def _serve(self, method: str) -> None:
        result = self.fake.handle(method, self.path, self.headers, self.read_body())
        if result is None:  # lost response: the job exists, the caller never hears of it
            self.drop()
            return
        status, payload, *headers = result
        self.answer(status, json.dumps(payload).encode(), "application/json; charset=UTF-8",
                    headers[0] if headers else ())

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Vertex AI tuningJobs REST server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--gcs", help="GCS (emulator) endpoint for metrics files, http://host:port")
    parser.add_argument("--bucket", help="bucket the metrics files go to")
    parser.add_argument("--check-datasets", action="store_true",
                        help="read the training file from GCS on create")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without a token")
    args = parser.parse_args(argv)
    fake = VertexFakeServer(args.host, args.port, gcs_endpoint=args.gcs, metrics_bucket=args.bucket,
                            check_datasets=args.check_datasets, require_auth=not args.no_auth)
    fake.start()
    print(f"fake Vertex AI tuning API on {fake.url} (UNITUNE_VERTEX_ENDPOINT={fake.url})", flush=True)
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
