"""`LocalProvider`: training on this machine behind the same Provider protocol as the clouds.

A local job is a detached worker process plus a job directory (`jobfiles.py`) under the jobs dir
(`Location(backend="local", endpoint=<jobs dir>)`). `translate` is the one table: the plan rows
and the request the worker reads (the spec as it trains: prepared data files, the resolved base
model, typed options), refusing what this machine cannot run before any job exists. `create`
writes JOB_DIR/request.json and starts the worker; `lookup` finds a job by its idempotency key
from the jobs dir alone; `read`, `metrics` and `events` read the files (a worker that died
without a terminal status is `failed`); `cancel` sends SIGTERM (the worker checkpoints and ends
`cancelled`); `restart` continues a stopped job from its last checkpoint. Data is not uploaded:
`upload` returns the prepared file's path. No torch import happens here.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from ..backends import YES, Capabilities, PlanRow, no
from ..data.report import Problem
from ..errors import NotFound, UnituneError
from ..job import (WORKER_DIED, Event, JobError, JobStatus, Metrics, ModelHandle, Progress,
                   RemoteRef, Snapshot, map_status, merge_metrics)
from ..paths import unitune_home
from ..provider import (DataTarget, Ids, Location, Prepared, PreparedFile, Translation,
                        is_placeholder, placeholder)
from . import process
from .jobfiles import JobFiles, now_iso, read_json, read_jsonl, write_json_atomic
from .options import LocalOptions, worker_options
from .preflight import data_problems, hardware_problems, resolve_model

STATUS_TABLE = {
    "queued": JobStatus.QUEUED, "starting": JobStatus.RUNNING, "loading": JobStatus.RUNNING,
    "running": JobStatus.RUNNING, "training": JobStatus.RUNNING, "resuming": JobStatus.QUEUED,
    "cancelling": JobStatus.CANCELLING, "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED, "cancelled": JobStatus.CANCELLED,
}
DIED = "worker process died (killed?)"
pid_alive = process.pid_alive  # re-exported: tests and tools ask whether a worker runs
LOSS_NOTE = ("loss on assistant tokens (end-of-turn included) when the chat template marks them "
             "with {% generation %}; otherwise on the last assistant turn")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _key_file(jobs: Path, key: str) -> Path:
    return jobs / ".keys" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


class LocalProvider:
    """LoRA / QLoRA / full fine-tuning on this machine (TRL + PEFT), run as a worker process."""

    name = "local"
    extra: ClassVar[str | None] = "local"
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers", "peft", "trl", "datasets",
                                           "accelerate")
    options_model: ClassVar[type[LocalOptions]] = LocalOptions

    def __init__(self, jobs_dir: str | os.PathLike | None = None) -> None:
        self._jobs_dir = Path(jobs_dir) if jobs_dir else None

    # -- the translation table -------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        f = {
            "method:sft": YES, "method:dpo": YES, "validation_file": YES, "restart": YES,
            "checkpoints": YES, "learning_rate": YES, "batch_size": YES, "seed": YES,
            "warmup_ratio": YES, "weight_decay": YES, "max_seq_length": YES, "weights": YES,
            "pause": no("a local job cannot be paused: `unitune cancel` stops it with a "
                        "checkpoint and `unitune resume` restarts it from there"),
            "resume": no("a local job is never paused; a cancelled or failed one restarts from "
                         "its last checkpoint (capability `restart`)"),
            "learning_rate_multiplier": no("local training takes an absolute learning rate: set "
                                           "hyperparameters.learning_rate"),
            "tools": no("tool calls are trained as text only when the model's chat template "
                        "renders them; the default tiny-chat template does not"),
            "images": no("the local recipes train text-only causal language models"),
            "deploy": no("a local model is served, not deployed: `unitune serve ID` (vLLM or "
                         "llama.cpp, on 127.0.0.1 unless --host), or `unitune export ID DIR`"),
        }
        for a in ("lora", "dora", "rslora", "full", "prefix", "p_tuning", "prompt_tuning", "ia3"):
            f[f"adapter:{a}"] = YES
        f["adapter:qlora"] = YES if _has("bitsandbytes") else no(
            "qlora needs bitsandbytes: pip install 'unitune[local]'")
        return Capabilities(self.name, f)

    def locate(self, spec: Any, options: LocalOptions) -> Location:
        return Location(backend=self.name,
                        endpoint=str((self._jobs_dir or unitune_home() / "jobs").resolve()))

    def data_target(self, spec: Any, options: LocalOptions) -> DataTarget:
        from ..catalog import find_model

        try:
            model = spec.model_for(self.name)
        except UnituneError:
            model = None
        known = model is not None and find_model(self.name, model) is not None
        return DataTarget(format=None, validate=f"local:{model}" if known else None)

    def translate(self, spec: Any, prepared: Prepared, location: Location,
                  options: LocalOptions, ids: Ids) -> Translation:
        problems: list[Problem] = []
        field = "models.local" if spec.models.get(self.name) else "base_model"
        try:
            model, found = resolve_model(spec.model_for(self.name), spec.source_dir, field)
        except UnituneError as exc:
            model, found = placeholder("base-model"), [Problem(
                "no_model", exc.message, path="base_model", hint=exc.hint, target="local")]
        problems += found
        problems += hardware_problems(spec, options, self.capabilities().get(
            f"adapter:{spec.adapter.type}"), _has)
        problems += data_problems(spec, prepared)
        hp = spec.hyperparameters
        if hp.learning_rate_multiplier and not hp.learning_rate:
            problems.append(Problem("not_applied", "learning_rate_multiplier is not applied "
                                    "locally; the default learning rate is used", "warning",
                                    path="hyperparameters.learning_rate_multiplier",
                                    hint="set hyperparameters.learning_rate", target="local"))
        opts = worker_options(options)
        worker_spec = spec.model_dump(mode="json", exclude={"source_dir"})
        worker_spec.update(backend=self.name, base_model=model, models={}, backend_options={})
        worker_spec["data"].update({w: self._data(prepared, w) for w in ("train", "validation")})
        job_dir = placeholder("job-dir") if is_placeholder(ids.job_id) else \
            str(Path(str(location.endpoint)) / ids.job_id)
        request = {"job_id": ids.job_id, "job_dir": job_dir, "key": ids.key,
                   "base_model": model, "spec": worker_spec, "options": opts}
        return Translation(request=request, rows=self._rows(spec, prepared, model, options),
                           problems=problems, notes=[LOSS_NOTE])

    @staticmethod
    def _data(prepared: Prepared, which: str) -> str | None:
        f = prepared.files.get(which)
        if f is None:
            return placeholder(f"data:{which}") if which == "train" else None
        return f.uri or str(f.path.resolve())

    def _rows(self, spec: Any, prepared: Prepared, model: str,
              options: LocalOptions) -> list[PlanRow]:
        from .adapters import describe
        from .hardware import choose, detect_light

        opts = worker_options(options)
        eff = choose(spec, detect_light(), world_size=options.gpus, options=opts)
        hp, why, gpus = spec.hyperparameters, eff.why, options.gpus
        rows = [
            PlanRow("base_model", spec.models.get(self.name) or spec.base_model, "from_pretrained",
                    model, "built offline on first use (random weights)"
                    if model == "unitune/tiny-chat" else None),
            PlanRow("method", spec.method, "trainer",
                    "SFTTrainer" if spec.method == "sft" else "DPOTrainer"),
            PlanRow("adapter.type", spec.adapter.type, "peft", describe(spec)),
        ]
        for which, param in (("train", "train_dataset"), ("validation", "eval_dataset")):
            f = prepared.files.get(which)
            if f is not None:
                rows.append(PlanRow(f"data.{which}", f.source, param,
                                    f"{f.path} ({f.examples} examples, used as is)"))
        rows += [
            PlanRow("hyperparameters.epochs", hp.epochs, "num_train_epochs", eff.epochs,
                    why.get("epochs")),
            PlanRow("hyperparameters.max_steps", hp.max_steps, "max_steps", hp.max_steps or -1),
            PlanRow("hyperparameters.batch_size", hp.batch_size, "per_device_train_batch_size × "
                    "gradient_accumulation_steps × processes",
                    f"{eff.per_device_batch_size} × {eff.gradient_accumulation_steps} × "
                    f"{eff.world_size} = {eff.effective_batch_size}",
                    why.get("effective_batch_size")),
            PlanRow("hyperparameters.learning_rate", hp.learning_rate, "learning_rate",
                    eff.learning_rate, why.get("learning_rate")),
            PlanRow("hyperparameters.warmup_ratio", hp.warmup_ratio, "warmup_steps (ratio)",
                    hp.warmup_ratio or 0.0),
            PlanRow("hyperparameters.weight_decay", hp.weight_decay, "weight_decay",
                    hp.weight_decay or 0.0),
            PlanRow("hyperparameters.max_seq_length", hp.max_seq_length, "max_length",
                    eff.max_length, why.get("max_length")),
            PlanRow("hyperparameters.seed", hp.seed, "seed / data_seed", eff.seed),
            PlanRow("backend_options.local.precision", options.precision, "bf16/fp16/fp32",
                    eff.precision + " (decided again on the worker's real hardware)",
                    why.get("precision")),
            PlanRow("(packing)", options.packing, "packing / packing_strategy",
                    f"{eff.packing} / bfd", why.get("packing")),
            PlanRow("(activation checkpointing)", options.activation_checkpointing,
                    "gradient_checkpointing", eff.activation_checkpointing
                    if options.activation_checkpointing is not None else
                    "decided on the worker from model size and memory"),
            PlanRow("backend_options.local.gpus/strategy", f"{gpus}/{options.strategy}",
                    "launcher", "single process" if gpus == 1 else
                    ("torchrun" if options.strategy == "ddp" and options.launcher != "accelerate"
                     else "accelerate launch")),
        ]
        if spec.method == "dpo":
            rows.append(PlanRow("hyperparameters.beta", hp.beta, "beta", hp.beta or 0.1))
        elif hp.beta is not None:
            rows.append(PlanRow("hyperparameters.beta", hp.beta, None, None,
                                "not applied: beta is a DPO setting", applied=False))
        if hp.learning_rate_multiplier is not None:
            rows.append(PlanRow("hyperparameters.learning_rate_multiplier",
                                hp.learning_rate_multiplier, None, None, "not applied: local "
                                "training takes an absolute learning_rate", applied=False))
        if spec.suffix:
            rows.append(PlanRow("suffix", spec.suffix, None, None, "not applied: a local job "
                                "is named by its job directory", applied=False))
        from .hardware import speed_plan_rows

        return rows + speed_plan_rows(spec, model, options)  # kernels and the memory plan

    # -- data stays where it is ------------------------------------------------------------------
    def destination(self, file: PreparedFile, location: Location, options: Any) -> str:
        return str(file.path.resolve())

    def upload(self, file: PreparedFile, location: Location, options: Any) -> str:
        return self.destination(file, location, options)

    # -- job lifecycle ---------------------------------------------------------------------------
    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: Any) -> RemoteRef:
        jobs = Path(str(location.endpoint))
        existing = self.lookup(ids.key, location, options)
        if existing is not None:  # already created (the answer was lost): never a second worker
            return existing
        files = JobFiles(jobs / ids.job_id)
        files.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(files.request, request)
        write_json_atomic(files.spec, request["spec"])  # what merge / export / generate read
        write_json_atomic(files.job, {"job_id": ids.job_id, "idempotency_key": ids.key,
                                      "created_at": now_iso(), "base_model": request["base_model"],
                                      "launches": []})
        files.update_status(status="queued", raw_status="queued", created_at=now_iso())
        write_json_atomic(_key_file(jobs, ids.key), {"job_id": ids.job_id,
                                                     "job_dir": str(files.dir)})
        process.start(files, request["options"], resume=False)
        return self._ref(ids.job_id, files.dir)

    def lookup(self, key: str, location: Location, options: Any) -> RemoteRef | None:
        jobs = Path(str(location.endpoint))
        entry = read_json(_key_file(jobs, key))
        if entry and (Path(entry["job_dir"]) / "job.json").exists():
            return self._ref(entry["job_id"], Path(entry["job_dir"]))
        for job_json in jobs.glob("*/job.json"):
            job = read_json(job_json) or {}
            if job.get("idempotency_key") == key:
                return self._ref(job.get("job_id") or job_json.parent.name, job_json.parent)
        return None

    def _ref(self, job_id: str, job_dir: Path) -> RemoteRef:
        return RemoteRef(backend=self.name, remote_id=job_id, extra={"job_dir": str(job_dir)})

    def _files(self, ref: RemoteRef) -> JobFiles:
        job_dir = Path(ref.extra.get("job_dir") or (self._jobs_dir or unitune_home() / "jobs")
                       / ref.remote_id)
        if not (job_dir / "status.json").exists() and not (job_dir / "job.json").exists():
            raise NotFound(f"no local job directory {job_dir} (job {ref.remote_id})",
                           backend=self.name, hint="`unitune list --backend local` shows jobs")
        return JobFiles(job_dir)

    def read(self, ref: RemoteRef) -> Snapshot:
        files = self._files(ref)
        st = files.read_status()
        raw = st.get("status") or "queued"
        status = map_status(raw, STATUS_TABLE)
        error = None
        if st.get("error") and status is JobStatus.FAILED:
            error = JobError(message=st["error"].get("message") or "failed",
                             code=st["error"].get("code"))
        if not status.is_terminal and not pid_alive(process.worker_pid(files)):
            if files.cancel_flag.exists():
                status, raw = JobStatus.CANCELLED, "cancelled (worker stopped before it could report)"
            else:
                status, raw = JobStatus.FAILED, f"{raw} (worker gone)"
                error = JobError(message=DIED, code=WORKER_DIED)
        elif not status.is_terminal and files.cancel_flag.exists() and status is not JobStatus.UNKNOWN:
            status = JobStatus.CANCELLING
        tokens = max((r.get("tokens_seen") or 0 for r in read_jsonl(files.metrics)),
                     default=None) or None
        progress = Progress(step=st.get("step"), total_steps=st.get("total_steps"),
                            epoch=st.get("epoch"), latest_loss=st.get("latest_loss"),
                            eta_seconds=st.get("eta_seconds"))
        model = None
        if status is JobStatus.SUCCEEDED and st.get("adapter"):
            artifacts = {"adapter": st["adapter"], "job_dir": str(files.dir)}
            if (files.dir / "merged" / "config.json").exists():
                artifacts["merged"] = str(files.dir / "merged")
            ckpts = sorted(files.checkpoints.glob("checkpoint-*")) \
                if files.checkpoints.exists() else []
            model = ModelHandle(backend=self.name, model_id=st["adapter"],
                                base_model=(read_json(files.job) or {}).get("base_model"),
                                artifacts=artifacts, checkpoints=[str(p) for p in ckpts],
                                invoke=f"unitune generate {ref.remote_id} \"your prompt\"")
        return Snapshot(ref=ref, status=status, raw_status=raw,
                        created_at=_parse_time(st.get("created_at")),
                        started_at=_parse_time(st.get("started_at")),
                        finished_at=_parse_time(st.get("finished_at")), trained_tokens=tokens,
                        error=error, model=model, progress=progress,
                        raw={k: v for k, v in st.items() if k != "effective_config"})

    def cancel(self, ref: RemoteRef) -> Snapshot:
        files = self._files(ref)
        snap = self.read(ref)
        if snap.status.is_terminal:
            return snap
        files.cancel_flag.write_text(now_iso())
        process.stop(process.worker_pid(files))
        files.event("cancel requested (SIGTERM sent)")
        return self.read(ref)

    def restart(self, ref: RemoteRef) -> Snapshot:
        """Start a stopped job's worker again from its last checkpoint (or from step 0)."""
        files = self._files(ref)
        snap = self.read(ref)
        if not snap.status.is_terminal and pid_alive(process.worker_pid(files)):
            return snap
        if snap.status is JobStatus.SUCCEEDED:
            raise UnituneError(f"job {ref.remote_id} already succeeded; nothing to restart",
                               hint="start a new job to train further")
        files.cancel_flag.unlink(missing_ok=True)
        ckpt = files.last_checkpoint()
        files.update_status(status="queued", raw_status="resuming", error=None, finished_at=None,
                            resumed_from=str(ckpt) if ckpt else None)
        request = read_json(files.request) or {}
        options = request.get("options", (read_json(files.job) or {}).get("options") or {})
        process.start(files, options, resume=True)
        return self.read(ref)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        fields = set(Metrics.COLUMNS)
        return merge_metrics([Metrics(**{k: v for k, v in r.items() if k in fields})
                              for r in read_jsonl(self._files(ref).metrics) if "step" in r])

    def events(self, ref: RemoteRef) -> list[Event]:
        return [Event(time=_parse_time(r.get("time")), level=r.get("level", "info"),
                      message=r.get("message", ""), data=r.get("data"))
                for r in read_jsonl(self._files(ref).events)]

    def list_remote(self, location: Location, options: Any, limit: int = 20) -> list[RemoteRef]:
        jobs = sorted(Path(str(location.endpoint)).glob("*/job.json"),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        return [self._ref((read_json(j) or {}).get("job_id") or j.parent.name, j.parent)
                for j in jobs[:limit]]
