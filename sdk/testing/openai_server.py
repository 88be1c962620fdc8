"""A fake OpenAI / Azure OpenAI fine-tuning server that speaks the real wire protocol.

Run it for manual tries (`python -m unitune.testing.openai_server --port 8765`, then
`OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=x unitune train …`) or use it in-process
from tests (`with FakeOpenAIServer() as srv: OpenAI(base_url=srv.base_url, api_key="x")`, or the
`fake_openai_server` / `fake_azure_openai_server` pytest fixtures defined at the bottom when
the module is imported under pytest).

What it serves (under `/v1`, or under `/openai` with a required `api-version` query in Azure mode):
`/files` (multipart upload, list), `/files/{id}`, `/files/{id}/content`, `/fine_tuning/jobs`
(create, list with `after`/`limit`/`metadata[k]=v`), `/fine_tuning/jobs/{id}` and its `/cancel`,
`/pause`, `/resume`, `/events`, `/checkpoints`. In Azure mode it also serves the Azure Resource
Manager deployment resource (`/subscriptions/…/deployments/{name}`).

A job advances one *tick* at a time: on every retrieve of that job (default), every
`tick_seconds` (background thread), or when `advance()` is called. Phases and how many ticks each
lasts are configurable: validating_files → queued → running (emits metrics events, one
checkpoint per epoch, the last three kept) → succeeded (fine_tuned_model, result CSV file).

Faults (from the constructor, `inject()`, `POST /_fake/fault` or `--fault KIND[:COUNT]`):
`429` and `500` (with Retry-After unless `retry_after=None`), `timeout` (the request is processed, the response is held
back longer than the client waits), `drop` (the request is processed — e.g. the job IS created —
then the connection is closed without a response: the duplicate trap). `arrange()` picks what the
next created job does: `success`, `failure` (fails with a message), `unknown_status` (reports an
undocumented status), `slow` (runs until cancelled). A training file that is not valid chat JSONL
or has fewer than `min_examples` lines fails its job with a data error, as OpenAI does.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from .loopback import FakeHandler, LoopbackServer

SCENARIOS = ("success", "failure", "unknown_status", "slow")
FAULT_KINDS = ("429", "500", "timeout", "drop")
CSV_VARIANTS = {
    # classic OpenAI result file
    "openai": ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"],
    # newer OpenAI result file with full-validation columns
    "openai-full": ["step", "train_loss", "train_mean_token_accuracy", "valid_loss",
                    "valid_mean_token_accuracy", "full_valid_loss", "full_valid_mean_token_accuracy"],
    # Azure OpenAI result file
    "azure": ["step", "train_loss", "train_mean_token_accuracy", "valid_loss",
              "validation_mean_token_accuracy", "full_valid_loss", "full_valid_mean_token_accuracy"],
}
DEFAULT_TICKS = {"file": 1, "validating_files": 1, "queued": 1, "running": 3}
# internal phase → status string the server reports
OPENAI_STATUS = {"validating": "validating_files", "queued": "queued", "running": "running",
                 "paused": "paused", "cancelling": "cancelled", "cancelled": "cancelled",
                 "succeeded": "succeeded", "failed": "failed"}
AZURE_STATUS = {"validating": "pending", "queued": "notRunning", "running": "running",
                "paused": "paused", "cancelling": "canceling", "cancelled": "canceled",
                "succeeded": "succeeded", "failed": "failed"}
ARM_PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                      r"Microsoft\.CognitiveServices/accounts/(?P<acct>[^/]+)/deployments/"
                      r"(?P<name>[^/]+)$")


def _rid(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass
class Fault:
    """One injected failure. `path` is matched against the route without the /v1 or /openai
    prefix; `path=None` matches any route, `method=None` any method."""

    kind: str
    count: int = 1
    method: str | None = "POST"
    path: str | None = "/fine_tuning/jobs"
    retry_after: float | None = 0.05
    hang_s: float = 1.5

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path == path)


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    polls: int = 0
    processed_after: int = 1

    def obj(self, azure: bool) -> dict[str, Any]:
        status = "processed" if self.polls >= self.processed_after or self.purpose != "fine-tune" else "uploaded"
        if azure and status == "uploaded":
            status = "pending"  # Azure's word for it
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": status}


@dataclass
class _Job:
    id: str
    created_at: int
    body: dict[str, Any]
    scenario: str
    phase: str = "validating"
    ticks: int = 0  # ticks spent in the current phase
    step: int = 0
    total_steps: int = 12
    n_epochs: int = 3
    seed: int = 0
    finished_at: int | None = None
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None
    result_files: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # one per step
    trained_tokens: int | None = None
    examples: int = 0
    tokens_per_epoch: int = 0


class FakeOpenAIServer(LoopbackServer):
    """In-process fake server. Use as a context manager or call `start()` / `stop()`."""

    def __init__(self, *, azure: bool = False, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None, azure_ad_token: str | None = None,
                 ticks: dict[str, int] | None = None, tick_seconds: float | None = None,
                 steps: int = 12, n_epochs_auto: int = 3, csv_variant: str | None = None,
                 result_base64: bool = False, min_examples: int = 10,
                 failure_message: str = "Training failed: the fake server was told to fail this job "
                                        "(scenario 'failure').",
                 unknown_raw: str = "retrying_internal", faults: list[Fault] | None = None,
                 models: list[str] | None = None, null_error_object: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.azure = azure
        self.host = host
        self._port = port
        self.api_key = api_key
        self.azure_ad_token = azure_ad_token
        self.ticks = {**DEFAULT_TICKS, **(ticks or {})}
        self.tick_seconds = tick_seconds
        self.steps = steps
        self.n_epochs_auto = n_epochs_auto
        self.csv_variant = csv_variant or ("azure" if azure else "openai")
        if self.csv_variant not in CSV_VARIANTS:
            raise ValueError(f"csv_variant must be one of {sorted(CSV_VARIANTS)}")
        self.result_base64 = result_base64
        self.min_examples = min_examples
        self.failure_message = failure_message
        self.unknown_raw = unknown_raw
        self.models = set(models) if models else None
        self.null_error_object = null_error_object
        self.log = log or (lambda _m: None)
        self.faults: list[Fault] = list(faults or [])
        self.files: dict[str, _File] = {}
        self.jobs: dict[str, _Job] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # every request and response (for shape checks)
        self.create_attempts = 0  # POST /fine_tuning/jobs received (faulted or not)
        self._next: list[str] = []
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeOpenAIServer":
        self._threads.append(self._serve_http(self.host, self._port, _Handler, "fake-openai"))
        if self.tick_seconds:
            tt = threading.Thread(target=self._ticker, name="fake-openai-ticker", daemon=True)
            tt.start()
            self._threads.append(tt)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close_http()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """Root URL: the Azure `azure_endpoint` and the ARM endpoint."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give `OpenAI(base_url=…)` / OPENAI_BASE_URL."""
        return f"{self.endpoint}/v1"

    # -- test controls -------------------------------------------------------------------------------
    def arrange(self, scenario: str) -> None:
        """What the NEXT created job does (queued: several calls arrange several jobs)."""
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}")
        with self._lock:
            self._next.append(scenario)

    def inject(self, kind: str, count: int = 1, **kw: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        fault = Fault(kind=kind, count=count, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def advance(self, job_id: str | None = None, ticks: int = 1) -> None:
        """Move one job (or every job) forward by `ticks` ticks."""
        with self._lock:
            targets = [self.jobs[job_id]] if job_id else list(self.jobs.values())
            for job in targets:
                for _ in range(ticks):
                    self._tick(job)

    def job_count(self) -> int:
        with self._lock:
            return len(self.jobs)

    def _ticker(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.advance()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None

    # -- job state machine ---------------------------------------------------------------------------
    def _event(self, job: _Job, message: str, *, level: str = "info", type_: str = "message",
               data: dict[str, Any] | None = None) -> None:
        job.events.append({"object": "fine_tuning.job.event", "id": _rid("ftevent-"),
                           "created_at": int(time.time()), "level": level, "message": message,
                           "type": type_, "data": data or {}})

    def _set_phase(self, job: _Job, phase: str) -> None:
        job.phase = phase
        job.ticks = 0

    def _validate_training_file(self, job: _Job) -> str | None:
        f = self.files.get(job.body["training_file"])
        if f is None:
            return f"File {job.body['training_file']} not found."
        dpo = (job.body.get("method") or {}).get("type") == "dpo"
        lines = [ln for ln in f.content.decode("utf-8", "replace").splitlines() if ln.strip()]
        tokens = 0
        for n, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                return f"Invalid file format. Line {n} is not valid JSON."
            if dpo:
                if not isinstance(obj, dict) or not {"input", "preferred_output", "non_preferred_output"} <= obj.keys():
                    return (f"Invalid file format. Line {n}: a preference example needs `input`, "
                            "`preferred_output` and `non_preferred_output`.")
                tokens += max(1, len(line) // 4)
                continue
            msgs = obj.get("messages") if isinstance(obj, dict) else None
            if not isinstance(msgs, list) or not msgs:
                return f"Invalid file format. Line {n}, key \"messages\": field required."
            if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
                return f"Invalid file format. Line {n}: example has no assistant message."
            tokens += max(1, len(line) // 4)
        if len(lines) < self.min_examples:
            return (f"Training file has {len(lines)} example(s), but must have at least "
                    f"{self.min_examples} examples")
        job.examples = len(lines)
        job.tokens_per_epoch = tokens
        return None

    def _fail(self, job: _Job, message: str, code: str, param: str | None) -> None:
        job.error = {"code": code, "message": message, "param": param}
        job.finished_at = int(time.time())
        self._event(job, message, level="error")
        self._set_phase(job, "failed")

    def _tick(self, job: _Job) -> None:
        job.ticks += 1
        if job.phase == "validating":
            if job.ticks < self.ticks["validating_files"]:
                return
            problem = self._validate_training_file(job)
            if problem:
                self._fail(job, f"The job failed due to an invalid training file. {problem}",
                           "invalid_training_file", "training_file")
            elif job.scenario == "failure":
                self._fail(job, self.failure_message, "server_error", None)
            else:
                self._event(job, "Files validated, moving job to queued state")
                self._set_phase(job, "queued")
        elif job.phase == "queued":
            if job.ticks >= self.ticks["queued"]:
                self._event(job, f"Fine-tuning job started")
                self._set_phase(job, "unknown" if job.scenario == "unknown_status" else "running")
        elif job.phase == "running":
            per_tick = max(1, math.ceil(job.total_steps / max(1, self.ticks["running"])))
            limit = job.total_steps - 1 if job.scenario == "slow" else job.total_steps
            for _ in range(per_tick):
                if job.step >= limit:
                    break
                self._train_step(job)
            if job.step >= job.total_steps:
                self._succeed(job)
        elif job.phase == "cancelling":
            self._set_phase(job, "cancelled")

    def _train_step(self, job: _Job) -> None:
        job.step += 1
        s = job.step
        rng_phase = (sum(map(ord, job.id)) % 17) / 100
        train_loss = round(2.2 * math.exp(-s / (job.total_steps / 2.5)) + 0.15 + 0.03 * math.sin(s + rng_phase), 4)
        acc = round(min(0.99, 0.45 + 0.5 * (1 - math.exp(-s / (job.total_steps / 3)))), 4)
        row: dict[str, Any] = {"step": s, "train_loss": train_loss, "train_mean_token_accuracy": acc}
        has_valid = bool(job.body.get("validation_file"))
        steps_per_epoch = max(1, job.total_steps // job.n_epochs)
        if has_valid and (s % 3 == 0 or s == job.total_steps):
            row["valid_loss"] = round(train_loss * 1.1 + 0.05, 4)
            row["valid_mean_token_accuracy"] = round(acc - 0.03, 4)
        if has_valid and s % steps_per_epoch == 0:
            row["full_valid_loss"] = round(train_loss * 1.08 + 0.05, 4)
            row["full_valid_mean_token_accuracy"] = round(acc - 0.02, 4)
        job.metrics.append(row)
        self._event(job, f"Step {s}/{job.total_steps}: training loss={train_loss:.4f}", type_="metrics",
                    data={**row, "total_steps": job.total_steps})
        if s % steps_per_epoch == 0 or s == job.total_steps:
            model = self._ft_model_name(job)
            ckpt = {"object": "fine_tuning.job.checkpoint", "id": _rid("ftckpt_"),
                    "created_at": int(time.time()),
                    "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{s}",
                    "fine_tuning_job_id": job.id, "step_number": s,
                    "metrics": {k: float(v) for k, v in row.items()}}
            job.checkpoints.append(ckpt)
            job.checkpoints[:] = job.checkpoints[-3:]  # OpenAI keeps the last three epochs
            self._event(job, f"Checkpoint created at step {s}")

    def _ft_model_name(self, job: _Job) -> str:
        base = job.body["model"]
        if self.azure:
            return f"{base}.ft-{job.id[-12:]}"
        suffix = job.body.get("suffix") or ""
        return f"ft:{base}:unitune-fake:{suffix}:{job.id[-8:]}"

    def _succeed(self, job: _Job) -> None:
        job.fine_tuned_model = self._ft_model_name(job)
        job.trained_tokens = job.tokens_per_epoch * job.n_epochs
        job.finished_at = int(time.time())
        content = self._result_csv(job)
        if self.result_base64:
            content = base64.b64encode(content)
        f = _File(_rid("file-"), "step_metrics.csv", "fine-tune-results", content, int(time.time()))
        self.files[f.id] = f
        job.result_files = [f.id]
        self._event(job, f"New fine-tuned model created: {job.fine_tuned_model}")
        self._event(job, "The job has successfully completed")
        self._set_phase(job, "succeeded")

    def _result_csv(self, job: _Job) -> bytes:
        cols = CSV_VARIANTS[self.csv_variant]
        alias = {"train_accuracy": "train_mean_token_accuracy",
                 "validation_mean_token_accuracy": "valid_mean_token_accuracy"}
        out = io.StringIO()
        out.write(",".join(cols) + "\n")
        for row in job.metrics:
            cells = []
            for c in cols:
                v = row.get(alias.get(c, c))
                cells.append("" if v is None else str(v))
            out.write(",".join(cells) + "\n")
        return out.getvalue().encode()

    # -- object views ----------------------------------------------------------------------------------
    def _status(self, job: _Job) -> str:
        if job.phase == "unknown":
            return self.unknown_raw
        return (AZURE_STATUS if self.azure else OPENAI_STATUS)[job.phase]

    def job_obj(self, job: _Job) -> dict[str, Any]:
        b = job.body
        method = b.get("method") or {"type": "supervised", "supervised": {"hyperparameters": dict(b.get("hyperparameters") or {})}}
        mtype = method.get("type", "supervised")
        hp = dict(((method.get(mtype) or {}).get("hyperparameters")) or {})
        if job.phase not in ("validating", "queued"):  # "auto" resolved once training starts
            def pick(key, default):
                return hp[key] if hp.get(key, "auto") != "auto" else default

            hp = {"n_epochs": job.n_epochs, "batch_size": pick("batch_size", 1),
                  "learning_rate_multiplier": pick("learning_rate_multiplier", 1.8),
                  **({"beta": pick("beta", 0.1)} if mtype == "dpo" else {})}
        method_out = {"type": mtype, mtype: {"hyperparameters": hp}}
        error = job.error
        if error is None:
            error = {"code": None, "message": None, "param": None} if self.null_error_object else None
        remaining = max(0, job.total_steps - job.step)
        obj = {
            "object": "fine_tuning.job", "id": job.id, "created_at": job.created_at,
            "error": error, "fine_tuned_model": job.fine_tuned_model,
            "finished_at": job.finished_at,
            "hyperparameters": {k: v for k, v in hp.items() if k != "beta"} if mtype == "supervised" else {},
            "model": b["model"],
            "organization_id": None if self.azure else "org-unitunefake",
            "result_files": (job.result_files or None) if self.azure else list(job.result_files),
            "status": self._status(job), "trained_tokens": job.trained_tokens,
            "training_file": b["training_file"], "validation_file": b.get("validation_file"),
            "integrations": b.get("integrations"), "seed": job.seed,
            "estimated_finish": (int(time.time()) + 5 * remaining) if job.phase == "running" else None,
            "method": method_out, "metadata": b.get("metadata"),
        }
        if self.azure:
            obj["trainingType"] = b.get("trainingType")
        return obj

    # -- request handling ---------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes | dict[str, Any]]:
        """Route one request; returns (status, extra headers, JSON object or raw bytes)."""
        url = urlsplit(raw_path)
        query = parse_qsl(url.query, keep_blank_values=True)
        q = dict(query)
        path = url.path.rstrip("/") or "/"
        if path.startswith("/_fake/"):
            return self._admin(method, path, body)
        m = ARM_PATH.match(path)
        if m and self.azure:
            return self._arm(method, m.groupdict(), q, headers, body)
        if path.startswith("/v1/"):
            route = path[3:]
        elif path.startswith("/openai/"):
            route = path[7:]
        else:
            return _err(404, f"Unknown path {path}", "invalid_request_error", code="not_found")
        if self.azure and "api-version" not in q:
            return 404, {}, {"error": {"code": "404", "message": "Resource not found"}}
        denied = self._auth(headers)
        if denied:
            return denied
        with self._lock:
            return self._route(method, route, q, query, headers, body)

    def _auth(self, headers: dict[str, str]):
        if self.api_key is None and self.azure_ad_token is None:
            return None
        bearer = headers.get("authorization", "")
        given = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if self.azure:
            if self.api_key and headers.get("api-key") == self.api_key:
                return None
            if self.azure_ad_token and given == self.azure_ad_token:
                return None
            return 401, {}, {"error": {"code": "401", "message": "Access denied due to invalid "
                                       "subscription key or wrong API endpoint. Make sure to provide "
                                       "a valid key for an active subscription and use a correct "
                                       "regional API endpoint for your resource."}}
        if given == self.api_key:
            return None
        # OpenAI echoes (a masked form of) the key it got; echo it whole to test that callers scrub it
        return _err(401, f"Incorrect API key provided: {given}. You can find your API key at "
                         "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                    code="invalid_api_key")

    def _route(self, method, route, q, query, headers, body):
        parts = route.strip("/").split("/")
        if parts[0] == "files":
            if len(parts) == 1:
                if method == "POST":
                    return self._upload(headers, body)
                if method == "GET":
                    items = sorted(self.files.values(), key=lambda f: f.created_at, reverse=True)
                    if "purpose" in q:
                        items = [f for f in items if f.purpose == q["purpose"]]
                    data = [f.obj(self.azure) for f in items]
                    return 200, {}, {"object": "list", "data": data, "has_more": False,
                                     "first_id": data[0]["id"] if data else "",
                                     "last_id": data[-1]["id"] if data else ""}
            f = self.files.get(parts[1]) if len(parts) > 1 else None
            if f is None:
                return _err(404, f"No such File object: {parts[1] if len(parts) > 1 else ''}",
                            "invalid_request_error", param="id")
            if len(parts) == 2 and method == "GET":
                f.polls += 1
                return 200, {}, f.obj(self.azure)
            if len(parts) == 2 and method == "DELETE":
                del self.files[f.id]
                return 200, {}, {"id": f.id, "object": "file", "deleted": True}
            if len(parts) == 3 and parts[2] == "content" and method == "GET":
                return 200, {"Content-Type": "application/octet-stream"}, f.content
        if parts[:2] == ["fine_tuning", "jobs"]:
            if len(parts) == 2:
                if method == "POST":
                    return self._create_job(body)
                if method == "GET":
                    return self._list_jobs(q, query)
            job = self.jobs.get(parts[2]) if len(parts) > 2 else None
            if job is None:
                return _err(404, f"Could not find fine-tune job: {parts[2] if len(parts) > 2 else ''}",
                            "invalid_request_error", param="fine_tuning_job_id")
            if len(parts) == 3 and method == "GET":
                if not self.tick_seconds:
                    self._tick(job)
                return 200, {}, self.job_obj(job)
            action = parts[3] if len(parts) == 4 else None
            if action == "cancel" and method == "POST":
                if job.phase in ("succeeded", "failed", "cancelled"):
                    return _err(400, f"Job has already completed: {job.id}", "invalid_request_error")
                job.finished_at = int(time.time())
                self._event(job, "Fine-tuning job cancelled")
                self._set_phase(job, "cancelling" if self.azure else "cancelled")
                return 200, {}, self.job_obj(job)
            if action == "pause" and method == "POST":
                if job.phase != "running":
                    return _err(400, f"Job {job.id} is not running and cannot be paused",
                                "invalid_request_error")
                self._set_phase(job, "paused")
                self._event(job, "Fine-tuning job paused")
                return 200, {}, self.job_obj(job)
            if action == "resume" and method == "POST":
                if job.phase != "paused":
                    return _err(400, f"Job {job.id} is not paused", "invalid_request_error")
                self._set_phase(job, "running")
                self._event(job, "Fine-tuning job resumed")
                return 200, {}, self.job_obj(job)
            if action == "events" and method == "GET":
                return 200, {}, _page(list(reversed(job.events)), q, checkpoints=False)
            if action == "checkpoints" and method == "GET":
                return 200, {}, _page(list(reversed(job.checkpoints)), q, checkpoints=True)
        return _err(404, f"Invalid URL ({method} {route})", "invalid_request_error")

    def _upload(self, headers, body):
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return _err(400, "Expected multipart/form-data", "invalid_request_error")
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "file":
                filename = part.get_filename() or filename
                fields["file"] = payload
            elif name:
                fields[name] = payload.decode()
        if "file" not in fields or "purpose" not in fields:
            return _err(400, "Missing required parameter: 'file' and 'purpose'", "invalid_request_error")
        if fields["purpose"] not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return _err(400, f"Invalid purpose {fields['purpose']!r}", "invalid_request_error", param="purpose")
        f = _File(_rid("file-"), filename, fields["purpose"], fields["file"], int(time.time()),
                  processed_after=self.ticks["file"])
        self.files[f.id] = f
        return 200, {}, f.obj(self.azure)

    def _create_job(self, body: bytes):
        self.create_attempts += 1
        try:
            b = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return _err(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        problem = _check_create(b, self)
        if problem:
            return problem
        if self.azure and (b.get("method") or {}).get("type", "supervised") == "supervised" \
                and "trainingType" not in b:
            # Azure's (misleading) answer when trainingType is missing
            return 400, {}, {"error": {"code": "invalidPayload", "message": f"The specified base model "
                                       f"{b['model']} does not support fine-tuning.", "param": None,
                                       "type": "invalid_request_error"}}
        scenario = self._next.pop(0) if self._next else "success"
        method = b.get("method") or {}
        hp = ((method.get(method.get("type", "supervised")) or {}).get("hyperparameters")) or b.get("hyperparameters") or {}
        n_epochs = hp.get("n_epochs") if isinstance(hp.get("n_epochs"), int) else self.n_epochs_auto
        steps = max(self.steps, n_epochs)
        steps -= steps % n_epochs
        job = _Job(id=_rid("ftjob-"), created_at=int(time.time()), body=b, scenario=scenario,
                   total_steps=steps, n_epochs=n_epochs,
                   seed=b["seed"] if isinstance(b.get("seed"), int) else secrets.randbelow(2**31))
        self._event(job, f"Validating training file: {b['training_file']}")
        self.jobs[job.id] = job
        self.log(f"created {job.id} ({scenario})")
        return 200, {}, self.job_obj(job)

    def _list_jobs(self, q, query):
        meta = {k[9:-1]: v for k, v in query if k.startswith("metadata[") and k.endswith("]")}
        items = sorted(self.jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
        if q.get("metadata") == "null":
            items = [j for j in items if not j.body.get("metadata")]
        elif meta:
            items = [j for j in items
                     if all((j.body.get("metadata") or {}).get(k) == v for k, v in meta.items())]
        return 200, {}, _page([self.job_obj(j) for j in items], q, checkpoints=False)

    def _admin(self, method, path, body):
        data = json.loads(body or b"{}") if method == "POST" else {}
        with self._lock:
            if path == "/_fake/state":
                return 200, {}, {"jobs": len(self.jobs), "files": len(self.files),
                                 "create_attempts": self.create_attempts,
                                 "faults_left": sum(f.count for f in self.faults)}
            if path == "/_fake/arrange" and method == "POST":
                self.arrange(data["scenario"])
                return 200, {}, {"ok": True}
            if path == "/_fake/fault" and method == "POST":
                kind = data.pop("kind")
                self.inject(kind, **data)
                return 200, {}, {"ok": True}
            if path == "/_fake/advance" and method == "POST":
                self.advance(data.get("job_id"), int(data.get("ticks", 1)))
                return 200, {}, {"ok": True}
        return 404, {}, {"error": {"message": "unknown admin path"}}

    def _arm(self, method, parts, q, headers, body):
        if "api-version" not in q:
            return 400, {}, {"error": {"code": "MissingApiVersionParameter",
                                       "message": "The api-version query parameter (?api-version=) is required for all requests."}}
        if not headers.get("authorization", "").lower().startswith("bearer "):
            return 401, {}, {"error": {"code": "AuthenticationFailed",
                                       "message": "Authentication failed. The 'Authorization' header is missing."}}
        rid = (f"/subscriptions/{parts['sub']}/resourceGroups/{parts['rg']}/providers/"
               f"Microsoft.CognitiveServices/accounts/{parts['acct']}/deployments/{parts['name']}")
        with self._lock:
            if method == "PUT":
                try:
                    b = json.loads(body or b"{}")
                    model = b["properties"]["model"]["name"]
                    sku = b["sku"]["name"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    return 400, {}, {"error": {"code": "InvalidRequestContent",
                                               "message": "properties.model.name and sku.name are required"}}
                tuned = {j.fine_tuned_model for j in self.jobs.values() if j.fine_tuned_model}
                if model not in tuned:
                    return 400, {}, {"error": {"code": "DeploymentModelNotSupported",
                                               "message": f"The model '{model}' is not a fine-tuned model of this account."}}
                dep = {"id": rid, "name": parts["name"], "type": "Microsoft.CognitiveServices/accounts/deployments",
                       "sku": b["sku"], "properties": {"model": b["properties"]["model"],
                                                        "provisioningState": "Succeeded"}}
                created = rid not in self.deployments
                self.deployments[rid] = dep
                return (201 if created else 200), {}, dep
            if method == "GET":
                if rid in self.deployments:
                    return 200, {}, self.deployments[rid]
                return 404, {}, {"error": {"code": "DeploymentNotFound", "message": f"Deployment {parts['name']} not found"}}
            if method == "DELETE":
                existed = self.deployments.pop(rid, None)
                return (200 if existed else 204), {}, b""
        return 405, {}, {"error": {"code": "MethodNotAllowed", "message": method}}


def _err(status: int, message: str, type_: str, *, param: str | None = None, code: str | None = None):
    return status, {}, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _page(items: list[dict[str, Any]], q: dict[str, str], *, checkpoints: bool) -> dict[str, Any]:
    after = q.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    try:
        limit = max(1, min(100, int(q.get("limit", 20))))
    except ValueError:
        limit = 20
    page = items[:limit]
    out = {"object": "list", "data": page, "has_more": len(items) > limit}
    if checkpoints:
        out["first_id"] = page[0]["id"] if page else None
        out["last_id"] = page[-1]["id"] if page else None
    return out


def _check_create(b: dict[str, Any], srv: FakeOpenAIServer):
    """The parameter checks OpenAI does on create, answered as 400s."""
    def bad(msg, param):
        return _err(400, msg, "invalid_request_error", param=param, code="invalid_value")

    if not isinstance(b.get("model"), str) or not b["model"]:
        return bad("Missing required parameter: 'model'.", "model")
    if srv.models is not None and b["model"] not in srv.models:
        return bad(f"Model {b['model']} is not available for fine-tuning or does not exist.", "model")
    if not isinstance(b.get("training_file"), str):
        return bad("Missing required parameter: 'training_file'.", "training_file")
    for key in ("training_file", "validation_file"):
        fid = b.get(key)
        if fid is not None and fid not in srv.files:
            return bad(f"Invalid file ID: {fid}. File not found.", key)
        if fid is not None and srv.files[fid].purpose != "fine-tune":
            return bad(f"File {fid} has purpose {srv.files[fid].purpose!r}, expected 'fine-tune'.", key)
    suffix = b.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
        return bad("suffix must be 1 to 64 characters", "suffix")
    seed = b.get("seed")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= 2147483647):
        return bad("seed must be an integer in [0, 2147483647]", "seed")
    meta = b.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict) or len(meta) > 16:
            return bad("metadata: at most 16 key-value pairs", "metadata")
        for k, v in meta.items():
            if len(k) > 64 or not isinstance(v, str) or len(v) > 512:
                return bad(f"metadata[{k[:70]}]: keys ≤ 64 and string values ≤ 512 characters", "metadata")
    method = b.get("method")
    if method is not None:
        mtype = method.get("type") if isinstance(method, dict) else None
        if mtype not in ("supervised", "dpo", "reinforcement"):
            return bad("method.type must be supervised, dpo or reinforcement", "method.type")
        hp = ((method.get(mtype) or {}).get("hyperparameters")) or {}
        ranges = {"n_epochs": (1, 50), "batch_size": (1, 256)}
        for key, (lo, hi) in ranges.items():
            v = hp.get(key, "auto")
            if v != "auto" and (not isinstance(v, int) or not lo <= v <= hi):
                return bad(f"{key} must be 'auto' or an integer in [{lo}, {hi}]", f"method.{mtype}.hyperparameters.{key}")
        lrm = hp.get("learning_rate_multiplier", "auto")
        if lrm != "auto" and (not isinstance(lrm, (int, float)) or lrm <= 0):
            return bad("learning_rate_multiplier must be 'auto' or a number > 0",
                       f"method.{mtype}.hyperparameters.learning_rate_multiplier")
        beta = hp.get("beta", "auto")
        if mtype == "dpo" and beta != "auto" and (not isinstance(beta, (int, float)) or not 0 < beta <= 2):
            return bad("beta must be 'auto' or a number in (0, 2]", "method.dpo.hyperparameters.beta")
        if mtype != "dpo" and "beta" in hp:
            return bad("beta is only valid for the dpo method", f"method.{mtype}.hyperparameters.beta")
    return None


class _Handler(FakeHandler):
    fake: FakeOpenAIServer

    def _serve(self) -> None:
        body = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = self.fake
        url = urlsplit(self.path)
        route = url.path
        for prefix in ("/v1", "/openai"):
            if route.startswith(prefix + "/"):
                route = route[len(prefix):]
        fault = None if route.startswith("/_fake/") else fake._take_fault(self.command, route.rstrip("/"))
        if fault and fault.kind in ("429", "500"):
            status = int(fault.kind)
            if status == 429:
                payload = {"error": {"message": "Rate limit reached for requests. Please try again later.",
                                     "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
            else:
                payload = {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                                     "type": "server_error", "param": None, "code": None}}
            extra = {"Retry-After": f"{fault.retry_after}"} if fault.retry_after is not None else {}
            if route.rstrip("/") == "/fine_tuning/jobs" and self.command == "POST":
                with fake._lock:
                    fake.create_attempts += 1
            self._record(route, body, status, payload)
            self._send(status, extra, payload)
            return
        try:
            status, extra, payload = fake.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug in the fake must still answer, as a 500
            status, extra, payload = 500, {}, {"error": {"message": f"fake server bug: {exc!r}",
                                                         "type": "server_error", "param": None, "code": None}}
        self._record(route, body, status, payload)
        if fault and fault.kind == "drop":
            # processed (the job exists now) but the client never hears back
            self.drop()
            return
        if fault and fault.kind == "timeout":
            time.sleep(fault.hang_s)
        try:
            self._send(status, extra, payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _record(self, route: str, body: bytes, status: int, payload: Any) -> None:
        try:
            req_json = json.loads(body) if body and self.headers.get("Content-Type", "").startswith("application/json") else None
        except json.JSONDecodeError:
            req_json = None
        url = urlsplit(self.path)
        with self.fake._lock:
            self.fake.requests.append({"method": self.command, "route": route.rstrip("/"),
                                       "query": url.query, "body": req_json, "status": status,
                                       "response": payload if isinstance(payload, dict) else None})
            del self.fake.requests[:-2000]

    def _send(self, status: int, extra: dict[str, str], payload: Any) -> None:
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
            ctype = extra.pop("Content-Type", "application/octet-stream")
        else:
            data = json.dumps(payload).encode()
            ctype = "application/json"
        self.answer(status, data, ctype, [("x-request-id", _rid("req_")), *extra.items()])

    do_GET = do_POST = do_PUT = do_DELETE = _serve


def _parse_fault(text: str, retry_after: float, hang_s: float) -> Fault:
    kind, _, count = text.partition(":")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"fault must be one of {FAULT_KINDS} (optionally :COUNT)")
    return Fault(kind=kind, count=int(count or 1), retry_after=retry_after, hang_s=hang_s)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m unitune.testing.openai_server",
                                description="Fake OpenAI / Azure OpenAI fine-tuning server (loopback only).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    p.add_argument("--azure", action="store_true", help="Azure OpenAI mode (/openai, api-version, Azure statuses)")
    p.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    p.add_argument("--tick-seconds", type=float, default=None,
                   help="advance jobs on a timer (default: one tick per retrieve of the job)")
    p.add_argument("--ticks", default="", help="ticks per phase, e.g. validating_files=1,queued=1,running=3")
    p.add_argument("--steps", type=int, default=12, help="training steps per job")
    p.add_argument("--csv-variant", choices=sorted(CSV_VARIANTS), default=None)
    p.add_argument("--base64-results", action="store_true", help="serve the result CSV base64-encoded")
    p.add_argument("--min-examples", type=int, default=10)
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:COUNT]",
                   help="inject on job creation: 429, 500, timeout, drop (repeatable)")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429")
    p.add_argument("--hang", type=float, default=30.0, help="seconds a `timeout` fault holds the response")
    p.add_argument("--fail-next", type=int, default=0, help="the next N jobs fail with a message")
    args = p.parse_args(argv)
    ticks = {}
    for item in filter(None, args.ticks.split(",")):
        k, _, v = item.partition("=")
        ticks[k.strip()] = int(v)
    faults = [_parse_fault(f, args.retry_after, args.hang) for f in args.fault]
    srv = FakeOpenAIServer(azure=args.azure, host=args.host, port=args.port, api_key=args.api_key,
                           ticks=ticks, tick_seconds=args.tick_seconds, steps=args.steps,
                           csv_variant=args.csv_variant, result_base64=args.base64_results,
                           min_examples=args.min_examples, faults=faults,
                           log=lambda m: print(m, flush=True))
    for _ in range(args.fail_next):
        srv.arrange("failure")
    srv.start()
    where = f"{srv.endpoint} (Azure endpoint)" if args.azure else srv.base_url
    print(f"fake {'Azure ' if args.azure else ''}OpenAI server listening on {where}", flush=True)
    srv.serve_until_interrupted()


if "pytest" in sys.modules:  # fixtures users can import into their conftest.py (no pytest
    import pytest as _pytest  # import when the server runs on its own)

    @_pytest.fixture
    def fake_openai_server():
        """A running FakeOpenAIServer (OpenAI mode) for one test."""
        with FakeOpenAIServer() as srv:
            yield srv

    @_pytest.fixture
    def fake_azure_openai_server():
        """A running FakeOpenAIServer in Azure mode for one test."""
        with FakeOpenAIServer(azure=True) as srv:
            yield srv


if __name__ == "__main__":
    main()
