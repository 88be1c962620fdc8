"""BedrockProvider: the Provider protocol for AWS Bedrock model customization — the translation
table (`translate.py`) plus a thin adapter over boto3.

Jobs live in a region (the `Location`, stored with the job when it is claimed) and are addressed
by their job name, derived from unitune's idempotency key, plus that region: `lookup` lists the
region's jobs with that name and confirms the `unitune-job-id` tag, so a fresh process finds a
job from the key and the location alone. Everything a later call needs (job name, region,
profile) travels in `RemoteRef.extra`; credentials come from the AWS chain on every call.
Every call is one attempt (botocore's retries are off); the core's policy retries.
"""
from __future__ import annotations

from typing import Any, ClassVar

from unitune.backends import YES, Capabilities, no
from unitune.errors import BackendError, InvalidRequest, NotFound, PermissionDenied
from unitune.job import Event, Metrics, RemoteRef, Snapshot
from unitune.provider import DataTarget, Ids, Location, PreparedFile, Translation, placeholder

from . import naming
from .options import BedrockOptions
from .s3 import data_key
from .translate import NAME

DEFAULT_REGION = "us-east-1"


class BedrockProvider:
    """AWS Bedrock model customization through boto3 (see docs/backends/bedrock.md)."""

    name = NAME
    extra: ClassVar[str | None] = "bedrock"
    requires: ClassVar[tuple[str, ...]] = ("boto3",)
    options_model: ClassVar[type[BedrockOptions]] = BedrockOptions

    # -- what it can do, where jobs live, what the data becomes --------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(NAME, {
            "method:sft": YES,
            "method:dpo": no("Bedrock model customization has no preference (DPO) tuning"),
            "validation_file": YES,
            "pause": no("Bedrock jobs cannot be paused, only stopped"),
            "resume": no("a stopped Bedrock job cannot be resumed; submit a new one"),
            "restart": no("a stopped or failed Bedrock job cannot be continued; submit a new one"),
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

    def _info(self, spec):
        from .translate import model_info

        return model_info(spec, []) if spec is not None else None

    def locate(self, spec, options: BedrockOptions) -> Location:
        """The region, decided here and stored with the job: the `region` option as given
        (translate refuses it, naming the right region, when the model does not tune there);
        else the AWS chain's region when the model tunes in it; else the model's tuning region
        (a family that tunes in one region only — Llama and Claude in us-west-2 — is sent
        there, never to the credentials' default region); else us-east-1."""
        from .aws import chain_region

        info = self._info(spec)
        tunes_in = list(info.regions) if info is not None and info.regions else []
        chain = chain_region(options.profile)
        if options.region:
            region, source = options.region, "option"
        elif chain and (not tunes_in or chain in tunes_in):
            region, source = chain, "aws-chain"
        elif tunes_in:
            region, source = tunes_in[0], "model"
        else:
            region, source = DEFAULT_REGION, "default"
        extra: dict[str, Any] = {"region_source": source}
        if source == "model" and chain:
            extra["chain_region"] = chain
        if options.profile:
            extra["profile"] = options.profile
        return Location(backend=NAME, region=region, extra=extra)

    def data_target(self, spec, options: BedrockOptions) -> DataTarget:
        info = self._info(spec)
        if info is None:
            return DataTarget(format=None)
        return DataTarget(format=info.rules.format, validate=f"bedrock:{info.model}",
                          validation=info.rules.validation)

    def translate(self, spec, prepared, location: Location, options: BedrockOptions,
                  ids: Ids) -> Translation:
        from .translate import translate

        return translate(spec, prepared, location, options, ids)

    # -- the SDK adapter --------------------------------------------------------------------------
    def _client(self, service: str, where: Location | RemoteRef):
        from .aws import client

        if isinstance(where, RemoteRef):
            region = where.extra.get("region") or (where.remote_id.split(":")[3]
                                                   if where.remote_id.startswith("arn:") else None)
            return client(service, region, where.extra.get("profile"))
        return client(service, where.region, where.extra.get("profile"))

    def destination(self, file: PreparedFile, location: Location, options: BedrockOptions) -> str:
        key = data_key(options.prefix, file.sha256)
        return f"s3://{options.bucket}/{key}" if options.bucket else f"{placeholder('bucket')}/{key}"

    def upload(self, file: PreparedFile, location: Location, options: BedrockOptions) -> str:
        """HeadObject, then PutObject only when the content is not there yet."""
        from .s3 import upload

        if not options.bucket:
            raise InvalidRequest("backend_options.bedrock.bucket is not set", backend=NAME,
                                 hint="set it in the spec or export UNITUNE_BEDROCK_BUCKET")
        key = data_key(options.prefix, file.sha256)
        upload(self._client("s3", location), options.bucket, key, file.path, options.kms_key_id)
        return f"s3://{options.bucket}/{key}"

    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: BedrockOptions) -> RemoteRef:
        """One create call. A name already in use means an earlier attempt got through (its
        answer lost): that error is retryable, so the core looks the job up by its key."""
        from .aws import CONFLICT_CODES, aws_call

        try:
            with aws_call("create_model_customization_job"):
                arn = self._client("bedrock", location).create_model_customization_job(
                    **request)["jobArn"]
        except BackendError as exc:
            if exc.vendor_code not in CONFLICT_CODES:
                raise
            exc.retryable = True  # the job may be ours: the core looks it up by key first
            exc.retry_after = exc.retry_after if exc.retry_after is not None else 1.0
            exc.hint = ("the job name is in use: unitune looked its own job up by key before "
                        "each retry; if this persists, a job not made by this unitune job "
                        "holds the name")
            raise
        return self._ref(arn, request["jobName"], ids.key, location,
                         model_name=request["customModelName"],
                         base_model=request["baseModelIdentifier"],
                         output=request["outputDataConfig"]["s3Uri"])

    def _ref(self, arn: str, job_name: str, key: str | None, location: Location,
             **extra: Any) -> RemoteRef:
        extra["idempotency_key"] = key
        return RemoteRef(backend=NAME, remote_id=arn, extra={
            "job_name": job_name, "region": location.region, **location.extra,
            **{k: v for k, v in extra.items() if v}})

    def lookup(self, key: str, location: Location, options: BedrockOptions) -> RemoteRef | None:
        """The job created for this key in the location's region: by its derived name,
        confirmed by its `unitune-job-id` tag."""
        from .aws import aws_call

        bedrock = self._client("bedrock", location)
        job_name = naming.job_name_for(key)
        with aws_call("list_model_customization_jobs"):
            pages = bedrock.get_paginator("list_model_customization_jobs").paginate(
                nameContains=job_name)
            summaries = [s for page in pages for s in page.get("modelCustomizationJobSummaries", [])]
        for s in summaries:
            if s.get("jobName") == job_name and self._tagged(bedrock, s["jobArn"], key):
                base = (s.get("baseModelArn") or "").split("foundation-model/")[-1]
                return self._ref(s["jobArn"], job_name, key, location,
                                 model_name=s.get("customModelName"), base_model=base)
        return None

    def _tagged(self, bedrock, arn: str, key: str) -> bool:
        from .aws import aws_call

        try:
            with aws_call("list_tags_for_resource"):
                tags = bedrock.list_tags_for_resource(resourceARN=arn).get("tags", [])
        except (PermissionDenied, NotFound):
            return True  # cannot read tags: the derived name alone identifies the job
        values = {t.get("key"): t.get("value") for t in tags}
        return values.get(naming.TAG_JOB_ID) in (None, naming.tag(naming.TAG_JOB_ID, key)["value"])

    def _job(self, ref: RemoteRef) -> dict[str, Any]:
        from .aws import aws_call

        with aws_call("get_model_customization_job"):
            return self._client("bedrock", ref).get_model_customization_job(
                jobIdentifier=str(ref.extra.get("job_name") or ref.remote_id))

    def read(self, ref: RemoteRef) -> Snapshot:
        from .status import snapshot

        return snapshot(ref, self._job(ref))

    def cancel(self, ref: RemoteRef) -> Snapshot:
        from .aws import aws_call

        snap = self.read(ref)
        if snap.status.is_terminal or snap.raw_status == "Stopping":
            return snap
        try:
            with aws_call("stop_model_customization_job"):
                self._client("bedrock", ref).stop_model_customization_job(
                    jobIdentifier=str(ref.extra.get("job_name") or ref.remote_id))
        except InvalidRequest:
            latest = self.read(ref)  # it finished between read and stop: report what it is now
            if latest.status.is_terminal:
                return latest
            raise
        return self.read(ref)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        from .metrics import read_metrics

        job = self._job(ref)
        output = (job.get("outputDataConfig") or {}).get("s3Uri") or ref.extra.get("output")
        if not output:
            return []
        return read_metrics(self._client("s3", ref), output, job.get("jobArn") or ref.remote_id)

    def events(self, ref: RemoteRef) -> list[Event]:
        from .status import events

        return events(self._job(ref))

    # -- Deployable -------------------------------------------------------------------------------
    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = True):
        """On-demand deployment where the family supports it, else provisioned throughput.
        dry_run: the DeployPlan (str() prints it with its cost); otherwise creates it and
        returns the ModelHandle whose `endpoint` is the deployment's ARN."""
        from . import deploy

        job = self._job(ref)
        info, name_base = deploy.target(job, ref)
        plan = deploy.build_plan(info, job["outputModelArn"], name_base, options or {})
        if dry_run:
            return plan
        key = str(ref.extra.get("idempotency_key") or job.get("jobName") or ref.remote_id)
        done = deploy.execute(self._client("bedrock", ref), plan,
                              naming.token_for(f"{key}:deploy:{plan.mode}:{plan.name}"), key)
        return deploy.handle(job, done)

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> str:
        from . import deploy

        _info, name_base = deploy.target(self._job(ref), ref)
        return deploy.remove(self._client("bedrock", ref), name_base, options or {})

