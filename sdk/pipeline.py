"""The submit pipeline, written once for every provider: options → location → prepare → translate
→ (refuse | upload → translate → create exactly once), and `plan` rendered from the same
`translate()` so it cannot drift from what `submit` sends.

`Pipeline(provider)` is what the Client and the CLI talk to. It owns what is the same for every
vendor: typed options (`unitune.options`), data preparation (`prepare`: detect, validate against
the target's catalog rules, split a validation fraction off with one rule, convert, hash — all
cached by content), the one problems → exception mapping (`raise_for_problems`), the retry policy
(`unitune.retry`) and the upload cache. The provider only translates and talks to its SDK.
"""
from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .backends import Capabilities, Plan, Upload, UploadCache
from .errors import DataError, MissingDependency, SpecError, Unsupported, UnituneError
from .job import Event, Metrics, RemoteRef, Snapshot
from .provider import (DataTarget, Deployable, Ids, Location, Pausable, Prepared, PreparedFile,
                       Provider, Restartable, Translation, placeholder)
from .retry import RetryPolicy
from .spec import JobSpec

_SPEC_ROOTS = {"name", "backend", "base_model", "models", "method", "adapter", "hyperparameters",
               "backend_options", "suffix", "metadata"}


def _problem(code: str, message: str, **kw: Any):
    from .data.report import Problem

    return Problem(code, message, **kw)


def is_spec_problem(p: Any) -> bool:
    """A problem about the spec itself (a field or option), not about a data file's content."""
    root = (p.path or "").split(".")[0].split("[")[0]
    return p.line is None and root in _SPEC_ROOTS


def raise_for_problems(problems: list[Any], backend: str, data_file: str | None = None) -> None:
    """The one mapping from problems to an exception: nothing when there is no error; otherwise
    `Unsupported` when every error is a capability refusal, `SpecError` when every error is about
    the spec, else `DataError` (carrying the report). The message lists every error (up to 10)."""
    errors = [p for p in problems if p.severity == "error"]
    if not errors:
        return
    lines = []
    for p in errors[:10]:
        where = ":".join(str(x) for x in (p.file, p.line) if x)
        lines.append(f"  {where + ': ' if where else ''}{p.message}"
                     + (f" [{p.path}]" if p.path and not where else "")
                     + (f" ({p.hint})" if p.hint else ""))
    more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
    body = "\n".join(lines) + more
    if all(p.code.startswith("unsupported") for p in errors):
        first = errors[0]
        raise Unsupported(f"{backend} cannot run this spec ({len(errors)} problem(s)):\n{body}",
                          feature=first.path, backend=backend,
                          hint=first.hint or "run `unitune compare` to see which backends can")
    if all(p.code == "missing_dependency" for p in errors):
        raise MissingDependency(errors[0].message, hint=errors[0].hint)
    message = f"{backend} refused the job before upload ({len(errors)} problem(s)):\n{body}"
    if all(is_spec_problem(p) for p in errors):
        raise SpecError(message, field=errors[0].path,
                        hint="fix the spec (or the UNITUNE_<BACKEND>_<OPTION> variables); "
                             f"`unitune plan SPEC --backend {backend}` shows every rule")
    from .data.report import Report

    raise DataError(message, report=Report(file=data_file, problems=list(problems)),
                    hint="fix the problems above; `unitune validate` shows every one")


