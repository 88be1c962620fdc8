"""Ollama export: the job's GGUF plus a `Modelfile`, and the one command that registers it.

The Modelfile says `FROM` the GGUF (relative, so the folder can be moved), a `TEMPLATE`
translated from the model's own chat template (`chat_format.pieces` → Go template; when the
template cannot be translated exactly the TEMPLATE line is left out and Ollama uses the
template it recognises from the GGUF's `tokenizer.chat_template`), a `PARAMETER stop` per
end-of-turn marker, and sampling defaults (the model's `generation_config.json` values where it
has them, else temperature 0.7 / top_p 0.9) with `num_ctx` from the model's context length.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .chat_format import go_template, pieces
from .gguf import export_gguf
from .merge import TrainedJob

DEFAULTS = {"temperature": 0.7, "top_p": 0.9}
MAX_CTX = 4096  # Ollama's num_ctx: the model's window, capped to keep memory reasonable
_GEN_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
             "repetition_penalty": "repeat_penalty"}


def model_name(job_name: str | None, job_id: str) -> str:
    """An Ollama model name: `<job name>:<job id>` (lower-case, `[a-z0-9._-]`)."""
    base = re.sub(r"[^a-z0-9._-]+", "-", (job_name or "unitune").lower()).strip("-.") or "unitune"
    tag = re.sub(r"[^a-z0-9._-]+", "-", job_id.lower()).strip("-.")
    return f"{base[:60]}:{tag[:60]}"


def _generation_defaults(model_dir: Path | None) -> dict[str, Any]:
    params = dict(DEFAULTS)
    try:
        cfg = json.loads((model_dir / "generation_config.json").read_text()) if model_dir else {}
    except (OSError, ValueError):
        cfg = {}
    if cfg.get("do_sample") is False:
        return {"temperature": 0}
    for key, name in _GEN_KEYS.items():
        if isinstance(cfg.get(key), (int, float)) and not isinstance(cfg.get(key), bool):
            params[name] = cfg[key]
    return params


def modelfile(gguf_file: str, meta: dict[str, Any], *, eos: str | None = None,
              generation: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(Modelfile text, what went into it) for a GGUF whose metadata is `meta`."""
    p = pieces(meta.get("chat_template"), eos=eos or "")
    template = go_template(p) if p is not None else None
    stops = p.stops(eos) if p is not None else ([eos] if eos else [])
    params = dict(generation or DEFAULTS)
    if meta.get("context_length"):
        params["num_ctx"] = min(int(meta["context_length"]), MAX_CTX)
    lines = [f"FROM ./{gguf_file}", ""]
    if template is not None:
        lines += [f'TEMPLATE """{template}"""', ""]
    else:
        lines += ["# TEMPLATE left out: the chat template could not be translated exactly;",
                  "# Ollama uses the one it recognises from the GGUF's tokenizer.chat_template.", ""]
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops]
    lines += [f"PARAMETER {k} {v}" for k, v in params.items()]
    return "\n".join(lines) + "\n", {"template": template, "stops": stops, "parameters": params,
                                     "chat_format": p.family if p else None}


def _eos(source: Path | None, meta: dict[str, Any]) -> str | None:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            cfg = json.loads((source / name).read_text(encoding="utf-8")) if source else {}
        except (OSError, ValueError):
            continue
        eos = cfg.get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str) and eos:
            return eos
    return None


def export_ollama(job_dir: Path, dest: Path, *, outtype: str = "f16",
                  quantize_to: str | None = None, llama_cpp: str | None = None,
                  pre_tokenizer: str | None = None) -> dict[str, Any]:
    """GGUF + Modelfile in `dest`; the manifest gains `modelfile`, `ollama_name` and the
    `register` command."""
    job = TrainedJob(job_dir)
    manifest = export_gguf(job_dir, dest, outtype=outtype, quantize_to=quantize_to,
                           llama_cpp=llama_cpp, pre_tokenizer=pre_tokenizer)
    dest = Path(dest)
    gguf_file = Path(manifest["file"]).name
    source = job.adapter_dir
    text, used = modelfile(gguf_file, manifest, eos=_eos(source, manifest),
                           generation=_generation_defaults(Path(job.base_path())
                                                           if job.is_peft else source))
    (dest / "Modelfile").write_text(text, encoding="utf-8")
    job_info = json.loads(job.files.job.read_text()) if job.files.job.exists() else {}
    spec = json.loads(job.files.spec.read_text()) if job.files.spec.exists() else {}
    name = model_name(spec.get("name"), job_info.get("job_id") or job.files.dir.name)
    manifest.update(format="ollama", modelfile=str((dest / "Modelfile").resolve()),
                    ollama_name=name, register=f"ollama create {name} -f "
                                               f"{(dest / 'Modelfile').resolve()}",
                    **{f"ollama_{k}": v for k, v in used.items()})
    (dest / "unitune-export.json").write_text(json.dumps(manifest, indent=2, default=str),
                                              encoding="utf-8")
    job.files.append(job.files.dir / "exports.jsonl", manifest)
    return manifest
