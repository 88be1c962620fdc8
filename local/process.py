"""The worker process of a local job: start it detached (its own session, output to
JOB_DIR/worker.log), tell whether it still runs, ask it to stop (SIGTERM to its group).

The argv comes from `launch.command` (one process, torchrun or accelerate launch); every launch
is recorded in JOB_DIR/job.json.
"""
from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

from ..paths import unitune_home
from ..procs import pid_running
from .jobfiles import JobFiles, now_iso, read_json, write_json_atomic
from .preflight import cuda_visible

_CHILDREN: dict[int, subprocess.Popen] = {}  # keep Popen objects so exits are reaped


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


def worker_pid(files: JobFiles) -> int | None:
    try:
        return int(files.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def start(files: JobFiles, options: dict[str, Any], *, resume: bool) -> int:
    """Start the job's worker detached; returns its pid (also written to JOB_DIR/pid)."""
    from .launch import command

    cmd = command(files.dir.resolve(), options, resume=resume, cuda=cuda_visible())
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


def stop(pid: int | None) -> None:
    """SIGTERM the worker's process group (it checkpoints and ends `cancelled`)."""
    if not pid or not pid_alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)  # the worker leads its own session/group
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
