"""Serving a finished local job behind an OpenAI-compatible endpoint: vLLM or llama.cpp.

`plan_serve` builds the exact server command; `launch` starts it (detached, logging to
`JOB_DIR/serve/`), waits until `GET /v1/models` answers, and `register_endpoint` stores the
endpoint with the job in the registry so `unitune generate JOB` / `unitune eval JOB` can call it.

* vLLM is an external server, never a dependency (it pins its own torch and transformers): the
  `vllm` executable on PATH or `UNITUNE_VLLM`. It serves the merged model directory, or the base
  with `--enable-lora --lora-modules NAME=ADAPTER --max-lora-rank R` (R: vLLM's smallest allowed
  rank ≥ the adapter's r) for LoRA / QLoRA / rsLoRA adapters.
* llama.cpp: `python -m llama_cpp.server` (llama-cpp-python) on the job's GGUF (the newest
  `unitune export --format gguf|ollama`, else exported to `JOB_DIR/gguf/` first), with
  `--chat_format chatml` when the template renders exactly as ChatML, else the GGUF's own
  template (llama-cpp-python's default).

Security: a server binds to 127.0.0.1 unless `--host` says otherwise; binding anywhere else
needs an API key — one is generated when none is given, shown once, handed to the server through
its environment (`VLLM_API_KEY` / `API_KEY`, never argv) and stored only redacted.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingDependency, UnituneError
from ..redact import REDACTED
from .jobfiles import now_iso, read_json, write_json_atomic
from .merge import MARKER, TrainedJob

ENGINES = ("llama.cpp", "vllm")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
KEY_ENV = {"vllm": "VLLM_API_KEY", "llama.cpp": "API_KEY"}
CLIENT_KEY_ENV = "UNITUNE_SERVE_API_KEY"  # where `generate`/`eval` read a remote server's key
LORA_SERVABLE = ("lora", "qlora", "rslora")
SERVER_FILE = "server.json"


@dataclass
class ServePlan:
    """One server: the command, where it listens, what clients call the model."""

    engine: str
    argv: list[str]
    host: str
    port: int
    model: str  # the `model` clients send
    mode: str  # merged | lora | gguf
    api_key: str | None = None
    key_generated: bool = False
    prepare: list[str] = field(default_factory=list)  # steps done on launch (merge, export)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else \
            "[::1]" if self.host in ("::", "::1") else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def env(self) -> dict[str, str]:
        return {KEY_ENV[self.engine]: self.api_key} if self.api_key else {}

    def command(self) -> str:
        """The shell line, the key shown as a variable reference (never its value)."""
        prefix = f"{KEY_ENV[self.engine]}=\"${CLIENT_KEY_ENV}\" " if self.api_key else ""
        return prefix + shlex.join(self.argv)

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "command": self.command(), "argv": self.argv,
                "host": self.host, "port": self.port, "base_url": self.base_url,
                "model": self.model, "mode": self.mode, "api_key": REDACTED if self.api_key
                else None, "prepare": self.prepare, "notes": self.notes,
                "artifacts": self.artifacts}


def _job_id(job: TrainedJob) -> str:
    return (read_json(job.files.job) or {}).get("job_id") or job.files.dir.name


def _current_merge(job: TrainedJob) -> Path | None:
    merged = job.files.dir / "merged"
    try:
        marker = json.loads((merged / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if (merged / "config.json").exists() and Path(marker.get("adapter", "")) == job.adapter_dir:
        return merged
    return None


def vllm_rank(r: int) -> int:
    """vLLM's smallest allowed --max-lora-rank that holds rank r."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= r:
            return allowed
    raise UnituneError(f"LoRA rank {r} is above vLLM's largest --max-lora-rank "
                       f"({VLLM_LORA_RANKS[-1]})", hint="serve the merged model: --merged")


def vllm_command() -> list[str] | None:
    """How to run vLLM here: `UNITUNE_VLLM` (a command line) or `vllm` on PATH."""
    if os.environ.get("UNITUNE_VLLM"):
        return shlex.split(os.environ["UNITUNE_VLLM"])
    exe = shutil.which("vllm")
    return [exe] if exe else None


def llama_cpp_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("llama_cpp") is not None and \
            importlib.util.find_spec("llama_cpp.server") is not None
    except (ImportError, ValueError):
        return False


def plan_serve(job_dir: Path, *, engine: str = "llama.cpp", host: str = "127.0.0.1",
               port: int = 8000, api_key: str | None = None, lora: bool | None = None,
               gguf: str | None = None, n_ctx: int | None = None) -> ServePlan:
    """The server command for a finished local job (nothing is started or written)."""
    if engine not in ENGINES:
        raise UnituneError(f"unknown engine {engine!r}", hint="choose llama.cpp or vllm")
    job = TrainedJob(job_dir)
    job_id = _job_id(job)
    key, generated = api_key, False
    if host not in LOOPBACK and not key:
        key, generated = "ut-" + secrets.token_urlsafe(24), True
    if engine == "vllm":
        plan = _plan_vllm(job, job_id, host, port, lora)
    else:
        plan = _plan_llama_cpp(job, job_id, host, port, gguf, n_ctx)
    plan.api_key, plan.key_generated = key, generated
    if host not in LOOPBACK:
        plan.notes.append(f"binds to {host}: every request needs the API key "
                          "(Authorization: Bearer …)")
    return plan


