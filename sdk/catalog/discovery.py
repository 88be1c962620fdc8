"""Live model discovery: ask each vendor what is tunable now (`unitune models --refresh`) and lay
the answer over the bundled catalog.

    backend   what is asked                                        what it tells
    bedrock   ListFoundationModels(byCustomizationType=FINE_TUNING) per region, each summary's
              `customizationsSupported` and `modelLifecycle` {status ACTIVE|LEGACY, legacyTime,
              endOfLifeTime}                                      tunable + lifecycle
    azure     GET {endpoint}/openai/models (data plane)           capabilities.fine_tune,
              `lifecycle_status`, `deprecation.fine_tune` (unix time: the last moment to tune)
    openai    GET /v1/models                                       only which models the key can
              see: OpenAI's listing says nothing about tunability, so it changes no lifecycle
    vertex    —                                                    no documented API reports which
              Gemini models can be tuned; nothing is fetched and the command says so

The answer is cached as JSON under UNITUNE_HOME/catalog/discovered-<backend>.json with the time it
was fetched; the bundled YAML stays the offline default. `overlay(info)` (used by
`catalog.models()` / `find_model()`) turns a vendor's "not tunable" / "LEGACY" / fine-tune
deprecation into the entry's lifecycle, quoting the vendor's words and the fetch date, and keeps
the bundled lifecycle beside it as `disputed` when the two disagree. Nothing here runs at import
time or without an explicit refresh; vendor SDKs are imported inside the fetchers.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

CACHE_DIR_NAME = "catalog"
REFRESHABLE = ("bedrock", "azure", "openai", "vertex")
NO_API = {"vertex": "Vertex AI has no documented API that lists which Gemini models can be "
                    "tuned (the publisher-model listing does not say); the bundled catalog is "
                    "used as it is"}


@dataclass
class Discovered:
    """One vendor's answer, as cached."""

    backend: str
    fetched_at: str  # ISO 8601, UTC
    source: str  # what was asked, e.g. "bedrock ListFoundationModels (us-east-1, us-west-2)"
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # vendor model id → facts
    regions: list[str] = field(default_factory=list)  # Bedrock: the regions that were listed
    note: str | None = None

    @property
    def fetched_date(self) -> date:
        return datetime.fromisoformat(self.fetched_at).date()

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "fetched_at": self.fetched_at, "source": self.source,
                "models": self.models, "regions": self.regions, "note": self.note}


# ------------------------------------------------------------------------------------------------
# the cache


def cache_dir() -> Path:
    from ..paths import unitune_home

    return unitune_home() / CACHE_DIR_NAME


def cache_path(backend: str) -> Path:
    return cache_dir() / f"discovered-{backend}.json"


def _home_path(backend: str) -> Path | None:
    """The cache file's path without creating UNITUNE_HOME (reads must not create state)."""
    home = os.environ.get("UNITUNE_HOME")
    if home:
        return Path(home).expanduser() / CACHE_DIR_NAME / f"discovered-{backend}.json"
    try:
        import platformdirs
    except ImportError:
        return None
    return (Path(platformdirs.user_data_dir("unitune", appauthor=False)) / CACHE_DIR_NAME
            / f"discovered-{backend}.json")


_READ: dict[Path, tuple[float, Discovered | None]] = {}


def cached(backend: str) -> Discovered | None:
    """The last refresh for `backend` (None when never refreshed or unreadable)."""
    path = _home_path(backend)
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    hit = _READ.get(path)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        found: Discovered | None = Discovered(
            backend=doc["backend"], fetched_at=doc["fetched_at"], source=doc["source"],
            models=dict(doc.get("models") or {}), regions=list(doc.get("regions") or []),
            note=doc.get("note"))
    except (OSError, ValueError, KeyError, TypeError):
        found = None  # a broken cache is ignored; the next refresh rewrites it
    _READ[path] = (mtime, found)
    return found


def save(found: Discovered) -> Path:
    path = cache_path(found.backend)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(found.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------------------------------------
# laying the vendor's answer over a catalog entry


def _names(info: Any) -> list[str]:
    return [info.model, *info.aliases]


def _match(info: Any, found: Discovered) -> tuple[str, dict[str, Any]] | None:
    """The vendor entry for a catalog model: by id or alias, or by a vendor id that the catalog
    id extends (`amazon.nova-micro-v1:0` for `amazon.nova-micro-v1:0:128k`)."""
    names = _names(info)
    for name in names:
        if name in found.models:
            return name, found.models[name]
    for vendor_id, facts in found.models.items():
        if any(n.startswith(vendor_id + ":") for n in names):
            return vendor_id, facts
    return None


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=timezone.utc).date()
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except (ValueError, OSError, OverflowError):
        return None


