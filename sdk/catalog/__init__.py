"""The model catalog: per backend/model prices, limits, data rules, hyperparameter ranges and
lifecycle dates, loaded from dated YAML files in `catalog/data/` (one per backend).

Facts are data, not code: every entry carries `source`, `as_of` and `verified`; each file says
when it was last checked as a whole (`as_of`, read by `catalog_as_of`). Lookups accept exact ids,
aliases and (for versioned ids) the longest matching prefix.

What a vendor reports live (`unitune models --refresh`, `catalog.discovery`) is cached under
UNITUNE_HOME with its date and laid over the bundled entries by `models()` / `find_model()`: the
vendor's own lifecycle word ("LEGACY", a fine-tuning deprecation date) wins over the bundled one.
`load_catalog()` is the bundled data alone (the offline default).
"""
from __future__ import annotations

import re

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DATA_DIR = Path(__file__).parent / "data"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Sourced(_M):
    source: str
    as_of: date
    verified: bool = False


class TrainingPrice(Sourced):
    unit: Literal["per_1m_tokens", "per_hour", "per_gpu_hour"]
    usd: float


class InferencePrice(Sourced):
    input_per_1m: float | None = None
    output_per_1m: float | None = None
    batch_discount: float | None = None  # fraction off both rates under the vendor's batch API


class HostingPrice(Sourced):
    """What it costs to keep the tuned model usable (deployment, provisioned throughput, storage).

    `storage` is billed whenever the tuned model exists; of the serving options (`deployment`,
    `provisioned_throughput`, `endpoint`) the user needs one; `none` means served per token with no
    standing fee.
    """

    kind: Literal["none", "deployment", "provisioned_throughput", "storage", "endpoint"]
    unit: Literal["per_hour", "per_month"]
    usd: float | None = None  # None: the option exists but its price is not in the dated sources
    note: str | None = None
    lifetime_hours: int | None = None  # e.g. Azure Developer tier: deleted after 24 h (not a monthly option)


class Limits(_M):
    tokens_per_example: int | None = None
    truncates: bool = True  # True: the vendor truncates long examples; False: it rejects them
    min_examples: int | None = None
    max_examples: int | None = None
    max_validation_examples: int | None = None
    min_validation_examples: int | None = None
    train_file_bytes: int | None = None
    validation_file_bytes: int | None = None


class DataRules(_M):
    """What the vendor's data format accepts; drives target checks in `validate`."""

    format: str  # converter name: openai, bedrock-converse, bedrock-prompt-completion, bedrock-claude, vertex, messages
    strict_alternation: bool = False  # user/assistant alternating, starting user, ending assistant
    reserved_strings: list[str] = Field(default_factory=list)
    plain_string_content: bool = False
    no_extra_keys: bool = False
    system: bool = True
    tools: bool = True
    images: bool = False
    weights: bool = False
    multi_turn: bool = True
    validation: bool = True  # the model takes a validation set (False: none is split off)


class HyperparameterRange(_M):
    vendor_key: str
    min: float | None = None
    max: float | None = None
    default: Any = None
    type: Literal["int", "float"] = "float"
    note: str | None = None
    # False: the vendor's documents give no range for THIS model; the numbers are another
    # model's (say which in `note`) and a check against them is shown as unverified
    verified: bool = True


class Duration(Sourced):
    """Rough wall-clock model of a cloud tuning job: fixed overhead (validation, queue,
    provisioning) plus minutes per million billable tokens, each as a (low, high) range."""

    overhead_minutes: tuple[float, float]
    minutes_per_1m_tokens: tuple[float, float]


class Gate(_M):
    """A staged closure that applies to some callers only (OpenAI blocked organisations in
    stages before closing fine-tuning for everyone): from `since`, `who` can no longer create
    jobs. unitune cannot tell whether the caller is one of them, so a gate only warns."""

    since: date
    who: str


class Disputed(_M):
    """Another source's account of the same lifecycle, when the sources disagree: recorded
    beside the primary one (with its own date) and named in every lifecycle message."""

    source: str
    as_of: date
    new_jobs_until: date | None = None
    retires: date | None = None
    note: str | None = None


class Lifecycle(Sourced):
    new_jobs_until: date | None = None  # last day new tuning jobs are accepted
    retires: date | None = None  # base model and its fine-tunes stop serving
    note: str | None = None
    # The vendor's lifecycle state for TUNING, where a source states one: "not_tunable" (no
    # longer in the vendor's fine-tunable list), "legacy" (the vendor's own word; may refuse new
    # jobs), "retired". Applies from `as_of` (the first date unitune knows it) unless `since`.
    status: Literal["active", "legacy", "not_tunable", "retired"] | None = None
    since: date | None = None
    vendor_words: str | None = None  # the vendor's own wording, quoted in refusals
    gates: list[Gate] = Field(default_factory=list)
    disputed: list[Disputed] = Field(default_factory=list)


