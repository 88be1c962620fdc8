"""Capability maps, the plan's shapes, and the lazy backend registry.

A backend is a Provider (`unitune.provider`): it declares what it can do (`Capabilities`: feature
→ supported, or the reason why not) and translates a spec into its vendor's request; the submit
pipeline around it is `unitune.pipeline`, orchestration (the registry, watching) `unitune.client`.

Backends are found by name through `KNOWN_BACKENDS` ("module:Class" plus the pip extra to install)
and the `unitune.backends` entry-point group, so importing unitune never imports a vendor SDK.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import MissingDependency, UnituneError, Unsupported

if TYPE_CHECKING:
    from .data.report import Problem


@dataclass(frozen=True)
class Support:
    """Whether a feature is supported; when not, the reason in one sentence."""

    supported: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.supported


YES = Support(True)


def no(reason: str) -> Support:
    return Support(False, reason)


# Feature names used across backends. Adapter types are "adapter:<type>", methods "method:<m>".
# "resume" continues a PAUSED job; "restart" continues a failed or cancelled one from its last
# checkpoint (local), which is also what re-running `unitune train` on the same spec does.
FEATURES = ("method:sft", "method:dpo", "validation_file", "pause", "resume", "restart", "checkpoints",
            "learning_rate", "learning_rate_multiplier", "batch_size", "seed", "warmup_ratio",
            "weight_decay", "max_seq_length", "tools", "images", "weights", "deploy")


@dataclass
class Capabilities:
    """feature → Support. Unlisted features are unsupported with a generic reason."""

    backend: str
    features: dict[str, Support] = field(default_factory=dict)

    def get(self, feature: str) -> Support:
        support = self.features.get(feature)  # a Support(False) is falsy: test for None
        return support if support is not None else no(f"{self.backend} does not support {feature}")

    def require(self, feature: str) -> None:
        support = self.get(feature)
        if not support:
            raise Unsupported(support.reason or f"{self.backend} cannot do {feature}",
                              feature=feature, backend=self.backend,
                              hint="run `unitune compare` to see which backends can")

    def to_dict(self) -> dict[str, Any]:
        return {k: {"supported": v.supported, "reason": v.reason} for k, v in self.features.items()}


@dataclass
class PlanRow:
    """One line of the translation table: spec field → vendor parameter and value, or why not."""

    field: str
    value: Any
    vendor_param: str | None = None
    vendor_value: Any = None
    note: str | None = None  # e.g. "not applied: OpenAI takes only a multiplier"
    applied: bool = True


@dataclass
class Upload:
    """A file the backend would upload (plan) or did upload (submit)."""

    local: str
    destination: str  # "openai files (purpose=fine-tune)", "s3://bucket/key", "gs://…"
    format: str
    examples: int
    bytes: int | None = None
    sha256: str | None = None


@dataclass
class Plan:
    backend: str
    model: str
    rows: list[PlanRow] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    problems: list["Problem"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None  # the exact create request; "<…>" = known at submit
    location: Any = None  # provider.Location
    validation: Any = None  # data.report.Report of the training file

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def ready(self) -> bool:
        """Whether `train` would proceed (no error problem, and a request to send)."""
        return self.ok and self.request is not None


class UploadCache(Protocol):
    """Remembers what was uploaded where (by content hash) so identical files are reused."""

    def get(self, backend: str, key: str) -> str | None: ...
    def put(self, backend: str, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class BackendEntry:
    target: str  # "module:Class"
    extra: str | None  # pip extra that brings its dependencies
    description: str

    @property
    def install_hint(self) -> str:
        return f"pip install 'unitune[{self.extra}]'" if self.extra else "pip install unitune"


KNOWN_BACKENDS: dict[str, BackendEntry] = {
    "openai": BackendEntry("unitune.providers.openai:OpenAIProvider", "openai", "OpenAI fine-tuning API"),
    "azure": BackendEntry("unitune.providers.openai:AzureOpenAIProvider", "openai", "Azure OpenAI fine-tuning"),
    "bedrock": BackendEntry("unitune.providers.bedrock:BedrockProvider", "bedrock", "AWS Bedrock model customization"),
    "vertex": BackendEntry("unitune.providers.vertex:VertexProvider", "vertex", "Google Vertex AI Gemini tuning"),
    "local": BackendEntry("unitune.local.backend:LocalProvider", "local", "LoRA/QLoRA/full on this machine (TRL + PEFT)"),
    "fake": BackendEntry("unitune.testing.fake:FakeProvider", None, "In-memory fake for tests and examples"),
}


def _entry_points() -> dict[str, BackendEntry]:
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group="unitune.backends"):
        found[ep.name] = BackendEntry(ep.value, None, f"third-party backend ({ep.value})")
    return found


def available_backends() -> dict[str, BackendEntry]:
    """Built-in backends plus those registered through the `unitune.backends` entry points."""
    return {**_entry_points(), **KNOWN_BACKENDS}


def load_backend_class(name: str) -> type:
    entries = available_backends()
    if name not in entries:
        from .errors import SpecError
        from .options import nearest

        near = nearest(name, sorted(entries))
        raise SpecError(f"unknown backend {name!r}" + (f" (did you mean {near!r}?)" if near
                                                       else ""), field="backend",
                        hint="choose one of: " + ", ".join(sorted(entries)))
    entry = entries[name]
    module_name, _, cls_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependency(f"backend {name!r} needs a package that is not installed "
                                f"({exc.name or exc})", hint=entry.install_hint) from exc
    return getattr(module, cls_name)


def get_backend(name: str, **kwargs: Any) -> Any:
    """Instantiate backend `name`'s provider (kwargs go to its constructor)."""
    return load_backend_class(name)(**kwargs)


def import_sdk(module: str, extra: str):
    """Import a vendor SDK lazily; a missing one becomes MissingDependency with the pip hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{module} is not installed",
                                hint=f"pip install 'unitune[{extra}]'") from exc
