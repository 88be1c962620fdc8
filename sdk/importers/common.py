"""Shared steps of every importer: reading the tool's file safely, turning its dataset reference
into a local JSONL path (or a step the user must take first), filling in one model per cloud
backend, and checking that the result is a valid unitune spec."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .result import ImportResult

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
CONVERTIBLE_SUFFIXES = (".json", ".csv", ".tsv")

# Key prefixes / names that configure where and how a tool writes logs, checkpoints and uploads.
# unitune keeps each job's files in its own job folder and tracks metrics itself.
INFRA_REASON = ("where and how the tool writes outputs, logs or uploads; unitune keeps each "
                "job's files in its job folder (`unitune export ID DIR` copies the model)")


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or JSON mapping from `path`, with unitune's hostile-input limits (size, aliases,
    depth, duplicate keys); SpecError naming the file otherwise."""
    from ..spec import MAX_SPEC_BYTES, safe_yaml

    p = Path(path)
    if not p.is_file():
        what = "a directory" if p.is_dir() else "missing"
        raise SpecError(f"cannot read {p}: {what}", file=str(p), hint="give the path of the "
                        "tool's config file")
    if p.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{p} is {p.stat().st_size:,} bytes; a config is at most "
                        f"{MAX_SPEC_BYTES:,}", file=str(p), hint="is this a data file?")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"{p}: not UTF-8 text", file=str(p), hint="save it as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read {p}: {exc.strerror}", file=str(p)) from None
    raw = safe_yaml(text, str(p))  # JSON is YAML
    if not isinstance(raw, dict):
        raise SpecError(f"{p}: expected a mapping of settings, found "
                        f"{type(raw).__name__}", file=str(p), hint="is this the right file?")
    return raw


class ConfigSource:
    """A tool's config being imported: `take(key)` reads a key and marks it handled (an empty
    value is recorded as such), so `finish` can list every key nobody took."""

    def __init__(self, path: str | os.PathLike, tool: str) -> None:
        self.cfg = read_config(path)
        self.result = ImportResult(tool, str(path))
        self.base_dir = Path(path).resolve().parent
        self.used: set[str] = set()

    def take(self, key: str) -> Any:
        self.used.add(key)
        value = self.cfg.get(key)
        if key in self.cfg and is_empty(value):
            self.result.empty.append(key)
            return None
        return value


def map_trainer_batch_and_epochs(r: ImportResult, take: Any) -> None:
    """The Hugging Face TrainingArguments fields LLaMA-Factory and TRL configs share: the
    per-device micro-batch × accumulation, and whole epochs."""
    micro, gas = take("per_device_train_batch_size"), take("gradient_accumulation_steps")
    if micro is not None:
        r.set("hyperparameters.batch_size", int(micro) * int(gas or 1),
              "per_device_train_batch_size",
              note=f"per_device_train_batch_size {micro} × gradient_accumulation_steps "
                   f"{gas or 1} (per process)")
        r.set("backend_options.local.per_device_batch_size", int(micro),
              "per_device_train_batch_size")
    if gas is not None:
        r.set("hyperparameters.gradient_accumulation_steps", int(gas),
              "gradient_accumulation_steps")
    map_epochs(r, take, "num_train_epochs")


