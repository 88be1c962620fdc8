"""Come from where you are: read another tool's training recipe into a unitune spec, and (where
the mapping is lossless) write a unitune spec back out as that tool's config.

    result = import_config("axolotl", "lora-1b.yml", out_dir=Path("."))
    result.spec       # a dict that JobSpec.from_dict accepts
    result.mapped     # source field → spec field, value
    result.unmapped   # every field not carried over, with the reason

Importers: `axolotl` (YAML), `llama-factory` (YAML), `openai-job` (the JSON the OpenAI API
returns for a fine-tuning job), `trl` (an SFTConfig/DPOConfig dump or a `trl sft` YAML).
Exporters (`export_config`): `axolotl`, `llama-factory`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from .result import ImportResult, Mapped, Unmapped

TOOLS = ("axolotl", "llama-factory", "openai-job", "trl")
EXPORT_TOOLS = ("axolotl", "llama-factory")

__all__ = ["TOOLS", "EXPORT_TOOLS", "ImportResult", "Mapped", "Unmapped", "import_config"]


def import_config(tool: str, path: str | Path, *, out_dir: Path | None = None,
                  name: str | None = None, data: str | None = None,
                  base_model: str | None = None, fetch_data: bool = False) -> ImportResult:
    """Read `path` (a `tool` config) into an ImportResult whose spec is valid for unitune.
    Paths in the spec are relative to `out_dir` (where the spec will be written)."""
    out_dir = Path(out_dir or ".")
    tool = tool.strip().lower().replace("_", "-")
    if tool in ("llamafactory", "llama-factory"):
        from .llama_factory import import_llama_factory as fn
    elif tool == "axolotl":
        from .axolotl import import_axolotl as fn
    elif tool in ("openai-job", "openai"):
        from .openai_job import import_openai_job

        result = import_openai_job(path, out_dir=out_dir, name=name, data=data,
                                   fetch_data=fetch_data)
        return _override_model(result, base_model)
    elif tool == "trl":
        from .trl import import_trl as fn
    else:
        raise SpecError(f"unknown tool {tool!r}", hint="one of: " + ", ".join(TOOLS))
    if fetch_data:
        raise SpecError("--fetch-data only applies to openai-job imports",
                        hint="export the dataset as the listed step says")
    result: Any = fn(path, out_dir=out_dir, name=name, data=data)
    return _override_model(result, base_model)


def _override_model(result: ImportResult, base_model: str | None) -> ImportResult:
    if base_model:
        result.spec.setdefault("models", {})["local"] = base_model
        result.mapped.append(Mapped("--base-model", "models.local", base_model))
        result.data_steps.pop("model", None)
    return result
