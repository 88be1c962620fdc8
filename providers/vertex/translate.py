"""The one table: a JobSpec (+ prepared data, location, ids) → the tuningJobs REST body and plan rows.

`translate` is pure (no SDK import, no network, no file writes). Its `request` is the body of
`POST /{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs` exactly as it goes on the wire, in
REST camelCase:

    baseModel, supervisedTuningSpec{trainingDatasetUri, validationDatasetUri,
    hyperParameters{epochCount, learningRateMultiplier, adapterSize}}, tunedModelDisplayName,
    description, labels

Both clients build their SDK call from this body and nothing else (genai_client.py,
aiplatform_client.py), so `plan` shows what `train` sends. At plan time the ids are placeholders
("<idempotency-key>", "<job-id>"); the dataset uris are known before upload (content-addressed).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from unitune.backends import YES, Capabilities, PlanRow, no
from unitune.data.report import Problem
from unitune.provider import Ids, Location, Prepared, Translation, is_placeholder, placeholder
from unitune.redact import redact_text

from .states import ADAPTER_SIZE_NAMES, ALL_ADAPTER_SIZES, nearest_adapter_size

# Label keys with underscores: the idempotent lookup filters on `labels.<key>="<value>"`, and in
# the AIP-160 list-filter grammar a "-" can read as negation, while [a-z0-9_] keys are plain
# identifiers in every reading (GCP label keys allow both). Jobs labelled by earlier versions
# (`unitune-key`) are not found by the new lookup.
KEY_LABEL = "unitune_key"
JOB_LABEL = "unitune_job"
_LABEL_OK = re.compile(r"^[a-z0-9_-]{1,63}$")

# learningRate / batchSize exist in SupervisedHyperParameters (REST v1, google-genai 3.x
# CreateTuningJobConfig) but "only for open source models"; Gemini takes learningRateMultiplier.
# A catalog model that accepts them lists learning_rate / batch_size in its hyperparameters.
OPEN_MODEL_ONLY = {
    "learning_rate": ("learningRate", "Gemini takes only learning_rate_multiplier: Vertex's "
                      "learningRate is \"only available for open source models\" (REST v1 "
                      "SupervisedHyperParameters; google-genai 3.x CreateTuningJobConfig)"),
    "batch_size": ("batchSize", "Vertex chooses the batch size for Gemini: batchSize is \"only "
                   "available for open source models\" (REST v1 SupervisedHyperParameters; "
                   "google-genai 3.x CreateTuningJobConfig)"),
}
NOT_APPLIED = {
    "warmup_ratio": "Vertex does not expose a warmup setting for Gemini tuning",
    "weight_decay": "Vertex does not expose weight decay for Gemini tuning",
    "seed": "Vertex takes no seed for Gemini tuning (unitune still uses it to split a "
            "validation fraction)",
    "gradient_accumulation_steps": "Vertex chooses the batching for Gemini tuning",
    "max_steps": "Vertex trains whole epochs (use hyperparameters.epochs)",
    "beta": "beta applies to DPO; unitune drives Vertex supervised tuning only",
}
_ADAPTERS_NOT_OFFERED = ("qlora", "dora", "rslora", "full", "prefix", "p_tuning", "prompt_tuning",
                         "ia3")
_ENV = {"project": "UNITUNE_VERTEX_PROJECT or GOOGLE_CLOUD_PROJECT",
        "bucket": "UNITUNE_VERTEX_BUCKET"}


def capabilities() -> Capabilities:
    features = {
        "method:sft": YES,
        "method:dpo": no("unitune drives Vertex supervised tuning only; Gemini preference tuning "
                         "(v1beta1 preferenceOptimizationSpec) is not wired"),
        "validation_file": YES,
        "pause": no("Vertex can report PAUSED but offers no pause call for tuning jobs"),
        "resume": no("Vertex offers no resume call for tuning jobs"),
        "restart": no("Vertex cannot continue a failed or cancelled tuning job"),
        "checkpoints": YES,
        "learning_rate_multiplier": YES,
        "max_seq_length": no("Vertex fixes the example length (131,072 tokens for Gemini 2.5; "
                             "longer examples are truncated); unitune checks it"),
        "tools": no("unitune's Gemini converter does not write functionCall / functionResponse "
                    "parts yet; tool calls are dropped with a warning"),
        "images": YES,
        "weights": no("Gemini tuning trains on every model turn; per-message weights are not "
                      "supported"),
        "deploy": no("Vertex deploys the tuned model to an endpoint by itself; the endpoint is "
                     "in the model handle"),
        "adapter:lora": YES,
    }
    for key in ("seed", "warmup_ratio", "weight_decay"):
        features[key] = no(NOT_APPLIED[key])
    for key, (_param, why) in OPEN_MODEL_ONLY.items():
        features[key] = no(why + "; sent for catalog models that take it")
    for adapter in _ADAPTERS_NOT_OFFERED:
        features[f"adapter:{adapter}"] = no(
            f"Vertex tunes Gemini with LoRA-style adapters only (adapter_size); adapter {adapter} "
            "is not offered" + ("; Gemini weights are never trained in full"
                                if adapter == "full" else ""))
    return Capabilities(backend="vertex", features=features)


def label_value(text: str) -> str:
    """A GCP label value for `text`: kept when already valid, else a stable hash of it."""
    if _LABEL_OK.match(text):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def user_labels(metadata: dict[str, str]) -> dict[str, str]:
    """spec.metadata as GCP labels (lowercase keys starting with a letter; at most 60)."""
    labels = {}
    for k, v in (metadata or {}).items():
        key = re.sub(r"[^a-z0-9_-]", "-", str(k).lower())[:63]
        if key and key[0].isalpha() and key not in (KEY_LABEL, JOB_LABEL):
            # scrubbed first: mangled into a label, a URL's password no longer looks like one
            value = redact_text(str(v)) or ""
            labels[key] = re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]
    return dict(list(labels.items())[:60])


def adapter_mapping(rank: int, model: str, allowed: list[int]) -> tuple[int, str]:
    """(adapter size, a note for the plan) for a LoRA rank and the model's allowed sizes."""
    size = nearest_adapter_size(rank, allowed)
    listed = ", ".join(str(s) for s in allowed)
    if size == rank:
        return size, f"rank {rank} is an allowed size (allowed for {model}: {listed})"
    return size, f"rank {rank} → nearest allowed size {size} (allowed for {model}: {listed})"


