"""`AzureOpenAIBackend`: the OpenAI backend with an `AzureOpenAI` client (key or Microsoft Entra
token), `trainingType` sent for supervised jobs, and `deploy` / `undeploy` of the tuned model
through the Azure Resource Manager REST API (httpx), printing the hourly hosting cost from the
price catalog before it creates anything."""
from __future__ import annotations

import os
from typing import Any, Callable

from unitune.backends import YES, Capabilities, PlanRow, no
from unitune.data.report import Problem
from unitune.errors import (AuthError, BackendUnavailable, InvalidRequest, MissingDependency,
                            SpecError, from_http_status)
from unitune.job import JobStatus, ModelHandle, RemoteRef
from unitune.spec import JobSpec

from .backend import OpenAIBackend
from .naming import _slug
from .vendor_errors import scrub

DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
DEFAULT_ARM_API_VERSION = "2024-10-01"


class AzureOpenAIBackend(OpenAIBackend):
    """Azure OpenAI fine-tuning (`openai.AzureOpenAI`). Options (`backend_options.azure` or
    `UNITUNE_AZURE_<OPTION>`): endpoint, api_version, auth (key|entra), api_key_env,
    training_type, deployment: subscription_id, resource_group, account, sku, capacity,
    deployment_name, arm_endpoint, arm_api_version, arm_token_env. The key comes from
    AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN); `auth: entra` uses azure-identity."""

    name = "azure"
    display = "Azure OpenAI"
    key_env = "AZURE_OPENAI_API_KEY"

    def __init__(self, *, token_provider: Callable[[], str] | None = None,
                 arm_token_provider: Callable[[], str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._token_provider = token_provider
        self._arm_token_provider = arm_token_provider
        self._entra_provider: Callable[[], str] | None = None

    def _conn(self, opts: dict[str, Any]) -> dict[str, Any]:
        endpoint = opts.get("endpoint") or opts.get("azure_endpoint") or os.environ.get("AZURE_OPENAI_ENDPOINT")
        version = (opts.get("api_version") or os.environ.get("AZURE_OPENAI_API_VERSION")
                   or os.environ.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
        conn = {"endpoint": endpoint, "api_version": version, "auth": opts.get("auth") or None,
                "api_key_env": opts.get("api_key_env") or None}
        return {k: v for k, v in conn.items() if v}

    def _client_kwargs(self, conn: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
        if not conn.get("endpoint"):
            raise AuthError("no Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or "
                            "backend_options.azure.endpoint", backend=self.name,
                            hint="e.g. https://<resource>.openai.azure.com")
        kw: dict[str, Any] = {"azure_endpoint": conn["endpoint"], "api_version": conn["api_version"]}
        if self._token_provider is not None:
            kw["azure_ad_token_provider"] = self._token_provider
            return kw
        if conn.get("auth") == "entra":
            try:
                from azure.identity import DefaultAzureCredential, get_bearer_token_provider
            except ImportError as exc:
                raise MissingDependency("auth: entra needs azure-identity",
                                        hint="pip install azure-identity") from exc
            if self._entra_provider is None:  # one credential per backend (it caches tokens)
                self._entra_provider = get_bearer_token_provider(
                    DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default")
            kw["azure_ad_token_provider"] = self._entra_provider
            return kw
        key = (os.environ.get(conn["api_key_env"]) if conn.get("api_key_env") else None) \
            or opts.get("api_key") or os.environ.get("AZURE_OPENAI_API_KEY")
        token = os.environ.get("AZURE_OPENAI_AD_TOKEN")
        if key:
            kw["api_key"] = key
        elif token:
            kw["azure_ad_token"] = token
        else:
            raise AuthError("no Azure OpenAI credentials: set AZURE_OPENAI_API_KEY (or "
                            "AZURE_OPENAI_AD_TOKEN, or backend_options.azure.auth: entra)",
                            backend=self.name, hint="the key is under Keys and Endpoint in the portal")
        return kw

    def _make_client(self, kw: dict[str, Any]) -> Any:
        import openai

        return openai.AzureOpenAI(**kw)

    def _extra_body(self, spec: JobSpec, opts: dict[str, Any]) -> dict[str, Any] | None:
        if self._method_type(spec) == "supervised":
            # without it Azure answers, misleadingly, that the model cannot be fine-tuned
            return {"trainingType": int(opts.get("training_type", 1))}
        return None

    def _extra_rows(self, spec: JobSpec, opts: dict[str, Any]) -> list[PlanRow]:
        if self._method_type(spec) == "supervised":
            return [PlanRow(f"backend_options.azure.training_type", opts.get("training_type"),
                            "trainingType", int(opts.get("training_type", 1)),
                            note="Azure requires it for supervised jobs")]
        return []

    def _extra_notes(self, spec: JobSpec, opts: dict[str, Any], model: str) -> list[str]:
        cost = self.hosting_cost(model, opts.get("sku", "standard"))
        line = "the tuned model must be deployed before use (`unitune deploy`)"
        if cost is not None:
            line += f"; a {opts.get('sku', 'standard')} deployment costs ${cost[0]:.2f}/hour ({cost[1]})"
        return [line]

    def _upload_dest(self) -> str:
        return "azure openai files (purpose=fine-tune)"

    def _invoke_hint(self, model_id: str) -> str:
        return f"deploy it first: unitune deploy <job id> (Azure serves tuned models only through a deployment)"

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        caps.features["deploy"] = YES
        caps.features["pause"] = no("Azure OpenAI documents no pause for fine-tuning jobs")
        caps.features["resume"] = no("Azure OpenAI documents no resume for fine-tuning jobs")
        return caps

    def lifecycle_problems(self, model: str, opts: dict[str, Any]) -> list[Problem]:
        return super().lifecycle_problems(model, opts)

    # -- deployment through Azure Resource Manager -------------------------------------------------
    def hosting_cost(self, model: str | None, sku: str) -> tuple[float, str] | None:
        """(USD per hour, where the number comes from) for a deployment of a model tuned from `model`."""
        if not model:
            return None
        info = self._model_info(model)
        if info is None:
            return None
        deployments = [h for h in info.hosting if h.kind == "deployment" and h.unit == "per_hour"]
        if not deployments:
            return None
        dev = [h for h in deployments if "developer" in (h.note or "").lower()]
        other = [h for h in deployments if h not in dev]
        pick = (dev or other)[0] if sku.lower() == "developer" else (other or dev)[0]
        src = f"price catalog, as of {pick.as_of}{'' if pick.verified else ', unverified'}"
        return pick.usd, src

    def _arm(self, opts: dict[str, Any]) -> tuple[str, dict[str, str]]:
        missing = [k for k in ("subscription_id", "resource_group", "account") if not opts.get(k)]
        if missing:
            raise SpecError(f"deploying on Azure needs {', '.join(missing)}",
                            field="backend_options.azure." + missing[0],
                            hint="set backend_options.azure.subscription_id / resource_group / "
                                 "account (or UNITUNE_AZURE_SUBSCRIPTION_ID, …)")
        token = None
        if self._arm_token_provider is not None:
            token = self._arm_token_provider()
        else:
            token = os.environ.get(opts.get("arm_token_env") or "AZURE_ARM_TOKEN") or opts.get("arm_token")
        if not token:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:
                raise AuthError("no Azure Resource Manager token: set AZURE_ARM_TOKEN (e.g. "
                                "`az account get-access-token --query accessToken -o tsv`) or "
                                "install azure-identity", backend=self.name,
                                hint="pip install azure-identity, then `az login`") from exc
            token = DefaultAzureCredential().get_token("https://management.azure.com/.default").token
        base = str(opts.get("arm_endpoint") or "https://management.azure.com").rstrip("/")
        url = (f"{base}/subscriptions/{opts['subscription_id']}/resourceGroups/{opts['resource_group']}"
               f"/providers/Microsoft.CognitiveServices/accounts/{opts['account']}/deployments")
        return url, {"Authorization": f"Bearer {token}"}

    def _arm_request(self, method: str, url: str, headers: dict[str, str], opts: dict[str, Any],
                     json_body: dict[str, Any] | None = None) -> Any:
        import httpx

        params = {"api-version": str(opts.get("arm_api_version") or DEFAULT_ARM_API_VERSION)}
        secrets = [headers.get("Authorization", "")[7:]]
        try:
            resp = httpx.request(method, url, params=params, headers=headers, json=json_body,
                                 timeout=float(opts.get("timeout", 60)))
        except httpx.HTTPError as exc:
            raise BackendUnavailable(scrub(f"Azure Resource Manager: {method} failed: {exc}", secrets),
                                     backend=self.name, hint="check arm_endpoint / network") from exc
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error") or {}
            except ValueError:
                err = {}
            msg = err.get("message") or resp.text[:300]
            raise from_http_status(resp.status_code, scrub(f"Azure Resource Manager: {method} "
                                                          f"deployment failed (HTTP {resp.status_code}):"
                                                          f" {msg}", secrets),
                                   backend=self.name, vendor_code=err.get("code"))
        return resp

    def _deployment_name(self, model: str, opts: dict[str, Any]) -> str:
        return str(opts.get("deployment_name") or _slug(model.replace(".", "-"), 64))

    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = False) -> ModelHandle | str:
        """Create (PUT) an Azure deployment of the tuned model; prints the hourly cost first."""
        opts = self._opts(extra=options)
        snap = self.get(ref)
        if snap.status is not JobStatus.SUCCEEDED or snap.model is None:
            raise InvalidRequest(f"job {ref.remote_id} is {snap.status}; only a succeeded job has a "
                                 "model to deploy", backend=self.name)
        model = snap.model.model_id
        sku = str(opts.get("sku") or "standard")
        sku_name = {"standard": "Standard", "globalstandard": "GlobalStandard",
                    "developer": "Developer"}.get(sku.lower(), sku)
        capacity = int(opts.get("capacity", 1))
        name = self._deployment_name(model, opts)
        cost = self.hosting_cost(snap.model.base_model, sku)
        if cost is None:
            cost_line = (f"Hosting cost for a {sku_name} deployment is not in the price catalog; "
                         "check Azure pricing before leaving it running.")
        else:
            cost_line = (f"A {sku_name} deployment of {model} costs ${cost[0]:.2f}/hour while it exists "
                         f"({cost[1]}), plus per-token inference; `unitune undeploy` removes it.")
        body = {"sku": {"name": sku_name, "capacity": capacity},
                "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
        if dry_run:
            return (f"{cost_line}\nwould PUT deployment {name!r} (sku {sku_name}, capacity {capacity}) "
                    f"for model {model}")
        self._log(cost_line)  # before anything is created
        url, headers = self._arm(opts)
        resp = self._arm_request("PUT", f"{url}/{name}", headers, opts, body)
        state = ((resp.json() or {}).get("properties") or {}).get("provisioningState")
        return ModelHandle(backend=self.name, model_id=model, base_model=snap.model.base_model,
                           name=name, endpoint=f"{str(self._conn(opts).get('endpoint', '')).rstrip('/')}"
                                               f"/openai/deployments/{name}",
                           checkpoints=snap.model.checkpoints,
                           artifacts={"deployment": name, "provisioning_state": str(state)},
                           invoke=f'AzureOpenAI(...).chat.completions.create(model="{name}", messages=[...])')

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> ModelHandle | str:
        """Delete the deployment (stops the hourly charge)."""
        opts = self._opts(extra=options)
        snap = self.get(ref)
        if snap.model is None:
            raise InvalidRequest(f"job {ref.remote_id} has no tuned model", backend=self.name)
        name = self._deployment_name(snap.model.model_id, opts)
        url, headers = self._arm(opts)
        self._arm_request("DELETE", f"{url}/{name}", headers, opts)
        return ModelHandle(backend=self.name, model_id=snap.model.model_id,
                           base_model=snap.model.base_model, checkpoints=snap.model.checkpoints,
                           invoke=self._invoke_hint(snap.model.model_id))
