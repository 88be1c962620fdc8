"""GGUF export of a finished local job, for llama.cpp, Ollama and LM Studio.

* `export_gguf`: the merged model (the job's `merged/` when current, else merged now in full
  precision) converted by llama.cpp's own `convert_hf_to_gguf.py` (`llamacpp.py` finds and runs
  it) to f32, f16, bf16 or q8_0; further quantisation (q4_k_m, …) through llama.cpp's quantize
  API (`llama_cpp.llama_model_quantize`) when llama-cpp-python is installed.
* `export_gguf_lora`: only the adapter, through `convert_lora_to_gguf.py` (LoRA and rsLoRA;
  the base is the job's base model).
* `read_gguf`: a GGUF's metadata read back with the `gguf` library (architecture, tensor count,
  chat template, tokenizer) — every export is checked this way before it is reported.

The chat template goes in as the model's own, minus the training-only `{% generation %}` markers
(which llama.cpp's and Ollama's template engines do not know). Each export writes
`DEST/unitune-export.json` and is listed in `JOB_DIR/exports.jsonl`, where `unitune serve`
finds it.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import MissingDependency, UnituneError
from .jobfiles import now_iso, read_jsonl
from .llamacpp import CONVERT_HF, CONVERT_LORA, declared_pre_tokenizer, find_script, run_script
from .merge import MARKER, TrainedJob

OUTTYPES = ("f32", "f16", "bf16", "q8_0")
# llama.cpp quantize types reachable through llama_cpp.llama_model_quantize (LLAMA_FTYPE_MOSTLY_*)
QUANTIZE = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l",
            "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")
EXPORT_MANIFEST = "unitune-export.json"
GENERATION_TAGS = re.compile(r"{%-?\s*(?:end)?generation\s*-?%}")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json")
_LORA_TYPES = ("lora", "qlora", "rslora")


def strip_generation_tags(template: str) -> str:
    """The chat template without `{% generation %}` / `{% endgeneration %}` (training markers for
    assistant-only loss; they render nothing)."""
    return GENERATION_TAGS.sub("", template)


def _slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (text or "model").lower()).strip("-")[:48] or "model"


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UnituneError(f"{dest} exists and is not a directory", hint="choose a new directory")
    if dest.exists() and any(dest.iterdir()):
        raise UnituneError(f"{dest} exists and is not empty; nothing was written",
                           hint="choose a new or empty directory")


def _clear(dest: Path) -> None:
    """Undo a failed export: `dest` was new or empty, so everything in it is ours."""
    if not dest.exists():
        return
    for item in dest.iterdir():
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    try:
        dest.rmdir()
    except OSError:
        pass


def _merged_source(job: TrainedJob, scratch: Path) -> Path:
    """A directory holding the full fine-tuned model in safetensors."""
    if not job.is_peft:
        return job.adapter_dir  # full fine-tuning saved the whole model there
    merged = job.files.dir / "merged"
    try:
        marker = json.loads((merged / MARKER).read_text())
        if (merged / "config.json").exists() and \
                Path(marker.get("adapter", "")) == job.adapter_dir:
            return merged
    except (OSError, ValueError):
        pass
    from .merge import merge

    return merge(job.files.dir, scratch / "merged")


def _stage(source: Path, stage: Path) -> None:
    """What the converter reads: weights and config linked, tokenizer files copied with the
    chat template made inference-only."""
    stage.mkdir(parents=True)
    for item in source.iterdir():
        if item.name in _TOKENIZER_FILES or item.name == "chat_template.jinja":
            continue
        if item.is_file() and (item.suffix in (".safetensors", ".json", ".bin") or
                               item.name.endswith(".safetensors.index.json")):
            os.symlink(item.resolve(), stage / item.name)
    template = None
    if (source / "chat_template.jinja").exists():
        template = (source / "chat_template.jinja").read_text(encoding="utf-8")
    for name in _TOKENIZER_FILES:
        if not (source / name).exists():
            continue
        if name == "tokenizer_config.json":
            cfg = json.loads((source / name).read_text(encoding="utf-8"))
            if isinstance(cfg.get("chat_template"), str):
                template = template or cfg["chat_template"]
                cfg["chat_template"] = strip_generation_tags(cfg["chat_template"])
            (stage / name).write_text(json.dumps(cfg, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
        else:
            shutil.copy2(source / name, stage / name)
    if template:
        (stage / "chat_template.jinja").write_text(strip_generation_tags(template),
                                                   encoding="utf-8")


def quantize(src: Path, dst: Path, qtype: str) -> None:
    """llama.cpp's quantize API (`llama_cpp.llama_model_quantize`) from `src` to `dst`."""
    qtype = qtype.lower()
    if qtype not in QUANTIZE:
        raise UnituneError(f"unknown quantization {qtype!r}",
                           hint=f"choose one of: {', '.join(QUANTIZE)}")
    try:
        import ctypes

        import llama_cpp
    except ImportError:
        raise MissingDependency(
            f"--quantize {qtype} needs llama.cpp's quantize API (llama-cpp-python)",
            hint="pip install llama-cpp-python (builds llama.cpp, ~10 min on 2 cores); or use "
                 "--outtype q8_0, which the converter writes by itself") from None
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}", None)
    if ftype is None:
        raise UnituneError(f"this llama-cpp-python has no quantization {qtype}",
                           hint="upgrade llama-cpp-python or choose another type")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(),
                                        ctypes.byref(params))
    if rc != 0 or not dst.exists():
        raise UnituneError(f"llama.cpp could not quantize {src.name} to {qtype} (code {rc})",
                           hint="try another type (small models fall back for tensors whose "
                                "rows do not fit the block size) or --outtype q8_0")


