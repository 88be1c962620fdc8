"""FakeProvider: an in-memory vendor with scripted scenarios, for unitune's tests and yours.

It implements the whole Provider protocol (capabilities, locate, translate, upload, create with
an idempotency key, lookup, read, cancel, metrics, events) plus the optional Pausable,
Restartable and Deployable protocols, so code written against unitune can be tested without a
vendor account:

    from unitune.testing.fake import FakeProvider
    fake = FakeProvider(scenario="failure", failure_message="bad row 3")
    client = unitune.Client(backends={"fake": fake})

Scenarios (per job; chosen by `arrange()` for the next job, else `backend_options.fake.scenario`
in the spec or `UNITUNE_FAKE_SCENARIO`, else the constructor's `scenario`):

    success         queued → validating → running (a decreasing loss curve) → succeeded + model
    failure         runs until `fail_at_step`, then fails with `failure_message`
    slow            stays queued until cancelled (a slow vendor queue)
    cancelled       runs half-way, then is cancelled at the vendor (e.g. from its console)
    unknown_status  reports `unknown_raw`, a status string nobody documented (→ `unknown`)

Advancing: `advance="get"` (default: every `get` moves the job one tick), `"time"` (one tick per
`tick_seconds` of wall-clock time, so several processes agree) or `"manual"` (only `tick(ref)`).
Transient errors: `transient_errors=N` makes the first N calls (of `transient_methods`) raise
RateLimited (`transient_kind="429"`, with `retry_after`) or BackendUnavailable ("503"), or a
refusal: QuotaExceeded ("quota") or InvalidRequest ("400"); the
per-job option `transient_get: N` does the same for that job's first N `read` calls.

State is class-level (shared by every instance in the process). With `UNITUNE_FAKE_STATE=path`
it lives in that JSON file instead (locked, written atomically), so subprocess tests can count
remote jobs across processes. `UNITUNE_FAKE_SLEEP_BEFORE_SUBMIT` / `UNITUNE_FAKE_SLEEP_IN_SUBMIT`
(seconds) make `create` pause before creating the remote job / after creating it but before
returning: the windows the crash tests kill a process in.
"""
from __future__ import annotations

import copy
import json
import math
import os
import secrets
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from typing import ClassVar, Literal, Optional

from pydantic import Field, SecretStr

from ..backends import YES, Capabilities, PlanRow, no
from ..data.report import Problem
from ..errors import BackendUnavailable, InvalidRequest, NotFound, QuotaExceeded, RateLimited
from ..job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                   Snapshot, map_status)
from ..provider import (DataTarget, Ids, Location, Options, Prepared, PreparedFile,
                        Translation)

STATE_ENV = "UNITUNE_FAKE_STATE"
SCENARIOS = ("success", "failure", "slow", "cancelled", "unknown_status")
ADVANCE_MODES = ("get", "time", "manual")

# The fake vendor's raw statuses, deliberately unlike unitune's names (as real vendors' are).
FAKE_STATE_MAP: dict[str, JobStatus] = {
    "PENDING": JobStatus.QUEUED,
    "VALIDATING": JobStatus.VALIDATING,
    "TRAINING": JobStatus.RUNNING,
    "PAUSED": JobStatus.PAUSED,
    "STOPPING": JobStatus.CANCELLING,
    "COMPLETED": JobStatus.SUCCEEDED,
    "ERRORED": JobStatus.FAILED,
    "STOPPED": JobStatus.CANCELLED,
}
_TERMINAL_RAW = ("COMPLETED", "ERRORED", "STOPPED")
_ADAPTERS_OK = ("lora", "qlora", "dora", "rslora", "full")
DEFAULT_FAILURE = "training file has 3 malformed examples (line 7: missing 'messages')"
DEFAULT_UNKNOWN = "MIGRATING_SHARDS"

