"""JobSpec: what the user asks for, once, for every backend.

Loadable from YAML (`JobSpec.load(path)`) or built in Python; exported as JSON schema by
`unitune schema`. Account-specific backend options may come from the environment as
`UNITUNE_<BACKEND>_<OPTION>` (they override the file; see `JobSpec.options`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SpecError
from .tracking.spec import TrackingSpec

AdapterType = Literal["lora", "qlora", "dora", "rslora", "full", "prefix", "p_tuning",
                      "prompt_tuning", "ia3"]
Method = Literal["sft", "dpo"]
BACKEND_NAMES = ("openai", "azure", "bedrock", "vertex", "local", "fake")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class DataSpec(_Strict):
    """Where the examples are. Paths are relative to the spec file."""

    train: str = Field(description="Training JSONL (.jsonl or .jsonl.gz); any supported format.")
    validation: Union[str, float, None] = Field(
        default=None,
        description="A validation JSONL path, or a fraction in (0, 0.5] split off the training file "
                    "deterministically (seeded by hyperparameters.seed).")
    format: str = Field(default="auto", description="Input format; `auto` detects it per file.")

    @field_validator("validation")
    @classmethod
    def _fraction_range(cls, v):
        if isinstance(v, float) and not 0 < v <= 0.5:
            raise ValueError("a validation fraction must be in (0, 0.5], e.g. 0.1")
        return v


class AdapterSpec(_Strict):
    """Parameter-efficient method (or `full`) and its knobs; backends say what they can honour."""

    type: AdapterType = Field(default="lora", description="lora, qlora, dora, rslora, full, prefix, "
                              "p_tuning, prompt_tuning or ia3.")
    r: int = Field(default=16, ge=1, le=1024, description="LoRA rank (cloud backends map it to the "
                   "nearest size they allow, e.g. Vertex adapter_size).")
    alpha: int | None = Field(default=None, ge=1, description="LoRA alpha; default 2 × r.")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the adapter layers.")
    target_modules: Union[list[str], str, None] = Field(
        default=None, description='Modules to adapt; default "all-linear" (local backend).')
    bits: Literal[4, 8] = Field(default=4, description="qlora: quantize the base to 4-bit NF4 "
                                "(double-quantized) or 8-bit.")
    num_virtual_tokens: int = Field(default=20, ge=1, description="prefix/p_tuning/prompt_tuning: "
                                    "length of the learned prompt.")

    @property
    def effective_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.r


class Hyperparameters(_Strict):
    """Unified hyperparameters. `auto` (or unset) lets each backend choose its documented default."""

    epochs: Union[int, Literal["auto"]] = Field(default="auto", description="Passes over the data.")
    batch_size: Union[int, Literal["auto"]] = Field(default="auto", description="Effective batch.")
    learning_rate: float | None = Field(default=None, gt=0, description="Absolute learning rate "
                                        "(local, Bedrock Nova/Llama). Not applied by OpenAI/Vertex.")
    learning_rate_multiplier: float | None = Field(default=None, gt=0, description="Multiplier of "
                                                   "the vendor's base rate (OpenAI, Vertex, Claude).")
    warmup_ratio: float | None = Field(default=None, ge=0, le=1)
    weight_decay: float | None = Field(default=None, ge=0)
    max_seq_length: int | None = Field(default=None, ge=16, description="Tokens per example; longer "
                                       "examples are truncated (local) or checked against limits.")
    gradient_accumulation_steps: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, description="Random seed where the backend takes one.")
    beta: float | None = Field(default=None, gt=0, le=2, description="DPO beta.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps "
                                  "(local backend; cloud backends train whole epochs).")

    @field_validator("epochs", "batch_size")
    @classmethod
    def _positive(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("must be a positive integer or 'auto'")
        return v


class JobSpec(_Strict):
    """One fine-tuning job, portable across backends."""

    name: str = Field(description="A short name; used in vendor job names and suffixes.")
    backend: str | None = Field(default=None, description="Default backend; `--backend` overrides.")
    base_model: str | None = Field(default=None, description="Model used when `models` names none "
                                   "for the chosen backend.")
    models: dict[str, str] = Field(default_factory=dict, description="Base model per backend, so "
                                   "one spec moves between vendors with one flag.")
    data: DataSpec
    method: Method = "sft"
    adapter: AdapterSpec = Field(default_factory=AdapterSpec)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    backend_options: dict[str, dict[str, Any]] = Field(default_factory=dict, description=
                                                       "Per-backend settings (bucket, role, project…).")
    suffix: str | None = Field(default=None, max_length=64, description="Name suffix for the tuned "
                               "model where the vendor takes one.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Free-form labels, sent "
                                     "where the vendor stores them.")
    tracking: Optional[TrackingSpec] = Field(default=None, description="Report the job's "
                                             "metrics to mlflow, tensorboard and/or wandb (e.g. "
                                             "`mlflow`, `[mlflow, tensorboard]` or a mapping; "
                                             "docs/tracking.md). Not part of the job's identity.")

    # set by load(); not part of the user's spec
    source_dir: str | None = Field(default=None, exclude=True, description="(internal)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _cross(self):
        if self.method == "dpo" and self.adapter.type in ("prefix", "p_tuning", "prompt_tuning"):
            raise ValueError(f"method dpo does not work with adapter.type {self.adapter.type}; "
                             "use lora, qlora, dora or full")
        return self

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> "JobSpec":
        """Read a YAML or JSON spec; errors name the file, the field and the fix. Hostile input
        (huge files, alias bombs, deep nesting, duplicate keys, bad bytes) is refused, not run."""
        p = Path(path)
        try:
            if not p.is_file():
                what = "a directory" if p.is_dir() else "not a regular file" if p.exists() \
                    else "missing"
                raise SpecError(f"cannot read spec {p}: {what}", file=str(p),
                                hint="give the path of a YAML spec file")
            if p.stat().st_size > MAX_SPEC_BYTES:
                raise SpecError(f"spec {p} is {p.stat().st_size:,} bytes; a spec is at most "
                                f"{MAX_SPEC_BYTES:,}", file=str(p),
                                hint="keep data out of the spec: point data.train at a JSONL file")
            data = p.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read spec {p}: {exc.strerror}", file=str(p),
                            hint="check the path") from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise SpecError(f"{p}: line {line}: not UTF-8 (byte {data[exc.start]:#04x} at offset "
                            f"{exc.start})", file=str(p),
                            hint="save the spec as UTF-8") from None
        raw = safe_yaml(text, str(p))
        if not isinstance(raw, dict):
            raise SpecError(f"{p}: a spec must be a mapping with at least `name` and `data`",
                            file=str(p), hint="see examples/quickstart.yaml")
        return cls.from_dict(raw, source=str(p), source_dir=str(p.resolve().parent))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "<spec>",
                  source_dir: str | None = None) -> "JobSpec":
        try:
            spec = cls.model_validate(raw)
        except ValidationError as exc:
            raise spec_error_from_validation(exc, source) from None
        spec.source_dir = source_dir
        return spec

    # -- resolution ----------------------------------------------------------------------------
    def resolve_backend(self, backend: str | None = None) -> str:
        name = backend or self.backend
        if not name:
            raise SpecError("no backend chosen", field="backend",
                            hint="set `backend:` in the spec or pass --backend")
        return name

    def model_for(self, backend: str) -> str:
        """The base model for `backend`: `models[backend]`, else `base_model`."""
        model = self.models.get(backend) or self.base_model
        if not model:
            raise SpecError(f"no base model for backend {backend!r}", field=f"models.{backend}",
                            hint=f"add `models: {{{backend}: <model id>}}` or `base_model:` to the spec")
        return model

    def data_path(self, which: str = "train") -> Path | None:
        value = self.data.train if which == "train" else self.data.validation
        if value is None or isinstance(value, float):
            return None
        p = Path(value).expanduser()
        if not p.is_absolute() and self.source_dir:
            p = Path(self.source_dir) / p
        return p

    def options(self, backend: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """backend_options[backend] with `UNITUNE_<BACKEND>_<OPTION>` environment overrides, as
        an untyped mapping (the typed, checked form is `unitune.options.resolve_options`)."""
        from .options import env_options

        opts = dict(self.backend_options.get(backend, {}))
        opts.update({k: v for k, (v, _var) in env_options(backend, env).items()})
        return opts

    def spec_hash(self) -> str:
        """Stable hash of what the user asked for (used for re-attach after a crash); where the
        curves are reported (`tracking`) does not change the job."""
        payload = self.model_dump(mode="json", exclude={"source_dir", "tracking"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


MAX_SPEC_BYTES = 1 << 20  # 1 MiB: a spec names files, it does not hold data
MAX_SPEC_NODES = 100_000  # values after alias expansion
MAX_SPEC_DEPTH = 64


def safe_yaml(text: str, source: str) -> Any:
    """yaml.safe_load with duplicate keys refused and the expanded size and depth bounded (a
    "billion laughs" alias bomb or 10,000 nested lists is an error, not gigabytes)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        loader.flatten_mapping(node)
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise SpecError(f"{source}: line {key_node.start_mark.line + 1}: duplicate key "
                                f"{key!r} (YAML keeps only the last one)", file=source,
                                hint="remove one of the two")
            out[key] = loader.construct_object(value_node, deep=True)
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        raw = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{source}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}",
                        file=source, hint="fix the YAML syntax (indentation, colons, quotes)") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply", file=source,
                        hint=f"a spec is at most {MAX_SPEC_DEPTH} levels deep") from None
    budget = [MAX_SPEC_NODES]

    def walk(obj: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError(f"{source}: expands to more than {MAX_SPEC_NODES:,} values (YAML "
                            "aliases?)", file=source, hint="write the spec out without anchors "
                            "and aliases")
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(f"{source}: nested more than {MAX_SPEC_DEPTH} levels deep",
                            file=source, hint="a job spec is a few levels deep; check the file")
        if isinstance(obj, dict):
            for v in obj.values():
                walk(v, depth + 1)
        elif isinstance(obj, list):
            for v in obj:
                walk(v, depth + 1)

    walk(raw, 0)
    return raw


def spec_error_from_validation(exc: ValidationError, source: str) -> SpecError:
    """Turn pydantic's error list into one SpecError naming each field and a fix."""
    lines = []
    first_field = None
    for err in exc.errors():
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        first_field = first_field or field
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"  {field}: {msg}")
    hint = "run `unitune schema` for every field, or compare with examples/quickstart.yaml"
    return SpecError(f"{source}: invalid job spec\n" + "\n".join(lines), field=first_field,
                     file=source, hint=hint)
