"""`backend_options.vertex`: the typed options, and where a Vertex job lives (`Location`).

The core merges the spec's `backend_options.vertex` with `UNITUNE_VERTEX_<OPTION>` variables into
`VertexOptions` (unknown keys refused). `locate` adds Google's own fallbacks (GOOGLE_CLOUD_PROJECT,
GOOGLE_CLOUD_LOCATION, the project named in the credentials file) and stores everything a later
call needs — project, region, endpoint, API version, client, bucket — in the `Location`, so
`lookup`, `status` and `cancel` work from a fresh process with nothing but the registry row.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from unitune.provider import Location, Options

DEFAULT_LOCATION = "us-central1"
_CLIENT_ALIASES = {"google-genai": "genai", "google_genai": "genai", "gapic": "aiplatform",
                   "google-cloud-aiplatform": "aiplatform"}


class VertexOptions(Options):
    """Options of the Vertex backend (each also settable as UNITUNE_VERTEX_<NAME>)."""

    project: str | None = Field(None, description="Google Cloud project (default: "
                                "GOOGLE_CLOUD_PROJECT, then the credentials file's project)")
    location: str | None = Field(None, description="region, e.g. us-central1 (default: "
                                 "GOOGLE_CLOUD_LOCATION, then us-central1)")
    bucket: str | None = Field(None, description="GCS bucket for the datasets; `gs://b/prefix` "
                               "sets the prefix too")
    prefix: str = Field("unitune", description="object-name prefix inside the bucket")
    endpoint: str | None = Field(None, description="API root (scheme, host, port), e.g. a "
                                 "private endpoint or the fake; default: Google's regional one")
    api_version: Literal["v1", "v1beta1"] = Field("v1", description="tuning API version")
    client: Literal["genai", "aiplatform"] = Field("genai", description="google-genai (default) "
                                                   "or the GAPIC aiplatform_v1 client")
    key_file: str | None = Field(None, description="service-account key or ADC file "
                                         "(default: Application Default Credentials)")
    ignore_lifecycle: bool = Field(False, description="submit even when the catalog says the "
                                   "model's tuning is past its cut-off (the refusal becomes a "
                                   "warning)")

    @field_validator("client", mode="before")
    @classmethod
    def _client_alias(cls, value: Any) -> Any:
        text = str(value).strip().lower() if value is not None else value
        return _CLIENT_ALIASES.get(text, text)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return normalize_endpoint(value)

    @model_validator(mode="after")
    def _bucket_prefix(self) -> "VertexOptions":
        if self.bucket:
            bucket = self.bucket.removeprefix("gs://").strip("/")
            bucket, _, prefix = bucket.partition("/")
            self.bucket = bucket or None
            if prefix:
                self.prefix = prefix
        self.prefix = self.prefix.strip("/")
        return self


def normalize_endpoint(value: str | None) -> str | None:
    """Scheme, host and port only (the clients add /v1/projects/…)."""
    if not value:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {value!r} needs a scheme and a host, e.g. "
                         "http://127.0.0.1:8089")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"endpoint {value!r} must not carry a path (the client adds "
                         f"/v1/projects/…); use {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def _credentials_project(options: VertexOptions) -> str | None:
    """The project a key / ADC file names (service accounts: project_id; users: quota_project_id)."""
    path = options.key_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        return None
    try:
        info = json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError):
        return None
    return info.get("project_id") or info.get("quota_project_id") if isinstance(info, dict) \
        else None


def locate(options: VertexOptions) -> Location:
    """Where jobs live; everything non-secret that later calls need, stored with the job."""
    project = options.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or \
        _credentials_project(options)
    extra: dict[str, Any] = {"api_version": options.api_version, "client": options.client,
                             "prefix": options.prefix}
    if options.bucket:
        extra["bucket"] = options.bucket
    if options.key_file:
        extra["key_file"] = options.key_file
    return Location(backend="vertex", project=project or None,
                    region=options.location or os.environ.get("GOOGLE_CLOUD_LOCATION")
                    or DEFAULT_LOCATION, endpoint=options.endpoint, extra=extra)
