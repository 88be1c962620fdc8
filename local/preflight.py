"""What the local provider checks before a job exists, without torch and without the network.

The base model must be loadable offline (the embedded `unitune/tiny-chat`, a local model
directory, or a Hugging Face id already in the hub cache); the adapter, method and options must
fit this machine as far as that is knowable from files (no CUDA import); the prepared data must
be the kind the method trains on. Each check returns problems (never raises), so `plan` and
`train` report every one at once.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..data.report import Problem
from .tiny import TINY_ID

PATH_PREFIXES = ("/", "./", "../", "~")


def _error(code: str, message: str, path: str | None = None, hint: str | None = None,
           **kw: Any) -> Problem:
    return Problem(code=code, message=message, severity="error", path=path, hint=hint,
                   target="local", **kw)


def cuda_visible() -> bool:
    """An NVIDIA driver is present (the worker decides for real with torch)."""
    return bool(shutil.which("nvidia-smi")) or Path("/proc/driver/nvidia/version").exists()


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def in_hub_cache(model: str) -> bool:
    """Whether a snapshot of hub model `model` with a config.json is in the local cache."""
    repo = hub_cache() / ("models--" + model.replace("/", "--"))
    snapshots = repo / "snapshots"
    try:
        main = (repo / "refs" / "main").read_text().strip()
        if (snapshots / main / "config.json").exists():
            return True
    except OSError:
        pass
    return snapshots.is_dir() and any((s / "config.json").exists() for s in snapshots.iterdir())


def resolve_model(model: str, source_dir: str | None, field: str) -> tuple[str, list[Problem]]:
    """The base model as the worker will load it (a local directory made absolute) and the
    problems that stop it from loading offline."""
    if model == TINY_ID:
        return model, []
    raw = Path(model).expanduser()
    candidates = [raw] if raw.is_absolute() else \
        ([Path(source_dir) / raw] if source_dir else []) + [Path.cwd() / raw]
    for p in candidates:
        if p.exists():
            if not (p / "config.json").is_file():
                return model, [_error("model_not_found", f"model path {p} is not a model "
                                      "directory (no config.json)", field,
                                      "point it at a directory saved with save_pretrained "
                                      "(config.json, *.safetensors, tokenizer files)")]
            return str(p.resolve()), []
    how = (f"download it once where the hub is reachable: `hf download {model}` fills the "
           f"cache, or `hf download {model} --local-dir DIR` and set {field} to DIR; "
           f"{TINY_ID} needs no download")
    if model.startswith(PATH_PREFIXES) or model.count("/") > 1:
        return model, [_error("model_not_found", f"model directory {model} does not exist",
                              field, f"check {field} (relative paths start at the spec file)")]
    if not in_hub_cache(model):
        return model, [_error("model_not_found", f"model {model!r} is neither a local directory "
                              f"nor in the Hugging Face cache ({hub_cache()}); the local backend "
                              "trains offline", field, how)]
    return model, []


def hardware_problems(spec: Any, options: Any, adapter_support: Any,
                      has: Any) -> list[Problem]:
    """Adapter, method and option choices this machine cannot run (knowable without torch)."""
    out: list[Problem] = []
    kind = spec.adapter.type
    if not adapter_support:
        out.append(_error("unsupported_adapter", adapter_support.reason or
                          f"adapter {kind} is not supported locally", "adapter.type"))
    tm = spec.adapter.target_modules
    if tm and any(n == "lm_head" or n.endswith(".lm_head") for n in ([tm] if isinstance(tm, str)
                                                                      else tm)):
        out.append(_error("lm_head_adapter", "TRL rejects an adapter on lm_head (it computes "
                          "the output layer through a fused loss)", "adapter.target_modules",
                          "drop lm_head or leave target_modules unset (all-linear)"))
    gpu = cuda_visible()
    opt = "backend_options.local"
    if options.device in ("cuda", "gpu") and not gpu:
        out.append(_error("no_gpu", f"device {options.device} was asked for but this machine "
                          "shows no NVIDIA GPU", f"{opt}.device", "use device: auto or cpu"))
    if options.device == "mps" and sys.platform != "darwin":
        out.append(_error("no_gpu", "device mps needs Apple silicon (macOS)", f"{opt}.device",
                          "use device: auto or cpu"))
    on_cpu = options.device == "cpu" or (options.device == "auto" and not gpu)
    accelerate = options.strategy != "ddp" or options.launcher == "accelerate"
    if options.gpus > 1 and accelerate:
        if on_cpu:
            what = (f"strategy {options.strategy} shards the model across GPUs"
                    if options.strategy != "ddp" else "launcher accelerate runs GPU processes")
            key = "strategy" if options.strategy != "ddp" else "launcher"
            out.append(_error("no_gpu", f"{what}; this job would run on CPUs", f"{opt}.{key}",
                              "use strategy: ddp (launcher auto) to run N CPU processes "
                              "through torchrun"))
        if options.strategy == "deepspeed" and not has("deepspeed"):
            out.append(_error("missing_package", "strategy deepspeed needs the deepspeed "
                              "package", f"{opt}.strategy", "pip install deepspeed"))
    return out


def data_problems(spec: Any, prepared: Any) -> list[Problem]:
    """The prepared files hold what the method trains on: chat / prompt-completion examples for
    sft, preference pairs for dpo (the first example decides; mixed files are refused by the
    core's validation already)."""
    from ..data.dataset import load_examples
    from ..data.example import PreferenceExample
    from ..data.report import Report

    from ..errors import UnituneError

    out: list[Problem] = []
    for which, f in prepared.files.items():
        try:
            first = next(iter(load_examples(f.path, spec.data.format or "auto",
                                            Report(file=str(f.path)))), None)
        except UnituneError:  # the core's validation reports unreadable data
            continue
        if first is None:
            continue
        pairs = isinstance(first, PreferenceExample)
        own = f.source == str(f.path)  # not a split half: lines are the user's lines
        where = {"file": f.source if own else str(spec.data_path("train")),
                 "line": first.line if own else None}
        if spec.method == "dpo" and not pairs:
            out.append(_error("wrong_data_kind", f"{which}: method dpo trains on preference "
                              "pairs (prompt, chosen, rejected); this file holds chat examples",
                              **where, hint="convert to a preference format (trl-dpo or openai-dpo) "
                                   "or use method: sft"))
        elif spec.method != "dpo" and pairs:
            out.append(_error("wrong_data_kind", f"{which}: method sft trains on chat or "
                              "prompt/completion examples; this file holds preference pairs",
                              **where, hint="use method: dpo for preference data"))
    return out
