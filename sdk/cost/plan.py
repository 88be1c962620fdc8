"""Assemble `unitune plan`: data validation against the backend's rules, the backend's translation
table (`backend.plan(spec)`), the cost estimate, and the uploads that would happen.

Each part degrades on its own: a backend whose extra is not installed still gets validation and
an estimate (from the catalog) plus the pip command to install it; a validation module or data
file that is missing is reported, not raised. Nothing here uploads or calls a vendor.
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
    from ..errors import MissingDependency, UnituneError

    model = spec.model_for(backend)
    result = PlanResult(spec_name=spec.name, backend=backend, model=model)
    flag = spec.options(backend).get("ignore_lifecycle")
    result.ignore_lifecycle = str(flag).strip().lower() in ("1", "true", "yes", "on")

    # 1. validation against the backend's rules
    result.validation_target = f"{backend}:{model}"
    path = spec.data_path("train")
    try:
        from ..data.validate import validate_file
    except ImportError:
        result.validation_note = "data validation is not available in this installation"
    else:
        if path is None or not path.exists():
            result.validation_note = f"training data not found: {path}"
            from ..data.report import Problem

            result.problems.append(Problem(code="data_missing", message=result.validation_note,
                                           hint="fix `data.train` (relative to the spec file)"))
        else:
            try:
                result.validation = validate_file(str(path), targets=[result.validation_target])
            except UnituneError as exc:
                # e.g. the target's tokenizer cannot be loaded offline: keep the generic checks
                result.validation_note = (f"checks for {result.validation_target} skipped: "
                                          f"{exc.message}; generic checks only")
                try:
                    result.validation = validate_file(str(path), targets=[])
                except UnituneError as exc2:
                    result.validation_note = f"validation failed: {exc2.message}"

    # 2. the backend's own translation table
    try:
        from ..backends import available_backends, get_backend

        entry = available_backends().get(backend)
        if entry is not None:
            result.install_hint = entry.install_hint
        impl = get_backend(backend)
    except MissingDependency as exc:
        result.missing, result.install_hint = exc.message, exc.hint or result.install_hint
        result.plan_note = (f"the {backend} backend is not installed, so its translation table "
                            f"cannot be shown; install it with: {result.install_hint}")
    except UnituneError as exc:
        result.missing = exc.message
        result.plan_note = f"backend {backend!r} could not be loaded: {exc.message}"
    else:
        plan_fn = getattr(impl, "plan", None)
        if plan_fn is None:
            result.plan_note = f"the {backend} backend does not implement plan()"
        else:
            try:
                p = plan_fn(spec)
            except MissingDependency as exc:
                result.missing, result.install_hint = exc.message, exc.hint
                result.plan_note = f"{exc.message}; install with: {exc.hint}"
            except UnituneError as exc:
                from ..data.report import Problem

                result.problems.append(Problem(code="plan_refused", message=exc.message,
                                               hint=exc.hint))
                result.plan_note = "the backend refused this spec"
            else:
                result.model = p.model or model
                result.rows, result.uploads = list(p.rows), list(p.uploads)
                result.problems.extend(p.problems)
                result.notes.extend(p.notes)

    # 3. estimate (catalog-driven; works without the backend's extra)
    try:
        from .estimate import estimate

        result.estimate = estimate(spec, backend, model)
    except ImportError as exc:
        result.estimate_note = f"estimate unavailable: {exc}"
    except UnituneError as exc:
        result.estimate_note = f"estimate unavailable: {exc.message}"
    return result
