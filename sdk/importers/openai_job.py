"""An OpenAI fine-tuning job (the `fine_tuning.job` object as the API returns it) → unitune spec.

The job names its data by file id (`file-abc123`). The spec points at `data/<file id>.jsonl`;
`fetch_data=True` downloads the files there through the `openai` SDK (OPENAI_API_KEY /
OPENAI_BASE_URL as usual), otherwise the step is listed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from .common import fill_cloud_models, finish, is_empty, read_config, slug, whole_epochs
from .result import ImportResult

# Fields describing that one run (its id, state and results), not how to train.
JOB_STATE = ("id", "object", "created_at", "finished_at", "fine_tuned_model", "organization_id",
             "result_files", "status", "trained_tokens", "error", "estimated_finish",
             "usage_metrics", "shared_with_openai", "checkpoints")


def import_openai_job(path: str | Path, *, out_dir: Path, name: str | None = None,
                      data: str | None = None, fetch_data: bool = False) -> ImportResult:
    job = read_config(path)
    if job.get("object") == "list" and isinstance(job.get("data"), list):
        if len(job["data"]) != 1:
            raise SpecError(f"{path}: a list of {len(job['data'])} jobs", file=str(path),
                            hint="save one job (`client.fine_tuning.jobs.retrieve(ID)`) and "
                                 "import that")
        job = job["data"][0]
    if job.get("object") not in (None, "fine_tuning.job") or "model" not in job:
        raise SpecError(f"{path}: not an OpenAI fine-tuning job object (no `model`, or "
                        f"object={job.get('object')!r})", file=str(path),
                        hint="save the JSON of `client.fine_tuning.jobs.retrieve(ID)`")
    r = ImportResult("openai-job", str(path))
    used: set[str] = set()

    def take(key: str) -> Any:
        used.add(key)
        value = job.get(key)
        if key in job and is_empty(value):
            r.empty.append(key)
            return None
        return value

    suffix = take("user_provided_suffix")
    r.set("name", slug(name or suffix or str(job.get("id") or Path(path).stem)), None)
    r.set("backend", "openai")
    model = str(take("model"))
    r.set("models.openai", model, "model")
    if not model.startswith("ft:"):
        r.set("models.azure", model, "model", note="Azure OpenAI tunes the same models by name")

    method = take("method") or {}
    mtype = str(method.get("type") or "supervised")
    if mtype not in ("supervised", "dpo"):
        raise SpecError(f"{path}: method.type {mtype!r} has no unitune equivalent (unitune "
                        "trains supervised and dpo jobs)", file=str(path), field="method.type",
                        hint="import a supervised or DPO job")
    hp_src = f"method.{mtype}.hyperparameters"
    hp = ((method.get(mtype) or {}).get("hyperparameters")) if method else None
    top = take("hyperparameters")
    if not hp and isinstance(top, dict):
        hp, hp_src = top, "hyperparameters"
    elif top and isinstance(top, dict) and hp:
        r.skip("hyperparameters", top, f"the deprecated copy of {hp_src}", kind="job-state")
    if mtype == "dpo":
        r.set("method", "dpo", "method.type")
    for key, value in (hp or {}).items():
        src = f"{hp_src}.{key}"
        if value is None:
            r.empty.append(src)
        elif key == "n_epochs":
            if value == "auto":
                r.set("hyperparameters.epochs", "auto", src)
            elif whole_epochs(value) is not None:
                r.set("hyperparameters.epochs", whole_epochs(value), src)
            else:
                r.skip(src, value, "not a whole number of epochs")
        elif key == "batch_size":
            r.set("hyperparameters.batch_size", value if value == "auto" else int(value), src)
        elif key == "learning_rate_multiplier":
            if value != "auto":
                r.set("hyperparameters.learning_rate_multiplier", float(value), src)
        elif key == "beta":
            if value != "auto":
                r.set("hyperparameters.beta", float(value), src)
        else:
            r.skip(src, value, "no unitune equivalent")

    seed = take("seed")
    if seed is not None:
        r.set("hyperparameters.seed", int(seed), "seed")
    if suffix:
        r.set("suffix", str(suffix), "user_provided_suffix")
    meta = take("metadata")
    if isinstance(meta, dict) and meta:
        r.set("metadata", {str(k): str(v) for k, v in meta.items()}, "metadata")
    integrations = take("integrations")
    if integrations:
        r.skip("integrations", integrations, "unitune does not send vendor integrations "
               "(Weights & Biases); the job's metrics are in `unitune metrics ID`")

    files = {}
    for which, key in (("train", "training_file"), ("validation", "validation_file")):
        file_id = take(key)
        if not file_id:
            continue
        dest = f"data/{slug(str(file_id))}{'' if which == 'train' else '-validation'}.jsonl"
        r.set(f"data.{which}", dest, key, note=f"OpenAI file {file_id}")
        files[which] = (str(file_id), dest)
        r.data_steps[which] = (
            f"download {file_id} to {dest} (relative to the spec's folder): `unitune import "
            f"openai-job {Path(path).name} -o SPEC --fetch-data`, or `python -c \"from openai "
            f"import OpenAI; open('{dest}', 'wb').write(OpenAI().files.content('{file_id}')"
            f".read())\"`")
    if "train" not in files and not data:
        raise SpecError(f"{path}: the job has no training_file", file=str(path),
                        field="training_file", hint="pass --data FILE")

    for key, value in job.items():
        if key in used:
            continue
        if key in JOB_STATE:
            r.skip(key, value, "the state of that run, not a training setting", kind="job-state")
        elif is_empty(value):
            r.empty.append(key)
        else:
            r.skip(key, value, "no unitune equivalent")
    r.account_for(job, used)
    fill_cloud_models(r, "dpo" if mtype == "dpo" else "sft")
    r.notes.append("no local model: add `models: {local: <Hugging Face id>}` to train on your "
                   "own GPU")
    finish(r, name=name, data=data, out_dir=out_dir)
    if fetch_data and not data:
        for which, (file_id, dest) in files.items():
            _download(file_id, out_dir / dest)
            r.data_steps.pop(which, None)
    return r


def _download(file_id: str, dest: Path) -> None:
    """Download an OpenAI file through the SDK (errors mapped to unitune's)."""
    from ..errors import UnituneError

    try:
        from openai import OpenAI, OpenAIError
    except ImportError as exc:
        from ..errors import MissingDependency

        raise MissingDependency("the openai SDK is needed for --fetch-data",
                                hint="pip install 'unitune[openai]'") from exc
    try:
        client = OpenAI()
        content = client.files.content(file_id).read()
    except OpenAIError as exc:
        from ..redact import redact_text

        raise UnituneError(f"cannot download {file_id}: {redact_text(str(exc))}",
                           hint="check OPENAI_API_KEY (and OPENAI_BASE_URL) and that the file "
                                "still exists") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(dest)
