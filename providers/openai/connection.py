"""Where jobs live and how to reach them, one small object per flavour (no shared base class).

`OpenAIConnection` and `AzureConnection` answer the same questions for their API:

    locate(options)            → Location (non-secret: base URL / endpoint, org, project,
                                 api version, the key's variable name; stored with the job)
    missing(location, options) → Problems for settings that are not there (all at once)
    body_rows(spec, options)   → vendor-only request fields as plan rows (Azure: trainingType,
                                 for every job kind)
    client(location, options)  → an `openai` SDK client with its own retries OFF
    invoke_hint(model_id)      → how to call the tuned model

Clients are cached per (connection, timeout, hash of the credential); the credential is read from
the environment / options each time, never stored in the Location or a RemoteRef.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Callable

from unitune.backends import PlanRow, import_sdk
from unitune.data.report import Problem
from unitune.errors import AuthError, MissingDependency
from unitune.job import RemoteRef
from unitune.provider import Location

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# Location.extra names for the `api_key_env` and `auth` options: the registry redacts RemoteRef
# extras by key name, and "api_key…" / "auth" read as secrets there (the values are not secret)
KEY_VARIABLE, IDENTITY = "key_variable", "identity"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
# trainingType values Microsoft documents (numeric and string forms): where training runs
TRAINING_TYPES = {"1": "Standard: trains in the resource's region (data residency)",
                  "standard": "Standard: trains in the resource's region (data residency)",
                  "2": "Global: trains where capacity is, from many more regions",
                  "globalstandard": "Global: trains where capacity is, from many more regions",
                  "developer": "Developer: idle capacity, may be pre-empted, no residency",
                  "developertier": "Developer: idle capacity, may be pre-empted, no residency",
                  "datazone": "Data zone (US): trains within the data zone"}
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _digest(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def _clean(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if v not in (None, "")}


def remote_ref(location: Location, job_id: str) -> RemoteRef:
    """The reference to job `job_id`: everything a later call needs is the Location in `extra`."""
    return RemoteRef(backend=location.backend, remote_id=job_id,
                     extra={"location": location.model_dump(mode="json")})


def location_of(ref: RemoteRef) -> Location:
    """The Location a RemoteRef carries (also from refs written before `location` existed,
    whose `extra.conn` held base_url / endpoint / api_version …)."""
    if "location" in ref.extra:
        return Location.model_validate(ref.extra["location"])
    conn = dict(ref.extra.get("conn") or {})
    endpoint = conn.pop("base_url", None) or conn.pop("endpoint", None)
    for old, new in (("api_key_env", KEY_VARIABLE), ("auth", IDENTITY)):
        if old in conn:
            conn[new] = conn.pop(old)
    if ref.backend == "openai":
        endpoint = endpoint or OPENAI_DEFAULT_URL
    return Location(backend=ref.backend, endpoint=endpoint, extra=_clean(conn))


class _Clients:
    """A few SDK clients, keyed by the non-secret connection and a hash of the credential."""

    def __init__(self) -> None:
        self._clients: dict[tuple, Any] = {}

    def get(self, location: Location, timeout: float | None, credential: Any,
            build: Callable[[], Any]) -> Any:
        key = (location.model_dump_json(), timeout, _digest(credential))
        if key not in self._clients:
            if len(self._clients) > 16:
                self._clients.clear()
            self._clients[key] = build()
        return self._clients[key]


class OpenAIConnection:
    """api.openai.com (or any base URL speaking its protocol), with an API key."""

    backend = "openai"
    display = "OpenAI"
    key_env = "OPENAI_API_KEY"
    upload_dest = "openai files (purpose=fine-tune)"

    def __init__(self, client: Any = None) -> None:
        self._injected = client
        self._clients = _Clients()

    def locate(self, options: Any) -> Location:
        return Location(backend=self.backend, endpoint=(
            options.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL),
            extra=_clean({"organization": options.organization or os.environ.get("OPENAI_ORG_ID"),
                          "project": options.project or os.environ.get("OPENAI_PROJECT_ID"),
                          KEY_VARIABLE: options.api_key_env}))

    def _key(self, location: Location, options: Any) -> tuple[str | None, str]:
        env = location.extra.get(KEY_VARIABLE) or options.api_key_env or self.key_env
        return (os.environ.get(env) or _secret(options.api_key)), env

    def missing(self, location: Location, options: Any) -> list[Problem]:
        key, env = self._key(location, options)
        if key or self._injected is not None:
            return []
        return [_no_credentials(self.backend, f"no OpenAI API key: {env} is not set",
                                f"export {env}=… (or set backend_options.openai.api_key_env to "
                                "the name of the variable holding it)")]

    def body_rows(self, spec: Any, options: Any) -> list[PlanRow]:
        return []

    def notes(self, model: str, options: Any) -> list[str]:
        return []

    def client(self, location: Location, options: Any) -> Any:
        if self._injected is not None:
            return self._injected
        key, env = self._key(location, options)
        if not key:
            raise AuthError(f"no OpenAI API key: set {env}", backend=self.backend,
                            hint="export OPENAI_API_KEY=… (or set backend_options.openai."
                                 "api_key_env to the name of the variable holding it)")
        kw: dict[str, Any] = {"api_key": key, "base_url": location.endpoint, "max_retries": 0,
                              "organization": location.extra.get("organization"),
                              "project": location.extra.get("project")}
        if options.timeout is not None:
            kw["timeout"] = options.timeout

        def build() -> Any:
            return import_sdk("openai", "openai").OpenAI(**kw)

        return self._clients.get(location, options.timeout, key, build)

    def invoke_hint(self, model_id: str) -> str:
        return f'OpenAI().chat.completions.create(model="{model_id}", messages=[...])'


class AzureConnection:
    """An Azure OpenAI resource: endpoint + api-version, with a key or a Microsoft Entra token."""

    backend = "azure"
    display = "Azure OpenAI"
    key_env = "AZURE_OPENAI_API_KEY"
    upload_dest = "azure openai files (purpose=fine-tune)"

    def __init__(self, client: Any = None,
                 token_provider: Callable[[], str] | None = None) -> None:
        self._injected = client
        self._token_provider = token_provider
        self._entra: Callable[[], str] | None = None
        self._clients = _Clients()

    def locate(self, options: Any) -> Location:
        version = (options.api_version or os.environ.get("AZURE_OPENAI_API_VERSION")
                   or os.environ.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
        endpoint = options.endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        return Location(backend=self.backend, endpoint=endpoint.rstrip("/") if endpoint else None,
                        extra=_clean({"api_version": version, IDENTITY: options.auth,
                                      KEY_VARIABLE: options.api_key_env}))

    def _credential(self, location: Location, options: Any) -> tuple[str, Any]:
        """("token_provider" | "api_key" | "azure_ad_token" | "", the credential)."""
        if self._token_provider is not None:
            return "token_provider", self._token_provider
        if (location.extra.get(IDENTITY) or options.auth) == "entra":
            return "token_provider", None  # built lazily from azure-identity
        env = location.extra.get(KEY_VARIABLE) or options.api_key_env or self.key_env
        key = os.environ.get(env) or _secret(options.api_key)
        if key:
            return "api_key", key
        token = os.environ.get("AZURE_OPENAI_AD_TOKEN")
        return ("azure_ad_token", token) if token else ("", None)

    def missing(self, location: Location, options: Any) -> list[Problem]:
        out = []
        if not location.endpoint:
            out.append(Problem("option_missing", "no Azure OpenAI endpoint", path="backend_"
                               "options.azure.endpoint", hint="export AZURE_OPENAI_ENDPOINT="
                               "https://<resource>.openai.azure.com (or set backend_options."
                               "azure.endpoint / UNITUNE_AZURE_ENDPOINT)"))
        if not self._credential(location, options)[0] and self._injected is None:
            env = location.extra.get(KEY_VARIABLE) or options.api_key_env or self.key_env
            out.append(_no_credentials(self.backend, f"no Azure OpenAI credentials: {env} (or "
                                       "AZURE_OPENAI_AD_TOKEN) is not set",
                                       f"export {env}=… (the key is under Keys and Endpoint in "
                                       "the portal), or set backend_options.azure.auth: entra"))
        return out

    def body_rows(self, spec: Any, options: Any) -> list[PlanRow]:
        # Sent for every job kind, DPO included (Microsoft's DPO how-to, 2026-10-07, sends
        # "trainingType" with method dpo). Without it Azure answers, misleadingly, that the
        # model cannot be fine-tuned. The string forms (globalstandard, developer…) pass through.
        kind = TRAINING_TYPES.get(str(options.training_type).lower())
        return [PlanRow("backend_options.azure.training_type", options.training_type,
                        "trainingType", options.training_type,
                        note=f"{kind}; sent with every job kind" if kind else
                        "sent as given with every job kind")]

    def notes(self, model: str, options: Any) -> list[str]:
        from .deploy import hosting_cost

        line = "the tuned model must be deployed before use (`unitune deploy`)"
        cost = hosting_cost(model, options.sku)
        if cost is not None:
            line += f"; a {options.sku} deployment costs ${cost[0]:.2f}/hour ({cost[1]})"
        return [line]

    def client(self, location: Location, options: Any) -> Any:
        if self._injected is not None:
            return self._injected
        if not location.endpoint:
            raise AuthError("no Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or "
                            "backend_options.azure.endpoint", backend=self.backend,
                            hint="e.g. https://<resource>.openai.azure.com")
        kind, cred = self._credential(location, options)
        if kind == "token_provider" and cred is None:
            cred = self._entra_provider()
        if not kind:
            raise AuthError("no Azure OpenAI credentials: set AZURE_OPENAI_API_KEY (or "
                            "AZURE_OPENAI_AD_TOKEN, or backend_options.azure.auth: entra)",
                            backend=self.backend,
                            hint="the key is under Keys and Endpoint in the portal")
        arg = "azure_ad_token_provider" if kind == "token_provider" else kind
        kw: dict[str, Any] = {"azure_endpoint": location.endpoint, "max_retries": 0, arg: cred,
                              "api_version": location.extra.get("api_version")
                              or DEFAULT_AZURE_API_VERSION}
        if options.timeout is not None:
            kw["timeout"] = options.timeout

        def build() -> Any:
            return import_sdk("openai", "openai").AzureOpenAI(**kw)

        credential = id(cred) if kind == "token_provider" else cred
        return self._clients.get(location, options.timeout, credential, build)

    def _entra_provider(self) -> Callable[[], str]:
        if self._entra is None:  # one credential per provider (it caches tokens)
            try:
                from azure.identity import DefaultAzureCredential, get_bearer_token_provider
            except ImportError as exc:
                raise MissingDependency("auth: entra needs azure-identity",
                                        hint="pip install azure-identity") from exc
            self._entra = get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)
        return self._entra

    def invoke_hint(self, model_id: str) -> str:
        return ("deploy it first: unitune deploy <job id> (Azure serves tuned models only "
                "through a deployment)")


def _no_credentials(backend: str, message: str, hint: str) -> Problem:
    """An error: `train` would fail at its first call, so `plan` says NOT READY."""
    return Problem("credentials_missing", message, path=f"backend_options.{backend}.api_key_env",
                   hint=hint)