class ModelInfo(_M):
    backend: str
    model: str
    family: str
    display_name: str | None = None
    aliases: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=lambda: ["sft"])
    tokenizer: str = "estimate"  # o200k_base | cl100k_base | hf:<path> | estimate
    tokens_per_char_hint: float | None = None  # vendor's own estimate (Bedrock: ~6 chars/token)
    epochs_auto: str | int = 3  # int, or a rule name: "openai-cookbook"
    regions: list[str] = Field(default_factory=list)
    training: TrainingPrice | None = None
    inference: InferencePrice | None = None  # the tuned model's per-token rates
    base_inference: InferencePrice | None = None  # the base model's, where the vendor differs
    hosting: list[HostingPrice] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    rules: DataRules
    hyperparameters: dict[str, HyperparameterRange] = Field(default_factory=dict)
    lifecycle: Lifecycle | None = None
    default: bool = False  # part of the default comparison set
    notes: list[str] = Field(default_factory=list)
    # additive fields (catalog-cost helper)
    parameters: int | None = None  # parameter count, for the local FLOPs estimate
    context_length: int | None = None  # model context window (local: truncation default)
    adapter_sizes: list[int] = Field(default_factory=list)  # Vertex: allowed adapter_size values
    bills_validation: bool = False  # validation tokens are billed too
    deprecated: bool = False  # legacy model: still listed, not recommended for new work
    duration: Duration | None = None  # cloud: rough job time model (local: computed from FLOPs)
    # where the entry as a whole (ids, methods, limits) comes from; every bundled entry has both
    source: str | None = None
    as_of: date | None = None
    # feature → a warning shown when a job uses it ("method:dpo": sources disagree whether …)
    caveats: dict[str, str] = Field(default_factory=dict)


class GpuPrice(Sourced):
    gpu: str
    usd_per_hour: float
    peak_bf16_tflops: float
    memory_gb: int


class Catalog(_M):
    models: list[ModelInfo]
    gpus: list[GpuPrice] = Field(default_factory=list)
    as_of: dict[str, date] = Field(default_factory=dict)  # data file stem → when last checked


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Read and validate every YAML file under catalog/data (files may hold `models`, `gpus`
    and the file's own `as_of`)."""
    import yaml

    models: list[dict] = []
    gpus: list[dict] = []
    as_of: dict[str, Any] = {}
    for path in sorted(DATA_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        models.extend(doc.get("models", []))
        gpus.extend(doc.get("gpus", []))
        if doc.get("as_of") is not None:
            as_of[path.stem] = doc["as_of"]
    return Catalog.model_validate({"models": models, "gpus": gpus, "as_of": as_of})


def catalog_as_of(backend: str | None = None) -> date | None:
    """When the bundled data (one backend's file, or the oldest of all) was last checked."""
    dates = load_catalog().as_of
    if backend is not None:
        return dates.get(backend)
    return min(dates.values()) if dates else None


def models(backend: str | None = None) -> list[ModelInfo]:
    """The catalog's entries (one backend's, or all), with what `unitune models --refresh` last
    learned from the vendor laid over them."""
    from .discovery import overlay

    return [overlay(m) for m in load_catalog().models if backend is None or m.backend == backend]


_VERSION_SUFFIX = re.compile(r"^[-:@.](v?\d[\w.:-]*|latest|preview[\w.:-]*)$")


def find_model(backend: str, model: str) -> ModelInfo | None:
    """Exact id or alias first, then the longest catalog id that `model` extends with a version
    or date suffix only (`gpt-4o-2024-08-06` → `gpt-4o`, `…-v1:0:128k` → `…-v1:0`); a misspelled
    or different model (`gpt-4.1-mini-typo`, `gpt-4.1-mini` vs `gpt-4.1`) is never swapped in."""
    candidates = models(backend)
    for m in candidates:
        if model == m.model or model in m.aliases:
            return m
    best = None
    for m in candidates:
        for name in (m.model, *m.aliases):
            if model.startswith(name) and _VERSION_SUFFIX.match(model[len(name):]) and (
                    best is None or len(name) > len(best[0])):
                best = (name, m)
    return best[1] if best else None


def gpus() -> list[GpuPrice]:
    return load_catalog().gpus