def _plan_vllm(job: TrainedJob, job_id: str, host: str, port: int,
               lora: bool | None) -> ServePlan:
    exe = vllm_command() or ["vllm"]
    common = ["--host", host, "--port", str(port)]
    use_lora = lora if lora is not None else (
        job.is_peft and job.adapter_type in LORA_SERVABLE and _current_merge(job) is None)
    if use_lora:
        if not job.is_peft or job.adapter_type not in LORA_SERVABLE:
            raise UnituneError(f"vLLM serves LoRA, QLoRA and rsLoRA adapters; this job's is "
                               f"{job.adapter_type}", hint="serve the merged model: --merged")
        cfg = json.loads((job.adapter_dir / "adapter_config.json").read_text())
        rank = max([int(cfg.get("r") or 8), *map(int, (cfg.get("rank_pattern") or {}).values())])
        plan = ServePlan("vllm", [*exe, "serve", job.base_path(), *common,
                                  "--served-model-name", f"{job_id}-base", "--enable-lora",
                                  "--lora-modules", f"{job_id}={job.adapter_dir}",
                                  "--max-lora-rank", str(vllm_rank(rank))],
                         host, port, job_id, "lora",
                         artifacts={"adapter": str(job.adapter_dir), "base": job.base_path()})
        if job.adapter_type == "qlora":
            plan.notes.append("the QLoRA adapter is served on the full-precision base "
                              "(add --quantization bitsandbytes to serve the base in 4-bit)")
        return plan
    if not job.is_peft:
        model_dir, prepare = job.adapter_dir, []
    else:
        merged = _current_merge(job)
        model_dir = merged or job.files.dir / "merged"
        prepare = [] if merged else [f"merge the adapter into {model_dir} (`unitune merge`)"]
    return ServePlan("vllm", [*exe, "serve", str(model_dir), *common, "--served-model-name",
                              job_id], host, port, job_id, "merged", prepare=prepare,
                     artifacts={"merged": str(model_dir)})


def _plan_llama_cpp(job: TrainedJob, job_id: str, host: str, port: int, gguf: str | None,
                    n_ctx: int | None) -> ServePlan:
    from .gguf import exports, read_gguf

    prepare: list[str] = []
    if gguf:
        path = Path(gguf).expanduser().resolve()
        if not path.is_file():
            raise UnituneError(f"no GGUF file {path}", hint="`unitune export JOB DIR --format "
                                                            "gguf` writes one")
    else:
        found = [e for e in exports(job.files.dir) if e.get("format") in ("gguf", "ollama")]
        if found:
            path = Path(found[-1]["file"])
        else:
            path = job.files.dir / "gguf" / "model-f16.gguf"
            prepare.append(f"export the model to GGUF in {path.parent} (`unitune export JOB "
                           f"{path.parent} --format gguf`)")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", host,
            "--port", str(port), "--model_alias", job_id]
    plan = ServePlan("llama.cpp", argv, host, port, job_id, "gguf", prepare=prepare,
                     artifacts={"gguf": str(path)})
    if path.is_file():
        _chat_format(plan, read_gguf(path), n_ctx)
    return plan


def _chat_format(plan: ServePlan, meta: dict[str, Any], n_ctx: int | None) -> None:
    from .chat_format import pieces

    p = pieces(meta.get("chat_template"))
    family = p.family if p is not None else None
    if family:
        plan.argv += ["--chat_format", family]
    else:
        plan.notes.append("chat format: the GGUF's own chat template (llama-cpp-python's "
                          "default)" if meta.get("chat_template") else
                          "the GGUF has no chat template: llama-cpp-python falls back to llama-2")
    ctx = n_ctx or meta.get("context_length")
    if ctx:
        plan.argv += ["--n_ctx", str(int(ctx))]


