"""The Provider protocol: what a vendor (or the local trainer) must supply, and nothing more.

Everything that is the same for every vendor lives once in the core (`unitune.pipeline`): option
and environment merging into the provider's typed `options_model`, data preparation (detect →
validate → split → convert → hash), problems → one exception, the retry policy (with jitter, a
lookup by idempotency key before any re-create), the registry and the `Location` stored with the
job at claim time. A provider is a translation table plus a thin adapter over its SDK:

    name, extra, requires          registry name, pip extra, SDK modules it imports lazily
    options_model                  pydantic model of `backend_options.<name>` (extra="forbid")
    capabilities()                 feature → supported, or the reason why not
    locate(spec, options)          → Location: where jobs live (region/project/endpoint/base URL)
    data_target(spec, options)     → DataTarget: the format to convert to, the validation target
    translate(spec, prepared, location, options, ids)
                                   → Translation(request, rows, problems, notes): THE ONE TABLE.
                                     Pure: no SDK import, no network. `plan` shows it, `submit`
                                     sends `request` exactly, so the two cannot drift.
    destination(file, location, options) → where `upload` will put a file ("s3://…", or a
                                     placeholder starting with "<" when only the vendor knows)
    upload(file, location, options) → the uri / file id the request refers to
    create(request, ids, location, options) → RemoteRef   (ONE attempt, SDK retries off)
    lookup(key, location, options) → RemoteRef | None     (by the idempotency key)
    read(ref) / cancel(ref) / metrics(ref) / events(ref)

Optional protocols (`Pausable`, `Deployable`, `Restartable`) are checked with
`isinstance`, never `hasattr`; a provider's capability flags must agree with them (the
conformance suite checks it). Providers keep no hidden state between calls: everything a later
call needs is in the `Location` (stored with the job) or the `RemoteRef`.

A provider raises `unitune.errors.BackendError` subclasses (mapped from its SDK's exceptions)
with `retryable` set truthfully; it never retries on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .backends import Capabilities, PlanRow

if TYPE_CHECKING:
    from .data.report import Problem
    from .job import Event, Metrics, ModelHandle, RemoteRef, Snapshot
    from .spec import JobSpec

PLACEHOLDER_JOB_ID = "<job-id>"
PLACEHOLDER_KEY = "<idempotency-key>"


def placeholder(what: str) -> str:
    """A value known only at submit time, as `plan` shows it in `request` (e.g. "<upload:train>")."""
    return f"<{what}>"


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("<")


class Options(BaseModel):
    """Base of every provider's `options_model`: unknown keys are refused (the core turns that
    into an error naming the nearest valid option). Declare secrets as `SecretStr`."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    # `UNITUNE_<BACKEND>_<NAME>` variables that are not options (test hooks, state files):
    # lower-case <NAME>s the option merger leaves alone instead of refusing as typos
    reserved_env: ClassVar[frozenset[str]] = frozenset()


class Location(BaseModel):
    """Where a job lives at its vendor; non-secret. Stored in the registry when a job is claimed,
    so `lookup(key, location)` and every later call work from any fresh process."""

    model_config = ConfigDict(frozen=True)

    backend: str
    region: str | None = None
    project: str | None = None
    endpoint: str | None = None  # base URL / Azure endpoint / Vertex endpoint / local jobs dir
    extra: dict[str, Any] = Field(default_factory=dict)  # api version, profile, organization…

    def describe(self) -> str:
        parts = [f"{k} {v}" for k, v in (("region", self.region), ("project", self.project),
                                          ("endpoint", self.endpoint)) if v]
        return ", ".join(parts) or "default location"


@dataclass(frozen=True)
class Ids:
    """The ids a request carries; placeholders at plan time, real values at submit."""

    job_id: str = PLACEHOLDER_JOB_ID
    key: str = PLACEHOLDER_KEY
    spec_hash: str = ""

    @property
    def known(self) -> bool:
        return not is_placeholder(self.key)


@dataclass(frozen=True)
class DataTarget:
    """What the core prepares for a provider.

    format       conversion target (`unitune convert --to` names: "openai", "openai-dpo",
                 "bedrock-converse", "vertex-gemini", …); None: the files are used as they are
    validate     "backend:model" whose catalog rules the source data is validated against; None:
                 the generic checks only
    validation   False: the vendor takes no validation set (a fraction is not split off; a file
                 is refused with a warning instead of uploaded)
    """

    format: str | None
    validate: str | None = None
    validation: bool = True


@dataclass
class PreparedFile:
    """One file ready for upload: converted, counted, hashed."""

    which: str  # "train" | "validation"
    source: str  # the user's file (before split/convert)
    path: Path  # the file to upload
    format: str | None
    examples: int
    bytes: int
    sha256: str
    uri: str | None = None  # set by the core: the destination (plan) or upload result (submit)


@dataclass
class Prepared:
    """The job's data as the provider will send it, plus every problem found on the way."""

    files: dict[str, PreparedFile] = field(default_factory=dict)
    problems: list["Problem"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: Any = None  # the training file's validation Report (data.report.Report)

    @property
    def train(self) -> PreparedFile | None:
        return self.files.get("train")

    @property
    def validation(self) -> PreparedFile | None:
        return self.files.get("validation")

    def uri(self, which: str) -> str | None:
        f = self.files.get(which)
        return f.uri if f is not None else None


@dataclass
class Translation:
    """The one table: the exact create request, the plan rows explaining it, and problems
    (errors refuse the job; warnings are shown). `request` must be JSON-serialisable."""

    request: dict[str, Any] = field(default_factory=dict)
    rows: list[PlanRow] = field(default_factory=list)
    problems: list["Problem"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Provider(Protocol):
    name: str
    extra: ClassVar[str | None]
    requires: ClassVar[tuple[str, ...]]
    options_model: ClassVar[type[Options]]

    def capabilities(self) -> Capabilities: ...

    def locate(self, spec: "JobSpec | None", options: Any) -> Location: ...

    def data_target(self, spec: "JobSpec", options: Any) -> DataTarget: ...

    def translate(self, spec: "JobSpec", prepared: Prepared, location: Location, options: Any,
                  ids: Ids) -> Translation: ...

    def destination(self, file: PreparedFile, location: Location, options: Any) -> str: ...

    def upload(self, file: PreparedFile, location: Location, options: Any) -> str: ...

    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: Any) -> "RemoteRef": ...

    def lookup(self, key: str, location: Location, options: Any) -> "RemoteRef | None": ...

    def read(self, ref: "RemoteRef") -> "Snapshot": ...

    def cancel(self, ref: "RemoteRef") -> "Snapshot": ...

    def metrics(self, ref: "RemoteRef") -> list["Metrics"]: ...

    def events(self, ref: "RemoteRef") -> list["Event"]: ...


@runtime_checkable
class Pausable(Protocol):
    def pause(self, ref: "RemoteRef") -> "Snapshot": ...

    def resume(self, ref: "RemoteRef") -> "Snapshot": ...


@runtime_checkable
class Restartable(Protocol):
    """Continue a failed/cancelled job from its last checkpoint (local)."""

    def restart(self, ref: "RemoteRef") -> "Snapshot": ...


@runtime_checkable
class Deployable(Protocol):
    def deploy(self, ref: "RemoteRef", options: dict[str, Any], dry_run: bool) -> Any: ...

    def undeploy(self, ref: "RemoteRef", options: dict[str, Any]) -> Any: ...
