"""The translation table: a spec, its prepared data, the options and the ids → the exact
`create_model_customization_job` keyword arguments, the plan row explaining each, and every
problem found on the way (all missing settings at once, capability refusals, hyperparameter
ranges, the model family's rules on the converted files).

Every request key is set through `Table.put`, which writes the row in the same breath — the
shape of `hyper.Mapped`, extended to the whole request — so `plan` cannot show what `train`
does not send. Values derived from the idempotency key are placeholders ("<job-name>",
"<client-request-token>", …) while `ids.known` is False; data uris are the core's (the S3
destination at plan time, the upload's result at submit). Pure: no SDK, no network, no writes
(the converted files are read for the family's rules).
"""
from __future__ import annotations

from typing import Any

from unitune.backends import PlanRow
from unitune.data.report import Problem
from unitune.provider import Ids, Location, Prepared, Translation, placeholder

from . import naming
from .hyper import map_hyperparameters
from .options import BedrockOptions, env_var
from .rules import check_file
from .s3 import output_uri

NAME = "bedrock"
REQUIRED = ("role_arn", "bucket")
MAX_METADATA_TAGS = 40


class Table(Translation):
    """A Translation filled one request key (and its row) at a time."""

    def put(self, param: str, value: Any, field: str, given: Any = None, note: str | None = None,
            *, shown: tuple[str, Any] | None = None) -> None:
        self.request[param] = value
        vendor_param, vendor_value = shown or (param, value)
        self.rows.append(PlanRow(field, given, vendor_param, vendor_value, note=note))

    def problem(self, code: str, message: str, **kw: Any) -> None:
        self.problems.append(Problem(code, message, **kw))


def model_info(spec, problems: list[Problem]):
    """The catalog entry of the spec's Bedrock model, or None with the problem said."""
    from unitune.catalog import find_model, models
    from unitune.errors import SpecError

    try:
        model = spec.model_for(NAME)
    except SpecError as exc:
        problems.append(Problem("no_model", exc.message, path=f"models.{NAME}", hint=exc.hint))
        return None
    info = find_model(NAME, model)
    if info is None:
        known = ", ".join(m.model for m in models(NAME))
        problems.append(Problem("unknown_model", f"{model!r} is not a Bedrock model unitune "
                                "knows how to tune", path=f"models.{NAME}",
                                hint=f"use one of: {known}"))
    return info


def translate(spec, prepared: Prepared, location: Location, options: BedrockOptions,
              ids: Ids) -> Translation:
    t = Table()
    info = model_info(spec, t.problems)
    if info is None:
        return t
    _settings(t, options, location, info)
    _capabilities(t, spec, info, options)
    known = ids.known
    job_name = naming.job_name_for(ids.key) if known else placeholder("job-name")
    t.put("jobName", job_name, "(unitune job id)", ids.job_id,
          note="derived from the idempotency key: a re-run finds this job instead of a new one")
    t.put("customModelName", naming.model_name_for(spec.name, ids.key) if known
          else placeholder("custom-model-name"), "name", spec.name,
          note="the spec's name plus the job id")
    t.put("roleArn", options.role_arn or placeholder("role-arn"),
          "backend_options.bedrock.role_arn", options.role_arn)
    t.put("baseModelIdentifier", info.model, "base_model", spec.model_for(NAME))
    t.put("customizationType", "FINE_TUNING", "method", spec.method)
    t.rows.append(PlanRow("backend_options.bedrock.region", options.region, "(client region)",
                          location.region, note="where the job runs and is looked up"))
    train = prepared.train
    mapped = map_hyperparameters(spec, info, options.hyperparameters,
                                 train.examples if train else None)
    t.request["hyperParameters"] = mapped.params
    t.rows += mapped.rows
    t.problems += mapped.problems
    t.rows.append(PlanRow("adapter", f"{spec.adapter.type} r={spec.adapter.r}", None, None,
                          applied=False, note="not applied: Bedrock picks its own "
                          "parameter-efficient method; rank/alpha/dropout are not configurable"))
    _data(t, spec, prepared, info)
    bucket, prefix = options.bucket, options.prefix
    t.put("outputDataConfig", {"s3Uri": output_uri(bucket, prefix, job_name) if bucket and known
                               else placeholder("output-uri")}, "backend_options.bedrock.bucket",
          bucket, note="model artifacts and the metrics CSVs",
          shown=("outputDataConfig.s3Uri", output_uri(bucket or "<bucket>", prefix, job_name)))
    t.put("clientRequestToken", naming.token_for(ids.key) if known
          else placeholder("client-request-token"), "(unitune job id)", ids.job_id,
          note="AWS ignores a repeated token: a retried create cannot make a second job")
    key_tag = naming.tag(naming.TAG_JOB_ID, ids.key) if known else {"key": naming.TAG_JOB_ID,
                                                                     "value": ids.key}
    tags = [key_tag, naming.tag(naming.TAG_SPEC, ids.spec_hash or spec.spec_hash())]
    tags += [naming.tag(k, v) for k, v in spec.metadata.items()][:MAX_METADATA_TAGS]
    t.put("jobTags", tags, "metadata", spec.metadata or None,
          note="the job id and spec hash tags, then metadata (first 40)")
    t.put("customModelTags", [key_tag], "(unitune job id)", ids.job_id)
    if options.kms_key_id:
        t.put("customModelKmsKeyId", options.kms_key_id, "backend_options.bedrock.kms_key_id",
              options.kms_key_id, note="also encrypts the uploads (SSE-KMS)")
    if options.vpc is not None:
        t.put("vpcConfig", {"subnetIds": list(options.vpc.subnet_ids),
                            "securityGroupIds": list(options.vpc.security_group_ids)},
              "backend_options.bedrock.vpc", options.vpc.model_dump())
    if spec.suffix:
        t.rows.append(PlanRow("suffix", spec.suffix, None, None, applied=False,
                              note="not applied: the custom model is named after the spec's "
                                   "name and the job id"))
    _notes(t, info)
    return t