def map_epochs(r: ImportResult, take: Any, key: str) -> None:
    """A tool's epoch count as whole `hyperparameters.epochs` (a fraction is listed as skipped)."""
    epochs = take(key)
    if epochs is not None:
        n = whole_epochs(epochs)
        if n is None:
            r.skip(key, epochs, "unitune trains whole epochs; use "
                   "hyperparameters.max_steps for a partial one")
        else:
            r.set("hyperparameters.epochs", n, key)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def slug(text: str, limit: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._").lower()
    return (s or "imported")[:limit].rstrip("-._") or "imported"


def whole_epochs(value: Any) -> int | None:
    """An epoch count as an int when it is whole (3, 3.0, "3"); None otherwise."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if f >= 1 and f.is_integer():
        return int(f)
    return None


def relative_to(path: Path, out_dir: Path) -> str:
    """`path` as the spec should name it: relative to the spec's folder when below it."""
    try:
        return os.path.relpath(path.resolve(), out_dir.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def set_data(result: ImportResult, which: str, ref: str, fmt: str | None, *, base_dir: Path,
             out_dir: Path, source: str, hub_split: str | None = None) -> None:
    """Point data.<which> at a local JSONL for `ref`: the file itself, the JSONL that `unitune
    convert` will write from it, or (a hub dataset / a file not here) the path to export it to,
    with the step to take recorded in `result.data_steps`."""
    target = f"data.{which}"
    ref = str(ref)
    candidate = Path(ref).expanduser()
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    local = candidate.is_file()
    lower = ref.lower()
    if local and lower.endswith(JSONL_SUFFIXES):
        result.set(target, relative_to(candidate, out_dir), source)
        return
    is_file_name = lower.endswith(CONVERTIBLE_SUFFIXES + JSONL_SUFFIXES)
    stem = slug(Path(ref).name.split(".")[0] if is_file_name else ref.replace("/", "_"))
    dest = f"data/{stem}{'' if which == 'train' else '-' + which}.jsonl"
    if local and lower.endswith(CONVERTIBLE_SUFFIXES):
        to = fmt or "messages"
        result.set(target, dest, source, note=f"converted from {ref}")
        src = relative_to(candidate, out_dir)
        result.data_steps[which] = (f"convert {src} to JSONL: `unitune convert {src} --to {to} "
                                    f"-o {dest}` (paths relative to the spec's folder)")
        return
    if local:
        result.set(target, dest, source, note=f"export of {ref}")
        result.data_steps[which] = (f"{ref} is not a JSONL file unitune reads; export it as "
                                    f"JSON lines to {dest}")
        return
    looks_local = lower.endswith(CONVERTIBLE_SUFFIXES + JSONL_SUFFIXES + (".parquet", ".arrow")) \
        or ref.startswith((".", "/", "~"))
    result.set(target, dest, source, note=f"{'local file' if looks_local else 'dataset'} {ref}")
    if looks_local:
        result.data_steps[which] = (f"{ref} was not found next to the config; copy it (as "
                                    f"JSONL) to {dest}")
    else:
        split = hub_split or ("train" if which == "train" else "validation")
        result.data_steps[which] = (
            f"{ref} is a Hugging Face Hub dataset; unitune trains on local JSONL (it never "
            f"downloads at run time). Export it once: `python -c \"import datasets; "
            f"datasets.load_dataset('{ref}', split='{split}').to_json('{dest}', "
            f"force_ascii=False)\"` (relative to the spec's folder), or pass `--data FILE`")


def fill_cloud_models(result: ImportResult, method: str) -> None:
    """One model per cloud backend (the catalog's default for that backend that supports the
    method), so the imported recipe moves to any backend with `--backend`."""
    from ..catalog import models

    models_map = result.spec.setdefault("models", {})
    chosen = []
    for backend in ("openai", "azure", "bedrock", "vertex"):
        if backend in models_map:
            continue
        for info in models(backend):
            if info.default and method in info.methods and not info.deprecated:
                models_map[backend] = info.model
                chosen.append(f"{backend}: {info.model}")
                break
    if chosen:
        result.notes.append("cloud models chosen by unitune (the catalog's default per backend; "
                            "change them to taste, `unitune models`): " + ", ".join(chosen))


def finish(result: ImportResult, *, name: str | None, data: str | None, out_dir: Path) -> None:
    """Apply the user's overrides, order the spec's keys and check it is a valid unitune spec."""
    from ..spec import JobSpec

    if name:
        result.spec["name"] = name
    if data:
        p = Path(data).expanduser()
        result.set("data.train", relative_to(p, out_dir) if p.exists() else data,
                   "--data")
        # the config's dataset type described its own data, not this file: detect it
        result.spec.get("data", {}).pop("format", None)
        result.mapped = [m for m in result.mapped if m.target != "data.format"]
        result.data_steps.pop("train", None)
    order = ("name", "backend", "base_model", "models", "data", "method", "adapter",
             "hyperparameters", "backend_options", "suffix", "metadata")
    spec = {k: result.spec[k] for k in order if k in result.spec and not is_empty(result.spec[k])}
    spec.update({k: v for k, v in result.spec.items() if k not in spec and not is_empty(v)})
    result.spec = spec
    try:
        JobSpec.from_dict(spec, source=f"spec imported from {result.source}")
    except SpecError as exc:
        raise SpecError(f"{result.source}: the imported settings do not make a valid unitune "
                        f"spec:\n{exc.message.split(chr(10), 1)[-1]}", file=result.source,
                        hint="fix the value in the source config, or edit the written spec") \
            from None
