"""`unitune serve`: a finished local job behind an OpenAI-compatible server (vLLM or llama.cpp)."""
from __future__ import annotations

from typing import Optional

import typer

from .common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(job: str = typer.Argument(..., help="Local job id (or prefix) or job directory."),
              engine: str = typer.Option("llama.cpp", "--engine", help="llama.cpp "
                                         "(llama-cpp-python on the job's GGUF) or vllm."),
              host: str = typer.Option("127.0.0.1", "--host", help="Bind address. Anything but "
                                       "loopback requires an API key (one is generated)."),
              port: int = typer.Option(8000, "--port", min=1, max=65535),
              api_key: Optional[str] = typer.Option(None, "--api-key", envvar=
                                                    "UNITUNE_SERVE_API_KEY", help="Require this "
                                                    "key (Authorization: Bearer KEY)."),
              lora: Optional[bool] = typer.Option(None, "--lora/--merged", help="vLLM: serve "
                                                  "base + adapter (--enable-lora) or the merged "
                                                  "model (default: merged when a current merge "
                                                  "exists, else the adapter)."),
              gguf: Optional[str] = typer.Option(None, "--gguf", help="llama.cpp: this GGUF "
                                                 "(default: the job's newest GGUF export)."),
              dry_run: bool = typer.Option(False, "--dry-run", help="Print the command; start "
                                           "nothing."),
              detach: bool = typer.Option(False, "--detach", "-d", help="Leave the server "
                                          "running and return (stop it with --stop)."),
              wait: float = typer.Option(600.0, "--wait", min=1, help="Seconds to wait for the "
                                         "server to answer."),
              stop_it: bool = typer.Option(False, "--stop", help="Stop the job's server and "
                                           "unregister its endpoint."),
              json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Serve a local job through vLLM or llama.cpp; the endpoint is registered with the job
        so `unitune generate JOB` and `unitune eval JOB` use it (OpenAI-compatible)."""
        from ..local import serving
        from ..local.merge import resolve_job_dir

        job_dir = resolve_job_dir(job)
        out, err = console(), console(stderr=True)
        if stop_it:
            record = serving.stop(job_dir)
            _unregister(job_dir)
            if json_out:
                print_json({"stopped": record})
            else:
                out.print(f"stopped {record['engine']} server pid {record['pid']} "
                          f"({record['base_url']})" if record else "no server was running",
                          markup=False)
            return
        plan = serving.plan_serve(job_dir, engine=engine, host=host, port=port,
                                  api_key=api_key, lora=lora, gguf=gguf)
        installed = serving.vllm_command() is not None if plan.engine == "vllm" \
            else serving.llama_cpp_available()
        if dry_run or not installed:
            if json_out:
                print_json({"dry_run": True, "installed": installed, **plan.to_dict()})
            else:
                _show_plan(out, plan)
            if plan.key_generated:
                err.print(f"API key (shown once, stored nowhere): {plan.api_key}", markup=False)
            if not dry_run:
                raise serving.missing_engine(plan.engine)
            return
        existing = serving.running(job_dir)
        if existing is not None:
            from ..errors import UnituneError

            raise UnituneError(f"this job is already served at {existing['base_url']} (pid "
                               f"{existing['pid']})", hint=f"unitune serve {job} --stop")
        for step in plan.prepare:
            err.print(f"first: {step}", markup=False)
        plan = serving.prepare(plan, job_dir)
        err.print(f"starting: {plan.command()}", markup=False)
        record = serving.launch(plan, job_dir, wait_s=wait)
        registered = _register(job_dir, record)
        if json_out:
            print_json({**record, "registered": registered, "key_generated": plan.key_generated})
        else:
            out.print(f"serving {record['model']} at {record['base_url']} ({plan.engine}, pid "
                      f"{record['pid']}, log {record['log']})", markup=False)
            if registered:
                out.print(f"registered with the job: `unitune generate {registered} \"…\"` and "
                          f"`unitune eval {registered}` use it", markup=False)
        if plan.key_generated:
            err.print(f"API key (shown once, stored redacted): {plan.api_key}\n"
                      f"clients: export {serving.CLIENT_KEY_ENV}=<that key>", markup=False)
        if detach:
            if not json_out:
                out.print(f"stop it: unitune serve {job} --stop", markup=False)
            return
        _foreground(job_dir, record, err)


def _show_plan(out, plan) -> None:
    for step in plan.prepare:
        out.print(f"# first: {step}", markup=False)
    out.print(plan.command(), markup=False, soft_wrap=True)
    out.print(f"# OpenAI-compatible at {plan.base_url}, model {plan.model!r} ({plan.mode})",
              markup=False, style="dim")
    for note in plan.notes:
        out.print(f"# {note}", markup=False, style="dim")


def _job_id(job_dir) -> str | None:
    from ..local.jobfiles import read_json

    return (read_json(job_dir / "job.json") or {}).get("job_id")


def _register(job_dir, record) -> str | None:
    from ..errors import JobNotFound
    from ..local.serving import register_endpoint

    job_id = _job_id(job_dir)
    if not job_id:
        return None
    try:
        return register_endpoint(job_id, record).id
    except JobNotFound:  # a job folder the registry does not know: served, not registered
        return None


def _unregister(job_dir) -> None:
    _register(job_dir, None)


def _foreground(job_dir, record, err) -> None:
    """Stay attached until the server exits or Ctrl-C, then stop it and unregister."""
    import time

    from ..local import serving

    err.print("serving in the foreground; Ctrl-C stops the server", markup=False)
    try:
        while serving.running(job_dir) is not None:
            time.sleep(1.0)
        err.print("the server exited", markup=False)
    except KeyboardInterrupt:
        pass
    finally:
        serving.stop(job_dir)
        _unregister(job_dir)
