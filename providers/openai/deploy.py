"""Azure deployments of a tuned model through the Azure Resource Manager REST API (httpx).

An Azure fine-tune is usable only through a deployment, billed per hour while it exists, so
`deploy` says the hourly cost (from the price catalog) before it creates anything; `undeploy`
deletes the deployment. The bearer token comes from a provider-supplied callable, the variable
named by `arm_token_env` (default AZURE_ARM_TOKEN), the `arm_token` option, or azure-identity,
in that order.

SKUs: `standard` → Standard, `globalstandard` → GlobalStandard, `developer` → `developertier`
(Microsoft's deploy example for the Developer tier, which also uses ARM api-version
2025-07-01-preview; that version is the default for it). What `deploy` used (the ARM coordinates,
deployment name, SKU, API version — nothing secret) is stored with the job under
UNITUNE_HOME/deployments/azure/, and put in the model handle's `artifacts`, so `undeploy` from
any process finds the deployment without being given the options again.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from unitune.errors import (AuthError, BackendUnavailable, InvalidRequest, SpecError,
                            from_http_status)
from unitune.job import JobStatus, ModelHandle, Snapshot
from unitune.redact import redact_text

from .checks import model_info
from .naming import slug

ARM_SCOPE = "https://management.azure.com/.default"
SKU_NAMES = {"standard": "Standard", "globalstandard": "GlobalStandard",
             "developer": "developertier", "developertier": "developertier"}
DEVELOPER_ARM_API_VERSION = "2025-07-01-preview"  # Microsoft's Developer-tier deploy example
DEFAULT_ARM_API_VERSION = "2024-10-01"
# the deploy options `undeploy` needs again (never a token)
REMEMBERED = ("subscription_id", "resource_group", "account", "deployment_name", "arm_endpoint",
              "arm_api_version", "sku")


def arm_api_version(options: Any) -> str:
    """The ARM api-version: the option, else the one the SKU needs."""
    if options.arm_api_version:
        return options.arm_api_version
    return (DEVELOPER_ARM_API_VERSION if SKU_NAMES.get(options.sku.lower()) == "developertier"
            else DEFAULT_ARM_API_VERSION)


def _memory_path(job_id: str) -> Any:
    import re

    from unitune.paths import unitune_home

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", job_id)
    return unitune_home() / "deployments" / "azure" / f"{safe}.json"


def remember(job_id: str, options: Any, name: str) -> dict[str, Any]:
    """Store what `deploy` used for job `job_id` (non-secret); returns it."""
    import json

    used = {k: getattr(options, k) for k in REMEMBERED if getattr(options, k) is not None}
    used["deployment_name"] = name
    used["arm_api_version"] = arm_api_version(options)
    path = _memory_path(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(used, indent=2, sort_keys=True), encoding="utf-8")
    return used


def recalled(job_id: str) -> dict[str, Any]:
    """What `deploy` stored for job `job_id` ({} when it never deployed from this UNITUNE_HOME)."""
    import json

    try:
        data = json.loads(_memory_path(job_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in REMEMBERED} if isinstance(data, dict) else {}


def forget(job_id: str) -> None:
    try:
        _memory_path(job_id).unlink()
    except OSError:
        pass


def hosting_cost(model: str | None, sku: str) -> tuple[float, str] | None:
    """(USD per hour, where the number comes from) for a deployment of a model tuned from
    `model`, or None when the catalog has no price."""
    info = model_info("azure", model) if model else None
    if info is None:
        return None
    hourly = [h for h in info.hosting if h.kind == "deployment" and h.unit == "per_hour"
              and h.usd is not None]
    if not hourly:
        return None
    dev = [h for h in hourly if "developer" in (h.note or "").lower()]
    other = [h for h in hourly if h not in dev]
    pick = (dev or other)[0] if sku.lower() == "developer" else (other or dev)[0]
    return pick.usd, f"price catalog, as of {pick.as_of}{'' if pick.verified else ', unverified'}"


def _token(options: Any, provider: Callable[[], str] | None) -> str:
    token = provider() if provider is not None else None
    token = token or os.environ.get(options.arm_token_env) or (
        options.arm_token.get_secret_value() if options.arm_token is not None else None)
    if token:
        return token
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise AuthError(f"no Azure Resource Manager token: set {options.arm_token_env} (e.g. "
                        "`az account get-access-token --query accessToken -o tsv`) or install "
                        "azure-identity", backend="azure",
                        hint="pip install azure-identity, then `az login`") from exc
    return DefaultAzureCredential().get_token(ARM_SCOPE).token


def _url(options: Any, name: str) -> str:
    missing = [k for k in ("subscription_id", "resource_group", "account")
               if not getattr(options, k)]
    if missing:
        raise SpecError(f"deploying on Azure needs {', '.join(missing)}",
                        field="backend_options.azure." + missing[0],
                        hint="set backend_options.azure.subscription_id / resource_group / "
                             "account (or -o key=value, or UNITUNE_AZURE_SUBSCRIPTION_ID, …)")
    return (f"{options.arm_endpoint.rstrip('/')}/subscriptions/{options.subscription_id}"
            f"/resourceGroups/{options.resource_group}/providers/Microsoft.CognitiveServices"
            f"/accounts/{options.account}/deployments/{name}")


def _arm(method: str, url: str, options: Any, token: str,
         body: dict[str, Any] | None = None) -> Any:
    import httpx

    def clean(text: str) -> str:
        return redact_text(text, extra=options, secrets=[token]) or ""

    try:
        resp = httpx.request(method, url, params={"api-version": arm_api_version(options)},
                             headers={"Authorization": f"Bearer {token}"}, json=body,
                             timeout=options.timeout or 60.0)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(clean(f"Azure Resource Manager: {method} failed: {exc}"),
                                 backend="azure", hint="check arm_endpoint / network") from exc
    if resp.status_code >= 400:
        try:
            err = resp.json().get("error") or {}
        except ValueError:
            err = {}
        raise from_http_status(resp.status_code, clean(
            f"Azure Resource Manager: {method} deployment failed (HTTP {resp.status_code}): "
            f"{err.get('message') or resp.text[:300]}"), backend="azure",
            vendor_code=err.get("code"))
    return resp


def deployment_name(model: str, options: Any) -> str:
    return options.deployment_name or slug(model.replace(".", "-"), 64)


def deploy(snap: Snapshot, endpoint: str | None, options: Any, dry_run: bool,
           log: Callable[[str], None],
           token_provider: Callable[[], str] | None = None) -> ModelHandle | str:
    """PUT a deployment of the job's tuned model (the hourly cost is logged first); with
    `dry_run`, only what would be done."""
    if snap.status is not JobStatus.SUCCEEDED or snap.model is None:
        raise InvalidRequest(f"job {snap.ref.remote_id} is {snap.status}; only a succeeded job "
                             "has a model to deploy", backend="azure")
    model, sku = snap.model.model_id, options.sku
    sku_name, name = SKU_NAMES.get(sku.lower(), sku), deployment_name(model, options)
    cost = hosting_cost(snap.model.base_model, sku)
    if cost is None:
        cost_line = (f"Hosting cost for a {sku_name} deployment is not in the price catalog; "
                     "check Azure pricing before leaving it running.")
    else:
        cost_line = (f"A {sku_name} deployment of {model} costs ${cost[0]:.2f}/hour while it "
                     f"exists ({cost[1]}), plus per-token inference; `unitune undeploy` "
                     "removes it.")
    if dry_run:
        return (f"{cost_line}\nwould PUT deployment {name!r} (sku {sku_name}, capacity "
                f"{options.capacity}) for model {model}")
    log(cost_line)  # before anything is created
    url = _url(options, name)
    body = {"sku": {"name": sku_name, "capacity": options.capacity},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
    resp = _arm("PUT", url, options, _token(options, token_provider), body)
    state = ((resp.json() or {}).get("properties") or {}).get("provisioningState")
    used = remember(snap.ref.remote_id, options, name)
    return ModelHandle(backend="azure", model_id=model, base_model=snap.model.base_model,
                       name=name, endpoint=f"{(endpoint or '').rstrip('/')}/openai/deployments/"
                       f"{name}", checkpoints=snap.model.checkpoints,
                       artifacts={"deployment": name, "provisioning_state": str(state),
                                  "deploy_options": json.dumps(used, sort_keys=True)},
                       invoke=f'AzureOpenAI(...).chat.completions.create(model="{name}", '
                              'messages=[...])')


def undeploy(snap: Snapshot, options: Any, token_provider: Callable[[], str] | None = None
             ) -> ModelHandle:
    """DELETE the deployment of the job's tuned model (stops the hourly charge). `options`
    already carry what `deploy` stored for the job (see `recalled`)."""
    if snap.model is None:
        raise InvalidRequest(f"job {snap.ref.remote_id} has no tuned model", backend="azure")
    url = _url(options, deployment_name(snap.model.model_id, options))
    _arm("DELETE", url, options, _token(options, token_provider))
    forget(snap.ref.remote_id)
    return snap.model.model_copy(update={"endpoint": None, "artifacts": {}})
