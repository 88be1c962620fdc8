"""The non-secret connection to Vertex AI (from a job's `Location` or `RemoteRef`), credentials,
and a small cache of SDK clients keyed by that connection plus a fingerprint of the credential.

Credentials are read each time from the environment / options: the file named by
`key_file` (option) or GOOGLE_APPLICATION_CREDENTIALS, else Application Default
Credentials. Nothing secret is stored in a Location, a RemoteRef or the cache key.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unitune.errors import AuthError, InvalidRequest, SpecError
from unitune.job import RemoteRef
from unitune.provider import Location
from unitune.redact import remember

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@dataclass(frozen=True)
class Conn:
    project: str
    location: str
    endpoint: str | None  # "http://127.0.0.1:8089"; None = Google's regional endpoint
    api_version: str = "v1"
    client: str = "genai"  # "genai" | "aiplatform"
    bucket: str | None = None
    prefix: str = "unitune"
    key_file: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def base_url(self) -> str:
        """The REST root both clients talk to."""
        return self.endpoint or f"https://{self.location}-aiplatform.googleapis.com"

    def ref(self, name: str) -> RemoteRef:
        """A RemoteRef carrying everything read/cancel/metrics need (non-secret)."""
        extra = {k: v for k, v in asdict(self).items() if k not in ("project", "location")
                 and v is not None}
        return RemoteRef(backend="vertex", remote_id=name, extra=extra)

    @classmethod
    def from_location(cls, location: Location, options: Any = None) -> "Conn":
        if not location.project:
            raise SpecError("no Google Cloud project for Vertex AI",
                            field="backend_options.vertex.project",
                            hint="set backend_options.vertex.project, UNITUNE_VERTEX_PROJECT or "
                                 "GOOGLE_CLOUD_PROJECT")
        x = location.extra
        creds = getattr(options, "key_file", None) or x.get("key_file")
        return cls(project=location.project, location=location.region or "us-central1",
                   endpoint=location.endpoint, api_version=x.get("api_version", "v1"),
                   client=x.get("client", "genai"), bucket=x.get("bucket"),
                   prefix=x.get("prefix", "unitune"), key_file=creds)

    @classmethod
    def from_ref(cls, ref: RemoteRef) -> "Conn":
        parts = ref.remote_id.split("/")
        if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or \
                parts[4] != "tuningJobs":
            raise InvalidRequest(f"not a Vertex tuning job name: {ref.remote_id!r}",
                                 backend="vertex",
                                 hint="expected projects/<p>/locations/<l>/tuningJobs/<id>")
        x = ref.extra or {}
        return cls(project=parts[1], location=parts[3], endpoint=x.get("endpoint"),
                   api_version=x.get("api_version", "v1"), client=x.get("client", "genai"),
                   bucket=x.get("bucket"), prefix=x.get("prefix", "unitune"),
                   key_file=x.get("key_file"))


def _credential_file(conn: Conn) -> str | None:
    return conn.key_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")


def fingerprint(conn: Conn) -> str:
    """A hash of the credential's source (the key file's content), never the secret itself."""
    path = _credential_file(conn)
    try:
        data = Path(path).expanduser().read_bytes() if path else b"adc"
    except OSError:
        data = f"missing:{path}".encode()
    return hashlib.sha256(data).hexdigest()[:16]


def credentials(conn: Conn):
    """The credential for `conn` (a key / ADC file, else Application Default Credentials);
    missing or unusable ones become AuthError with the fix."""
    import google.auth
    from google.auth import exceptions as gexc

    try:
        path = _credential_file(conn)
        if path and Path(path).expanduser().is_file():  # its tokens and keys are secrets
            with contextlib.suppress(OSError, ValueError):
                remember(json.loads(Path(path).expanduser().read_text()))
        if conn.key_file:
            creds = _from_file(Path(conn.key_file).expanduser())
        else:
            creds, _ = google.auth.default(scopes=SCOPES)
    except (gexc.GoogleAuthError, OSError, ValueError) as exc:
        raise AuthError(f"no usable Google credentials: {exc}", backend="vertex",
                        hint="run `gcloud auth application-default login`, or set "
                             "GOOGLE_APPLICATION_CREDENTIALS (or backend_options.vertex."
                             "key_file) to a service-account key file") from exc
    remember(getattr(creds, "token", None), getattr(creds, "refresh_token", None),
             getattr(creds, "client_secret", None))
    return creds


def _from_file(path: Path):
    """A service-account key or an authorized-user (ADC) file, loaded by its declared type."""
    import json

    from google.oauth2 import credentials as user, service_account

    kind = json.loads(path.read_text()).get("type")
    if kind == "service_account":
        return service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)
    if kind == "authorized_user":
        return user.Credentials.from_authorized_user_file(str(path), scopes=SCOPES)
    raise ValueError(f"{path} holds credentials of type {kind!r}; key_file takes a "
                     "service-account key or an authorized-user file (point "
                     "GOOGLE_APPLICATION_CREDENTIALS at other kinds)")


class ClientCache:
    """SDK clients by (connection, credential fingerprint); safe across threads."""

    def __init__(self) -> None:
        self._clients: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def tuning(self, conn: Conn):
        """The tuning client `conn.client` names (genai_client / aiplatform_client)."""
        return self._get(("tuning", conn, fingerprint(conn)), lambda: _tuning(conn))

    def storage(self, conn: Conn):
        return self._get(("storage", conn.project, conn.key_file, fingerprint(conn),
                          os.environ.get("STORAGE_EMULATOR_HOST")), lambda: _storage(conn))

    def _get(self, key: tuple, make):
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = make()
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client


def _tuning(conn: Conn):
    if conn.client == "aiplatform":
        from .aiplatform_client import AiplatformTuningClient

        return AiplatformTuningClient(conn, credentials(conn))
    from .genai_client import GenaiTuningClient

    return GenaiTuningClient(conn, credentials(conn))


def _storage(conn: Conn):
    from unitune.backends import import_sdk

    from .vendor_errors import translate

    storage = import_sdk("google.cloud.storage", "vertex")
    with translate("storage client setup"):
        if os.environ.get("STORAGE_EMULATOR_HOST"):  # the emulator: anonymous, by itself
            return storage.Client(project=conn.project)
        return storage.Client(project=conn.project, credentials=credentials(conn))
