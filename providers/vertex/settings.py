"""Where a Vertex job runs and as whom: project, location, bucket, endpoint, client, credentials.

Resolution order for each setting: the spec's `backend_options.vertex` (which `JobSpec.options`
already overrides with `UNITUNE_VERTEX_<OPTION>`), then the standard Google variables
(`GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`), then the project of the Application Default
Credentials. `UNITUNE_VERTEX_ENDPOINT` (scheme, host and port; no version path) points both
clients at a private endpoint or at the fake in `unitune.testing.vertex_server`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from unitune.errors import AuthError, SpecError

DEFAULT_LOCATION = "us-central1"
CLIENTS = ("genai", "aiplatform")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@dataclass(frozen=True)
class VertexSettings:
    project: str | None
    location: str
    bucket: str | None
    endpoint: str | None  # "http://127.0.0.1:8089"; None = Google's regional endpoint
    client: str  # "genai" | "aiplatform"
    prefix: str = "unitune"  # object-name prefix inside the bucket
    api_version: str = "v1"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def base_url(self) -> str:
        """The REST root both clients talk to."""
        return self.endpoint or f"https://{self.location}-aiplatform.googleapis.com"

    def with_project(self, project: str | None) -> "VertexSettings":
        return VertexSettings(project, self.location, self.bucket, self.endpoint, self.client,
                              self.prefix, self.api_version)


def normalize_endpoint(value: str | None) -> str | None:
    """Validate an endpoint override: scheme, host and port only."""
    if not value:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"vertex endpoint {value!r} needs a scheme and a host",
                        field="backend_options.vertex.endpoint",
                        hint="e.g. UNITUNE_VERTEX_ENDPOINT=http://127.0.0.1:8089")
    if parts.path not in ("", "/") or parts.query:
        raise SpecError(f"vertex endpoint {value!r} must not carry a path (the client adds "
                        f"/{'v1'}/projects/…)", field="backend_options.vertex.endpoint",
                        hint=f"use {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def resolve(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> VertexSettings:
    """Settings from backend options (already merged with UNITUNE_VERTEX_*) and Google's env."""
    env = os.environ if env is None else env
    client = str(options.get("client") or "genai").lower()
    if client in ("google-genai", "google_genai"):
        client = "genai"
    if client in ("google-cloud-aiplatform", "gapic"):
        client = "aiplatform"
    if client not in CLIENTS:
        raise SpecError(f"unknown vertex client {client!r}", field="backend_options.vertex.client",
                        hint="use `genai` (default) or `aiplatform`")
    bucket = options.get("bucket") or None
    if bucket:
        bucket = str(bucket)
        if bucket.startswith("gs://"):
            bucket = bucket[len("gs://"):]
        bucket = bucket.strip("/")
    prefix = str(options.get("prefix") or "unitune").strip("/")
    if "/" in (bucket or ""):  # "gs://bucket/some/prefix"
        bucket, _, extra = bucket.partition("/")
        prefix = extra
    return VertexSettings(
        project=options.get("project") or env.get("GOOGLE_CLOUD_PROJECT") or None,
        location=options.get("location") or env.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION,
        bucket=bucket,
        endpoint=normalize_endpoint(options.get("endpoint") or env.get("UNITUNE_VERTEX_ENDPOINT")),
        client=client,
        prefix=prefix,
        api_version=_api_version(options.get("api_version")),
    )


def _api_version(value) -> str:
    version = str(value or "v1")
    if version not in ("v1", "v1beta1"):
        raise SpecError(f"unknown Vertex API version {version!r}",
                        field="backend_options.vertex.api_version", hint="use v1 (default) or v1beta1")
    return version


def credentials(settings: VertexSettings):
    """Application Default Credentials and the settings with the ADC project filled in when none
    was given. Missing or unusable credentials become AuthError with the fix."""
    import google.auth
    from google.auth import exceptions as gexc

    try:
        creds, adc_project = google.auth.default(scopes=SCOPES)
    except gexc.GoogleAuthError as exc:
        raise AuthError(f"no Google credentials: {exc}", backend="vertex",
                        hint="run `gcloud auth application-default login`, or set "
                             "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file") from exc
    if not settings.project and adc_project:
        settings = settings.with_project(adc_project)
    if not settings.project:
        raise SpecError("no Google Cloud project for Vertex AI", field="backend_options.vertex.project",
                        hint="set backend_options.vertex.project, UNITUNE_VERTEX_PROJECT or "
                             "GOOGLE_CLOUD_PROJECT")
    return creds, settings