def prepare(plan: ServePlan, job_dir: Path) -> ServePlan:
    """Do what the plan needs before launch (merge / GGUF export), then re-plan."""
    if not plan.prepare:
        return plan
    if plan.engine == "vllm":
        from .merge import merge

        merge(job_dir)
    else:
        from .gguf import export_gguf

        target = Path(plan.artifacts["gguf"]).parent
        export_gguf(job_dir, target)
        plan.argv[plan.argv.index("--model") + 1] = str(
            Path(json.loads((target / "unitune-export.json").read_text())["file"]))
        plan.artifacts["gguf"] = plan.argv[plan.argv.index("--model") + 1]
        from .gguf import read_gguf

        _chat_format(plan, read_gguf(Path(plan.artifacts["gguf"])), None)
    plan.prepare = []
    return plan


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def healthy(base_url: str, api_key: str | None, timeout: float = 2.0) -> bool:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        return httpx.get(f"{base_url}/models", headers=headers, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def launch(plan: ServePlan, job_dir: Path, *, wait_s: float = 600.0,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start the server detached, wait until it answers `GET /v1/models`, record it in
    `JOB_DIR/serve/server.json`; returns that record. A server that dies or never answers is
    stopped and reported with the end of its log."""
    serve_dir = Path(job_dir) / "serve"
    serve_dir.mkdir(parents=True, exist_ok=True)
    if not port_free(plan.host, plan.port):
        raise UnituneError(f"port {plan.port} on {plan.host} is already in use",
                           hint="choose another with --port N")
    log = serve_dir / f"{plan.engine}-{plan.port}.log"
    child_env = dict(os.environ, **(env or {}), **plan.env)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(plan.argv, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, env=child_env, cwd=str(serve_dir),
                                start_new_session=True)
    record = {"pid": proc.pid, "argv": plan.argv, "engine": plan.engine, "host": plan.host, "port": plan.port,
              "base_url": plan.base_url, "model": plan.model, "mode": plan.mode,
              "command": plan.command(), "log": str(log), "started_at": now_iso(),
              "api_key": REDACTED if plan.api_key else None, "artifacts": plan.artifacts}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UnituneError(f"the {plan.engine} server exited with code {proc.returncode} "
                               f"before it answered:\n{_tail(log)}", hint=f"full log: {log}")
        if healthy(plan.base_url, plan.api_key):
            write_json_atomic(serve_dir / SERVER_FILE, record)
            return record
        time.sleep(0.5)
    _terminate(proc.pid)
    raise UnituneError(f"the {plan.engine} server did not answer within {wait_s:.0f} s "
                       f"(stopped):\n{_tail(log)}", hint=f"raise --wait; full log: {log}")


def _tail(path: Path, lines: int = 8) -> str:
    try:
        from ..redact import redact_text

        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return redact_text("\n".join(text[-lines:])) or ""
    except OSError:
        return ""


def _terminate(pid: int, grace_s: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the server's own session: its workers go too
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def running(job_dir: Path) -> dict[str, Any] | None:
    """The job's recorded server when its process is still alive, else None."""
    from ..procs import pid_running

    record = read_json(Path(job_dir) / "serve" / SERVER_FILE)
    if not record or not pid_running(int(record.get("pid", 0))):
        return None
    try:  # the pid may have been reused by an unrelated process: compare command lines
        cmdline = Path(f"/proc/{int(record['pid'])}/cmdline").read_bytes().split(b"\0")
        if record.get("argv") and [c.decode() for c in cmdline if c] != record["argv"]:
            return None
    except OSError:
        pass
    return record


def stop(job_dir: Path) -> dict[str, Any] | None:
    """Stop the job's recorded server (only the process unitune started); returns its record."""
    path = Path(job_dir) / "serve" / SERVER_FILE
    record = running(job_dir)
    if record is not None:
        _terminate(int(record["pid"]))
    if path.exists():
        record = record or read_json(path)
        path.unlink()
    return record


def register_endpoint(job_id: str, record: dict[str, Any] | None, *,
                      registry: Any = None) -> Any:
    """Store (record) or clear (None) the served endpoint on the job's ModelHandle."""
    from ..job import ModelHandle
    from ..registry import Registry

    reg = registry or Registry()
    rec = reg.get_job(job_id)
    model = rec.model or ModelHandle(backend=rec.backend, model_id=job_id,
                                     base_model=rec.base_model)
    artifacts = {k: v for k, v in model.artifacts.items() if not k.startswith("serve_")}
    if record is None:
        return reg.set_model(rec.id, model.model_copy(update={
            "endpoint": None, "artifacts": artifacts,
            "invoke": f"unitune generate {rec.id} \"your prompt\""}))
    artifacts.update({
        "serve_engine": record["engine"], "serve_model": record["model"],
        "serve_pid": str(record["pid"]), "serve_host": record["host"],
        "serve_port": str(record["port"]), "serve_log": record["log"],
        "serve_mode": record["mode"], "serve_started_at": record["started_at"],
        "serve_protocol": "openai"})
    if record.get("api_key"):
        artifacts["serve_api_key"] = REDACTED
        artifacts["serve_api_key_env"] = CLIENT_KEY_ENV
    return reg.set_model(rec.id, model.model_copy(update={
        "endpoint": record["base_url"], "artifacts": artifacts,
        "invoke": f"OpenAI-compatible: base_url={record['base_url']} model={record['model']}"}))


def missing_engine(engine: str) -> MissingDependency:
    if engine == "vllm":
        return MissingDependency(
            "vLLM is not installed here (unitune never installs it: it pins its own torch and "
            "transformers)", hint="install it in its own environment (`pip install vllm`, GPU "
            "machine) and put `vllm` on PATH or set UNITUNE_VLLM; --dry-run prints the command")
    return MissingDependency("llama-cpp-python (with its server extra) is not installed here",
                             hint="pip install 'llama-cpp-python[server]' (builds llama.cpp, "
                                  "~10 min on 2 cores); --dry-run prints the command")