def prepare(spec: JobSpec, target: DataTarget) -> Prepared:
    """The job's data as the provider will send it: the source validated against the target's
    rules, a validation fraction split off (one rule for every backend: split the source, then
    convert each half), each half converted to `target.format` honouring `data.format`, counted
    and hashed. Everything is cached by content under UNITUNE_HOME/cache; nothing is uploaded.
    Problems are collected, never raised."""
    from .data.hashing import file_sha256
    from .data.prepared import convert_cached, split_cached
    from .data.validate import validate_file

    out = Prepared()
    sources: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for which in ("train", "validation"):
        path = spec.data_path(which)
        if path is None:
            continue
        field_ = f"data.{which}"
        if not path.exists():
            out.problems.append(_problem("file_not_found", f"{which} file {path} does not exist",
                                         path=field_, hint=f"fix {field_} (paths are relative to "
                                         "the spec file)"))
            continue
        if not path.is_file():
            out.problems.append(_problem("not_a_file", f"{which} data {path} is not a regular "
                                         "file", path=field_, hint=f"point {field_} at a JSONL "
                                         "file"))
            continue
        if which == "validation" and not target.validation:
            out.problems.append(_problem("validation_not_supported", "the validation file is not "
                                         "used: this model takes no validation set",
                                         severity="warning", path=field_))
            continue
        try:
            try:
                report = validate_file(path, targets=[target.validate] if target.validate
                                       else None, max_problems=500)
            except SpecError:  # a model the catalog does not list: the generic checks only
                report = validate_file(path, targets=None, max_problems=500)
            found = list(report.problems)
            for p in found:
                p.file = p.file or str(path)
            counts[which] = report.examples
            if which == "train":
                out.report = report
        except UnituneError as exc:
            found = [_problem("unreadable", exc.message, path=field_, hint=exc.hint,
                              file=str(path))]
        if which == "validation":
            found = [p for p in found if p.code != "too_few_examples"]
        out.problems.extend(found)
        sources[which] = path
    if any(p.severity == "error" for p in out.problems) or "train" not in sources:
        return out
    fraction = spec.data.validation
    if isinstance(fraction, float):
        if target.validation:
            seed = spec.hyperparameters.seed or 0
            halves = split_cached(str(sources["train"]), fraction, seed)
            out.notes.append(f"validation: {halves.validation} examples ({fraction:.0%}, seed "
                             f"{seed}) split off the training file; {halves.train} left to train")
            sources = {"train": Path(halves.train_path), "validation": Path(halves.validation_path)}
            counts = {"train": halves.train, "validation": halves.validation}
            origin = {"train": str(spec.data_path("train")),
                      "validation": f"{fraction:.0%} of {spec.data_path('train')}"}
        else:
            out.problems.append(_problem("validation_not_supported", f"data.validation "
                                         f"{fraction} is not split off: this model takes no "
                                         "validation set; every example trains",
                                         severity="warning", path="data.validation"))
            origin = {w: str(p) for w, p in sources.items()}
    else:
        origin = {w: str(p) for w, p in sources.items()}
    for which, src in sources.items():
        if target.format is None:
            path, fmt, examples = src, None, counts.get(which, 0)
        else:
            result = convert_cached(str(src), target.format, None, fmt=spec.data.format or "auto")
            dropped = list(result.errors or [])
            if dropped:
                first = dropped[0]
                out.problems.append(_problem(
                    "not_converted", f"{which}: {result.dropped} line(s) cannot be converted to "
                    f"{target.format} and would be left out; first: line {first.line}: "
                    f"{first.message}", file=origin[which], line=first.line,
                    hint=f"`unitune convert {origin[which]} --to {target.format}` lists them"))
            if not result.written:
                out.problems.append(_problem("no_examples", f"{which}: no example could be "
                                             f"converted to {target.format}", file=origin[which],
                                             path=f"data.{which}"))
                continue
            path, fmt, examples = Path(result.output), target.format, result.written
        out.files[which] = PreparedFile(which=which, source=origin[which], path=path, format=fmt,
                                        examples=examples, bytes=path.stat().st_size,
                                        sha256=file_sha256(path))
    return out


@dataclass
class Submission:
    """Everything decided before a job is claimed: computed once per `train` (so the data is
    validated once), then sent by `Pipeline.submit`."""

    spec: JobSpec
    options: Any
    location: Location
    prepared: Prepared
    translation: Translation
    warnings: list[Any] = field(default_factory=list)


def missing_sdks(provider: Provider) -> list[str]:
    return [m for m in getattr(provider, "requires", ()) if importlib.util.find_spec(
        m.split(".")[0]) is None or _find(m) is None]


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