def verdict(info: Any, found: Discovered) -> dict[str, Any] | None:
    """What the vendor's answer says about `info`: {status, since, new_jobs_until, retires,
    words} or None when it says nothing that changes the lifecycle."""
    hit = _match(info, found)
    if found.backend == "bedrock":
        listed_regions = set(found.regions)
        if hit is None:
            if info.regions and not (set(info.regions) & listed_regions):
                return None  # its region was not listed: the answer says nothing about it
            return {"status": "not_tunable", "words": "not returned by ListFoundationModels("
                    f"byCustomizationType=FINE_TUNING) in {', '.join(sorted(listed_regions))}"}
        vendor_id, facts = hit
        if "FINE_TUNING" not in (facts.get("customizationsSupported") or []):
            return {"status": "not_tunable", "words": f"{vendor_id}: customizationsSupported "
                    f"{facts.get('customizationsSupported') or []} (no FINE_TUNING)"}
        life = facts.get("modelLifecycle") or {}
        status = str(life.get("status") or "").upper()
        end = _date(life.get("endOfLifeTime"))
        if status == "LEGACY":
            since = _date(life.get("legacyTime"))
            return {"status": "legacy", "since": since, "retires": end,
                    "words": f"{vendor_id}: modelLifecycle.status LEGACY"
                             + (f" since {since.isoformat()}" if since else "")
                             + (f", endOfLifeTime {end.isoformat()}" if end else "")}
        if end is not None:
            return {"retires": end, "words": f"{vendor_id}: endOfLifeTime {end.isoformat()}"}
        return None
    if found.backend == "azure":
        if hit is None:
            return None  # the resource may simply not offer it in this region: no verdict
        vendor_id, facts = hit
        caps = facts.get("capabilities") or {}
        deadline = _date((facts.get("deprecation") or {}).get("fine_tune"))
        lifecycle = facts.get("lifecycle_status")
        if caps.get("fine_tune") is False:
            return {"status": "not_tunable", "words": f"{vendor_id}: capabilities.fine_tune false"
                    + (f" (lifecycle_status {lifecycle})" if lifecycle else "")}
        if deadline is not None:
            return {"new_jobs_until": deadline, "words": f"{vendor_id}: deprecation.fine_tune "
                    f"{deadline.isoformat()}" + (f" (lifecycle_status {lifecycle})"
                                                 if lifecycle else "")}
        return None
    return None  # openai: the listing says nothing about tunability; vertex: nothing fetched


def overlay(info: Any) -> Any:
    """`info` with the cached vendor answer applied to its lifecycle (unchanged when there is
    no answer, or the answer changes nothing)."""
    found = cached(info.backend) if info.backend in REFRESHABLE else None
    if found is None:
        return info
    v = verdict(info, found)
    if not v:
        return info
    from . import Disputed, Lifecycle

    old = info.lifecycle
    disputed = list(old.disputed) if old else []
    if old is not None and (old.new_jobs_until or old.retires or old.status):
        disputed.insert(0, Disputed(source=old.source, as_of=old.as_of,
                                    new_jobs_until=old.new_jobs_until, retires=old.retires,
                                    note=old.note))
    life = Lifecycle(source=f"{found.source}, fetched {found.fetched_at}",
                     as_of=found.fetched_date, verified=True, status=v.get("status"),
                     since=v.get("since"), vendor_words=v["words"],
                     new_jobs_until=v.get("new_jobs_until") or (old.new_jobs_until if old else None),
                     retires=v.get("retires") or (old.retires if old else None),
                     note=f"the vendor reports: {v['words']}",
                     gates=list(old.gates) if old else [], disputed=disputed)
    return info.model_copy(update={"lifecycle": life})


# ------------------------------------------------------------------------------------------------
# fetching


