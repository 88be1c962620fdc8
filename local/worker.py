"""The detached training process: `python -m unitune.local.worker JOB_DIR [--resume]`.

Reads JOB_DIR/request.json (the request `LocalProvider.translate` made: the spec with its prepared
data files and resolved base model, and the typed options), runs the method's recipe and keeps
JOB_DIR's files current (status.json replaced atomically, metrics.jsonl, events.jsonl,
checkpoints, the final adapter). SIGTERM asks for a clean stop: the worker saves a checkpoint at
the end of the current step and ends `cancelled`. Under torchrun / accelerate each rank runs this
module; rank 0 writes the job files.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    from .training import CANCEL

    CANCEL.set()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)  # before anything slow
    if not argv:
        print("usage: python -m unitune.local.worker JOB_DIR [--resume]", file=sys.stderr)
        return 2
    from .jobfiles import JobFiles, now_iso
    from .training import CANCEL, RunContext

    files = JobFiles(argv[0])
    resume = "--resume" in argv
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    main_rank = rank == 0

    def log(msg: str) -> None:
        print(msg, flush=True)

    def cancelled_before_start() -> bool:
        return CANCEL.is_set() or files.cancel_flag.exists()

    if main_rank:
        files.update_status(status="running", raw_status="starting", worker_pid=os.getpid(),
                            world_size=world, started_at=now_iso(), error=None)
        files.event("worker started" + (" (resume)" if resume else ""),
                    data={"pid": os.getpid(), "world_size": world})
    try:
        if cancelled_before_start():
            raise KeyboardInterrupt
        from ..spec import JobSpec

        if files.request.exists():
            request = json.loads(files.request.read_text(encoding="utf-8"))
            spec = JobSpec.from_dict(request["spec"], source=str(files.request))
            options = dict(request.get("options") or {})
        else:  # a job directory written before request.json existed
            spec = JobSpec.from_dict(json.loads(files.spec.read_text(encoding="utf-8")),
                                     source=str(files.spec))
            job = json.loads(files.job.read_text(encoding="utf-8")) if files.job.exists() else {}
            options = dict(job.get("options") or spec.options("local"))
        if getattr(spec, "tracking", None) is not None:  # the spec's `tracking:` wins
            tracking = spec.tracking
            options["tracking"] = tracking.model_dump(exclude_none=True) \
                if hasattr(tracking, "model_dump") else tracking
        ctx = RunContext(files=files, options=options, resume=resume, rank=rank, world_size=world,
                         log=log)
        if spec.method == "dpo":
            from .dpo import run
        else:
            from .sft import run
        if cancelled_before_start():
            raise KeyboardInterrupt
        if main_rank:
            files.update_status(raw_status="loading")
        result = run(spec, ctx)
    except KeyboardInterrupt:
        if main_rank:
            files.update_status(status="cancelled", raw_status="cancelled", finished_at=now_iso(),
                                checkpoint=None)
            files.event("cancelled before training started")
        return 0
    except BaseException as exc:  # noqa: BLE001 - the job must end `failed` with the reason
        from ..errors import UnituneError

        traceback.print_exc()
        message = exc.message if isinstance(exc, UnituneError) else f"{type(exc).__name__}: {exc}"
        hint = getattr(exc, "hint", None)
        if main_rank:
            files.update_status(status="failed", raw_status="failed", finished_at=now_iso(),
                                error={"message": message, "code": type(exc).__name__,
                                       "hint": hint})
            files.event(f"failed: {message}", level="error")
        return 1
    if main_rank:
        if result["outcome"] == "cancelled":
            files.update_status(status="cancelled", raw_status="cancelled", finished_at=now_iso(),
                                checkpoint=result.get("checkpoint"), step=result.get("step"))
            files.event(f"cancelled at step {result.get('step')}; checkpoint "
                        f"{result.get('checkpoint')}")
        else:
            files.update_status(status="succeeded", raw_status="succeeded", finished_at=now_iso(),
                                adapter=result["adapter"], step=result.get("step"))
            files.event(f"succeeded: adapter saved to {result['adapter']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