def read_gguf(path: Path) -> dict[str, Any]:
    """A GGUF file's identity, read back with `gguf.GGUFReader`."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise MissingDependency("the gguf library is not installed",
                                hint="pip install 'unitune[export]'") from None
    reader = GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        if field is None:
            return None
        try:
            return field.contents()
        except Exception:  # noqa: BLE001 - an unusual field type: leave it out
            return None

    arch = value("general.architecture")
    template = value("tokenizer.chat_template")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    return {
        "architecture": arch,
        "name": value("general.name"),
        "tensor_count": len(reader.tensors),
        "file_type": value("general.file_type"),
        "context_length": value(f"{arch}.context_length") if arch else None,
        "chat_template": template,
        "tokenizer_model": value("tokenizer.ggml.model"),
        "tokenizer_pre": value("tokenizer.ggml.pre"),
        "vocab_size": len(tokens.data) if tokens is not None else None,
        "eos_token_id": value("tokenizer.ggml.eos_token_id"),
        "adapter_type": value("adapter.type"),
        "lora_alpha": value("adapter.lora.alpha"),
    }


def _record(job: TrainedJob, dest: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    (dest / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str),
                                        encoding="utf-8")
    job.files.append(job.files.dir / "exports.jsonl", manifest)
    return manifest


def export_gguf(job_dir: Path, dest: Path, *, outtype: str = "f16", quantize_to: str | None = None,
                llama_cpp: str | None = None, pre_tokenizer: str | None = None) -> dict[str, Any]:
    """The job's merged model as one GGUF file in `dest`; returns the export manifest."""
    if outtype not in OUTTYPES:
        raise UnituneError(f"unknown --outtype {outtype!r}",
                           hint=f"choose one of: {', '.join(OUTTYPES)} (more through --quantize)")
    job = TrainedJob(job_dir)
    dest = Path(dest)
    _check_dest(dest)
    if job.adapter_type in ("prefix", "p_tuning", "prompt_tuning"):
        raise UnituneError(f"a {job.adapter_type} adapter learns virtual tokens, which GGUF "
                           "cannot hold", hint="train with lora/qlora/dora/full to export GGUF")
    script = find_script(CONVERT_HF, llama_cpp)
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".gguf-export-", dir=dest.parent))
    try:
        source = _merged_source(job, scratch)
        stage = scratch / "stage"
        _stage(source, stage)
        declared = pre_tokenizer or declared_pre_tokenizer(stage)
        name = _slug((json.loads(job.files.spec.read_text()) or {}).get("name")
                     if job.files.spec.exists() else None)
        converted = (scratch if quantize_to else dest) / f"{name}-{outtype}.gguf"
        run_script(script, [str(stage), "--outfile", str(converted), "--outtype", outtype,
                            "--model-name", name], declare_pre=declared,
                   log_file=job.files.dir / "export-gguf.log")
        out = converted
        if quantize_to:
            out = dest / f"{name}-{quantize_to.lower()}.gguf"
            quantize(converted, out, quantize_to)
        meta = read_gguf(out)
    except BaseException:
        _clear(dest)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not meta["architecture"] or not meta["tensor_count"]:
        raise UnituneError(f"{out} was written but reads back without an architecture or "
                           "tensors", hint="see JOB_DIR/export-gguf.log")
    return _record(job, dest, {
        "format": "gguf", "file": str(out.resolve()), "outtype": outtype,
        "quantize": quantize_to, "job_dir": str(job.files.dir.resolve()), "base_model": job.base_model,
        "adapter_type": job.adapter_type, "converter": str(script),
        "declared_pre_tokenizer": declared if meta.get("tokenizer_pre") == declared else None,
        "bytes": out.stat().st_size, "created_at": now_iso(),
        **{k: meta[k] for k in ("architecture", "tensor_count", "file_type",
                                "context_length", "tokenizer_model", "tokenizer_pre",
                                "vocab_size")},
        "chat_template": meta["chat_template"]})