class Pipeline:
    """A provider plus everything the core does around it. Stateless between calls."""

    def __init__(self, provider: Provider, *, base_options: dict[str, Any] | None = None,
                 policy: RetryPolicy | None = None, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.provider = provider
        self.base_options = dict(base_options or {})
        self.policy = policy or RetryPolicy.from_env()
        self.log = log or (lambda _m: None)
        self.sleep = sleep

    @property
    def name(self) -> str:
        return self.provider.name

    def capabilities(self) -> Capabilities:
        return self.provider.capabilities()

    # -- options and location --------------------------------------------------------------------
    def options(self, spec: JobSpec | None = None) -> Any:
        from .options import resolve_options

        return resolve_options(self.provider.options_model, self.name, spec,
                               base=self.base_options)

    def _dependency_problems(self) -> list[Any]:
        missing = missing_sdks(self.provider)
        if not missing:
            return []
        extra = getattr(self.provider, "extra", None)
        hint = f"pip install 'unitune[{extra}]'" if extra else "pip install unitune"
        return [_problem("missing_dependency", f"the {self.name} backend needs "
                         f"{', '.join(missing)}, which is not installed", hint=hint)]

    # -- plan and pre-submit ---------------------------------------------------------------------
    def _translate(self, spec: JobSpec, *, with_dependencies: bool) -> tuple[Submission | None, list]:
        """Options, location, data and the translation with placeholders; never raises for a
        problem the user can fix (they are returned)."""
        problems: list[Any] = self._dependency_problems() if with_dependencies else []
        try:
            options = self.options(spec)
        except SpecError as exc:
            problems.append(_problem("bad_option", exc.message, path=exc.field, hint=exc.hint))
            return None, problems
        try:
            location = self.provider.locate(spec, options)
        except UnituneError as exc:
            problems.append(_problem("location", exc.message, hint=exc.hint,
                                     path=getattr(exc, "field", None) or f"backend_options.{self.name}"))
            return None, problems
        target = self.provider.data_target(spec, options)
        prepared = prepare(spec, target)
        for f in prepared.files.values():
            f.uri = self.provider.destination(f, location, options)
        translation = self.provider.translate(spec, prepared, location, options, Ids(
            spec_hash=spec.spec_hash()))
        problems.extend(prepared.problems)
        problems.extend(translation.problems)
        return Submission(spec, options, location, prepared, translation), problems

    def plan(self, spec: JobSpec) -> Plan:
        """The translation table, the exact `request` (placeholders start with "<"), the uploads
        and every problem. Uploads nothing, calls no vendor. `ready` is what `train` would do."""
        sub, problems = self._translate(spec, with_dependencies=True)
        model = spec.model_for(self.name)
        plan = Plan(backend=self.name, model=model, problems=problems)
        if sub is None:
            return plan
        plan.rows = list(sub.translation.rows)
        plan.notes = list(sub.prepared.notes) + list(sub.translation.notes)
        plan.request = sub.translation.request
        plan.location = sub.location
        plan.validation = sub.prepared.report
        for f in sub.prepared.files.values():
            plan.uploads.append(Upload(local=f.source, destination=f.uri or placeholder(
                f"upload:{f.which}"), format=f.format or "as is", examples=f.examples,
                bytes=f.bytes, sha256=f.sha256))
        return plan

    def check(self, spec: JobSpec) -> list[Any]:
        return self.plan(spec).problems

    def prepare_submission(self, spec: JobSpec) -> Submission:
        """Everything `submit` needs, or the one exception naming every problem."""
        sub, problems = self._translate(spec, with_dependencies=True)
        for p in problems:
            if p.severity == "error" and p.code == "bad_option":
                raise SpecError(p.message, field=p.path, hint=p.hint)
        raise_for_problems(problems, self.name, str(spec.data_path("train")))
        assert sub is not None
        sub.warnings = [p for p in problems if p.severity != "error"]
        return sub

    # -- submit ----------------------------------------------------------------------------------
    def submit(self, sub: Submission, ids: Ids, *, location: Location | None = None,
               uploads: UploadCache | None = None, work_dir: Path | None = None) -> RemoteRef:
        """Upload the prepared files (once per content), translate with the real ids and uris,
        and create the job exactly once (lookup by key before any re-create)."""
        location = location or sub.location
        provider, options = self.provider, sub.options
        for f in sub.prepared.files.values():
            f.uri = self._upload(f, location, options, uploads)
        translation = provider.translate(sub.spec, sub.prepared, location, options, ids)
        raise_for_problems(translation.problems, self.name, str(sub.spec.data_path("train")))
        request = translation.request
        if work_dir is not None:
            from .redact import scrub

            work_dir.mkdir(parents=True, exist_ok=True)
            (work_dir / "request.json").write_text(json.dumps(scrub(request), indent=2,
                                                              default=str))
        return self.policy.create_once(
            lambda: provider.create(request, ids, location, options),
            lambda: provider.lookup(ids.key, location, options), log=self.log, sleep=self.sleep)

    def _upload(self, f: PreparedFile, location: Location, options: Any,
                cache: UploadCache | None) -> str:
        checker = getattr(self.provider, "still_there", None)
        key = f"{location.model_dump_json()}:{f.format}:{f.sha256}"
        if cache is not None and checker is not None:
            cached = cache.get(self.name, key)
            if cached and self.policy.call("check the uploaded file",
                                           lambda: checker(cached, location, options),
                                           log=self.log, sleep=self.sleep):
                self.log(f"{f.which}: reusing {cached} (same content)")
                return cached
        self.log(f"{f.which}: uploading {f.examples} examples ({f.bytes} bytes)")
        uri = self.policy.call(f"upload {f.which}", lambda: self.provider.upload(
            f, location, options), log=self.log, sleep=self.sleep)
        if cache is not None and checker is not None:
            cache.put(self.name, key, uri)
        return uri

    # -- after submit ----------------------------------------------------------------------------
    def lookup(self, key: str, location: Location, options: Any | None = None) -> RemoteRef | None:
        options = options if options is not None else self.options()
        return self.policy.call("look the job up", lambda: self.provider.lookup(
            key, location, options), log=self.log, sleep=self.sleep)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return self.policy.call(what, fn, log=self.log, sleep=self.sleep)

    def get(self, ref: RemoteRef) -> Snapshot:
        return self._call("read the job", lambda: self.provider.read(ref))

    def cancel(self, ref: RemoteRef) -> Snapshot:
        return self._call("cancel the job", lambda: self.provider.cancel(ref))

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        return self._call("read metrics", lambda: self.provider.metrics(ref))

    def events(self, ref: RemoteRef) -> list[Event]:
        return self._call("read events", lambda: self.provider.events(ref))

    @property
    def pausable(self) -> bool:
        return isinstance(self.provider, Pausable)

    @property
    def restartable(self) -> bool:
        return isinstance(self.provider, Restartable)

    @property
    def deployable(self) -> bool:
        return isinstance(self.provider, Deployable)

    def pause(self, ref: RemoteRef) -> Snapshot:
        if not isinstance(self.provider, Pausable):
            raise Unsupported(f"{self.name} cannot pause a job", backend=self.name, feature="pause")
        provider = self.provider
        return self._call("pause the job", lambda: provider.pause(ref))

    def resume(self, ref: RemoteRef) -> Snapshot:
        if not isinstance(self.provider, Pausable):
            raise Unsupported(f"{self.name} cannot resume a job", backend=self.name,
                              feature="resume")
        provider = self.provider
        return self._call("resume the job", lambda: provider.resume(ref))

    def restart(self, ref: RemoteRef) -> Snapshot:
        if not isinstance(self.provider, Restartable):
            raise Unsupported(f"{self.name} cannot restart a job", backend=self.name,
                              feature="restart")
        provider = self.provider
        return self._call("restart the job", lambda: provider.restart(ref))

    def deploy(self, ref: RemoteRef, options: dict[str, Any], dry_run: bool) -> Any:
        if not isinstance(self.provider, Deployable):
            raise Unsupported(f"{self.name} has no deploy step in unitune", backend=self.name,
                              feature="deploy")
        provider = self.provider
        return self._call("deploy", lambda: provider.deploy(ref, options, dry_run))

    def undeploy(self, ref: RemoteRef, options: dict[str, Any]) -> Any:
        if not isinstance(self.provider, Deployable):
            raise Unsupported(f"{self.name} has no undeploy step in unitune", backend=self.name,
                              feature="deploy")
        provider = self.provider
        return self._call("undeploy", lambda: provider.undeploy(ref, options))


def pipeline_for(name: str, **kwargs: Any) -> Pipeline:
    """The pipeline around backend `name`'s provider (lazy import; install hint when missing)."""
    from .backends import get_backend

    return Pipeline(get_backend(name), **kwargs)