class _Table:
    """Builds the body and the plan rows together, one entry per vendor field."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.rows: list[PlanRow] = []
        self.problems: list[Problem] = []

    def put(self, param: str, value: Any, field: str, spec_value: Any = None,
            note: str | None = None) -> None:
        node = self.body
        *parents, leaf = param.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        self.rows.append(PlanRow(field, spec_value, param, value, note=note))

    def skip(self, field: str, value: Any, note: str, param: str | None = None) -> None:
        self.rows.append(PlanRow(field, value, param, None, note=note, applied=False))

    def problem(self, code: str, message: str, **kw: Any) -> None:
        self.problems.append(Problem(code, message, target="vertex", **kw))


def translate(spec: Any, prepared: Prepared, location: Location, options: Any,
              ids: Ids) -> Translation:
    from unitune.catalog import find_model

    t = _Table()
    model = spec.model_for("vertex")
    info = find_model("vertex", model)
    _refusals(t, spec, model, info, location, options)

    t.put("baseModel", model, "base_model", model)
    for which, param in (("train", "trainingDatasetUri"), ("validation", "validationDatasetUri")):
        f = prepared.files.get(which)
        if f is None:
            if which == "train":
                t.put(f"supervisedTuningSpec.{param}", placeholder("upload:train"), "data.train",
                      spec.data.train, note="no usable training data (see the problems)")
            continue
        t.put(f"supervisedTuningSpec.{param}", f.uri or placeholder(f"upload:{which}"),
              f"data.{which}", f.source, note=f"{f.examples} examples as Gemini contents JSONL "
              f"({f.bytes:,} bytes), stored under their sha256 (uploaded once)")
        _file_limits(t, f, which, model, info)

    t.rows.append(PlanRow("method", spec.method, "supervisedTuningSpec", "supervised tuning",
                          applied=spec.method == "sft"))
    t.rows.append(PlanRow("adapter.type", spec.adapter.type, "(Vertex's LoRA adapters)", "lora",
                          applied=spec.adapter.type == "lora"))
    hp = spec.hyperparameters
    if hp.epochs == "auto":
        t.skip("hyperparameters.epochs", "auto", "not sent: Vertex picks its recommended value",
               "supervisedTuningSpec.hyperParameters.epochCount")
    else:
        t.put("supervisedTuningSpec.hyperParameters.epochCount", int(hp.epochs),
              "hyperparameters.epochs", hp.epochs)
    if hp.learning_rate_multiplier is None:
        t.skip("hyperparameters.learning_rate_multiplier", None, "not sent: Vertex's default "
               "rate", "supervisedTuningSpec.hyperParameters.learningRateMultiplier")
    else:
        t.put("supervisedTuningSpec.hyperParameters.learningRateMultiplier",
              hp.learning_rate_multiplier, "hyperparameters.learning_rate_multiplier",
              hp.learning_rate_multiplier)
    open_model_hyperparameters(t, hp, info, location)
    allowed = sorted(info.adapter_sizes) if info and info.adapter_sizes else list(ALL_ADAPTER_SIZES)
    size, note = adapter_mapping(spec.adapter.r, model, allowed)
    t.put("supervisedTuningSpec.hyperParameters.adapterSize", ADAPTER_SIZE_NAMES[size],
          "adapter.r", spec.adapter.r, note=note)
    for name, default in (("alpha", None), ("dropout", 0.05), ("target_modules", None)):
        value = getattr(spec.adapter, name)
        if value != default:
            t.skip(f"adapter.{name}", value, "not applied: Vertex fixes the adapter's other "
                   "settings")
    for key, reason in NOT_APPLIED.items():
        value = getattr(hp, key, None)
        if value not in (None, "auto"):
            t.skip(f"hyperparameters.{key}", value, f"not applied: {reason}")
            t.problem("not_applied", f"hyperparameters.{key} is not applied: {reason}",
                      severity="warning", path=f"hyperparameters.{key}")
    if hp.max_seq_length is not None:
        t.skip("hyperparameters.max_seq_length", hp.max_seq_length, "not sent: Vertex's own "
               "limit applies; examples are checked against it")

    name = (spec.suffix or spec.name)[:128]
    t.put("tunedModelDisplayName", name, "suffix" if spec.suffix else "name", name)
    job_known = not is_placeholder(ids.job_id)
    t.put("description", f"unitune job {ids.job_id}" if job_known else "<unitune job <job-id>>",
          "(job id)", ids.job_id)
    labels = {**user_labels(spec.metadata),
              KEY_LABEL: label_value(ids.key) if ids.known else ids.key,
              JOB_LABEL: label_value(ids.job_id) if job_known else ids.job_id}
    t.put("labels", labels, "metadata", spec.metadata or None,
          note=f"labels.{KEY_LABEL} carries the idempotency key: lookup lists jobs by it, so a "
               "re-run never makes a second job")
    notes = [f"client: {location.extra.get('client', 'genai')}; API "
             f"{location.extra.get('api_version', 'v1')} at "
             f"{location.endpoint or 'https://' + (location.region or '') + '-aiplatform.googleapis.com'}"
             f"; project {location.project or '<unset>'}, location {location.region}"]
    return Translation(request=t.body, rows=t.rows, problems=t.problems, notes=notes)


def open_model_hyperparameters(t: _Table, hp: Any, info: Any, location: Location) -> None:
    """learning_rate → learningRate, batch_size → batchSize where the catalog says the model
    takes them (Vertex: open models only); otherwise "not applied" with the documented reason.
    learningRate and learningRateMultiplier are mutually exclusive (an error when both are
    set); the GAPIC aiplatform 2.7 v1 proto has neither field (not applied there)."""
    takes = info.hyperparameters if info is not None else {}
    for field, (param, why) in OPEN_MODEL_ONLY.items():
        value = getattr(hp, field, None)
        if value in (None, "auto"):
            continue
        where, vendor = f"hyperparameters.{field}", f"supervisedTuningSpec.hyperParameters.{param}"
        if field not in takes:
            t.skip(where, value, f"not applied: {why}", vendor)
            t.problem("not_applied", f"{where} is not applied: {why}", severity="warning",
                      path=where)
            continue
        if location.extra.get("client") == "aiplatform":
            t.skip(where, value, "not applied: the aiplatform 2.7 v1 SupervisedHyperParameters "
                   f"proto has no {param} field (use client: genai)", vendor)
            t.problem("not_applied", f"{where} is not applied by the aiplatform client",
                      severity="warning", path=where, hint="backend_options.vertex.client: genai")
            continue
        if field == "learning_rate" and hp.learning_rate_multiplier is not None:
            t.problem("conflict", "learningRate and learningRateMultiplier are mutually "
                      "exclusive on Vertex", path=where,
                      hint="set hyperparameters.learning_rate or learning_rate_multiplier, "
                           "not both")
            continue
        r = takes[field]
        if (r.min is not None and value < r.min) or (r.max is not None and value > r.max):
            t.problem("out_of_range", f"{where}={value} is outside {info.model}'s range "
                      f"[{r.min}, {r.max}]", path=where)
            continue
        t.put(vendor, int(value) if r.type == "int" else float(value), where, value)


def _refusals(t: _Table, spec: Any, model: str, info: Any, location: Location,
              options: Any = None) -> None:
    caps = capabilities()
    for feature, path in ((f"method:{spec.method}", "method"),
                          (f"adapter:{spec.adapter.type}", "adapter.type")):
        support = caps.get(feature)
        if not support:
            t.problem("unsupported", support.reason or feature, path=path,
                      hint="use method sft with adapter.type lora, or another backend "
                           "(`unitune compare`)")
    if info is None:
        t.problem("unknown_model", f"{model!r} is not in unitune's Vertex catalog; limits and "
                  "prices are unknown", severity="warning", path="models.vertex",
                  hint="tunable today: gemini-3.5-flash, gemini-3.1-flash-lite "
                       "(`unitune models --backend vertex`)")
    else:
        from unitune.cost.lifecycle import lifecycle_problems

        # the one lifecycle rule: Gemini 2.5 tuning is past its cut-off → refused (sources named)
        t.problems += lifecycle_problems(info, "vertex",
                                         ignore=bool(getattr(options, "ignore_lifecycle", False)))
    if info is not None and info.regions and location.region not in info.regions:
        t.problem("region", f"{model} tuning is listed for {', '.join(info.regions)}, not "
                  f"{location.region}", severity="warning", path="backend_options.vertex.location",
                  hint="set backend_options.vertex.location")
    missing = {"project": location.project, "bucket": location.extra.get("bucket")}
    for key, value in missing.items():
        if not value:
            t.problem("option_missing", f"no Vertex {key} is set"
                      + (" (needed for the training data)" if key == "bucket" else ""),
                      path=f"backend_options.vertex.{key}",
                      hint=f"set backend_options.vertex.{key} or {_ENV[key]}")


def _file_limits(t: _Table, f: Any, which: str, model: str, info: Any) -> None:
    """Vendor-only checks of a prepared (converted) file against the model's limits."""
    limits = info.limits if info else None
    if limits is None:
        return
    cap = limits.train_file_bytes if which == "train" else (
        limits.validation_file_bytes or limits.train_file_bytes)
    if cap and f.bytes > cap:
        t.problem("file_too_large", f"the converted {which} file is {f.bytes:,} bytes; Vertex "
                  f"accepts at most {cap:,}", file=f.source, hint="split the data or drop long "
                  "examples")
    if which == "validation" and limits.max_validation_examples and \
            f.examples > limits.max_validation_examples:
        t.problem("too_many_validation_examples", f"{f.examples:,} validation examples; Vertex "
                  f"accepts at most {limits.max_validation_examples:,}", file=f.source,
                  hint="use a smaller validation file or fraction")
