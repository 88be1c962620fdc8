"""After training: find a local job's files, merge its adapter onto the base, export a
self-contained model directory.

Merging always reloads the base in full precision (fp32) — never onto a 4-bit/8-bit base, whose
rounding would be baked into the merged weights — and folds the adapter in with PEFT's
`merge_and_unload`. Prompt-learning adapters (prefix, p_tuning, prompt_tuning) learn virtual
tokens, not weight deltas: they cannot be merged, and the error says so.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import JobNotFound, UnituneError
from .jobfiles import JobFiles, read_json

UNMERGEABLE = ("prefix", "p_tuning", "prompt_tuning")


def resolve_job_dir(job: str) -> Path:
    """A local job's directory from a job id (or prefix), a remote id, or the directory itself."""
    p = Path(job).expanduser()
    if (p / "status.json").exists():
        return p
    from ..paths import unitune_home

    direct = unitune_home() / "jobs" / job
    if (direct / "status.json").exists():
        return direct
    try:
        from ..registry import Registry
    except ImportError:  # pragma: no cover
        Registry = None  # type: ignore[assignment]
    if Registry is not None:
        rec = Registry().get_job(job)
        if rec.backend != "local":
            raise UnituneError(f"job {rec.id} ran on {rec.backend}, not locally",
                               hint="merge/export/generate work on local jobs; cloud models are "
                                    "served by their vendor")
        ref = rec.ref
        if ref is not None and ref.extra.get("job_dir"):
            return Path(ref.extra["job_dir"])
        if rec.work_dir and (Path(rec.work_dir) / "status.json").exists():
            return Path(rec.work_dir)
    raise JobNotFound(f"no local job {job!r}", hint="`unitune list --backend local` shows them")


class TrainedJob:
    """What merge/export/generate need to know about a finished local job."""

    def __init__(self, job_dir: Path) -> None:
        self.files = JobFiles(job_dir)
        status = self.files.read_status()
        if status.get("status") != "succeeded" or not status.get("adapter"):
            raise UnituneError(f"job in {job_dir} has not succeeded (status: "
                               f"{status.get('status', 'unknown')}); there is no final adapter yet",
                               hint="wait for it (`unitune watch ID`) or resume it")
        self.adapter_dir = Path(status["adapter"])
        spec = read_json(self.files.spec) or {}
        job = read_json(self.files.job) or {}
        self.adapter_type = (spec.get("adapter") or {}).get("type", "lora")
        self.base_model = job.get("base_model") or spec.get("base_model")
        self.is_peft = (self.adapter_dir / "adapter_config.json").exists()

    def base_path(self) -> str:
        from .models import resolve

        return resolve(self.base_model).path


def load_tuned(job: TrainedJob, dtype=None):
    """(model, tokenizer): the base in full precision with the adapter attached (or the full model)."""
    from .quiet import quiet_libraries

    quiet_libraries()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    tok = AutoTokenizer.from_pretrained(job.adapter_dir)
    if not job.is_peft:
        return AutoModelForCausalLM.from_pretrained(job.adapter_dir, dtype=dtype), tok
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(job.base_path(), dtype=dtype)
    return PeftModel.from_pretrained(base, str(job.adapter_dir)), tok


def merge(job_dir: Path, out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Merge the job's adapter into a full-precision copy of its base; returns the output dir.

    A non-empty `out_dir` is refused (a typo such as `-o ~` must never wipe a folder) unless it
    holds an earlier merge (its `unitune.json` lists what unitune wrote) and `force` is given, or
    it is the job's own default `merged/`; even then only the files unitune wrote are replaced."""
    job = TrainedJob(job_dir)
    default = job.files.dir / "merged"
    out = Path(out_dir) if out_dir else default
    _check_target(out, force=force or out.resolve() == default.resolve())
    if job.adapter_type in UNMERGEABLE:
        raise UnituneError(f"a {job.adapter_type} adapter learns virtual tokens, not weight "
                           "changes, so it cannot be merged into the base",
                           hint="use it as an adapter: `unitune generate ID ...` loads it with PEFT")
    model, tok = load_tuned(job)
    if job.is_peft:
        model = model.merge_and_unload()
    _save(model, tok, out, job)
    return out


MARKER = "unitune.json"


def _written_by_unitune(out: Path) -> list[str] | None:
    """The files an earlier merge wrote into `out` (from its marker), or None."""
    try:
        files = json.loads((out / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return [f for f in files if isinstance(f, str) and "/" not in f and f not in ("", ".", "..")] \
        if isinstance(files, list) else None


def _check_target(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UnituneError(f"{out} exists and is not a directory", hint="choose a new directory")
    if not out.exists() or not any(out.iterdir()):
        return
    if _written_by_unitune(out) is None:
        raise UnituneError(f"{out} exists, is not empty and holds no earlier unitune merge; "
                           "nothing was written", hint="choose a new or empty directory")
    if not force:
        raise UnituneError(f"{out} already holds a merged model", hint="choose a new directory, "
                           "or add --force to replace the files unitune wrote there (anything "
                           "else in it is kept)")


def _save(model, tok, out: Path, job: TrainedJob) -> None:
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if getattr(tok, "chat_template", None) and not (tmp / "chat_template.jinja").exists():
            (tmp / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
        written = sorted(p.name for p in tmp.iterdir()) + [MARKER]
        (tmp / MARKER).write_text(json.dumps({
            "base_model": job.base_model, "adapter": str(job.adapter_dir),
            "adapter_type": job.adapter_type, "merged_in": "float32", "files": written},
            indent=2))
        out.mkdir(exist_ok=True)
        for name in _written_by_unitune(out) or []:  # only what an earlier merge wrote
            old = out / name
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export(job_dir: Path, dest: Path) -> Path:
    """A self-contained model directory (safetensors + tokenizer + chat template) loadable with
    `AutoModelForCausalLM.from_pretrained(dest)` and by vLLM; merged unless already full."""
    job = TrainedJob(job_dir)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise UnituneError(f"{dest} exists and is not empty", hint="choose a new directory")
    merged = job.files.dir / "merged"
    if job.is_peft and (merged / "config.json").exists():
        shutil.copytree(merged, dest, dirs_exist_ok=True)
        return dest
    return merge(job_dir, dest)
