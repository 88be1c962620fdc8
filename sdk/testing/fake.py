"""FakeBackend: an in-memory backend with scripted scenarios, for unitune's tests and yours.

It implements the whole Backend protocol (capabilities, check, plan, submit with an idempotency
key, find, get, cancel, metrics, events) plus the optional pause / resume / deploy / undeploy, so
code written against unitune can be tested without a vendor account:

    from unitune.testing.fake import FakeBackend
    backend = FakeBackend(scenario="failure", failure_message="bad row 3")
    client = unitune.Client(backends={"fake": backend})

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
RateLimited (`transient_kind="429"`, with `retry_after`) or BackendUnavailable ("503"); the
per-job option `transient_get: N` does the same for that job's first N `get` calls.

State is class-level (shared by every instance in the process). With `UNITUNE_FAKE_STATE=path`
it lives in that JSON file instead (locked, written atomically), so subprocess tests can count
remote jobs across processes. `UNITUNE_FAKE_SLEEP_BEFORE_SUBMIT` / `UNITUNE_FAKE_SLEEP_IN_SUBMIT`
(seconds) make `submit` pause before creating the remote job / after creating it but before
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

from ..backends import YES, Capabilities, Plan, PlanRow, SubmitContext, Upload, no
from ..data.report import Problem
from ..errors import BackendUnavailable, InvalidRequest, NotFound, RateLimited
from ..job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                   Snapshot, map_status)

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


class FakeBackend:
    """In-memory backend with scripted scenarios (see the module docstring)."""

    name = "fake"

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
        }
        self.transient_errors = transient_errors
        self.transient_kind = transient_kind
        self.transient_methods = tuple(transient_methods) if transient_methods else None
        self.retry_after = retry_after
        self.min_examples = min_examples
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
        if str(kind) == "429":
            raise RateLimited(f"fake: rate limited on {method} (429)", backend=self.name,
                              status_code=429, retry_after=self.retry_after,
                              hint="unitune retries this automatically")
        raise BackendUnavailable(f"fake: service unavailable on {method} ({kind})",
                                 backend=self.name, status_code=int(kind) if str(kind).isdigit()
                                 else 503, hint="unitune retries this automatically")

    # -- protocol: static ----------------------------------------------------------------------
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

    def _options(self, spec) -> dict[str, Any]:
        opts = dict(self.defaults)
        user = {k: v for k, v in spec.options(self.name).items()
                if k in self.defaults or k in ("min_examples",)}
        for key, value in user.items():
            default = self.defaults.get(key)
            if isinstance(default, bool):
                value = str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, int) or key in ("steps", "fail_at_step", "min_examples"):
                value = int(value) if value not in (None, "") else None
            elif isinstance(default, float):
                value = float(value)
            opts[key] = value
        return opts

    def _read_data(self, path: Path | None, which: str, problems: list[Problem]) -> int:
        if path is None:
            return 0
        if not path.exists():
            problems.append(Problem(code="data_missing", message=f"{which} file not found: {path}",
                                    file=str(path), hint="check data.%s in the spec" % which))
            return 0
        n = 0
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    problems.append(Problem(code="invalid_json", message="line is not valid JSON",
                                            line=lineno, file=str(path),
                                            hint="each line must be one JSON object"))
                    continue
                if not isinstance(obj, dict):
                    problems.append(Problem(code="not_an_object", message="line is not a JSON "
                                            "object", line=lineno, file=str(path),
                                            hint="each line must be one JSON object"))
                    continue
                n += 1
        return n

    def check(self, spec) -> list[Problem]:
        problems: list[Problem] = []
        caps = self.capabilities()
        for feature in (f"method:{spec.method}", f"adapter:{spec.adapter.type}"):
            support = caps.get(feature)
            if not support:
                problems.append(Problem(code="unsupported", message=support.reason or feature,
                                        path=feature.replace(":", "."), target=self.name,
                                        hint="run `unitune compare` to see which backends can"))
        if spec.hyperparameters.learning_rate is not None:
            problems.append(Problem(code="not_applied", severity="warning",
                                    message="learning_rate is not applied by the fake backend",
                                    path="hyperparameters.learning_rate",
                                    hint="use learning_rate_multiplier"))
        opts = self._options(spec)
        if opts["scenario"] not in SCENARIOS:
            problems.append(Problem(code="bad_option", message=f"unknown fake scenario "
                                    f"{opts['scenario']!r}", path="backend_options.fake.scenario",
                                    hint="one of " + ", ".join(SCENARIOS)))
        if opts["advance"] not in ADVANCE_MODES:
            problems.append(Problem(code="bad_option", message=f"unknown advance mode "
                                    f"{opts['advance']!r}", path="backend_options.fake.advance",
                                    hint="one of " + ", ".join(ADVANCE_MODES)))
        n = self._read_data(spec.data_path("train"), "train", problems)
        self._read_data(spec.data_path("validation"), "validation", problems)
        minimum = opts.get("min_examples") or self.min_examples
        if not any(p.code == "data_missing" for p in problems) and n < minimum:
            problems.append(Problem(code="too_few_examples", message=f"{n} training examples; "
                                    f"the fake backend needs at least {minimum}",
                                    file=str(spec.data_path("train")), hint="add examples"))
        return problems

    def plan(self, spec) -> Plan:
        problems = self.check(spec)
        hp = spec.hyperparameters
        rows = [
            PlanRow("base_model", spec.model_for(self.name), "model", spec.model_for(self.name)),
            PlanRow("method", spec.method, "method.type", spec.method),
            PlanRow("adapter.type", spec.adapter.type, "adapter", spec.adapter.type),
            PlanRow("hyperparameters.epochs", hp.epochs, "n_epochs", hp.epochs),
            PlanRow("hyperparameters.batch_size", hp.batch_size, "batch_size", hp.batch_size),
            PlanRow("hyperparameters.learning_rate_multiplier", hp.learning_rate_multiplier,
                    "lr_mult", hp.learning_rate_multiplier),
            PlanRow("hyperparameters.seed", hp.seed, "seed", hp.seed),
        ]
        for fieldname in ("learning_rate", "warmup_ratio", "weight_decay", "max_seq_length"):
            value = getattr(hp, fieldname)
            if value is not None:
                rows.append(PlanRow(f"hyperparameters.{fieldname}", value, applied=False,
                                    note="not applied: " + (self.capabilities().get(fieldname).reason
                                                            or "unsupported")))
        uploads = []
        for which in ("train", "validation"):
            path = spec.data_path(which)
            if path is not None and path.exists():
                from ..data.hashing import file_sha256

                count = self._read_data(path, which, [])
                uploads.append(Upload(local=str(path), destination="fake files (purpose=fine-tune)",
                                      format="jsonl", examples=count, bytes=path.stat().st_size,
                                      sha256=file_sha256(path)))
        return Plan(backend=self.name, model=spec.model_for(self.name), rows=rows,
                    uploads=uploads, problems=problems)

    # -- protocol: jobs ------------------------------------------------------------------------
    def _upload(self, st: dict[str, Any], path: Path, ctx: SubmitContext) -> str:
        from ..data.hashing import file_sha256

        digest = file_sha256(path)
        if ctx.uploads is not None:
            cached = ctx.uploads.get(self.name, digest)
            if cached and cached in st["files"]:
                ctx.log(f"reusing uploaded file {cached} for {path.name}")
                return cached
        file_id = f"file-{secrets.token_hex(6)}"
        st["files"][file_id] = {"name": path.name, "bytes": path.stat().st_size,
                                "sha256": digest, "examples": self._read_data(path, "train", [])}
        if ctx.uploads is not None:
            ctx.uploads.put(self.name, digest, file_id)
        ctx.log(f"uploaded {path.name} as {file_id}")
        return file_id

    def submit(self, spec, ctx: SubmitContext) -> RemoteRef:
        self._call("submit")
        pause = float(os.environ.get("UNITUNE_FAKE_SLEEP_BEFORE_SUBMIT") or 0)
        if pause:
            time.sleep(pause)
        with _state() as st:
            st["submit_calls"] = st.get("submit_calls", 0) + 1
            existing = st["keys"].get(ctx.idempotency_key)
            if existing is not None:
                return RemoteRef(backend=self.name, remote_id=existing)
            opts = self._options(spec)
            if self._arranged:
                opts.update(self._arranged.pop(0))
            if opts["scenario"] not in SCENARIOS:
                raise InvalidRequest(f"fake: unknown scenario {opts['scenario']!r}",
                                     backend=self.name, status_code=400)
            train = spec.data_path("train")
            if train is None or not train.exists():
                raise InvalidRequest(f"fake: training file not found: {train}", backend=self.name,
                                     status_code=400)
            train_id = self._upload(st, train, ctx)
            val = spec.data_path("validation")
            val_id = self._upload(st, val, ctx) if val is not None and val.exists() else None
            n_examples = st["files"][train_id]["examples"]
            hp = spec.hyperparameters
            epochs = hp.epochs if isinstance(hp.epochs, int) else 3
            batch = hp.batch_size if isinstance(hp.batch_size, int) else 8
            steps = opts["steps"] or max(1, min(200, epochs * math.ceil(n_examples / batch)))
            fail_at = opts["fail_at_step"] if opts["fail_at_step"] is not None else steps // 2
            remote_id = f"fakejob-{secrets.token_hex(5)}"
            now = time.time()
            queue = opts["queue_ticks"] if opts["scenario"] != "slow" else 10 ** 9
            st["jobs"][remote_id] = {
                "id": remote_id, "seq": len(st["jobs"]) + 1, "key": ctx.idempotency_key,
                "unitune_job_id": ctx.job_id, "name": spec.name,
                "model": spec.model_for(self.name), "method": spec.method,
                "training_file": train_id, "validation_file": val_id,
                "scenario": opts["scenario"], "raw": "PENDING", "step": 0, "total_steps": steps,
                "steps_per_tick": max(1, int(opts["steps_per_tick"])), "queue_left": int(queue),
                "fail_at_step": fail_at, "failure_message": opts["failure_message"],
                "unknown_raw": opts["unknown_raw"], "advance": opts["advance"],
                "tick_seconds": float(opts["tick_seconds"]), "anchor": now,
                "transient_get": int(opts["transient_get"] or 0),
                "transient_kind": str(opts["transient_kind"]),
                "epochs": epochs, "tokens_per_step": batch * 128,
                "created_at": _now_iso(), "started_at": None, "finished_at": None,
                "error": None, "fine_tuned_model": None, "endpoint": None, "paused_from": None,
                "events": [{"time": _now_iso(), "level": "info",
                            "message": f"job created ({n_examples} examples, {steps} steps)"}],
            }
            st["keys"][ctx.idempotency_key] = remote_id
        ctx.log(f"fake job {remote_id} created")
        pause = float(os.environ.get("UNITUNE_FAKE_SLEEP_IN_SUBMIT") or 0)
        if pause:
            time.sleep(pause)
        return RemoteRef(backend=self.name, remote_id=remote_id)

    def find(self, idempotency_key: str) -> RemoteRef | None:
        self._call("find")
        with _state() as st:
            remote_id = st["keys"].get(idempotency_key)
        return RemoteRef(backend=self.name, remote_id=remote_id) if remote_id else None

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
            ref=RemoteRef(backend=self.name, remote_id=job["id"]), status=status, raw_status=raw,
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

    def get(self, ref: RemoteRef) -> Snapshot:
        self._call("get")
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
            self._raise_transient(kind, "get")
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
        """A paused job continues; a failed or cancelled one restarts from its last step (as
        from a checkpoint, with the scripted failure gone). A succeeded job cannot be resumed."""
        self._call("resume")
        with _state() as st:
            job = self._job(st, ref)
            self._materialize(job, on_get=False)
            if job["raw"] in ("COMPLETED", "PENDING", "VALIDATING", "TRAINING"):
                raise InvalidRequest(f"fake: job {job['id']} is {job['raw']}; nothing to resume",
                                     backend=self.name, status_code=400)
            if job["raw"] in ("ERRORED", "STOPPED", "STOPPING"):
                job.update(scenario="success", error=None, finished_at=None)
                self._event(job, f"job restarted from step {job['step']}")
            else:
                self._event(job, "job resumed")
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
    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = False) -> ModelHandle | str:
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

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> ModelHandle | None:
        self._call("undeploy")
        with _state() as st:
            job = self._job(st, ref)
            endpoint = job.get("endpoint")
            if endpoint:
                st["endpoints"].pop(endpoint, None)
                job["endpoint"] = None
                self._event(job, f"endpoint {endpoint} deleted")
            return self._snapshot(job).model