def _settings(t: Table, options: BedrockOptions, location: Location, info) -> None:
    """Every missing or doubtful setting at once."""
    for key in REQUIRED:
        if not getattr(options, key):
            t.problem("option_missing", f"backend_options.bedrock.{key} is not set (needed to "
                      "submit)", path=f"backend_options.bedrock.{key}",
                      hint=f"set it in the spec or export {env_var(key)}")
    role = options.role_arn
    if role and (not role.startswith("arn:aws") or ":role/" not in role):
        t.problem("option_invalid", f"role_arn {role!r} is not an IAM role ARN",
                  path="backend_options.bedrock.role_arn", hint="arn:aws:iam::<account>:role/<name>")
    for key in ("retry_mode", "max_attempts"):
        if getattr(options, key) is not None:
            t.problem("option_ignored", f"backend_options.bedrock.{key} is ignored: botocore's "
                      "retries are off and unitune's one policy retries", severity="warning",
                      path=f"backend_options.bedrock.{key}",
                      hint="use UNITUNE_RETRY_MAX / UNITUNE_RETRY_DEADLINE")
    if info.regions and location.region and location.region not in info.regions:
        # never submitted to a region the model does not tune in (the job would fail there)
        t.problem("region", f"{info.model} can be fine-tuned only in "
                  f"{', '.join(info.regions)}, not in {location.region}",
                  path="backend_options.bedrock.region",
                  hint=f"set backend_options.bedrock.region: {info.regions[0]} (or leave it unset: "
                       "unitune then sends the job to the model's region)",
                  target=f"bedrock:{info.model}")
    if location.extra.get("region_source") == "model" and location.extra.get("chain_region"):
        t.notes.append(f"{info.model} tunes only in {', '.join(info.regions)}: the job goes to "
                       f"{location.region}, not to the AWS chain's region "
                       f"{location.extra['chain_region']} (the bucket must be in "
                       f"{location.region} too)")


def _capabilities(t: Table, spec, info, options: BedrockOptions) -> None:
    target = f"bedrock:{info.model}"
    if spec.method != "sft" or (info.methods and spec.method not in info.methods):
        t.problem("unsupported_method", f"method {spec.method} is not available on Bedrock "
                  f"model customization for {info.model}", path="method",
                  hint="use method: sft, or the local/openai backend for DPO", target=target)
    if spec.adapter.type != "lora":
        t.problem("unsupported_adapter", f"adapter.type {spec.adapter.type} cannot be requested "
                  "on Bedrock (it picks its own method)", path="adapter.type",
                  hint="use adapter.type: lora (the default) and let Bedrock choose",
                  target=target)
    from unitune.cost.lifecycle import lifecycle_problems

    # the one lifecycle rule: past its cut-off (or listed as not tunable / LEGACY) → refused
    t.problems += lifecycle_problems(info, NAME, ignore=options.ignore_lifecycle)


def _data(t: Table, spec, prepared: Prepared, info) -> None:
    """The data configs, and the family's rules checked on the files that would be uploaded."""
    for which, f in prepared.files.items():
        problems, _records = check_file(f.path, info, which, tokens=False)
        t.problems += problems
    train, valid = prepared.train, prepared.validation
    t.put("trainingDataConfig", {"s3Uri": prepared.uri("train") or placeholder("upload:train")},
          "data.train", spec.data.train,
          note=f"{train.examples} records as {train.format}" if train else None,
          shown=("trainingDataConfig.s3Uri", prepared.uri("train")))
    if valid is not None:
        t.put("validationDataConfig", {"validators": [{"s3Uri": prepared.uri("validation")
                                                       or placeholder("upload:validation")}]},
              "data.validation", spec.data.validation,
              note=f"{valid.examples} records as {valid.format} ({valid.source})",
              shown=("validationDataConfig.validators[0].s3Uri", prepared.uri("validation")))


def _notes(t: Table, info) -> None:
    if info.deprecated:
        t.notes.append(f"{info.model} is a legacy model")
    hosting = [h for h in info.hosting if h.kind in ("deployment", "provisioned_throughput")]
    parts = []
    for h in hosting:
        if h.kind == "deployment":
            parts.append("on-demand deployment (no hourly fee; per-token inference)"
                         if not h.usd else f"on-demand deployment (${h.usd:,.2f}/hour)")
            continue
        price = ("price not in the catalog" if h.usd is None else
                 f"${h.usd:,.2f} per model unit hour ≈ ${h.usd * 730:,.0f}/month")
        parts.append(f"provisioned throughput ({price})")
    if parts:
        t.notes.append("using the tuned model needs " + " or ".join(parts) +
                       "; hosting can cost far more than training")
