"""THE table: a spec → the exact `fine_tuning.jobs.create` body, and the plan rows explaining it.

One function yields both, so `plan` (placeholder ids and uris) cannot drift from what `train`
sends (real ids and the file ids `upload` returned). Pure: no SDK import, no network.

    spec                               request                                 note
    models.<backend> / base_model      model
    method: sft | dpo                  method.type: supervised | dpo
    hyperparameters.epochs             method.<type>.hyperparameters.n_epochs  "auto" → left out
    hyperparameters.batch_size         ….batch_size                            "auto" → left out
    hyperparameters.learning_rate_multiplier  ….learning_rate_multiplier
    hyperparameters.beta (dpo)         ….beta
    hyperparameters.seed               seed
    suffix (else a slug of name)       suffix                                  ≤ 64 characters
    metadata                           metadata + unitune_job_id, unitune_key, unitune_spec_hash
    data.train / data.validation       training_file / validation_file         uploaded file ids
    options wandb / integrations       integrations
    (Azure, supervised)                trainingType                            option training_type
"""
from __future__ import annotations

from typing import Any

from unitune.backends import YES, Capabilities, PlanRow, no
from unitune.provider import Ids, Location, Prepared, Translation

from .checks import LR_WHY, NOT_APPLIED_HP, REFUSED_ADAPTERS, spec_problems
from .naming import META_JOB, META_KEY, META_SPEC, slug

# the keyword arguments `fine_tuning.jobs.create` takes; any other request key goes in extra_body
SDK_CREATE_FIELDS = frozenset({"model", "training_file", "validation_file", "method", "suffix",
                               "seed", "metadata", "integrations", "hyperparameters"})
RETRY_NOTE = ("created with the SDK's retries off; before any retry the job is looked up by its "
              "metadata, so a lost response never leaves a duplicate job")


def capabilities(backend: str, who: str, *, pausable: bool, deployable: bool) -> Capabilities:
    f = {
        "method:sft": YES,
        "method:dpo": YES,  # per model: the catalog's `methods` decides
        "validation_file": YES, "checkpoints": YES,
        "pause": YES if pausable else no(f"{who} cannot pause a fine-tuning job"),
        "resume": YES if pausable else no(f"{who} cannot resume a fine-tuning job"),
        "restart": no(f"{who} cannot restart a failed job from a checkpoint; train again "
                      "(a further fine-tune of a checkpoint model is an `ft:` base model)"),
        "learning_rate": no(LR_WHY.format(who=who)),
        "learning_rate_multiplier": YES, "batch_size": YES, "seed": YES,
        "tools": YES, "images": YES, "weights": YES,
        "deploy": YES if deployable else no(f"{who} serves tuned models per token; there is "
                                            "nothing to deploy"),
    }
    for key in ("warmup_ratio", "weight_decay", "max_seq_length"):
        f[key] = no(NOT_APPLIED_HP[key].format(who=who))
    for t in ("lora", "dora", "rslora", "full"):
        f[f"adapter:{t}"] = no(f"{who} chooses its own training method; adapter settings "
                               "cannot be set (not applied)")
    for t in REFUSED_ADAPTERS:
        f[f"adapter:{t}"] = no(f"{who} cannot train a {t} adapter; use the local backend "
                               "(`--backend local`) for it")
    return Capabilities(backend, f)


def suffix(spec: Any) -> str:
    return (spec.suffix or slug(spec.name, 40))[:64]


def integrations(options: Any) -> list[dict[str, Any]] | None:
    if options.integrations:
        return list(options.integrations)
    return [options.wandb.integration()] if options.wandb is not None else None


