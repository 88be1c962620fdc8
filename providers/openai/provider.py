"""`OpenAIProvider` and `AzureOpenAIProvider`: the Provider protocol over the `openai` SDK.

Two small classes over one shared body (`_FineTuningJobs`; neither overrides the other's
behaviour): each holds its flavour's connection object (`connection.py`), and every call goes
to the shared table (`translate.py`) and adapter (`jobs.py`). They differ only in the
connection, the options model and the optional protocols:
both are `Pausable`; only Azure is `Deployable` (an Azure fine-tune is served through a billed
deployment, `deploy.py`). Nothing is remembered between calls: later calls rebuild their
connection from the `Location` in the RemoteRef and read credentials from the environment.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, ClassVar

from unitune.backends import Capabilities
from unitune.job import Event, Metrics, RemoteRef, Snapshot
from unitune.options import resolve_options
from unitune.provider import (DataTarget, Deployable, Ids, Location, Options, Pausable, Prepared,
                              PreparedFile, Translation, placeholder)

from . import deploy as arm
from . import jobs
from .connection import AzureConnection, OpenAIConnection, location_of, remote_ref
from .fields import field
from .jobs import Session
from .options import AzureOptions, OpenAIOptions
from .translate import capabilities, translate


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _data_target(backend: str, spec: Any) -> DataTarget:
    fmt = "openai-dpo" if spec.method == "dpo" else "openai"
    return DataTarget(format=fmt, validate=f"{backend}:{spec.model_for(backend)}")


class _FineTuningJobs:
    """What both flavours share, whole: the table (`translate.py`) and the job calls
    (`jobs.py`) over the flavour's connection object. Only the connection, the options model
    and the optional protocols differ between the two providers below."""

    name: ClassVar[str]
    extra: ClassVar[str | None] = "openai"
    requires: ClassVar[tuple[str, ...]] = ("openai",)
    options_model: ClassVar[type[Options]]
    conn: Any
    log: Callable[[str], None]

    def _session(self, location: Location, options: Any) -> Session:
        return Session(self.conn, self.conn.client(location, options), options, self.log)

    def _for(self, ref: RemoteRef) -> Session:
        return self._session(location_of(ref), resolve_options(self.options_model, self.name))

    # -- the table --------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return capabilities(self.name, self.conn.display, pausable=isinstance(self, Pausable),
                            deployable=isinstance(self, Deployable))

    def locate(self, spec: Any, options: Any) -> Location:
        return self.conn.locate(options)

    def data_target(self, spec: Any, options: Any) -> DataTarget:
        return _data_target(self.name, spec)

    def translate(self, spec: Any, prepared: Prepared, location: Location, options: Any,
                  ids: Ids) -> Translation:
        return translate(self.conn, spec, prepared, location, options, ids)

    # -- the adapter ------------------------------------------------------------------------------
    def destination(self, file: PreparedFile, location: Location, options: Any) -> str:
        return placeholder(f"upload:{file.which}")

    def upload(self, file: PreparedFile, location: Location, options: Any) -> str:
        return jobs.upload(self._session(location, options), file)

    def still_there(self, uri: str, location: Location, options: Any) -> bool:
        return jobs.still_there(self._session(location, options), uri)

    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: Any) -> RemoteRef:
        return remote_ref(location, jobs.create(self._session(location, options), request))

    def lookup(self, key: str, location: Location, options: Any) -> RemoteRef | None:
        found = jobs.lookup(self._session(location, options), key)
        return remote_ref(location, found) if found else None

    def read(self, ref: RemoteRef) -> Snapshot:
        return jobs.on_job(self._for(ref), ref, "read the job", "retrieve")

    def cancel(self, ref: RemoteRef) -> Snapshot:
        return jobs.on_job(self._for(ref), ref, "cancel the job", "cancel")

    def pause(self, ref: RemoteRef) -> Snapshot:
        return jobs.on_job(self._for(ref), ref, "pause the job", "pause")

    def resume(self, ref: RemoteRef) -> Snapshot:
        return jobs.on_job(self._for(ref), ref, "resume the job", "resume")

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        return jobs.metrics(self._for(ref), ref.remote_id)

    def events(self, ref: RemoteRef) -> list[Event]:
        return jobs.events(self._for(ref), ref.remote_id)

    def checkpoints(self, ref: RemoteRef) -> list[dict[str, Any]]:
        return jobs.checkpoints(self._for(ref), ref.remote_id)

    def list_remote(self, location: Location, options: Any, limit: int = 20) -> list[Snapshot]:
        s = self._session(location, options)
        return [jobs.snapshot(s, remote_ref(location, field(j, "id")), j)
                for j in jobs.recent(s, limit)]


class OpenAIProvider(_FineTuningJobs):
    """OpenAI fine-tuning (`openai.OpenAI`); options: `OpenAIOptions`."""

    name = "openai"
    options_model = OpenAIOptions

    def __init__(self, *, client: Any = None, log: Callable[[str], None] | None = None) -> None:
        self.conn = OpenAIConnection(client)
        self.log = log or _stderr


class AzureOpenAIProvider(_FineTuningJobs):
    """Azure OpenAI fine-tuning (`openai.AzureOpenAI`, key or Microsoft Entra token) and
    deployments through Azure Resource Manager; options: `AzureOptions`."""

    name = "azure"
    options_model = AzureOptions

    def __init__(self, *, client: Any = None, token_provider: Callable[[], str] | None = None,
                 arm_token_provider: Callable[[], str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.conn = AzureConnection(client, token_provider)
        self.arm_token_provider = arm_token_provider
        self.log = log or _stderr

    # -- Deployable -------------------------------------------------------------------------------
    def _deploy_options(self, options: dict[str, Any] | None) -> Any:
        return resolve_options(self.options_model, self.name, base=options or {})

    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = False) -> Any:
        """Create the Azure deployment of the job's tuned model, its hourly cost logged first."""
        opts = self._deploy_options(options)
        return arm.deploy(self.read(ref), location_of(ref).endpoint, opts, dry_run, self.log,
                          self.arm_token_provider)

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> Any:
        """Delete the deployment (stops the hourly charge), with the options `deploy` used for
        this job (stored with it) under any given now."""
        given = {k: v for k, v in (options or {}).items() if v is not None}
        return arm.undeploy(self.read(ref), self._deploy_options({**arm.recalled(ref.remote_id),
                                                                  **given}),
                            self.arm_token_provider)
