"""Shared by the export and serve tests: one tiny LoRA job trained once per pytest session, and
llama.cpp's converter (the llama-cpp-python sdist, downloaded once into a cache)."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

CACHE = Path(os.environ.get("UNITUNE_TEST_CACHE") or Path.home() / ".cache" / "unitune-tests")
LLAMA_SITE = CACHE / "llama-cpp-python-site"  # llama-cpp-python installed with --target
_MEMO: dict[str, object] = {}


@dataclass
class Trained:
    home: Path
    job_id: str
    job_dir: Path


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UNITUNE_", "MLFLOW_", "WANDB_", "OPENAI_", "AWS_", "GOOGLE_"))}
    env.update(UNITUNE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def trained_job(tmp_path_factory) -> Trained:
    """A succeeded tiny-chat LoRA job (r=4, 3 steps, fp32) in its own UNITUNE_HOME."""
    if "job" in _MEMO:
        return _MEMO["job"]  # type: ignore[return-value]
    from unitune.local.synthetic import chat_rows, write_jsonl
    from unitune.local.tiny import ensure_tiny_model

    home = tmp_path_factory.mktemp("export-home")
    ensure_tiny_model(home / "models" / "tiny-chat")
    work = tmp_path_factory.mktemp("export-spec")
    write_jsonl(work / "chat.jsonl", chat_rows(24, seed=11, max_sentences=2))
    (work / "spec.yaml").write_text(yaml.safe_dump({
        "name": "exp", "backend": "local", "base_model": "unitune/tiny-chat",
        "data": {"train": "chat.jsonl"}, "adapter": {"type": "lora", "r": 4, "alpha": 8},
        "hyperparameters": {"max_steps": 3, "batch_size": 4, "learning_rate": 0.05, "seed": 5},
        "backend_options": {"local": {"precision": "fp32", "save_steps": 3}}}))
    proc = subprocess.run([sys.executable, "-m", "unitune", "train", str(work / "spec.yaml"),
                           "--json"], capture_output=True, text=True, env=clean_env(home),
                          timeout=900, cwd=work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    job_id = json.loads(proc.stdout)["id"]
    _MEMO["job"] = Trained(home=home, job_id=job_id, job_dir=home / "jobs" / job_id)
    return _MEMO["job"]  # type: ignore[return-value]


def converter_source() -> Path:
    """llama.cpp's converters: $UNITUNE_LLAMA_CPP, else the llama-cpp-python sdist in the test
    cache, downloaded from PyPI with pip on first use (skips, saying why, when that fails)."""
    if "sdist" in _MEMO:
        return _MEMO["sdist"]  # type: ignore[return-value]
    given = os.environ.get("UNITUNE_LLAMA_CPP")
    if given:
        _MEMO["sdist"] = Path(given)
        return Path(given)
    found = sorted(glob.glob(str(CACHE / "sdist" / "llama_cpp_python-*.tar.gz")))
    if not found:
        (CACHE / "sdist").mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--no-binary", ":all:", "llama-cpp-python", "-d",
                               str(CACHE / "sdist")], capture_output=True, text=True,
                              timeout=600)
        found = sorted(glob.glob(str(CACHE / "sdist" / "llama_cpp_python-*.tar.gz")))
        if proc.returncode != 0 or not found:
            pytest.skip("llama.cpp's converter is not here and the llama-cpp-python sdist could "
                        "not be downloaded from PyPI (set UNITUNE_LLAMA_CPP to a llama.cpp "
                        f"checkout or the sdist): {proc.stderr.strip()[-300:]}")
    _MEMO["sdist"] = Path(found[-1])
    return Path(found[-1])


def llama_cpp_site(build: bool) -> Path | None:
    """A directory to put on sys.path / PYTHONPATH for llama-cpp-python (with its server
    extra), or None when it is neither installed nor cached; with `build`, build it into the
    cache first (~11-20 min on 2 cores)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return Path(importlib.util.find_spec("llama_cpp").origin).parent.parent
    if (LLAMA_SITE / "llama_cpp" / "__init__.py").exists():
        return LLAMA_SITE
    if not build:
        return None
    sdist = converter_source()
    wheels = CACHE / "wheels"
    if not glob.glob(str(wheels / "llama_cpp_python-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(sdist), "-w",
                        str(wheels)], check=True, timeout=3600,
                       env=dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2),
                                CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                                           "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"))
    wheel = sorted(glob.glob(str(wheels / "llama_cpp_python-*.whl")))[-1]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                    str(LLAMA_SITE), wheel, "diskcache", "sse-starlette", "starlette-context<0.4"],
                   check=True, timeout=900)
    return LLAMA_SITE
