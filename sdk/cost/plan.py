"""Assemble `unitune plan`: data validation against the backend's rules, the translation table
and the exact create request (`Pipeline.plan(spec)`, the same `translate()` that `train` sends),
the cost estimate, and the uploads that would happen.

Each part degrades on its own: a backend that cannot be loaded still gets the generic
validation and an estimate (from the catalog); a backend whose SDK is missing still shows its
translation (translation needs no SDK) and is NOT READY with the pip command to install it.
Nothing here uploads or calls a vendor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlanResult:
    spec_name: str
    backend: str
    model: str
    validation_target: str | None = None
    validation: Any = None  # data.report.Report
    validation_note: str | None = None
    rows: list = field(default_factory=list)  # backends.PlanRow
    uploads: list = field(default_factory=list)  # backends.Upload
    problems: list = field(default_factory=list)  # data.report.Problem (from the backend)
    notes: list[str] = field(default_factory=list)
    plan_note: str | None = None
    estimate: Any = None  # cost.estimate.CostEstimate
    estimate_note: str | None = None
    missing: str | None = None  # why the backend could not be loaded
    install_hint: str | None = None
    ignore_lifecycle: bool = False  # backend_options.<backend>.ignore_lifecycle
    request: dict[str, Any] | None = None  # the exact create request ("<…>": known at submit)
    location: Any = None

    @property
    def ready(self) -> bool:
        """Whether `train` would proceed."""
        return self.ok and self.request is not None and self.missing is None

    @property
    def ok(self) -> bool:
        if self.validation is not None and self.validation.errors:
            return False
        if any(getattr(p, "severity", "error") == "error" for p in self.problems):
            return False
        if (self.estimate is not None and self.estimate.lifecycle_level == "error"
                and not self.ignore_lifecycle):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        def row(r: Any) -> dict:
            return dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r)

        return {
            "spec": self.spec_name, "backend": self.backend, "model": self.model, "ok": self.ok,
            "ready": self.ready, "request": self.request,
            "location": self.location.model_dump(mode="json") if self.location is not None else None,
            "validation": ({"target": self.validation_target, **self.validation.to_dict()}
                           if self.validation is not None
                           else {"target": self.validation_target, "note": self.validation_note}),
            "translation": [row(r) for r in self.rows],
            "plan_note": self.plan_note,
            "problems": [p.to_dict() if hasattr(p, "to_dict") else row(p) for p in self.problems],
            "notes": self.notes,
            "estimate": (self.estimate.model_dump(mode="json") if self.estimate is not None
                         else {"note": self.estimate_note}),
            "uploads": [row(u) for u in self.uploads],
            "uploaded": False,
            "missing": self.missing, "install_hint": self.install_hint,
            "ignore_lifecycle": self.ignore_lifecycle,
        }


def build_plan(spec: Any, backend: str) -> PlanResult:
    from ..errors import SpecError, UnituneError

    model = spec.model_for(backend)
    result = PlanResult(spec_name=spec.name, backend=backend, model=model)
    flag = spec.options(backend).get("ignore_lifecycle")
    result.ignore_lifecycle = str(flag).strip().lower() in ("1", "true", "yes", "on")
    result.validation_target = f"{backend}:{model}"

    try:
        from ..backends import available_backends
        from ..pipeline import pipeline_for

        entry = available_backends().get(backend)
        if entry is not None:
            result.install_hint = entry.install_hint
        pipe = pipeline_for(backend)
    except SpecError:  # an unknown backend name: a usage error, not a plan
        raise
    except UnituneError as exc:  # its module cannot be imported
        result.missing, result.install_hint = exc.message, exc.hint or result.install_hint
        result.plan_note = f"backend {backend!r} could not be loaded: {exc.message}"
        _generic_validation(spec, result)
    else:
        p = pipe.plan(spec)
        result.model = p.model or model
        result.rows, result.uploads, result.notes = list(p.rows), list(p.uploads), list(p.notes)
        result.request, result.location = p.request, p.location
        _scrub(result)
        result.validation = p.validation
        shown = {id(x) for x in (p.validation.problems if p.validation is not None else [])}
        result.problems = [x for x in p.problems if id(x) not in shown]
        missing = [x for x in p.problems if x.code == "missing_dependency"]
        if missing:
            result.missing = missing[0].message
            result.plan_note = f"{missing[0].message}; install with: {missing[0].hint}"
        if p.validation is None and spec.data_path("train") is not None:
            result.validation_note = "data not validated (see the problems below)"

    # 3. estimate (catalog-driven; works without the backend's extra)
    try:
        from .estimate import estimate

        result.estimate = estimate(spec, backend, model)
    except ImportError as exc:
        result.estimate_note = f"estimate unavailable: {exc}"
    except UnituneError as exc:
        result.estimate_note = f"estimate unavailable: {exc.message}"
    return result


def _scrub(result: PlanResult) -> None:
    """The plan is for display: no known secret or URL password in it, also where a narrow
    table would wrap a value in the middle of one (the console's own scrubbing could not
    match a split string)."""
    import dataclasses

    from ..redact import scrub

    result.request = scrub(result.request)
    if result.location is not None:
        result.location = type(result.location).model_validate(
            scrub(result.location.model_dump(mode="json")))
    result.rows = [dataclasses.replace(r, value=scrub(r.value), vendor_value=scrub(r.vendor_value))
                   for r in result.rows]


def _generic_validation(spec: Any, result: PlanResult) -> None:
    """The data checks that need no backend (when the backend itself cannot be loaded)."""
    from ..data.report import Problem
    from ..data.validate import validate_file
    from ..errors import UnituneError

    path = spec.data_path("train")
    if path is None or not path.is_file():
        result.validation_note = f"training data not found: {path}"
        result.problems.append(Problem(code="data_missing", message=result.validation_note,
                                       hint="fix `data.train` (relative to the spec file)"))
        return
    try:
        result.validation = validate_file(str(path), targets=[])
    except UnituneError as exc:
        result.validation_note = f"validation failed: {exc.message}"
