"""Making a tuned Bedrock model usable: on-demand custom model deployment where the family
supports it, otherwise provisioned throughput — with the hosting cost from the price catalog.

Hosting can cost far more than training: provisioned throughput bills every hour per model unit
whether or not it is used (Titan Text Express ≈ $20.50/h ≈ $14,965/month for one unit, against a
few dollars to train on a small dataset). The CLI shows this and asks for `--yes`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from unitune.errors import InvalidRequest, SpecError

HOURS_PER_MONTH = 730  # 24 × 365 / 12
COMMITMENTS = {"none": None, "hourly": None, "no-commitment": None, "1month": "OneMonth",
               "onemonth": "OneMonth", "1m": "OneMonth", "6months": "SixMonths",
               "sixmonths": "SixMonths", "6m": "SixMonths"}
MODES = ("on-demand", "provisioned")


@dataclass
class DeployPlan:
    """What `deploy` would do (dry run) or did, and what it costs."""

    backend: str
    mode: str  # on-demand | provisioned
    name: str
    model_arn: str
    model_units: int | None = None
    commitment: str | None = None  # None (hourly), OneMonth, SixMonths
    hourly_usd: float | None = None
    monthly_usd: float | None = None
    storage_usd_per_month: float | None = None
    price_source: str | None = None
    dry_run: bool = True
    arn: str | None = None  # deployment / provisioned model ARN once created
    status: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        what = ("on-demand custom model deployment" if self.mode == "on-demand"
                else f"provisioned throughput, {self.model_units} model unit(s), "
                     f"{self.commitment or 'no commitment (hourly)'}")
        lines = [f"{'would create' if self.dry_run else 'created'} {what}: {self.name}",
                 f"  custom model: {self.model_arn}"]
        if self.mode == "on-demand" and not self.hourly_usd:
            lines.append("  cost: no hourly fee; inference is billed per token at the base "
                         "model's on-demand rates")
        elif self.hourly_usd is not None:
            lines.append(f"  cost: ${self.hourly_usd:,.2f}/hour ≈ ${self.monthly_usd:,.2f}/month "
                         f"({HOURS_PER_MONTH} h) while it exists")
        elif self.mode == "provisioned":
            lines.append("  cost: price per model unit hour not in the catalog — check "
                         "aws.amazon.com/bedrock/pricing before proceeding")
        if self.storage_usd_per_month is not None:
            lines.append(f"  plus model storage ${self.storage_usd_per_month:,.2f}/month")
        if self.price_source:
            lines.append(f"  prices: {self.price_source}")
        if self.arn:
            lines.append(f"  arn: {self.arn} ({self.status or 'Creating'})")
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.dry_run:
            lines.append("  nothing was created; pass --yes to proceed")
        return "\n".join(lines)


def _hosting(info, kind: str):
    if info is None:
        return None
    for h in info.hosting:
        if h.kind == kind:
            return h
    return None


def supports_on_demand(info) -> bool:
    return _hosting(info, "deployment") is not None


def build_plan(info, model_arn: str, name_base: str, options: dict[str, Any]) -> DeployPlan:
    """Choose the mode and price it (no AWS call)."""
    from .naming import deployment_name_for

    options = dict(options or {})
    mode = str(options.get("mode") or ("on-demand" if supports_on_demand(info) else "provisioned"))
    mode = {"ondemand": "on-demand", "on_demand": "on-demand", "pt": "provisioned",
            "provisioned-throughput": "provisioned"}.get(mode, mode)
    if mode not in MODES:
        raise SpecError(f"unknown deploy mode {mode!r}", field="mode",
                        hint="use on-demand or provisioned")
    model = info.model if info else "this model"
    if mode == "on-demand" and not supports_on_demand(info):
        raise InvalidRequest(f"{model} has no on-demand custom model deployment",
                             backend="bedrock", hint="deploy with mode=provisioned "
                             "(provisioned throughput, billed per model unit hour)")
    storage = _hosting(info, "storage")
    plan = DeployPlan(backend="bedrock", mode=mode, model_arn=model_arn,
                      name=str(options.get("name") or deployment_name_for(
                          name_base, "od" if mode == "on-demand" else "pt")),
                      storage_usd_per_month=storage.usd if storage else None)
    if mode == "on-demand":
        od = _hosting(info, "deployment")
        plan.hourly_usd = od.usd if od and od.usd is not None else None
        if plan.hourly_usd is not None:
            plan.monthly_usd = round(plan.hourly_usd * HOURS_PER_MONTH, 2)
        plan.price_source = f"{od.source} (as of {od.as_of})" if od else None
        return plan
    units = options.get("model_units", options.get("units", 1))
    try:
        units = int(units)
    except (TypeError, ValueError):
        units = 0
    if units < 1:
        raise SpecError(f"model_units must be a positive integer, not {options.get('model_units')!r}",
                        field="model_units", hint="--option model_units=1")
    commitment_key = str(options.get("commitment") or "none").lower().replace("_", "").replace(" ", "")
    if commitment_key not in COMMITMENTS:
        raise SpecError(f"unknown commitment {options.get('commitment')!r}", field="commitment",
                        hint="use none (hourly), 1month or 6months")
    plan.model_units = units
    plan.commitment = COMMITMENTS[commitment_key]
    pt = _hosting(info, "provisioned_throughput")
    if pt is not None and pt.usd is not None:
        plan.hourly_usd = round(pt.usd * units, 4)
        plan.monthly_usd = round(plan.hourly_usd * HOURS_PER_MONTH, 2)
        plan.price_source = f"{pt.source} (as of {pt.as_of}{', unverified' if not pt.verified else ''})"
    if plan.commitment:
        plan.notes.append(f"a {plan.commitment} commitment bills the whole term and cannot be "
                          "deleted before it ends; the catalog holds the no-commitment rate only")
    plan.notes.append("provisioned throughput bills every hour while it exists, used or not: "
                      "`unitune undeploy` when done")
    return plan


def target(job: dict[str, Any], ref) -> tuple[Any, str]:
    """The catalog entry of a completed job's base model and the name deployments derive from;
    InvalidRequest while the job has no custom model yet."""
    from unitune.catalog import find_model

    from .status import base_model_id

    if job.get("status") != "Completed" or not job.get("outputModelArn"):
        raise InvalidRequest(f"job {ref.extra.get('job_name') or ref.remote_id} is "
                             f"{job.get('status')}; only a completed job has a custom model to "
                             "deploy", backend="bedrock", hint="wait for it: `unitune watch <job id>`")
    base = ref.extra.get("base_model") or base_model_id(job)
    info = find_model("bedrock", base) if base else None
    name = job.get("outputModelName") or ref.extra.get("model_name") or ref.extra.get("job_name")
    return info, str(name or ref.remote_id)


def handle(job: dict[str, Any], done: DeployPlan):
    """The model handle of a created deployment (its ARN is the `endpoint`)."""
    from unitune.job import ModelHandle

    from .status import base_model_id

    cost = (f"; costs ${done.hourly_usd:,.2f}/hour ≈ ${done.monthly_usd:,.2f}/month until "
            "`unitune undeploy`" if done.hourly_usd else "")
    return ModelHandle(
        backend="bedrock", model_id=job["outputModelArn"], name=job.get("outputModelName"),
        base_model=base_model_id(job), endpoint=done.arn,
        artifacts={"deployment": done.arn or "", "deployment_mode": done.mode,
                   "deployment_name": done.name},
        invoke=f"bedrock-runtime converse(modelId={done.arn!r}) once it is "
               f"{'Active' if done.mode == 'on-demand' else 'InService'}{cost}")


def execute(bedrock, plan: DeployPlan, token: str, job_key: str) -> DeployPlan:
    """The real create call (only after --yes)."""
    from .aws import aws_call
    from .naming import TAG_JOB_ID

    tags = [{"key": TAG_JOB_ID, "value": job_key}]
    if plan.mode == "on-demand":
        with aws_call("create_custom_model_deployment"):
            out = bedrock.create_custom_model_deployment(
                modelDeploymentName=plan.name, modelArn=plan.model_arn, tags=tags,
                clientRequestToken=token,
                description=f"unitune job {job_key}")
        plan.arn = out["customModelDeploymentArn"]
    else:
        kwargs: dict[str, Any] = dict(modelUnits=plan.model_units, provisionedModelName=plan.name,
                                      modelId=plan.model_arn, tags=tags, clientRequestToken=token)
        if plan.commitment:
            kwargs["commitmentDuration"] = plan.commitment
        with aws_call("create_provisioned_model_throughput"):
            out = bedrock.create_provisioned_model_throughput(**kwargs)
        plan.arn = out["provisionedModelArn"]
    plan.dry_run = False
    plan.status = "Creating"
    return plan


def remove(bedrock, name_base: str, options: dict[str, Any]) -> str:
    """Delete the on-demand deployment or provisioned throughput made for this model."""
    from unitune.errors import NotFound

    from .aws import aws_call
    from .naming import deployment_name_for

    options = dict(options or {})
    mode = options.get("mode")
    tried = []
    if mode in (None, "on-demand"):
        name = str(options.get("name") or deployment_name_for(name_base, "od"))
        tried.append(name)
        try:
            with aws_call("delete_custom_model_deployment"):
                bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=name)
            return f"deleted on-demand deployment {name}"
        except NotFound:
            pass
    if mode in (None, "provisioned"):
        name = str(options.get("name") or deployment_name_for(name_base, "pt"))
        tried.append(name)
        try:
            with aws_call("delete_provisioned_model_throughput"):
                bedrock.delete_provisioned_model_throughput(provisionedModelId=name)
            return f"deleted provisioned throughput {name}"
        except NotFound:
            pass
    raise NotFound(f"no deployment of this model found (looked for {', '.join(tried)})",
                   backend="bedrock", hint="list them in the Bedrock console, or pass "
                   "--option name=<deployment name>")
