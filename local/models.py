"""Resolve a base model id to something `from_pretrained` can load without surprises.

`unitune/tiny-chat` (built offline on first use), a local directory, or a Hugging Face id that is
in the local cache (or downloadable when the hub is reachable). When the hub cannot be reached and
the model is not cached, the error says so and how to point at a local copy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnituneError
from .tiny import TINY_ID, ensure_tiny_model


@dataclass
class ResolvedModel:
    requested: str
    path: str  # a local directory
    source: str  # "tiny" | "local" | "hf-cache" | "hf-download"



def resolve(model: str) -> ResolvedModel:
    if model == TINY_ID:
        return ResolvedModel(model, str(ensure_tiny_model()), "tiny")
    p = Path(model).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").exists():
            raise UnituneError(f"model path {p} is not a model directory (no config.json)",
                               hint="point base_model at a directory saved with save_pretrained "
                                    "(config.json, *.safetensors, tokenizer files)")
        return ResolvedModel(model, str(p.resolve()), "local")
    if model.startswith(("/", "./", "../", "~")):
        raise UnituneError(f"model path {model} does not exist",
                           hint="check the path in base_model / models.local")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - comes with transformers
        raise UnituneError("huggingface_hub is not installed",
                           hint="pip install 'unitune[local]'") from exc
    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now, not at hub import time
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    try:
        return ResolvedModel(model, snapshot_download(model, local_files_only=True,
                                                      allow_patterns=patterns,
                                                      cache_dir=cache_dir), "hf-cache")
    except Exception:  # noqa: BLE001 - not cached (various hub exception types)
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True")
    how = (f"download it where the hub is reachable (`hf download {model} --local-dir DIR`), "
           "copy DIR here and set base_model (or models.local) to that directory")
    if offline:
        raise UnituneError(f"model {model!r} is not in the local Hugging Face cache and the hub is "
                           "offline (HF_HUB_OFFLINE=1)", hint=how)
    try:
        return ResolvedModel(model, snapshot_download(model, allow_patterns=patterns,
                                                         cache_dir=cache_dir), "hf-download")
    except Exception as exc:  # noqa: BLE001 - connection errors, 404s, gated repos
        raise UnituneError(f"model {model!r} is not cached and could not be fetched from the "
                           f"Hugging Face hub: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                           hint=how) from exc