def translate(conn: Any, spec: Any, prepared: Prepared, location: Location, options: Any,
              ids: Ids) -> Translation:
    """The create body for `spec`, the rows explaining it and every problem (`conn` is the
    flavour's connection: which backend, what it adds to the body, what is missing)."""
    backend, who = conn.backend, conn.display
    model = spec.model_for(backend)
    mtype = "dpo" if spec.method == "dpo" else "supervised"
    hp, at = spec.hyperparameters, f"method.{mtype}.hyperparameters"
    out = Translation(problems=[*conn.missing(location, options),
                                *spec_problems(backend, who, spec, options)])
    vendor_hp: dict[str, Any] = {}
    rows = [PlanRow(f"models.{backend}", model, "model", model),
            PlanRow("method", spec.method, "method.type", mtype)]

    def hp_row(field: str, value: Any, key: str) -> None:
        if value not in (None, "auto"):
            vendor_hp[key] = value
        rows.append(PlanRow(f"hyperparameters.{field}", value, f"{at}.{key}",
                            "auto" if value in (None, "auto") else value,
                            note=f"{who} chooses" if value in (None, "auto") else None))

    hp_row("epochs", hp.epochs, "n_epochs")
    hp_row("batch_size", hp.batch_size, "batch_size")
    hp_row("learning_rate_multiplier", hp.learning_rate_multiplier, "learning_rate_multiplier")
    if mtype == "dpo":
        hp_row("beta", hp.beta, "beta")
    elif hp.beta is not None:
        rows.append(PlanRow("hyperparameters.beta", hp.beta, None, None, applied=False,
                            note="not applied: beta is a DPO setting"))
    if hp.learning_rate is not None:
        rows.append(PlanRow("hyperparameters.learning_rate", hp.learning_rate, None, None,
                            applied=False, note="not applied: " + LR_WHY.format(who=who)
                            + "; set learning_rate_multiplier instead"))
    for key, why in NOT_APPLIED_HP.items():
        if getattr(hp, key) is not None:
            rows.append(PlanRow(f"hyperparameters.{key}", getattr(hp, key), None, None,
                                applied=False, note="not applied: " + why.format(who=who)))
    rows.append(PlanRow("hyperparameters.seed", hp.seed, "seed", hp.seed,
                        note=None if hp.seed is not None else f"{who} picks one"))
    a = spec.adapter
    if a.type in REFUSED_ADAPTERS:
        rows.append(PlanRow("adapter.type", a.type, None, None, applied=False,
                            note=f"refused: {who} cannot train a {a.type} adapter"))
    else:
        rows.append(PlanRow("adapter", a.type, None, None, applied=False,
                            note=f"not applied: {who} chooses its own training method"))
    metadata = {**{k: str(v) for k, v in spec.metadata.items()}, META_JOB: ids.job_id,
                META_KEY: ids.key, META_SPEC: ids.spec_hash or spec.spec_hash()}
    rows.append(PlanRow("suffix", spec.suffix, "suffix", suffix(spec),
                        note=None if spec.suffix else "derived from the spec name"))
    rows.append(PlanRow("metadata", dict(spec.metadata), "metadata", metadata,
                        note="unitune's ids make creation idempotent (looked up before any "
                             "retry)"))
    fmt = "openai-dpo" if mtype == "dpo" else "openai"
    request: dict[str, Any] = {"model": model, "training_file": prepared.uri("train"),
                               "method": {"type": mtype, mtype: {"hyperparameters": vendor_hp}},
                               "suffix": suffix(spec), "metadata": metadata}
    rows.append(PlanRow("data.train", spec.data.train, "training_file", prepared.uri("train"),
                        note=f"converted to {fmt} JSONL, uploaded once per content hash"))
    if prepared.validation is not None:
        request["validation_file"] = prepared.uri("validation")
        val = spec.data.validation
        rows.append(PlanRow("data.validation", val, "validation_file",
                            prepared.uri("validation"), note=f"{val:.0%} split off the "
                            "training file" if isinstance(val, float) else None))
    if hp.seed is not None:
        request["seed"] = hp.seed
    sent = integrations(options)
    if sent:
        request["integrations"] = sent
        source = "integrations" if options.integrations else "wandb"
        rows.append(PlanRow(f"backend_options.{backend}.{source}", options.integrations
                            or options.wandb.model_dump(exclude_none=True), "integrations", sent))
    for row in conn.body_rows(spec, options):
        request[row.vendor_param] = row.vendor_value
        rows.append(row)
    out.request, out.rows = request, rows
    out.notes = [RETRY_NOTE, *conn.notes(model, options)]
    return out