_LOCK = threading.RLock()
_MEMORY: dict[str, Any] = {"jobs": {}, "keys": {}, "files": {}, "endpoints": {}}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@contextmanager
def _state() -> Iterator[dict[str, Any]]:
    """The shared fake-vendor state, locked for the duration of one API call."""
    path = os.environ.get(STATE_ENV)
    with _LOCK:
        if not path:
            yield _MEMORY
            return
        import fcntl

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(str(p) + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(p.read_text()) if p.exists() and p.stat().st_size else {}
                for key in ("jobs", "keys", "files", "endpoints"):
                    state.setdefault(key, {})
                yield state
                tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state))
                os.replace(tmp, p)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _loss(step: int, total: int) -> float:
    """A strictly decreasing, plausible training loss curve."""
    return round(0.35 + 2.1 * math.exp(-3.0 * step / max(total, 1)), 6)


class FakeOptions(Options):
    """`backend_options.fake` (or `UNITUNE_FAKE_<OPTION>`): the script of the fake vendor's next
    job. Unset fields take the provider's constructor defaults."""

    scenario: Optional[Literal["success", "failure", "slow", "cancelled", "unknown_status"]] = None
    steps: Optional[int] = Field(default=None, ge=1, description="Training steps of the job.")
    steps_per_tick: Optional[int] = Field(default=None, ge=1)
    queue_ticks: Optional[int] = Field(default=None, ge=0)
    advance: Optional[Literal["get", "time", "manual"]] = None
    tick_seconds: Optional[float] = Field(default=None, gt=0)
    failure_message: Optional[str] = None
    fail_at_step: Optional[int] = None
    unknown_raw: Optional[str] = None
    transient_get: Optional[int] = Field(default=None, ge=0, description="The job's first N reads "
                                         "fail with a transient error.")
    transient_kind: Optional[str] = None
    min_examples: Optional[int] = Field(default=None, ge=0)
    region: str = Field(default="fake-region-1", description="Where the fake vendor keeps jobs.")
    api_key: Optional[SecretStr] = Field(default=None, description="Accepted and ignored, as a "
                                         "real vendor's key would be checked: never stored.")
    credentials: Optional[dict[str, SecretStr]] = Field(default=None, description="A service-"
                                                        "account-like mapping; never stored.")

    reserved_env: ClassVar[frozenset[str]] = frozenset({"state", "sleep_before_submit",
                                                        "sleep_in_submit"})


