"""What OpenAI / Azure OpenAI refuse or ignore, as Problems (never raised): capability
refusals ("unsupported…" codes), settings not applied, out-of-range values, metadata limits, and
the model's lifecycle dates (a warning before the cut-off, a refusal after it unless
`ignore_lifecycle`). Pure: reads the spec, the options and the catalog, nothing else.
"""
from __future__ import annotations

from typing import Any

from unitune.data.report import Problem

from .naming import META_JOB, META_KEY, META_SPEC

REFUSED_ADAPTERS = ("qlora", "prefix", "p_tuning", "prompt_tuning", "ia3")
NOT_APPLIED_ADAPTERS = ("dora", "rslora", "full")
# spec hyperparameters the API has no parameter for (field → why); "{who}" is the display name
NOT_APPLIED_HP = {
    "warmup_ratio": "{who} has no warm-up setting",
    "weight_decay": "{who} has no weight-decay setting",
    "gradient_accumulation_steps": "{who} chooses the accumulation itself; set batch_size instead",
    "max_steps": "{who} trains whole epochs; set epochs instead",
    "max_seq_length": "{who} truncates each example at the model's own limit (65,536 tokens for "
                      "gpt-4o/4.1); the length cannot be set",
}
LR_WHY = ("{who} takes only learning_rate_multiplier (a multiple of its own, unpublished base "
          "rate); an absolute rate cannot be set")
DEFAULT_RANGES = {"epochs": (1, 50), "batch_size": (1, 256)}
MAX_SEED = 2147483647
OWN_METADATA = (META_JOB, META_KEY, META_SPEC)


def model_info(backend: str, model: str) -> Any:
    """The catalog entry of `model` (None when unknown or the catalog cannot be read)."""
    try:
        from unitune.catalog import find_model

        return find_model(backend, model)
    except Exception:  # noqa: BLE001 - a broken catalog must not stop a job; validate reports it
        return None


def lifecycle_problems(backend: str, model: str, options: Any) -> list[Problem]:
    """The shared lifecycle rule (`unitune.cost.lifecycle.lifecycle_problems`): a warning naming
    the gates and dates before a cut-off, a refusal (error) after it unless `ignore_lifecycle`.
    "Today" is UNITUNE_TODAY (every backend) or, for these two, the older `today` option."""
    from unitune.cost.lifecycle import lifecycle_problems as shared

    return shared(model_info(backend, model), backend, ignore=options.ignore_lifecycle,
                  today_=options.today)


def spec_problems(backend: str, who: str, spec: Any, options: Any) -> list[Problem]:
    """Everything the API cannot run or will not apply, before anything is uploaded."""
    model = spec.model_for(backend)
    target = f"{backend}:{model}"
    out: list[Problem] = []

    def add(code: str, message: str, path: str, severity: str = "error",
            hint: str | None = None) -> None:
        out.append(Problem(code, message, severity=severity, path=path, hint=hint, target=target))

    info = model_info(backend, model)
    if info is None and not model.startswith("ft:"):
        add("model_not_in_catalog", f"{model} is not in unitune's {backend} catalog; {who} "
            "decides whether it can be fine-tuned (no cost estimate)", f"models.{backend}",
            "warning", f"`unitune models --backend {backend}` lists the known models")
    if spec.method == "dpo" and info is not None and "dpo" not in info.methods:
        add("unsupported_method", f"{model} cannot be trained with DPO on {who} (supported: "
            f"{', '.join(info.methods)})", "method", hint="pick a model with DPO (e.g. "
            "gpt-4.1-mini-2025-04-14), method: sft, or `unitune compare`")
    caveat = (info.caveats if info is not None else {}).get(f"method:{spec.method}")
    if caveat:  # the vendor's own sources disagree: say so, do not refuse
        add("sources_disagree", caveat, "method", "warning")
    a = spec.adapter
    if a.type in REFUSED_ADAPTERS:
        add("unsupported_adapter", f"{who} cannot train a {a.type} adapter: it runs its own "
            "training method and exposes no adapter settings", "adapter.type",
            hint="use `--backend local` for QLoRA / prompt-style adapters, or drop `adapter:` "
                 "to let the vendor choose")
    else:
        if a.type in NOT_APPLIED_ADAPTERS:
            add("not_applied", f"adapter.type {a.type} is not applied: {who} chooses its own "
                "training method", "adapter.type", "warning")
        settings = sorted(a.model_fields_set - {"type"})
        if settings:
            add("not_applied", f"adapter settings {', '.join(settings)} are not applied: {who} "
                "exposes no adapter settings", "adapter", "warning")
    hp = spec.hyperparameters
    if hp.learning_rate is not None:
        add("not_applied", f"hyperparameters.learning_rate={hp.learning_rate} is not applied: "
            + LR_WHY.format(who=who), "hyperparameters.learning_rate", "warning",
            "set hyperparameters.learning_rate_multiplier (e.g. 1.0–2.0) instead")
    for key, why in NOT_APPLIED_HP.items():
        if getattr(hp, key) is not None:
            add("not_applied", f"hyperparameters.{key} is not applied: {why.format(who=who)}",
                f"hyperparameters.{key}", "warning")
    if hp.beta is not None and spec.method != "dpo":
        add("not_applied", "hyperparameters.beta is only used by DPO; not applied to sft",
            "hyperparameters.beta", "warning")
    ranges = (info.hyperparameters if info is not None else {}) or {}
    for key, (lo, hi) in DEFAULT_RANGES.items():
        value, r = getattr(hp, key), ranges.get(key)
        lo, hi = (r.min, r.max) if r is not None else (lo, hi)
        if isinstance(value, int) and ((lo is not None and value < lo)
                                       or (hi is not None and value > hi)):
            add("out_of_range", f"hyperparameters.{key}={value} is outside {who}'s range "
                f"[{int(lo) if lo is not None else ''}, {int(hi) if hi is not None else ''}]",
                f"hyperparameters.{key}", hint="use a value in range or 'auto'")
    if hp.seed is not None and not 0 <= hp.seed <= MAX_SEED:
        add("out_of_range", f"hyperparameters.seed={hp.seed} must be in [0, {MAX_SEED}]",
            "hyperparameters.seed")
    if len(spec.metadata) > 16 - len(OWN_METADATA):
        add("out_of_range", f"metadata has {len(spec.metadata)} keys; {who} allows 16 and "
            f"unitune uses {len(OWN_METADATA)}", "metadata",
            hint=f"keep at most {16 - len(OWN_METADATA)} metadata keys")
    for k, v in spec.metadata.items():
        if len(k) > 64 or len(str(v)) > 512:
            add("out_of_range", f"metadata key {k[:40]!r}: keys ≤ 64 and values ≤ 512 "
                "characters", f"metadata.{k[:40]}")
        if k in OWN_METADATA:
            add("out_of_range", f"metadata key {k!r} is unitune's own", f"metadata.{k}",
                hint="rename it")
    for name in ("max_retries", "create_attempts"):
        if getattr(options, name) is not None:
            add("not_applied", f"backend_options.{backend}.{name} is deprecated and not applied: "
                "the SDK's retries are always off and unitune has one retry policy",
                f"backend_options.{backend}.{name}", "warning",
                "set UNITUNE_RETRY_MAX / UNITUNE_RETRY_DEADLINE instead")
    out.extend(lifecycle_problems(backend, model, options))
    return out
