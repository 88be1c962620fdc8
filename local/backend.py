"""`LocalBackend`: training on this machine behind the same Backend protocol as the clouds.

A local job is a detached worker process plus a job directory (see `jobfiles.py`). `submit`
writes the spec and starts the worker; `get`, `metrics` and `events` read the files (a worker
that died without a terminal status is reported `failed`); `cancel` sends SIGTERM (the worker
checkpoints and ends `cancelled`); `resume` restarts from the last checkpoint. No torch import
happens here: the CLI stays fast and the heavy work lives in the worker.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from ..backends import YES, Capabilities, Plan, PlanRow, SubmitContext, no
from ..data.report import Problem
from ..errors import JobNotFound, UnituneError
from ..job import (WORKER_DIED, Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                   Snapshot, map_status, merge_metrics)
from ..paths import unitune_home
from ..procs import pid_running
from .jobfiles import JobFiles, now_iso, read_json, read_jsonl, write_json_atomic

STATUS_TABLE = {
    "queued": JobStatus.QUEUED, "starting": JobStatus.RUNNING, "loading": JobStatus.RUNNING,
    "running": JobStatus.RUNNING, "training": JobStatus.RUNNING, "resuming": JobStatus.QUEUED,
    "cancelling": JobStatus.CANCELLING, "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED, "cancelled": JobStatus.CANCELLED,
}
DIED = "worker process died (killed?)"

_CHILDREN: dict[int, subprocess.Popen] = {}  # keep Popen objects so exits are reaped


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _cuda_visible() -> bool:
    return bool(shutil.which("nvidia-smi")) or Path("/proc/driver/nvidia/version").exists()


def pid_alive(pid: int | None) -> bool:
    """Whether the worker with this pid still runs (a child this process started is reaped)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except OSError:  # ChildProcessError included: not our child
        pass
    return pid_running(pid)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class LocalBackend:
    """LoRA / QLoRA / full fine-tuning on this machine (TRL + PEFT), run as a worker process."""

    name = "local"

    def __init__(self, jobs_dir: str | os.PathLike | None = None) -> None:
        self._jobs_dir = Path(jobs_dir) if jobs_dir else None

    # -- where things live ---------------------------------------------------------------------
    @property
    def jobs_dir(self) -> Path:
        d = self._jobs_dir or unitune_home() / "jobs"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _index_file(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.jobs_dir / ".keys" / f"{digest}.json"

    def job_dir(self, ref: RemoteRef | str) -> Path:
        if isinstance(ref, RemoteRef):
            if ref.extra.get("job_dir"):
                return Path(ref.extra["job_dir"])
            ref = ref.remote_id
        d = self.jobs_dir / ref
        if not d.exists():
            raise JobNotFound(f"no local job directory for {ref}", hint="`unitune list` shows jobs")
        return d

    def _ref(self, job_id: str, job_dir: Path) -> RemoteRef:
        return RemoteRef(backend=self.name, remote_id=job_id, extra={"job_dir": str(job_dir)})

    # -- capabilities, check, plan -----------------------------------------------------------
    def capabilities(self) -> Capabilities:
        f = {
            "method:sft": YES, "method:dpo": YES, "validation_file": YES, "resume": YES,
            "restart": YES, "checkpoints": YES, "learning_rate": YES, "batch_size": YES, "seed": YES,
            "warmup_ratio": YES, "weight_decay": YES, "max_seq_length": YES, "weights": YES,
            "pause": no("a local job stops with `unitune cancel` (checkpointed) and continues "
                        "with `unitune resume`"),
            "learning_rate_multiplier": no("local training takes an absolute learning rate: set "
                                           "hyperparameters.learning_rate"),
            "tools": no("tool calls are trained as text only when the model's chat template "
                        "renders them; the default tiny-chat template does not"),
            "images": no("the local recipes train text-only causal language models"),
            "deploy": no("serve the exported model yourself: `unitune export ID DIR`, then vLLM "
                         "or transformers"),
        }
        for a in ("lora", "dora", "rslora", "full", "prefix", "p_tuning", "prompt_tuning", "ia3"):
            f[f"adapter:{a}"] = YES
        f["adapter:qlora"] = YES if _has("bitsandbytes") else no(
            "qlora needs bitsandbytes: pip install 'unitune[local]'")
        return Capabilities(self.name, f)

    def check(self, spec) -> list[Problem]:
        problems: list[Problem] = []

        def err(code: str, msg: str, field: str | None = None, hint: str | None = None) -> None:
            problems.append(Problem(code=code, message=msg, severity="error", path=field,
                                    hint=hint, target="local"))

        for mod in ("torch", "transformers", "peft", "trl", "datasets", "accelerate"):
            if not _has(mod):
                err("missing_dependency", f"the local backend needs {mod}", hint="pip install 'unitune[local]'")
        caps = self.capabilities()
        support = caps.get(f"adapter:{spec.adapter.type}")
        if not support:
            err("unsupported_adapter", support.reason or "", "adapter.type")
        if spec.hyperparameters.learning_rate_multiplier and not spec.hyperparameters.learning_rate:
            problems.append(Problem(code="not_applied", severity="warning", path=
                                    "hyperparameters.learning_rate_multiplier", target="local",
                                    message="learning_rate_multiplier is not applied locally; the "
                                            "default learning rate is used",
                                    hint="set hyperparameters.learning_rate"))
        tm = spec.adapter.target_modules
        if tm and any(n == "lm_head" for n in ([tm] if isinstance(tm, str) else tm)):
            err("lm_head_adapter", "TRL 1.16 rejects an adapter on lm_head (fused LM-head loss)",
                "adapter.target_modules", 'drop lm_head or leave target_modules unset')
        try:
            model = spec.model_for(self.name)
        except UnituneError as exc:
            err("no_model", exc.message, "base_model", exc.hint)
            model = None
        if model and model != "unitune/tiny-chat":
            p = Path(model).expanduser()
            if model.startswith(("/", "./", "../", "~")) and not (p / "config.json").exists():
                err("model_not_found", f"model directory {model} has no config.json", "base_model",
                    "point base_model at a directory saved with save_pretrained")
        train = spec.data_path("train")
        if train is None or not train.exists():
            err("data_not_found", f"training file {train} does not exist", "data.train",
                "check data.train (paths are relative to the spec file)")
        val = spec.data_path("validation")
        if val is not None and not val.exists():
            err("data_not_found", f"validation file {val} does not exist", "data.validation")
        from .launch import parse

        try:
            gpus, strategy = parse(spec.options(self.name))
            if strategy in ("fsdp", "deepspeed") and gpus > 1 and not _cuda_visible():
                err("no_gpu", f"strategy {strategy} needs GPUs; none found",
                    "backend_options.local.strategy", "use strategy: ddp to run N CPU processes")
            if strategy == "deepspeed" and gpus > 1 and not _has("deepspeed"):
                err("missing_dependency", "strategy deepspeed needs the deepspeed package",
                    "backend_options.local.strategy", "pip install deepspeed")
        except UnituneError as exc:
            err("bad_option", exc.message, getattr(exc, "field", None), exc.hint)
        return problems

    def plan(self, spec) -> Plan:
        from .adapters import describe
        from .hardware import choose, detect_light

        model = spec.model_for(self.name)
        hw = detect_light()
        opts = spec.options(self.name)
        from .launch import parse

        gpus, strategy = parse(opts) if "gpus" in opts or "strategy" in opts else (1, "ddp")
        eff = choose(spec, hw, world_size=gpus, options=opts)
        hp = spec.hyperparameters
        rows = [
            PlanRow("base_model", model, "from_pretrained", model,
                    "built offline on first use (random weights)" if model == "unitune/tiny-chat" else None),
            PlanRow("method", spec.method, "trainer", "SFTTrainer" if spec.method == "sft" else "DPOTrainer"),
            PlanRow("adapter.type", spec.adapter.type, "peft", describe(spec)),
            PlanRow("hyperparameters.epochs", hp.epochs, "num_train_epochs", eff.epochs, eff.why.get("epochs")),
            PlanRow("hyperparameters.max_steps", hp.max_steps, "max_steps", hp.max_steps or -1),
            PlanRow("hyperparameters.batch_size", hp.batch_size, "per_device_train_batch_size × "
                    "gradient_accumulation_steps × processes",
                    f"{eff.per_device_batch_size} × {eff.gradient_accumulation_steps} × {eff.world_size}"
                    f" = {eff.effective_batch_size}", eff.why.get("effective_batch_size")),
            PlanRow("hyperparameters.learning_rate", hp.learning_rate, "learning_rate",
                    eff.learning_rate, eff.why.get("learning_rate")),
            PlanRow("hyperparameters.warmup_ratio", hp.warmup_ratio, "warmup_steps (ratio)", hp.warmup_ratio or 0.0),
            PlanRow("hyperparameters.weight_decay", hp.weight_decay, "weight_decay", hp.weight_decay or 0.0),
            PlanRow("hyperparameters.max_seq_length", hp.max_seq_length, "max_length", eff.max_length,
                    eff.why.get("max_length")),
            PlanRow("hyperparameters.seed", hp.seed, "seed / data_seed", eff.seed),
            PlanRow("backend_options.local.precision", opts.get("precision", "auto"), "bf16/fp16/fp32",
                    eff.precision + " (decided again on the worker's real hardware)", eff.why.get("precision")),
            PlanRow("(packing)", None, "packing / packing_strategy", f"{eff.packing} / bfd", eff.why.get("packing")),
            PlanRow("(activation checkpointing)", None, "gradient_checkpointing",
                    "decided on the worker from model size and memory", None),
            PlanRow("backend_options.local.gpus/strategy", f"{gpus}/{strategy}", "launcher",
                    "single process" if gpus == 1 else ("torchrun" if strategy == "ddp" else "accelerate launch")),
        ]
        if spec.method == "dpo":
            rows.append(PlanRow("hyperparameters.beta", hp.beta, "beta", hp.beta or 0.1))
        elif hp.beta is not None:
            rows.append(PlanRow("hyperparameters.beta", hp.beta, None, None,
                                "not applied: beta is a DPO setting", applied=False))
        if hp.learning_rate_multiplier is not None:
            rows.append(PlanRow("hyperparameters.learning_rate_multiplier", hp.learning_rate_multiplier,
                                None, None, "not applied: local training takes an absolute "
                                "learning_rate", applied=False))
        if spec.suffix:
            rows.append(PlanRow("suffix", spec.suffix, None, None, "not applied: a local job is "
                                "named by its job directory", applied=False))
        notes = ["loss on assistant tokens (end-of-turn included) when the chat template marks "
                 "them with {% generation %}; otherwise on the last assistant turn"]
        return Plan(backend=self.name, model=model, rows=rows, problems=self.check(spec), notes=notes)

    # -- lifecycle -----------------------------------------------------------------------------
    def submit(self, spec, ctx: SubmitContext) -> RemoteRef:
        existing = self.find(ctx.idempotency_key)
        if existing is not None:
            snap = self.get(existing)
            if snap.status is JobStatus.FAILED and JobFiles(self.job_dir(existing)).last_checkpoint():
                ctx.log(f"job {existing.remote_id} had stopped; continuing from its last checkpoint")
                self.resume(existing)
            return existing
        job_dir = Path(ctx.work_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        files = JobFiles(job_dir)
        data = spec.model_dump(mode="json", exclude={"source_dir"})
        for which in ("train", "validation"):
            p = spec.data_path(which)
            if p is not None:
                data["data"][which] = str(p.resolve())
        write_json_atomic(files.spec, data)
        options = spec.options(self.name)
        write_json_atomic(files.job, {"job_id": ctx.job_id, "idempotency_key": ctx.idempotency_key,
                                      "created_at": now_iso(), "options": options,
                                      "base_model": spec.model_for(self.name)})
        files.update_status(status="queued", raw_status="queued", created_at=now_iso())
        write_json_atomic(self._index_file(ctx.idempotency_key),
                          {"job_id": ctx.job_id, "job_dir": str(job_dir.resolve())})
        self._launch(files, options, resume=False)
        ctx.log(f"local worker started in {job_dir}")
        return self._ref(ctx.job_id, job_dir.resolve())

    def _launch(self, files: JobFiles, options: dict[str, Any], *, resume: bool) -> int:
        from .launch import command

        cmd = command(files.dir.resolve(), options, resume=resume, cuda=_cuda_visible())
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env["UNITUNE_HOME"] = str(unitune_home())
        with open(files.log, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=str(files.dir), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _CHILDREN[proc.pid] = proc
        files.pid_file.write_text(str(proc.pid))
        job = read_json(files.job) or {}
        job.setdefault("launches", []).append({"pid": proc.pid, "argv": cmd, "time": now_iso(),
                                               "resume": resume})
        write_json_atomic(files.job, job)
        return proc.pid

    def _pid(self, files: JobFiles) -> int | None:
        try:
            return int(files.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def find(self, idempotency_key: str) -> RemoteRef | None:
        entry = read_json(self._index_file(idempotency_key))
        if entry and Path(entry["job_dir"]).exists():
            return self._ref(entry["job_id"], Path(entry["job_dir"]))
        for job_json in self.jobs_dir.glob("*/job.json"):
            job = read_json(job_json) or {}
            if job.get("idempotency_key") == idempotency_key:
                return self._ref(job.get("job_id") or job_json.parent.name, job_json.parent)
        return None

    def get(self, ref: RemoteRef) -> Snapshot:
        files = JobFiles(self.job_dir(ref))
        st = files.read_status()
        raw = st.get("status") or "queued"
        status = map_status(raw, STATUS_TABLE)
        error = None
        if st.get("error") and status is JobStatus.FAILED:
            e = st["error"]
            error = JobError(message=e.get("message") or "failed", code=e.get("code"))
        if not status.is_terminal and not pid_alive(self._pid(files)):
            if files.cancel_flag.exists():
                status, raw = JobStatus.CANCELLED, "cancelled (worker stopped before it could report)"
            else:
                status, raw = JobStatus.FAILED, f"{raw} (worker gone)"
                error = JobError(message=DIED, code=WORKER_DIED)
        elif not status.is_terminal and files.cancel_flag.exists() and status is not JobStatus.UNKNOWN:
            status = JobStatus.CANCELLING
        rows = read_jsonl(files.metrics)
        tokens = max((r.get("tokens_seen") or 0 for r in rows), default=None) or None
        progress = Progress(step=st.get("step"), total_steps=st.get("total_steps"),
                            epoch=st.get("epoch"), latest_loss=st.get("latest_loss"),
                            eta_seconds=st.get("eta_seconds"))
        model = None
        job = read_json(files.job) or {}
        if status is JobStatus.SUCCEEDED and st.get("adapter"):
            artifacts = {"adapter": st["adapter"], "job_dir": str(files.dir)}
            merged = files.dir / "merged"
            if (merged / "config.json").exists():
                artifacts["merged"] = str(merged)
            model = ModelHandle(backend=self.name, model_id=st["adapter"],
                                base_model=job.get("base_model"), artifacts=artifacts,
                                checkpoints=[str(p) for p in sorted(files.checkpoints.glob("checkpoint-*"))]
                                if files.checkpoints.exists() else [],
                                invoke=f"unitune generate {ref.remote_id} \"your prompt\"")
        return Snapshot(ref=ref, status=status, raw_status=raw,
                        created_at=_parse_time(st.get("created_at")),
                        started_at=_parse_time(st.get("started_at")),
                        finished_at=_parse_time(st.get("finished_at")), trained_tokens=tokens,
                        error=error, model=model, progress=progress,
                        raw={k: v for k, v in st.items() if k != "effective_config"})

    def cancel(self, ref: RemoteRef) -> Snapshot:
        files = JobFiles(self.job_dir(ref))
        snap = self.get(ref)
        if snap.status.is_terminal:
            return snap
        files.cancel_flag.write_text(now_iso())
        pid = self._pid(files)
        if pid and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)  # the worker leads its own session/group
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        files.event("cancel requested (SIGTERM sent)")
        return self.get(ref)

    def resume(self, ref: RemoteRef) -> Snapshot:
        """Restart a stopped job's worker from its last checkpoint (or from step 0 if none)."""
        files = JobFiles(self.job_dir(ref))
        snap = self.get(ref)
        if not snap.status.is_terminal and pid_alive(self._pid(files)):
            return snap
        if snap.status is JobStatus.SUCCEEDED:
            raise UnituneError(f"job {ref.remote_id} already succeeded; nothing to resume",
                               hint="start a new job to train further")
        try:
            files.cancel_flag.unlink()
        except FileNotFoundError:
            pass
        ckpt = files.last_checkpoint()
        files.update_status(status="queued", raw_status="resuming", error=None, finished_at=None,
                            resumed_from=str(ckpt) if ckpt else None)
        options = (read_json(files.job) or {}).get("options") or {}
        self._launch(files, options, resume=True)
        return self.get(ref)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        files = JobFiles(self.job_dir(ref))
        fields = set(Metrics.COLUMNS)
        rows = [Metrics(**{k: v for k, v in r.items() if k in fields})
                for r in read_jsonl(files.metrics) if "step" in r]
        return merge_metrics(rows)

    def metrics_extras(self, ref: RemoteRef) -> list[dict]:
        """Every logged value per step (grad_norm, entropy, rewards/*…), beyond the unified columns."""
        return read_jsonl(JobFiles(self.job_dir(ref)).metrics)

    def events(self, ref: RemoteRef) -> list[Event]:
        files = JobFiles(self.job_dir(ref))
        out = []
        for r in read_jsonl(files.events):
            out.append(Event(time=_parse_time(r.get("time")), level=r.get("level", "info"),
                             message=r.get("message", ""), data=r.get("data")))
        return out

    def list_remote(self, limit: int = 50) -> list[RemoteRef]:
        jobs = sorted(self.jobs_dir.glob("*/job.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        out = []
        for job_json in jobs[:limit]:
            job = read_json(job_json) or {}
            out.append(self._ref(job.get("job_id") or job_json.parent.name, job_json.parent))
        return out