def _stage_adapter(job: TrainedJob, stage: Path) -> dict[str, Any]:
    """The adapter as the LoRA converter reads it; rsLoRA's scale alpha/sqrt(r) is expressed as
    the plain-LoRA alpha' = alpha·sqrt(r) (llama.cpp applies alpha'/r)."""
    cfg = json.loads((job.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if cfg.get("peft_type", "LORA") != "LORA" or cfg.get("use_dora"):
        kind = "DoRA" if cfg.get("use_dora") else cfg.get("peft_type")
        raise UnituneError(f"a {kind} adapter cannot be a llama.cpp LoRA adapter (it has no "
                           "place for DoRA magnitudes or non-LoRA weights)",
                           hint="export the merged model instead: --format gguf")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise UnituneError("the adapter uses per-layer ranks/alphas (rank_pattern/"
                           "alpha_pattern), which llama.cpp's LoRA converter ignores",
                           hint="export the merged model instead: --format gguf")
    stage.mkdir(parents=True)
    for item in job.adapter_dir.iterdir():
        if item.is_file() and item.name != "adapter_config.json":
            os.symlink(item.resolve(), stage / item.name)
    alpha = float(cfg.get("lora_alpha") or cfg.get("r") or 8)
    if cfg.get("use_rslora"):
        cfg["lora_alpha"] = alpha * math.sqrt(float(cfg["r"]))
        cfg["use_rslora"] = False
    cfg["base_model_name_or_path"] = job.base_path()
    (stage / "adapter_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return cfg


def export_gguf_lora(job_dir: Path, dest: Path, *, outtype: str = "f16",
                     llama_cpp: str | None = None) -> dict[str, Any]:
    """Only the job's LoRA adapter, as a llama.cpp GGUF adapter (`--lora FILE`)."""
    if outtype not in OUTTYPES:
        raise UnituneError(f"unknown --outtype {outtype!r}", hint=f"choose one of: "
                           f"{', '.join(OUTTYPES)}")
    job = TrainedJob(job_dir)
    dest = Path(dest)
    _check_dest(dest)
    if not job.is_peft or job.adapter_type not in _LORA_TYPES + ("dora",):
        raise UnituneError(f"job has a {job.adapter_type} adapter, not a LoRA one: llama.cpp "
                           "adapters are LoRA only", hint="export the whole model: --format gguf")
    script = find_script(CONVERT_LORA, llama_cpp)
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".gguf-lora-", dir=dest.parent))
    try:
        cfg = _stage_adapter(job, scratch / "adapter")
        name = _slug((json.loads(job.files.spec.read_text()) or {}).get("name")
                     if job.files.spec.exists() else None)
        out = dest / f"{name}-lora-{outtype}.gguf"
        run_script(script, [str(scratch / "adapter"), "--base", job.base_path(), "--outfile",
                            str(out), "--outtype", outtype],
                   log_file=job.files.dir / "export-gguf-lora.log")
        meta = read_gguf(out)
    except BaseException:
        _clear(dest)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _record(job, dest, {
        "format": "gguf-lora", "file": str(out.resolve()), "outtype": outtype,
        "job_dir": str(job.files.dir.resolve()), "base_model": job.base_model, "base_path": job.base_path(),
        "adapter_type": job.adapter_type, "r": cfg.get("r"), "lora_alpha": meta["lora_alpha"],
        "converter": str(script), "bytes": out.stat().st_size, "created_at": now_iso(),
        "gguf_adapter_type": meta["adapter_type"],
        **{k: meta[k] for k in ("architecture", "tensor_count")}})


def exports(job_dir: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """The job's exports whose files still exist, newest last."""
    rows = read_jsonl(Path(job_dir) / "exports.jsonl")
    return [r for r in rows if (fmt is None or r.get("format") == fmt)
            and r.get("file") and Path(r["file"]).exists()]