class FakeProvider:
    """In-memory provider with scripted scenarios (see the module docstring)."""

    name = "fake"
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    options_model: ClassVar[type[Options]] = FakeOptions

    def __init__(self, *, scenario: str = "success", steps: int | None = None,
                 steps_per_tick: int = 1, queue_ticks: int = 1, advance: str = "get",
                 tick_seconds: float = 0.5, failure_message: str = DEFAULT_FAILURE,
                 fail_at_step: int | None = None, unknown_raw: str = DEFAULT_UNKNOWN,
                 transient_errors: int = 0, transient_kind: str = "429",
                 transient_methods: tuple[str, ...] | None = None,
                 retry_after: float | None = 0.01, min_examples: int = 1) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown fake scenario {scenario!r}; choose one of {SCENARIOS}")
        if advance not in ADVANCE_MODES:
            raise ValueError(f"unknown advance mode {advance!r}; choose one of {ADVANCE_MODES}")
        self.defaults: dict[str, Any] = {
            "scenario": scenario, "steps": steps, "steps_per_tick": steps_per_tick,
            "queue_ticks": queue_ticks, "advance": advance, "tick_seconds": tick_seconds,
            "failure_message": failure_message, "fail_at_step": fail_at_step,
            "unknown_raw": unknown_raw, "transient_get": 0, "transient_kind": transient_kind,
            "min_examples": min_examples,
        }
        self.transient_errors = transient_errors
        self.transient_kind = transient_kind
        self.transient_methods = tuple(transient_methods) if transient_methods else None
        self.retry_after = retry_after
        self.calls: list[str] = []  # method names, in order (this instance only)
        self._arranged: list[dict[str, Any]] = []

    # -- test helpers --------------------------------------------------------------------------
    def arrange(self, scenario: str, **params: Any) -> None:
        """Script the NEXT job this instance submits (`params` override the defaults)."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown fake scenario {scenario!r}; choose one of {SCENARIOS}")
        self._arranged.append({"scenario": scenario, **params})

    def fail_next(self, n: int, kind: str = "429", methods: tuple[str, ...] | None = None,
                  retry_after: float | None = None) -> None:
        """Make the next `n` calls (of `methods`, default all) raise a transient error."""
        self.transient_errors = n
        self.transient_kind = kind
        self.transient_methods = tuple(methods) if methods else None
        if retry_after is not None:
            self.retry_after = retry_after

    def tick(self, ref: RemoteRef, n: int = 1) -> None:
        """Move a job forward `n` ticks regardless of its advance mode."""
        with _state() as st:
            job = self._job(st, ref)
            self._step(job, n)

    advance = tick  # the conformance harness's name

    @classmethod
    def reset(cls) -> None:
        """Forget every fake job (in memory, and in the UNITUNE_FAKE_STATE file when set)."""
        with _state() as st:
            for key in ("jobs", "keys", "files", "endpoints"):
                st[key] = {}
            st["submit_calls"] = 0

    @classmethod
    def remote_jobs(cls) -> list[dict[str, Any]]:
        """Every job the fake vendor holds (copies), oldest first."""
        with _state() as st:
            jobs = [copy.deepcopy(j) for j in st["jobs"].values()]
        return sorted(jobs, key=lambda j: j["seq"])

    @classmethod
    def submit_calls(cls) -> int:
        """How many times `submit` reached the fake vendor (including idempotent repeats)."""
        with _state() as st:
            return int(st.get("submit_calls", 0))

    @classmethod
    def files(cls) -> dict[str, Any]:
        with _state() as st:
            return copy.deepcopy(st["files"])

    # -- transient failures --------------------------------------------------------------------
    def _call(self, method: str) -> None:
        self.calls.append(method)
        if self.transient_errors > 0 and (self.transient_methods is None
                                          or method in self.transient_methods):
            self.transient_errors -= 1
            self._raise_transient(self.transient_kind, method)

    def _raise_transient(self, kind: str, method: str) -> None:
        if str(kind) == "quota":  # a hard quota: not transient, waiting will not help
            raise QuotaExceeded(f"fake: quota exceeded on {method} (concurrent jobs)",
                                backend=self.name, status_code=429)
        if str(kind) == "400":
            raise InvalidRequest(f"fake: the vendor refused {method}", backend=self.name,
                                 status_code=400)
        if str(kind) == "429":
            raise RateLimited(f"fake: rate limited on {method} (429)", backend=self.name,
                              status_code=429, retry_after=self.retry_after,
                              hint="unitune retries this automatically")
        raise BackendUnavailable(f"fake: service unavailable on {method} ({kind})",
                                 backend=self.name, status_code=int(kind) if str(kind).isdigit()
                                 else 503, hint="unitune retries this automatically")

    # -- protocol: what the fake vendor can do and how a spec maps onto it --------------------
    def capabilities(self) -> Capabilities:
        caps = {f"adapter:{a}": YES for a in _ADAPTERS_OK}
        for a in ("prefix", "p_tuning", "prompt_tuning", "ia3"):
            caps[f"adapter:{a}"] = no(f"the fake backend mirrors cloud vendors: adapter {a} is "
                                      "not offered (use lora, qlora, dora or full)")
        caps.update({
            "method:sft": YES, "method:dpo": YES, "validation_file": YES, "pause": YES,
            "resume": YES, "restart": YES, "checkpoints": no("the fake keeps no intermediate checkpoints"),
            "learning_rate": no("the fake takes a learning_rate_multiplier, like OpenAI"),
            "learning_rate_multiplier": YES, "batch_size": YES, "seed": YES,
            "warmup_ratio": no("the fake has no warmup setting"),
            "weight_decay": no("the fake has no weight decay setting"),
            "max_seq_length": no("the fake truncates nothing"), "tools": YES,
            "images": no("the fake trains on text only"),
            "weights": no("the fake vendor never hands out weights"), "deploy": YES,
        })
        return Capabilities(backend=self.name, features=caps)

    def _script(self, options: FakeOptions | None) -> dict[str, Any]:
        script = dict(self.defaults)
        if options is not None:
            script.update({k: v for k, v in options.model_dump().items()
                           if k in script and v is not None})
        return script

    def locate(self, spec: Any, options: FakeOptions) -> Location:
        return Location(backend=self.name, region=options.region)

    def data_target(self, spec: Any, options: FakeOptions) -> DataTarget:
        return DataTarget(format=None, validate=None)

    def translate(self, spec: Any, prepared: Prepared, location: Location, options: FakeOptions,
                  ids: Ids) -> Translation:
        out = Translation()
        caps = self.capabilities()
        model = spec.model_for(self.name)
        for feature in (f"method:{spec.method}", f"adapter:{spec.adapter.type}"):
            support = caps.get(feature)
            if not support:
                out.problems.append(Problem(code="unsupported", message=support.reason or feature,
                                            path=feature.replace(":", "."), target=self.name,
                                            hint="run `unitune compare` to see which backends can"))
        hp = spec.hyperparameters
        for fieldname in ("learning_rate", "warmup_ratio", "weight_decay", "max_seq_length"):
            value = getattr(hp, fieldname)
            if value is not None:
                why = caps.get(fieldname).reason or "unsupported"
                out.rows.append(PlanRow(f"hyperparameters.{fieldname}", value, applied=False,
                                        note="not applied: " + why))
                out.problems.append(Problem(code="not_applied", severity="warning",
                                            message=f"hyperparameters.{fieldname} is not "
                                                    f"applied: {why}",
                                            path=f"hyperparameters.{fieldname}"))
        script = self._script(options)
        train = prepared.train
        if train is not None and train.examples < script["min_examples"]:
            out.problems.append(Problem(code="too_few_examples", message=f"{train.examples} "
                                        "training examples; the fake backend needs at least "
                                        f"{script['min_examples']}", file=train.source,
                                        hint="add examples"))
        out.request = {
            "model": model, "method": spec.method, "adapter": spec.adapter.type,
            "n_epochs": hp.epochs, "batch_size": hp.batch_size,
            "lr_mult": hp.learning_rate_multiplier, "seed": hp.seed, "name": spec.name,
            "training_file": prepared.uri("train"), "validation_file": prepared.uri("validation"),
            "metadata": {"unitune_job_id": ids.job_id, "unitune_key": ids.key},
            "script": {k: script[k] for k in sorted(script) if k != "min_examples"},
        }
        out.rows[:0] = [
            PlanRow("base_model", model, "model", model),
            PlanRow("method", spec.method, "method", spec.method),
            PlanRow("adapter.type", spec.adapter.type, "adapter", spec.adapter.type),
            PlanRow("hyperparameters.epochs", hp.epochs, "n_epochs", hp.epochs),
            PlanRow("hyperparameters.batch_size", hp.batch_size, "batch_size", hp.batch_size),
            PlanRow("hyperparameters.learning_rate_multiplier", hp.learning_rate_multiplier,
                    "lr_mult", hp.learning_rate_multiplier),
            PlanRow("hyperparameters.seed", hp.seed, "seed", hp.seed),
            PlanRow("data.train", spec.data.train, "training_file", prepared.uri("train")),
        ]
        return out

    # -- protocol: the fake vendor's API ----------------------------------------------------------
    def destination(self, file: PreparedFile, location: Location, options: FakeOptions) -> str:
        return f"<upload:{file.which}>"

    def upload(self, file: PreparedFile, location: Location, options: FakeOptions) -> str:
        self._call("upload")
        file_id = f"file-{secrets.token_hex(6)}"
        with _state() as st:
            st["files"][file_id] = {"name": file.path.name, "bytes": file.bytes,
                                    "sha256": file.sha256, "examples": file.examples}
        return file_id

    def still_there(self, uri: str, location: Location, options: FakeOptions) -> bool:
        with _state() as st:
            return uri in st["files"]

    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: FakeOptions) -> RemoteRef:
        self._call("create")
        pause = float(os.environ.get("UNITUNE_FAKE_SLEEP_BEFORE_SUBMIT") or 0)
        if pause:
            time.sleep(pause)
        with _state() as st:
            st["submit_calls"] = st.get("submit_calls", 0) + 1
            st["last_request"] = copy.deepcopy(request)
            existing = st["keys"].get(ids.key)
            if existing is not None:
                return RemoteRef(backend=self.name, remote_id=existing)
            opts = dict(request["script"])
            if self._arranged:
                opts.update(self._arranged.pop(0))
            train_id = request["training_file"]
            if train_id not in st["files"]:
                raise InvalidRequest(f"fake: no such file {train_id!r}", backend=self.name,
                                     status_code=400)
            n_examples = st["files"][train_id]["examples"]
            epochs = request["n_epochs"] if isinstance(request["n_epochs"], int) else 3
            batch = request["batch_size"] if isinstance(request["batch_size"], int) else 8
            steps = opts["steps"] or max(1, min(200, epochs * math.ceil(n_examples / batch)))
            fail_at = opts["fail_at_step"] if opts["fail_at_step"] is not None else steps // 2
            remote_id = f"fakejob-{secrets.token_hex(5)}"
            queue = opts["queue_ticks"] if opts["scenario"] != "slow" else 10 ** 9
            st["jobs"][remote_id] = {
                "id": remote_id, "seq": len(st["jobs"]) + 1, "key": ids.key,
                "unitune_job_id": ids.job_id, "name": request["name"], "model": request["model"],
                "method": request["method"], "region": location.region,
                "training_file": train_id, "validation_file": request["validation_file"],
                "scenario": opts["scenario"], "raw": "PENDING", "step": 0, "total_steps": steps,
                "steps_per_tick": max(1, int(opts["steps_per_tick"])), "queue_left": int(queue),
                "fail_at_step": fail_at, "failure_message": opts["failure_message"],
                "unknown_raw": opts["unknown_raw"], "advance": opts["advance"],
                "tick_seconds": float(opts["tick_seconds"]), "anchor": time.time(),
                "transient_get": int(opts["transient_get"] or 0),
                "transient_kind": str(opts["transient_kind"]),
                "epochs": epochs, "tokens_per_step": batch * 128,
                "created_at": _now_iso(), "started_at": None, "finished_at": None,
                "error": None, "fine_tuned_model": None, "endpoint": None, "paused_from": None,
                "events": [{"time": _now_iso(), "level": "info",
                            "message": f"job created ({n_examples} examples, {steps} steps)"}],
            }
            st["keys"][ids.key] = remote_id
        pause = float(os.environ.get("UNITUNE_FAKE_SLEEP_IN_SUBMIT") or 0)
        if pause:
            time.sleep(pause)
        return RemoteRef(backend=self.name, remote_id=remote_id, extra={"region": location.region})

    def lookup(self, key: str, location: Location, options: FakeOptions) -> RemoteRef | None:
        self._call("lookup")
        with _state() as st:
            remote_id = st["keys"].get(key)
        return RemoteRef(backend=self.name, remote_id=remote_id,
                         extra={"region": location.region}) if remote_id else None

    @classmethod
    def last_request(cls) -> dict[str, Any] | None:
        with _state() as st:
            return copy.deepcopy(st.get("last_request"))

    def _job(self, st: dict[str, Any], ref: RemoteRef) -> dict[str, Any]:
        job = st["jobs"].get(ref.remote_id)
        if job is None:
            raise NotFound(f"fake: no job {ref.remote_id!r}", backend=self.name, status_code=404)
        return job

    def _event(self, job: dict[str, Any], message: str, level: str = "info",
               data: dict[str, Any] | None = None) -> None:
        job["events"].append({"time": _now_iso(), "level": level, "message": message,
                              "data": data})

    def _step(self, job: dict[str, Any], n: int) -> None:
        """Apply `n` ticks of the job's script."""
        for _ in range(max(0, n)):
            raw = job["raw"]
            if raw in _TERMINAL_RAW or raw == "PAUSED":
                return
            if raw == "STOPPING":
                self._finish(job, "STOPPED", "job cancelled")
            elif raw == "PENDING":
                if job["queue_left"] > 0:
                    job["queue_left"] -= 1
                elif job["scenario"] == "unknown_status":
                    job["raw"] = job["unknown_raw"]
                    self._event(job, f"status {job['unknown_raw']}")
                else:
                    job["raw"] = "VALIDATING"
                    self._event(job, "validating training file")
            elif raw == "VALIDATING":
                job["raw"] = "TRAINING"
                job["started_at"] = _now_iso()
                self._event(job, "training started")
            elif raw == "TRAINING":
                job["step"] = min(job["total_steps"], job["step"] + job["steps_per_tick"])
                step, total = job["step"], job["total_steps"]
                self._event(job, f"step {step}/{total}: training loss={_loss(step, total):.4f}",
                            data={"step": step, "train_loss": _loss(step, total)})
                if job["scenario"] == "failure" and step >= job["fail_at_step"]:
                    job["error"] = {"message": job["failure_message"], "code": "training_failed"}
                    self._finish(job, "ERRORED", "job failed: " + job["failure_message"], "error")
                elif job["scenario"] == "cancelled" and step >= max(1, total // 2):
                    self._finish(job, "STOPPED", "job cancelled at the vendor")
                elif step >= total:
                    job["fine_tuned_model"] = f"{self.name}:{job['model']}:{job['name']}:{job['id']}"
                    self._finish(job, "COMPLETED", "job succeeded; model "
                                 + job["fine_tuned_model"])
            # an unknown raw status stays until cancelled

    def _finish(self, job: dict[str, Any], raw: str, message: str, level: str = "info") -> None:
        job["raw"] = raw
        job["finished_at"] = _now_iso()
        self._event(job, message, level)

    def _materialize(self, job: dict[str, Any], on_get: bool) -> None:
        """Advance a job according to its mode: per get, or per elapsed tick_seconds."""
        if job["advance"] == "get" and on_get:
            self._step(job, 1)
        elif job["advance"] == "time":
            now = time.time()
            ticks = int((now - job["anchor"]) / max(job["tick_seconds"], 1e-6))
            if job["raw"] == "PAUSED":
                job["anchor"] = now
            elif ticks > 0:
                job["anchor"] += ticks * job["tick_seconds"]
                self._step(job, ticks)

    def _snapshot(self, job: dict[str, Any]) -> Snapshot:
        raw = job["raw"]
        status = map_status(raw, FAKE_STATE_MAP)
        total, step = job["total_steps"], job["step"]
        eta = None
        if job["advance"] == "time" and status is JobStatus.RUNNING:
            eta = (total - step) / job["steps_per_tick"] * job["tick_seconds"]
        model = None
        if job["fine_tuned_model"]:
            model = ModelHandle(backend=self.name, model_id=job["fine_tuned_model"],
                                base_model=job["model"], name=job["name"],
                                endpoint=job.get("endpoint"),
                                invoke=f"fake chat --model {job['fine_tuned_model']}")
        return Snapshot(
            ref=RemoteRef(backend=self.name, remote_id=job["id"], extra={"region": job.get("region")}),
            status=status, raw_status=raw,
            created_at=job["created_at"], started_at=job["started_at"],
            finished_at=job["finished_at"],
            trained_tokens=step * job["tokens_per_step"] if status is JobStatus.SUCCEEDED else None,
            billed_tokens=step * job["tokens_per_step"] if status is JobStatus.SUCCEEDED else None,
            error=JobError(**job["error"]) if job["error"] else None, model=model,
            progress=Progress(step=step, total_steps=total,
                              epoch=round(step / total * job["epochs"], 4) if total else None,
                              latest_loss=_loss(step, total) if step else None, eta_seconds=eta),
            raw={k: job[k] for k in ("id", "raw", "step", "total_steps", "model", "scenario")},
        )

    def read(self, ref: RemoteRef) -> Snapshot:
        self._call("read")
        with _state() as st:
            job = self._job(st, ref)
            if job["transient_get"] > 0:
                job["transient_get"] -= 1
                kind = job["transient_kind"]
            else:
                kind = None
                self._materialize(job, on_get=True)
                snap = self._snapshot(job)
        if kind is not None:  # raised outside the state block so the decrement is saved
            self._raise_transient(kind, "read")
        return snap

    def cancel(self, ref: RemoteRef) -> Snapshot:
        self._call("cancel")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            if job["raw"] not in _TERMINAL_RAW and job["raw"] != "STOPPING":
                job["raw"] = "STOPPING"
                self._event(job, "cancellation requested")
            return self._snapshot(job)

    def pause(self, ref: RemoteRef) -> Snapshot:
        self._call("pause")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            if job["raw"] != "TRAINING":
                raise InvalidRequest(f"fake: only a training job can be paused (it is "
                                     f"{job['raw']})", backend=self.name, status_code=400)
            job["raw"] = "PAUSED"
            self._event(job, "job paused")
            return self._snapshot(job)

    def resume(self, ref: RemoteRef) -> Snapshot:
        """A paused job continues."""
        self._call("resume")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            if job["raw"] != "PAUSED":
                raise InvalidRequest(f"fake: job {job['id']} is {job['raw']}; only a paused job "
                                     "can be resumed", backend=self.name, status_code=400)
            self._event(job, "job resumed")
            job["raw"] = "TRAINING"
            job["anchor"] = time.time()
            return self._snapshot(job)

    def restart(self, ref: RemoteRef) -> Snapshot:
        """A failed or cancelled job restarts from its last step (as from a checkpoint, with the
        scripted failure gone)."""
        self._call("restart")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            if job["raw"] not in ("ERRORED", "STOPPED", "STOPPING"):
                raise InvalidRequest(f"fake: job {job['id']} is {job['raw']}; nothing to restart",
                                     backend=self.name, status_code=400)
            job.update(scenario="success", error=None, finished_at=None)
            self._event(job, f"job restarted from step {job['step']}")
            job["raw"] = "TRAINING"
            job["anchor"] = time.time()
            return self._snapshot(job)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        self._call("metrics")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            total, upto, epochs = job["total_steps"], job["step"], job["epochs"]
            tps = job["tokens_per_step"]
        rows = []
        for s in range(1, upto + 1):
            loss = _loss(s, total)
            every = max(1, total // 4)
            rows.append(Metrics(
                step=s, epoch=round(s / total * epochs, 4), train_loss=loss,
                valid_loss=round(loss + 0.08, 6) if s % every == 0 or s == total else None,
                train_token_accuracy=round(1 - loss / 3, 6),
                learning_rate=round(1e-4 * (1 - (s - 1) / total), 10), tokens_seen=s * tps))
        return rows

    def events(self, ref: RemoteRef) -> list[Event]:
        self._call("events")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            return [Event(**e) for e in job["events"]]

    # -- deployment ----------------------------------------------------------------------------
    def deploy(self, ref: RemoteRef, options: dict[str, Any], dry_run: bool) -> ModelHandle | str:
        """dry_run → what would be created (a string); else the handle with its endpoint."""
        self._call("deploy")
        options = options or {}
        with _state() as st:
            job = self._job(st, ref)
            if not job["fine_tuned_model"]:
                raise InvalidRequest(f"fake: job {ref.remote_id} has no model to deploy (it is "
                                     f"{job['raw']})", backend=self.name, status_code=400)
            units = int(options.get("units", 1))
            if dry_run:
                return (f"would create endpoint for {job['fine_tuned_model']} with {units} "
                        f"unit(s) at $1.00/unit-hour (fake prices)")
            endpoint = f"fake-endpoint-{job['id']}"
            job["endpoint"] = endpoint
            st["endpoints"][endpoint] = {"model": job["fine_tuned_model"], "units": units}
            self._event(job, f"deployed to {endpoint}")
            return self._snapshot(job).model  # type: ignore[return-value]

    def undeploy(self, ref: RemoteRef, options: dict[str, Any]) -> ModelHandle | None:
        self._call("undeploy")
        with _state() as st:
            job = self._job(st, ref)
            endpoint = job.get("endpoint")
            if endpoint:
                st["endpoints"].pop(endpoint, None)
                job["endpoint"] = None
                self._event(job, f"endpoint {endpoint} deleted")
            return self._snapshot(job).model