def refresh(backend: str, **kw: Any) -> Discovered:
    """Ask `backend`'s vendor what is tunable now and cache the answer (UnituneError when the
    vendor cannot be asked: no API, no credentials, an SDK error)."""
    from ..errors import SpecError, Unsupported

    if backend not in REFRESHABLE:
        raise SpecError(f"no live model discovery for backend {backend!r}",
                        hint=f"refreshable: {', '.join(REFRESHABLE)}")
    if backend in NO_API:
        raise Unsupported(NO_API[backend], backend=backend, feature="models --refresh")
    fetch: Callable[..., Discovered] = {"bedrock": fetch_bedrock, "azure": fetch_azure,
                                        "openai": fetch_openai}[backend]
    found = fetch(**kw)
    save(found)
    return found


def fetch_bedrock(regions: list[str] | None = None, profile: str | None = None) -> Discovered:
    """ListFoundationModels(byCustomizationType=FINE_TUNING) in each region (default: the
    regions the bundled Bedrock catalog tunes in). The filter is re-applied client-side, since a
    server (or emulator) that ignores it would otherwise make every model look tunable."""
    from . import load_catalog
    from unitune.providers.bedrock.aws import aws_call, client

    if not regions:
        regions = sorted({r for m in load_catalog().models if m.backend == "bedrock"
                          for r in m.regions})
    found = Discovered(backend="bedrock", fetched_at=_now(), regions=list(regions),
                       source=f"bedrock ListFoundationModels(byCustomizationType=FINE_TUNING) "
                              f"in {', '.join(regions)}")
    for region in regions:
        bedrock = client("bedrock", region, profile)
        with aws_call("list_foundation_models"):
            summaries = bedrock.list_foundation_models(
                byCustomizationType="FINE_TUNING").get("modelSummaries", [])
        for s in summaries:
            if "FINE_TUNING" not in (s.get("customizationsSupported") or []):
                continue  # client-side filter (see the docstring)
            facts = {k: s.get(k) for k in ("modelArn", "modelName", "providerName",
                                          "customizationsSupported")}
            facts["modelLifecycle"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                       for k, v in (s.get("modelLifecycle") or {}).items()}
            facts.setdefault("regions", [])
            prev = found.models.get(s["modelId"])
            facts["regions"] = sorted(set((prev or {}).get("regions", [])) | {region})
            found.models[s["modelId"]] = facts
    return found


def _provider_session(backend: str, options: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """(the provider, its resolved options, its Location) — the same connection `train` uses."""
    from ..backends import get_backend
    from ..options import resolve_options

    provider = get_backend(backend)
    opts = resolve_options(provider.options_model, backend, base=options or {})
    return provider, opts, provider.locate(None, opts)


def fetch_openai(options: dict[str, Any] | None = None) -> Discovered:
    """GET /v1/models with the OpenAI backend's own connection."""
    from unitune.providers.openai.errors import call

    provider, opts, location = _provider_session("openai", options)
    sdk = provider.conn.client(location, opts)
    page = call("list models", lambda: list(sdk.models.list()), "openai", "OpenAI", opts)
    found = Discovered(backend="openai", fetched_at=_now(),
                       source=f"OpenAI GET /v1/models at {location.endpoint}",
                       note="OpenAI's model list does not say which models can be fine-tuned; "
                            "it shows which ones this key can still see")
    for m in page:
        found.models[m.id] = {"owned_by": getattr(m, "owned_by", None),
                              "created": getattr(m, "created", None)}
    return found


def fetch_azure(options: dict[str, Any] | None = None) -> Discovered:
    """GET {endpoint}/openai/models (Azure's data-plane model list, which carries
    `capabilities.fine_tune`, `lifecycle_status` and `deprecation.fine_tune`)."""
    from unitune.providers.openai.errors import call

    provider, opts, location = _provider_session("azure", options)
    sdk = provider.conn.client(location, opts)
    page = call("list models", lambda: list(sdk.models.list()), "azure", "Azure OpenAI", opts)
    found = Discovered(backend="azure", fetched_at=_now(),
                       source=f"Azure OpenAI GET /openai/models at {location.endpoint} "
                              f"(api-version {location.extra.get('api_version')})")
    for m in page:
        extra = m.model_dump() if hasattr(m, "model_dump") else dict(m)
        if extra.get("fine_tune"):  # an already fine-tuned model, not a base model
            continue
        found.models[m.id] = {k: extra.get(k) for k in ("capabilities", "lifecycle_status",
                                                       "deprecation", "status")}
    return found
