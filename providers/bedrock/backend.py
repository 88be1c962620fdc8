"""BedrockBackend: the Backend protocol for AWS Bedrock model customization.

Flow of `submit`: look the job up by its idempotency key first (a re-run never creates a second
job), check spec + data against the base model's family (catalog rules), convert and upload the
data under content-hash keys, then `create_model_customization_job` with a `clientRequestToken`
derived from unitune's job id and `jobTags` carrying it. Jobs are addressed by their job name
(derived from the job id) and region, both kept in `RemoteRef.extra`.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from unitune.backends import YES, Capabilities, Plan, PlanRow, SubmitContext, Upload, no
from unitune.data.report import Problem, Report
from unitune.errors import (DataError, InvalidRequest, NotFound, SpecError, Unsupported)
from unitune.job import Event, Metrics, RemoteRef, Snapshot

from . import naming

NAME = "bedrock"
OPTION_KEYS = ("role_arn", "bucket", "prefix", "region", "kms_key_id", "vpc", "profile",
               "retry_mode", "max_attempts", "hyperparameters")


@dataclass
class Analysis:
    """Everything `check`, `plan` and `submit` derive from a spec (nothing uploaded)."""

    info: Any
    options: dict[str, Any]
    region: str | None
    problems: list[Problem] = field(default_factory=list)
    rows: list[PlanRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    prepared: Any = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _env_options(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    prefix = "UNITUNE_BEDROCK_"
    return {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix) and
            len(k) > len(prefix)}


class BedrockBackend:
    """AWS Bedrock model customization through boto3 (see docs/backends/bedrock.md)."""

    name = NAME

    def __init__(self, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._options = {**(options or {}), **kwargs}
        self._sessions: dict[str | None, Any] = {}
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}

    # -- AWS plumbing ----------------------------------------------------------------------------
    def options(self, spec=None) -> dict[str, Any]:
        """Constructor options < spec.backend_options.bedrock < UNITUNE_BEDROCK_* environment."""
        opts = dict(self._options)
        opts.update(spec.options(NAME) if spec is not None else _env_options())
        return opts

    def _ref_options(self, ref: RemoteRef) -> dict[str, Any]:
        """Options for a job found again without its spec: the profile it was submitted with."""
        opts = dict(self._options)
        if ref.extra.get("profile"):
            opts["profile"] = ref.extra["profile"]
        opts.update(_env_options())
        return opts

    def _get_session(self, opts: dict[str, Any]):
        profile = opts.get("profile") or None
        if profile not in self._sessions:
            from .aws import aws_call, session

            with aws_call("session"):
                self._sessions[profile] = session(opts)
        return self._sessions[profile]

    def region(self, spec=None, info=None) -> str:
        opts = self.options(spec)
        if opts.get("region"):
            return str(opts["region"])
        sess_region = self._get_session(opts).region_name
        if sess_region:
            return sess_region
        if info is not None and info.regions:
            return info.regions[0]
        return "us-east-1"

    def client(self, service: str = "bedrock", region: str | None = None,
               options: dict[str, Any] | None = None):
        """A cached boto3 client (public so callers can register botocore event hooks)."""
        opts = options if options is not None else self.options()
        region = region or self.region()
        key = (service, region, opts.get("profile") or None)
        if key not in self._clients:
            from .aws import aws_call, retry_config

            with aws_call(f"client {service}"):
                self._clients[key] = self._get_session(opts).client(
                    service, region_name=region, config=retry_config(opts))
        return self._clients[key]

    def _ref_client(self, service: str, ref: RemoteRef):
        return self.client(service, self._region_of(ref), self._ref_options(ref))

    # -- capabilities and checks ------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(NAME, {
            "method:sft": YES,
            "method:dpo": no("Bedrock model customization has no preference (DPO) tuning"),
            "validation_file": YES,
            "pause": no("Bedrock jobs cannot be paused, only stopped"),
            "resume": no("a stopped Bedrock job cannot be resumed; submit a new one"),
            "checkpoints": no("Bedrock keeps only the final custom model"),
            "learning_rate": YES,  # Nova, Llama, Titan, Cohere (Claude: multiplier; see plan)
            "learning_rate_multiplier": YES,  # Claude 3 Haiku only
            "batch_size": YES,  # Llama fixed at 1, Claude 4–256, Nova takes none
            "warmup_ratio": YES,  # as learningRateWarmupSteps (Nova, Titan)
            "seed": no("Bedrock takes no seed"),
            "weight_decay": no("Bedrock exposes no weight decay"),
            "max_seq_length": no("Bedrock has fixed per-record token limits (checked, not set)"),
            "tools": no("Bedrock fine-tuning formats carry no tool calls"),
            "images": no("unitune does not upload images for Nova multimodal tuning"),
            "weights": no("Bedrock trains on every assistant turn; per-turn weights are not supported"),
            "deploy": YES,
            "adapter:lora": YES,  # Bedrock picks its own parameter-efficient method; r/alpha ignored
            "adapter:full": no("Bedrock chooses the tuning method; full fine-tuning cannot be requested"),
        })

    def _model_info(self, spec, problems: list[Problem]):
        from unitune.catalog import find_model, models

        model = spec.model_for(NAME)
        info = find_model(NAME, model)
        if info is None:
            known = ", ".join(m.model for m in models(NAME))
            problems.append(Problem("unknown_model", f"{model!r} is not a Bedrock model unitune "
                                    "knows how to tune", path=f"models.{NAME}",
                                    hint=f"use one of: {known}"))
        return info

    def _spec_checks(self, spec, info, opts: dict[str, Any], region: str | None,
                     problems: list[Problem], rows: list[PlanRow], notes: list[str]) -> None:
        target = f"bedrock:{info.model}"
        if spec.method != "sft":
            problems.append(Problem("unsupported_method", f"method {spec.method} is not available "
                                    "on Bedrock model customization", path="method",
                                    hint="use method: sft, or the local/openai backend for DPO",
                                    target=target))
        if spec.method == "sft" and info.methods and "sft" not in info.methods:
            problems.append(Problem("unsupported_method", f"{info.model} cannot be tuned with "
                                    f"{spec.method}", path="method", target=target))
        adapter = spec.adapter
        if adapter.type != "lora":
            problems.append(Problem("unsupported_adapter", f"adapter.type {adapter.type} cannot be "
                                    "requested on Bedrock (it picks its own method)",
                                    path="adapter.type", hint="use adapter.type: lora (the "
                                    "default) and let Bedrock choose", target=target))
        rows.append(PlanRow("adapter", f"{adapter.type} r={adapter.r}", None, None, applied=False,
                            note="not applied: Bedrock picks its own parameter-efficient method; "
                                 "rank/alpha/dropout are not configurable"))
        unknown = sorted(set(spec.backend_options.get(NAME, {})) - set(OPTION_KEYS))
        for key in unknown:
            problems.append(Problem("unknown_option", f"backend_options.bedrock.{key} is not a "
                                    "Bedrock option", path=f"backend_options.bedrock.{key}",
                                    hint="known: " + ", ".join(OPTION_KEYS)))
        for key, env in (("role_arn", "UNITUNE_BEDROCK_ROLE_ARN"), ("bucket", "UNITUNE_BEDROCK_BUCKET")):
            if not opts.get(key):
                problems.append(Problem("option_missing", f"backend_options.bedrock.{key} is not "
                                        "set (needed to submit)", severity="warning",
                                        path=f"backend_options.bedrock.{key}",
                                        hint=f"set it in the spec or export {env}"))
        role = opts.get("role_arn")
        if role and (not str(role).startswith("arn:aws") or ":role/" not in str(role)):
            problems.append(Problem("option_invalid", f"role_arn {role!r} is not an IAM role ARN",
                                    path="backend_options.bedrock.role_arn",
                                    hint="arn:aws:iam::<account>:role/<name>"))
        if info.regions and region and region not in info.regions:
            problems.append(Problem("region", f"{info.model} is tuned in {', '.join(info.regions)}; "
                                    f"the region is {region}", severity="warning",
                                    path="backend_options.bedrock.region",
                                    hint=f"set backend_options.bedrock.region: {info.regions[0]}",
                                    target=target))
        life = info.lifecycle
        today = date.today()
        if life is not None:
            if life.new_jobs_until and life.new_jobs_until < today:
                problems.append(Problem("model_retired", f"{info.model} stopped accepting new "
                                        f"tuning jobs on {life.new_jobs_until}", target=target,
                                        hint="pick a newer model (`unitune models --backend bedrock`)"))
            elif life.retires and life.retires < today:
                problems.append(Problem(
                    "model_retired", f"{info.model} reportedly retired on {life.retires}"
                    + ("" if life.verified else " (unverified)") + "; AWS may reject the job",
                    severity="error" if life.verified else "warning", target=target,
                    hint=life.note or "check the Bedrock model lifecycle page"))
        if info.deprecated:
            notes.append(f"{info.model} is a legacy model")
        vpc = opts.get("vpc")
        if vpc is not None and not (isinstance(vpc, dict) and vpc.get("subnet_ids", vpc.get(
                "subnetIds")) and vpc.get("security_group_ids", vpc.get("securityGroupIds"))):
            problems.append(Problem("option_invalid", "backend_options.bedrock.vpc needs "
                                    "subnet_ids and security_group_ids",
                                    path="backend_options.bedrock.vpc"))

    def analyze(self, spec, work_dir: Path | None = None, *, data: bool = True,
                validate: bool = True) -> Analysis:
        """Checks, translation rows and (when `data`) the converted, checked data.

        `validate=False` skips the generic source validation (unitune.data.validate) and checks
        only the converted files against the family's rules (token limits included). Converted
        files are written to `work_dir` (a new temporary directory when None: the caller owns it)."""
        from .data import prepare, s3_key
        from .hyper import map_hyperparameters

        problems: list[Problem] = []
        info = self._model_info(spec, problems)
        opts = self.options(spec)
        if info is None:
            return Analysis(None, opts, opts.get("region"), problems)
        region = self.region(spec, info)
        an = Analysis(info, opts, region, problems)
        self._spec_checks(spec, info, opts, region, an.problems, an.rows, an.notes)
        if data:
            wd = work_dir or Path(tempfile.mkdtemp(prefix="unitune-bedrock-"))
            an.prepared = prepare(spec, info, wd, validate=validate)
            an.problems.extend(an.prepared.problems)
        n_train = an.prepared.train.records if an.prepared and an.prepared.train else None
        mapped = map_hyperparameters(spec, info, opts, n_train)
        an.problems.extend(mapped.problems)
        an.rows = [PlanRow("base_model", spec.model_for(NAME), "baseModelIdentifier", info.model),
                   PlanRow("method", spec.method, "customizationType", "FINE_TUNING"),
                   *mapped.rows, *an.rows]
        an.params = mapped.params
        bucket, prefix = opts.get("bucket"), str(opts.get("prefix") or "unitune")
        if an.prepared:
            for f in an.prepared.files():
                dest = (f"s3://{bucket}/{s3_key(prefix, f.sha256)}" if bucket
                        else f"s3://<bucket>/{s3_key(prefix, f.sha256)}")
                an.rows.append(PlanRow(f"data.{f.which}", f.source,
                                       "trainingDataConfig.s3Uri" if f.which == "train"
                                       else "validationDataConfig.validators[0].s3Uri", dest,
                                       note=f"{f.records} records as {f.format}"))
        an.rows.append(PlanRow("name", spec.name, "customModelName", f"{spec.name}-<job id>"))
        if opts.get("kms_key_id"):
            an.rows.append(PlanRow("backend_options.bedrock.kms_key_id", opts["kms_key_id"],
                                   "customModelKmsKeyId + S3 SSE-KMS", opts["kms_key_id"]))
        an.notes.append(f"region {region}; role {opts.get('role_arn') or '<unset>'}")
        hosting = [h for h in info.hosting if h.kind in ("deployment", "provisioned_throughput")]
        if hosting:
            parts = []
            for h in hosting:
                if h.kind == "deployment":
                    parts.append("on-demand deployment (no hourly fee; per-token inference)"
                                 if not h.usd else f"on-demand deployment (${h.usd:,.2f}/hour)")
                    continue
                price = ("price not in the catalog" if h.usd is None else
                         f"${h.usd:,.2f} per model unit hour ≈ ${h.usd * 730:,.0f}/month")
                parts.append(f"provisioned throughput ({price})")
            an.notes.append("using the tuned model needs " + " or ".join(parts) +
                            "; hosting can cost far more than training")
        return an

    def check(self, spec) -> list[Problem]:
        with tempfile.TemporaryDirectory(prefix="unitune-bedrock-") as tmp:
            return self.analyze(spec, Path(tmp)).problems

    def plan(self, spec) -> Plan:
        """The translation table, the uploads that would happen and the problems of the converted
        files against the family's rules. The generic validation of the user's file is not
        repeated here (`unitune plan` shows it in its own section; `check` includes it)."""
        with tempfile.TemporaryDirectory(prefix="unitune-bedrock-") as tmp:
            return self._plan(spec, Path(tmp))

    def _plan(self, spec, work_dir: Path) -> Plan:
        an = self.analyze(spec, work_dir, validate=False)
        model = an.info.model if an.info else spec.model_for(NAME)
        plan = Plan(backend=NAME, model=model, rows=an.rows, problems=an.problems, notes=an.notes)
        if an.prepared:
            bucket = an.options.get("bucket") or "<bucket>"
            prefix = str(an.options.get("prefix") or "unitune")
            from .data import s3_key

            for f in an.prepared.files():
                plan.uploads.append(Upload(local=f.source, destination=f"s3://{bucket}/"
                                           f"{s3_key(prefix, f.sha256)}", format=f.format,
                                           examples=f.records, bytes=f.bytes, sha256=f.sha256))
        return plan

    # -- submit / find -----------------------------------------------------------------------------
    def _raise_problems(self, an: Analysis) -> None:
        errors = an.errors
        if not errors:
            return
        data_codes = [p for p in errors if p.file or p.line]
        lines = "\n".join(f"  {p.file + ':' if p.file else ''}{str(p.line) + ': ' if p.line else ''}"
                          f"{p.path + ': ' if p.path else ''}{p.message}" for p in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        if data_codes:
            report = Report(file=data_codes[0].file, problems=list(an.problems),
                            targets=[f"bedrock:{an.info.model}"] if an.info else [])
            raise DataError(f"the data does not meet Bedrock's rules for "
                            f"{an.info.model if an.info else 'this model'}:\n{lines}{more}",
                            report=report, hint=f"run `unitune validate <file> --target bedrock:"
                            f"{an.info.model if an.info else '<model>'}` or `unitune plan` for "
                            "the full report")
        unsupported = [p for p in errors if p.code in ("unsupported_method", "unsupported_adapter")]
        if unsupported:
            raise Unsupported(unsupported[0].message, feature=unsupported[0].path, backend=NAME,
                              hint=unsupported[0].hint)
        raise SpecError(f"the spec cannot run on Bedrock:\n{lines}{more}", field=errors[0].path,
                        hint=errors[0].hint)

    def submit(self, spec, ctx: SubmitContext) -> RemoteRef:
        from .aws import aws_call, error_code
        from .data import s3_key, upload

        from unitune.catalog import find_model

        # the job's region is known from the spec alone: look there before any work or upload
        region = self.region(spec, find_model(NAME, spec.model_for(NAME)))
        existing = self._find_in(ctx.idempotency_key, [region], self.options(spec))
        if existing is not None:
            ctx.log(f"bedrock job {existing.extra.get('job_name')} already exists; re-attaching")
            return existing
        an = self.analyze(spec, Path(ctx.work_dir))
        self._raise_problems(an)
        opts, info = an.options, an.info
        for key, env in (("role_arn", "UNITUNE_BEDROCK_ROLE_ARN"), ("bucket", "UNITUNE_BEDROCK_BUCKET")):
            if not opts.get(key):
                raise SpecError(f"backend_options.bedrock.{key} is required to submit",
                                field=f"backend_options.bedrock.{key}",
                                hint=f"set it in the spec or export {env}")
        bucket, prefix = str(opts["bucket"]), str(opts.get("prefix") or "unitune").strip("/")
        kms = opts.get("kms_key_id") or None
        s3 = self.client("s3", an.region, opts)
        uris: dict[str, str] = {}
        for f in an.prepared.files():
            key = s3_key(prefix, f.sha256)
            uri = f"s3://{bucket}/{key}"
            did = upload(s3, bucket, key, f.path, kms)  # HeadObject decides: S3 is the truth
            ctx.log(f"{'uploaded' if did else 'already in S3 (skipped)'}: {f.which} → {uri}")
            if ctx.uploads is not None:
                ctx.uploads.put(NAME, f"{bucket}/{key}", uri)
            uris[f.which] = uri

        job_name = naming.job_name_for(ctx.idempotency_key)
        model_name = naming.model_name_for(spec.name, ctx.idempotency_key)
        output = f"s3://{bucket}/{prefix}/output/{job_name}/" if prefix else f"s3://{bucket}/output/{job_name}/"
        tags = [naming.tag(naming.TAG_JOB_ID, ctx.idempotency_key),
                naming.tag(naming.TAG_SPEC, spec.spec_hash())]
        tags += [naming.tag(k, v) for k, v in spec.metadata.items()][:40]
        kwargs: dict[str, Any] = dict(
            jobName=job_name, customModelName=model_name, roleArn=str(opts["role_arn"]),
            baseModelIdentifier=info.model,
            customizationType="FINE_TUNING",
            hyperParameters=an.params, trainingDataConfig={"s3Uri": uris["train"]},
            outputDataConfig={"s3Uri": output},
            clientRequestToken=naming.token_for(ctx.idempotency_key), jobTags=tags,
            customModelTags=[naming.tag(naming.TAG_JOB_ID, ctx.idempotency_key)])
        if "validation" in uris:
            kwargs["validationDataConfig"] = {"validators": [{"s3Uri": uris["validation"]}]}
        if kms:
            kwargs["customModelKmsKeyId"] = str(kms)
        vpc = opts.get("vpc")
        if isinstance(vpc, dict):
            kwargs["vpcConfig"] = {
                "subnetIds": list(vpc.get("subnet_ids", vpc.get("subnetIds", []))),
                "securityGroupIds": list(vpc.get("security_group_ids",
                                                 vpc.get("securityGroupIds", [])))}
        bedrock = self.client("bedrock", an.region, opts)
        try:
            with aws_call("create_model_customization_job"):
                arn = bedrock.create_model_customization_job(**kwargs)["jobArn"]
        except InvalidRequest as exc:
            if error_code(exc) in ("ResourceInUseException", "ConflictException"):
                # a previous attempt got through (lost response): attach to it
                found = self._find_in(ctx.idempotency_key, [an.region], opts)
                if found is not None:
                    return found
            raise
        ctx.log(f"created bedrock job {job_name} ({arn})")
        return RemoteRef(backend=NAME, remote_id=arn,
                         extra={"job_name": job_name, "region": an.region,
                                "model_name": model_name, "base_model": info.model,
                                "output": output, "idempotency_key": ctx.idempotency_key,
                                **({"profile": opts["profile"]} if opts.get("profile") else {})})

    def _search_regions(self) -> list[str]:
        from unitune.catalog import models

        regions = [self.region()]
        for m in models(NAME):
            for r in m.regions:
                if r not in regions:
                    regions.append(r)
        return regions

    def find(self, idempotency_key: str) -> RemoteRef | None:
        """The job created for this key: by its derived name, confirmed by its job tag.

        Without a spec the job's region is not known: the configured region is searched first,
        then every region the catalog tunes Bedrock models in."""
        return self._find_in(idempotency_key, self._search_regions())

    def _find_in(self, idempotency_key: str, regions: list[str],
                 options: dict[str, Any] | None = None) -> RemoteRef | None:
        from .aws import aws_call

        job_name = naming.job_name_for(idempotency_key)
        for region in regions:
            bedrock = self.client("bedrock", region, options)
            with aws_call("list_model_customization_jobs"):
                pages = bedrock.get_paginator("list_model_customization_jobs").paginate(
                    nameContains=job_name)
                summaries = [s for page in pages for s in page.get("modelCustomizationJobSummaries", [])]
            for s in summaries:
                if s.get("jobName") != job_name:
                    continue
                if not self._tagged(bedrock, s["jobArn"], idempotency_key):
                    continue
                return RemoteRef(backend=NAME, remote_id=s["jobArn"],
                                 extra={"job_name": job_name, "region": region,
                                        "idempotency_key": idempotency_key,
                                        **({"profile": options["profile"]} if options and
                                           options.get("profile") else {}),
                                        "model_name": s.get("customModelName"),
                                        "base_model": (s.get("baseModelArn") or "").split(
                                            "foundation-model/")[-1] or None})
        return None

    def _tagged(self, bedrock, arn: str, key: str) -> bool:
        from unitune.errors import PermissionDenied

        from .aws import aws_call

        try:
            with aws_call("list_tags_for_resource"):
                tags = bedrock.list_tags_for_resource(resourceARN=arn).get("tags", [])
        except (PermissionDenied, NotFound):
            return True  # cannot read tags: the derived name alone identifies the job
        values = {t.get("key"): t.get("value") for t in tags}
        return values.get(naming.TAG_JOB_ID) in (None, naming.tag(naming.TAG_JOB_ID, key)["value"])

    # -- observe -----------------------------------------------------------------------------------
    def _identifier(self, ref: RemoteRef) -> str:
        return str(ref.extra.get("job_name") or ref.remote_id)

    def _region_of(self, ref: RemoteRef) -> str:
        region = ref.extra.get("region")
        if not region and ref.remote_id.startswith("arn:"):
            region = ref.remote_id.split(":")[3]
        return str(region or self.region())

    def _job(self, ref: RemoteRef) -> dict[str, Any]:
        from .aws import aws_call

        bedrock = self._ref_client("bedrock", ref)
        with aws_call("get_model_customization_job"):
            return bedrock.get_model_customization_job(jobIdentifier=self._identifier(ref))

    def get(self, ref: RemoteRef) -> Snapshot:
        from .status import snapshot

        return snapshot(ref, self._job(ref))

    def cancel(self, ref: RemoteRef) -> Snapshot:
        from .aws import aws_call

        snap = self.get(ref)
        if snap.status.is_terminal or snap.raw_status == "Stopping":
            return snap
        bedrock = self._ref_client("bedrock", ref)
        try:
            with aws_call("stop_model_customization_job"):
                bedrock.stop_model_customization_job(jobIdentifier=self._identifier(ref))
        except InvalidRequest:
            # it finished between get and stop: report what it is now
            latest = self.get(ref)
            if latest.status.is_terminal:
                return latest
            raise
        return self.get(ref)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        from .metrics import read_metrics

        job = self._job(ref)
        output = (job.get("outputDataConfig") or {}).get("s3Uri") or ref.extra.get("output")
        if not output:
            return []
        return read_metrics(self._ref_client("s3", ref), output,
                            job.get("jobArn") or ref.remote_id)

    def events(self, ref: RemoteRef) -> list[Event]:
        from .status import events

        return events(self._job(ref))

    def list_remote(self, limit: int = 20) -> list[Snapshot]:
        """The newest customization jobs in the configured region (any creator)."""
        from .aws import aws_call
        from .status import snapshot

        bedrock = self.client("bedrock")
        with aws_call("list_model_customization_jobs"):
            out = bedrock.list_model_customization_jobs(maxResults=max(1, min(limit, 1000)),
                                                        sortBy="CreationTime",
                                                        sortOrder="Descending")
        snaps = []
        for s in out.get("modelCustomizationJobSummaries", []):
            ref = RemoteRef(backend=NAME, remote_id=s["jobArn"],
                            extra={"job_name": s.get("jobName"), "region": self.region()})
            snaps.append(snapshot(ref, {**s, "outputModelArn": s.get("customModelArn"),
                                        "outputModelName": s.get("customModelName")}))
        return snaps

    # -- deploy ------------------------------------------------------------------------------------
    def _deploy_target(self, ref: RemoteRef):
        from unitune.catalog import find_model

        from .status import base_model_id

        job = self._job(ref)
        snap_status = job.get("status")
        if snap_status != "Completed" or not job.get("outputModelArn"):
            raise InvalidRequest(f"job {self._identifier(ref)} is {snap_status}; only a completed "
                                 "job has a custom model to deploy", backend=NAME,
                                 hint="wait for it: `unitune watch <job id>`")
        base = ref.extra.get("base_model") or base_model_id(job)
        info = find_model(NAME, base) if base else None
        name_base = job.get("outputModelName") or ref.extra.get("model_name") or self._identifier(ref)
        return job, info, name_base

    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = True):
        """On-demand deployment where the family supports it, else provisioned throughput.

        dry_run: returns the DeployPlan (str() prints it with the hourly/monthly cost).
        Otherwise creates it and returns the ModelHandle with `endpoint` = the deployment or
        provisioned model ARN (the registry stores it)."""
        from unitune.job import ModelHandle

        from .deploy import build_plan, execute
        from .status import base_model_id

        job, info, name_base = self._deploy_target(ref)
        plan = build_plan(info, job["outputModelArn"], name_base, options or {})
        if dry_run:
            return plan
        key = self._job_key(ref, job)
        done = execute(self._ref_client("bedrock", ref), plan,
                       naming.token_for(f"{key}:deploy:{plan.mode}:{plan.name}"), key)
        cost = (f"; costs ${done.hourly_usd:,.2f}/hour ≈ ${done.monthly_usd:,.2f}/month until "
                "`unitune undeploy`" if done.hourly_usd else "")
        return ModelHandle(
            backend=NAME, model_id=job["outputModelArn"], name=job.get("outputModelName"),
            base_model=base_model_id(job), endpoint=done.arn,
            artifacts={"deployment": done.arn or "", "deployment_mode": done.mode,
                       "deployment_name": done.name},
            invoke=f"bedrock-runtime converse(modelId={done.arn!r}) once it is "
                   f"{'Active' if done.mode == 'on-demand' else 'InService'}{cost}")

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> str:
        from .deploy import remove

        job, _info, name_base = self._deploy_target(ref)
        return remove(self._ref_client("bedrock", ref), name_base, options or {})

    def _job_key(self, ref: RemoteRef, job: dict[str, Any]) -> str:
        return str(ref.extra.get("idempotency_key") or job.get("jobName") or ref.remote_id)
