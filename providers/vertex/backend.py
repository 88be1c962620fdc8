"""VertexBackend: Gemini supervised tuning on Google Vertex AI.

Flow: convert the data to Gemini's `contents`/`parts` JSONL, check it against the model's limits
(catalog: tokens per example, file size, validation ≤ 5,000 examples), upload it to GCS under its
content hash (skipped when the object exists), create a tuning job whose labels carry unitune's
idempotency key, then poll it. `find` lists jobs with a label filter, so a re-run — or a retry
after a lost create response — never makes a second job.

Client: google-genai (default) or the GAPIC `aiplatform_v1` client
(`backend_options.vertex.client: aiplatform`); both produce a `JobView` (jobview.py). State
mapping and its choices: states.py. Credentials and settings: settings.py. Metrics come from the
job's `gcs_metrics_uri`; when a job only has its curves in Vertex AI Experiments, `metrics`
raises MetricsUnavailable naming the experiment instead of returning an empty table.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitune.backends import YES, Capabilities, Plan, PlanRow, SubmitContext, Upload, no
from unitune.data.report import Problem
from unitune.errors import (BackendUnavailable, DataError, InvalidRequest, MetricsUnavailable,
                            SpecError)
from unitune.job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                         Snapshot)

from . import settings as settings_mod
from .jobview import CreateRequest, JobView
from .settings import VertexSettings
from .states import (ALL_ADAPTER_SIZES, ADAPTER_SIZE_NAMES, RPC_CODES, nearest_adapter_size,
                     normalize_state)

KEY_LABEL = "unitune-key"
JOB_LABEL = "unitune-job"
_LABEL_OK = re.compile(r"^[a-z0-9_-]{1,63}$")
_NAME = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/tuningJobs/"
                   r"(?P<id>[^/]+)$")

_NOT_APPLIED = {
    "learning_rate": "Gemini tuning takes only learning_rate_multiplier (a multiple of Vertex's "
                     "default rate), not an absolute rate",
    "batch_size": "Vertex chooses the batch size for Gemini supervised tuning",
    "warmup_ratio": "Vertex does not expose a warmup setting for Gemini tuning",
    "weight_decay": "Vertex does not expose weight decay for Gemini tuning",
    "seed": "Vertex takes no seed for Gemini tuning",
    "gradient_accumulation_steps": "Vertex chooses the batching for Gemini tuning",
    "max_steps": "Vertex trains whole epochs (use hyperparameters.epochs)",
    "beta": "beta applies to DPO; unitune drives Vertex supervised tuning only",
}


def label_value(text: str) -> str:
    """A GCP label value for `text`: kept when already valid, else a stable hash of it."""
    if _LABEL_OK.match(text):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _label_key(text: str) -> str | None:
    key = re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]
    return key if key and key[0].isalpha() else None


@dataclass
class _DataFile:
    which: str
    source: Path  # the user's file (for a split: the training file it came from)
    converted: Path
    examples: int
    bytes: int
    sha256: str
    note: str = ""


@dataclass
class _Prepared:
    files: list[_DataFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


class VertexBackend:
    """Google Vertex AI Gemini supervised tuning (see the module docstring)."""

    name = "vertex"

    def __init__(self, *, project: str | None = None, location: str | None = None,
                 bucket: str | None = None, client: str | None = None,
                 endpoint: str | None = None) -> None:
        self._defaults = {k: v for k, v in {"project": project, "location": location,
                                            "bucket": bucket, "client": client,
                                            "endpoint": endpoint}.items() if v}
        self._last: VertexSettings | None = None
        self._clients: dict[tuple, Any] = {}
        self._creds: Any = None
        self._lock = threading.RLock()
        self._scratch = tempfile.TemporaryDirectory(prefix="unitune-vertex-")
        self._prepared: dict[tuple, _Prepared] = {}

    # -- settings and clients --------------------------------------------------------------------
    def settings_for(self, spec=None) -> VertexSettings:
        """Settings from the spec (or, without one, the last spec seen, then the environment)."""
        import os

        if spec is None:
            if self._last is not None:
                return self._last
            env_opts = {k[len("UNITUNE_VERTEX_"):].lower(): v for k, v in os.environ.items()
                        if k.startswith("UNITUNE_VERTEX_")}
            return settings_mod.resolve({**self._defaults, **env_opts})
        resolved = settings_mod.resolve({**self._defaults, **spec.options(self.name)})
        self._last = resolved
        return resolved

    def _settings_for_ref(self, ref: RemoteRef) -> VertexSettings:
        import os

        m = _NAME.match(ref.remote_id)
        if not m:
            raise InvalidRequest(f"not a Vertex tuning job name: {ref.remote_id!r}", backend=self.name,
                                 hint="expected projects/<p>/locations/<l>/tuningJobs/<id>")
        extra = ref.extra or {}
        endpoint = os.environ.get("UNITUNE_VERTEX_ENDPOINT") or extra.get("endpoint")
        client = os.environ.get("UNITUNE_VERTEX_CLIENT") or extra.get("client") or "genai"
        return VertexSettings(project=m["project"], location=m["location"],
                              bucket=extra.get("bucket"),
                              endpoint=settings_mod.normalize_endpoint(endpoint), client=client,
                              api_version=extra.get("api_version", "v1"))

    def _credentials(self, settings: VertexSettings):
        with self._lock:
            if self._creds is None:
                self._creds, settings = settings_mod.credentials(settings)
                return self._creds, settings
            if not settings.project:
                _, settings = settings_mod.credentials(settings)
            return self._creds, settings

    def _client(self, settings: VertexSettings):
        creds, settings = self._credentials(settings)
        key = (settings.client, settings.project, settings.location, settings.endpoint,
               settings.api_version)
        with self._lock:
            if key not in self._clients:
                if settings.client == "aiplatform":
                    from .aiplatform_client import AiplatformTuningClient as C
                else:
                    from .genai_client import GenaiTuningClient as C  # type: ignore[no-redef]
                self._clients[key] = C(settings, creds)
            return self._clients[key], settings

    # -- static protocol -------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        features = {
            "method:sft": YES,
            "method:dpo": no("unitune drives Vertex supervised tuning only; Gemini preference "
                             "tuning (v1beta1 preferenceOptimizationSpec) is not wired"),
            "validation_file": YES,
            "pause": no("Vertex can report PAUSED but offers no pause call for tuning jobs"),
            "resume": no("Vertex offers no resume call for tuning jobs"),
            "checkpoints": YES,
            "learning_rate_multiplier": YES,
            "max_seq_length": no("Vertex fixes the example length (131,072 tokens for Gemini "
                                 "2.5; longer examples are truncated); unitune checks it"),
            "tools": no("unitune's Gemini converter does not write functionCall / "
                        "functionResponse parts yet; tool calls are dropped with a warning"),
            "images": YES,
            "weights": no("Gemini tuning trains on every model turn; per-message weights are "
                          "not supported"),
            "deploy": no("Vertex deploys the tuned model to an endpoint by itself; the endpoint "
                         "is in the model handle"),
            "adapter:lora": YES,
        }
        for key, reason in _NOT_APPLIED.items():
            if key in ("learning_rate", "batch_size", "seed", "warmup_ratio", "weight_decay"):
                features[key] = no(reason)
        for adapter in ("qlora", "dora", "rslora", "full", "prefix", "p_tuning", "prompt_tuning",
                        "ia3"):
            features[f"adapter:{adapter}"] = no(
                f"Vertex tunes Gemini with LoRA-style adapters only (adapter_size); "
                f"adapter {adapter} is not offered" + ("; Gemini weights are never trained in "
                                                       "full" if adapter == "full" else ""))
        return Capabilities(backend=self.name, features=features)

    def _model_info(self, model: str):
        from unitune.catalog import find_model

        return find_model(self.name, model)

    def allowed_adapter_sizes(self, model: str) -> list[int]:
        info = self._model_info(model)
        return sorted(info.adapter_sizes) if info and info.adapter_sizes else list(ALL_ADAPTER_SIZES)

    def check(self, spec) -> list[Problem]:
        problems: list[Problem] = []
        try:
            settings = self.settings_for(spec)
        except SpecError as exc:
            return [Problem(code="bad_option", message=exc.message, path=exc.field, hint=exc.hint)]
        caps = self.capabilities()
        for feature, path in ((f"method:{spec.method}", "method"),
                              (f"adapter:{spec.adapter.type}", "adapter.type")):
            support = caps.get(feature)
            if not support:
                problems.append(Problem(code="unsupported", message=support.reason or feature,
                                        path=path, target=self.name,
                                        hint="use method sft with adapter.type lora, or another "
                                             "backend (`unitune compare`)"))
        model = spec.model_for(self.name)
        info = self._model_info(model)
        if info is None:
            problems.append(Problem(code="unknown_model", severity="warning", target=self.name,
                                    path=f"models.{self.name}",
                                    message=f"{model!r} is not in unitune's Vertex catalog; limits "
                                            "and prices are unknown",
                                    hint="tunable: gemini-2.5-flash, gemini-2.5-flash-lite, "
                                         "gemini-2.5-pro (`unitune models vertex`)"))
        if info and info.regions and settings.location not in info.regions:
            problems.append(Problem(code="region", severity="warning", target=self.name,
                                    path="backend_options.vertex.location",
                                    message=f"{model} tuning is listed for {', '.join(info.regions)}"
                                            f", not {settings.location}",
                                    hint="set backend_options.vertex.location"))
        hp = spec.hyperparameters
        for key, reason in _NOT_APPLIED.items():
            if getattr(hp, key, None) not in (None, "auto"):
                problems.append(Problem(code="not_applied", severity="warning", target=self.name,
                                        path=f"hyperparameters.{key}",
                                        message=f"hyperparameters.{key} is not applied: {reason}"))
        if not settings.bucket:
            problems.append(Problem(code="missing_option", target=self.name,
                                    path="backend_options.vertex.bucket",
                                    message="no GCS bucket for the training data",
                                    hint="set backend_options.vertex.bucket or UNITUNE_VERTEX_BUCKET"))
        prepared = self._prepare(spec, model)
        problems.extend(prepared.problems)
        return problems

    def plan(self, spec) -> Plan:
        problems = self.check(spec)
        model = spec.model_for(self.name)
        settings = self.settings_for(spec)
        prepared = self._prepare(spec, model)
        hp = spec.hyperparameters
        bucket = settings.bucket or "<bucket>"
        rows = [PlanRow("base_model", model, "baseModel", model)]
        uploads = []
        for f in prepared.files:
            uri = f"gs://{bucket}/{settings_mod_object(settings, f.sha256)}"
            param = ("supervisedTuningSpec.trainingDatasetUri" if f.which == "train"
                     else "supervisedTuningSpec.validationDatasetUri")
            value = spec.data.validation if f.which == "validation" else str(f.source)
            rows.append(PlanRow(f"data.{f.which}", value, param, uri,
                                note=f"{f.note}{f.examples} examples converted to Gemini "
                                     "contents JSONL"))
            uploads.append(Upload(local=str(f.source), destination=uri, format="vertex",
                                  examples=f.examples, bytes=f.bytes, sha256=f.sha256))
        rows.append(PlanRow("method", spec.method, "supervisedTuningSpec", "SUPERVISED_FINE_TUNING",
                            applied=spec.method == "sft",
                            note=None if spec.method == "sft" else "not supported on Vertex here"))
        size, note = self.adapter_mapping(spec.adapter.r, model)
        rows.append(PlanRow("adapter.type", spec.adapter.type, "(LoRA adapter)", "lora",
                            applied=spec.adapter.type == "lora",
                            note=None if spec.adapter.type == "lora" else "only lora is offered"))
        rows.append(PlanRow("adapter.r", spec.adapter.r, "hyperParameters.adapterSize",
                            ADAPTER_SIZE_NAMES[size], note=note))
        defaults = {"alpha": None, "dropout": 0.05, "target_modules": None}
        for fname, default in defaults.items():
            value = getattr(spec.adapter, fname)
            if value != default:
                rows.append(PlanRow(f"adapter.{fname}", value, applied=False,
                                    note="not applied: Vertex fixes the adapter's other settings"))
        epochs = None if hp.epochs == "auto" else hp.epochs
        rows.append(PlanRow("hyperparameters.epochs", hp.epochs, "hyperParameters.epochCount",
                            epochs if epochs is not None else "(Vertex default)",
                            note="aiplatform sends it as a string" if settings.client == "aiplatform"
                            else None))
        rows.append(PlanRow("hyperparameters.learning_rate_multiplier", hp.learning_rate_multiplier,
                            "hyperParameters.learningRateMultiplier",
                            hp.learning_rate_multiplier if hp.learning_rate_multiplier is not None
                            else "(Vertex default)"))
        for key, reason in _NOT_APPLIED.items():
            value = getattr(hp, key, None)
            if value is not None and value != "auto":
                rows.append(PlanRow(f"hyperparameters.{key}", value, applied=False,
                                    note=f"not applied: {reason}"))
        if hp.max_seq_length is not None:
            rows.append(PlanRow("hyperparameters.max_seq_length", hp.max_seq_length, applied=False,
                                note="not sent: Vertex's own limit applies; examples are checked "
                                     "against it"))
        rows.append(PlanRow("name", spec.suffix or spec.name, "tunedModelDisplayName",
                            (spec.suffix or spec.name)[:128]))
        if spec.metadata:
            rows.append(PlanRow("metadata", spec.metadata, "labels", self._user_labels(spec)))
        rows.append(PlanRow("(idempotency key)", None, f"labels.{KEY_LABEL}", "<job key>",
                            note="find() lists jobs by this label, so a re-run never makes a "
                                 "second job"))
        rows.append(PlanRow("backend_options.vertex", None, "client / project / location",
                            f"{settings.client} / {settings.project or '<ADC project>'} / "
                            f"{settings.location}"))
        notes = [f"client: {settings.client}; endpoint: {settings.base_url}"]
        if prepared.stats:
            notes.append("data: " + ", ".join(f"{k}={v}" for k, v in prepared.stats.items()))
        return Plan(backend=self.name, model=model, rows=rows, uploads=uploads, problems=problems,
                    notes=notes)

    def adapter_mapping(self, rank: int, model: str) -> tuple[int, str]:
        """(adapter size, a note for the plan) for a LoRA rank and a model."""
        allowed = self.allowed_adapter_sizes(model)
        size = nearest_adapter_size(rank, allowed)
        listed = ", ".join(str(s) for s in allowed)
        if size == rank:
            return size, f"rank {rank} is an allowed size (allowed for {model}: {listed})"
        return size, f"rank {rank} → nearest allowed size {size} (allowed for {model}: {listed})"

    # -- data ------------------------------------------------------------------------------------
    def _prepare(self, spec, model: str) -> _Prepared:
        """Convert (and split) the data into the scratch dir and check it; memoized per content."""
        src = spec.data_path("train")
        val = spec.data.validation
        val_path = spec.data_path("validation")
        key_parts: list[Any] = [model, str(val) if isinstance(val, float) else None,
                                spec.hyperparameters.seed]
        for p in (src, val_path):
            try:
                st = p.stat() if p is not None else None
                key_parts.append((str(p), st.st_mtime_ns, st.st_size) if st else None)
            except OSError:
                key_parts.append((str(p), None))
        key = tuple(key_parts)
        with self._lock:
            if key in self._prepared:
                return self._prepared[key]
        prepared = self._prepare_uncached(spec, model, src, val, val_path)
        with self._lock:
            self._prepared[key] = prepared
        return prepared

    def _prepare_uncached(self, spec, model, src, val, val_path) -> _Prepared:
        from unitune.data.hashing import file_sha256

        out = _Prepared()
        if src is None or not src.is_file():
            out.problems.append(Problem(code="data_missing", file=str(src),
                                        message=f"training file not found: {src}",
                                        hint="check data.train in the spec (paths are relative "
                                             "to the spec file)"))
            return out
        if val_path is not None and not val_path.is_file():
            out.problems.append(Problem(code="data_missing", file=str(val_path),
                                        message=f"validation file not found: {val_path}",
                                        hint="check data.validation in the spec"))
            return out
        work = Path(tempfile.mkdtemp(dir=self._scratch.name))
        sources: list[tuple[str, Path]] = [("train", src)]
        if isinstance(val, float):
            train_part, val_part = self._split(src, val, spec.hyperparameters.seed, work)
            sources = [("train", train_part), ("validation", val_part)]
        elif val_path is not None:
            sources.append(("validation", val_path))
        info = self._model_info(model)
        limits = info.limits if info else None
        out.problems.extend(self._validate(src, model))
        if val_path is not None:
            out.problems.extend(self._validate(val_path, model))
        for which, path in sources:
            dst = work / f"{which}.vertex.jsonl"
            written, converted_problems = self._convert(path, dst)
            out.problems.extend(converted_problems)
            if written == 0:
                out.problems.append(Problem(code="no_examples", file=str(path),
                                            message=f"no usable {which} examples after conversion "
                                                    "to the Gemini format",
                                            hint="`unitune validate --target vertex:<model>` "
                                                 "lists why each line was dropped"))
                continue
            size = dst.stat().st_size
            note = (f"split off data.train (validation fraction {val}, seed "
                    f"{spec.hyperparameters.seed or 0}); " if isinstance(val, float) else "")
            out.files.append(_DataFile(which, src if isinstance(val, float) else path, dst,
                                       written, size, file_sha256(dst), note))
            out.stats[f"{which}_examples"] = written
            out.stats[f"{which}_bytes"] = size
            if limits is None:
                continue
            cap = limits.train_file_bytes if which == "train" else (
                limits.validation_file_bytes or limits.train_file_bytes)
            if cap and size > cap:
                out.problems.append(Problem(code="file_too_large", file=str(path), target=f"vertex:{model}",
                                            message=f"the converted {which} file is {size:,} bytes; "
                                                    f"Vertex accepts at most {cap:,}",
                                            hint="split the data or drop long examples"))
            if which == "validation" and limits.max_validation_examples and \
                    written > limits.max_validation_examples:
                out.problems.append(Problem(code="too_many_validation_examples", file=str(path),
                                            target=f"vertex:{model}",
                                            message=f"{written:,} validation examples; Vertex "
                                                    f"accepts at most {limits.max_validation_examples:,}",
                                            hint="use a smaller validation file or fraction"))
            if which == "train" and limits.min_examples and written < limits.min_examples:
                out.problems.append(Problem(code="too_few_examples", file=str(path),
                                            target=f"vertex:{model}",
                                            message=f"{written} training examples; Vertex needs at "
                                                    f"least {limits.min_examples}",
                                            hint="add examples (Google suggests starting at ~100)"))
        seen: set[tuple] = set()
        unique = []
        for p in out.problems:  # validation and conversion may both report a broken line
            key = (p.file, p.line, p.code)
            if key not in seen:
                seen.add(key)
                unique.append(p)
        out.problems = unique
        return out

    def _validate(self, path: Path, model: str) -> list[Problem]:
        """Generic checks plus the catalog's rules and limits for vertex:<model>."""
        from unitune.data.validate import target_problems

        return target_problems(path, f"{self.name}:{model}")

    def _convert(self, src: Path, dst: Path) -> tuple[int, list[Problem]]:
        """Write Gemini JSONL; lossy conversions are warnings, examples it cannot express are
        errors (each with its line)."""
        from unitune.data.prepared import convert_cached

        # once per content, across backend instances and processes (see unitune.data.prepared)
        result = convert_cached(src, "vertex", dst, max_warnings=200)
        return int(result.written), [*result.errors, *result.warnings]

    def _split(self, src: Path, fraction: float, seed: int | None, work: Path) -> tuple[Path, Path]:
        """A validation fraction: the same deterministic split `unitune split` makes."""
        from unitune.data.prepared import split_cached

        train, val = work / "split-train.jsonl", work / "split-validation.jsonl"
        split_cached(src, fraction, seed if seed is not None else 0, train, val)
        return train, val

    # -- submit / find ---------------------------------------------------------------------------
    def _user_labels(self, spec) -> dict[str, str]:
        labels = {}
        for k, v in (spec.metadata or {}).items():
            key = _label_key(str(k))
            if key and key not in (KEY_LABEL, JOB_LABEL):
                labels[key] = re.sub(r"[^a-z0-9_-]", "-", str(v).lower())[:63]
        return dict(list(labels.items())[:60])

    def submit(self, spec, ctx: SubmitContext) -> RemoteRef:
        settings = self.settings_for(spec)
        client, settings = self._client(settings)
        self._last = settings
        existing = self._find(client, settings, ctx.idempotency_key)
        if existing is not None:
            ctx.log(f"vertex: job with key {ctx.idempotency_key} already exists: {existing.remote_id}")
            return existing
        model = spec.model_for(self.name)
        problems = [p for p in self.check(spec) if p.severity == "error"]
        if problems:
            from unitune.data.report import Report

            raise DataError("Vertex refused the job before upload: "
                            + "; ".join(p.message for p in problems[:5]),
                            report=Report(problems=problems),
                            hint=problems[0].hint or "run `unitune validate`")
        prepared = self._prepare(spec, model)
        uris = self._upload(prepared, settings, ctx)
        hp = spec.hyperparameters
        size, _ = self.adapter_mapping(spec.adapter.r, model)
        req = CreateRequest(
            base_model=model, training_uri=uris["train"], validation_uri=uris.get("validation"),
            labels={**self._user_labels(spec), KEY_LABEL: label_value(ctx.idempotency_key),
                    JOB_LABEL: label_value(ctx.job_id)},
            display_name=(spec.suffix or spec.name)[:128],
            description=f"unitune job {ctx.job_id}",
            epoch_count=None if hp.epochs == "auto" else int(hp.epochs),
            learning_rate_multiplier=hp.learning_rate_multiplier,
            adapter_size=ADAPTER_SIZE_NAMES[size])
        try:
            view = client.create(req)  # once: neither client retries a create
        except BackendUnavailable:
            # The answer was lost; the job may exist. Look before anyone retries.
            found = self._find(client, settings, ctx.idempotency_key)
            if found is not None:
                ctx.log(f"vertex: create response lost; found the job by label: {found.remote_id}")
                return found
            raise
        return self._ref(view.name, settings)

    def _ref(self, name: str, settings: VertexSettings) -> RemoteRef:
        extra = {"client": settings.client, "api_version": settings.api_version}
        if settings.bucket:
            extra["bucket"] = settings.bucket
        return RemoteRef(backend=self.name, remote_id=name, extra=extra)

    def _upload(self, prepared: _Prepared, settings: VertexSettings,
                ctx: SubmitContext) -> dict[str, str]:
        from .gcs import dataset_object, storage_client, upload_once

        assert settings.bucket
        creds, settings = self._credentials(settings)
        gcs = storage_client(settings, creds)
        uris: dict[str, str] = {}
        for f in prepared.files:
            name = dataset_object(settings, f.sha256)
            uri = f"gs://{settings.bucket}/{name}"
            kept = ctx.work_dir / f"{f.which}.vertex.jsonl"
            try:
                shutil.copyfile(f.converted, kept)  # kept for debugging
            except OSError:
                pass
            uploaded = upload_once(gcs, settings.bucket, name, f.converted)
            ctx.log(f"vertex: {'uploaded' if uploaded else 'reused'} {f.which} data {uri}")
            if ctx.uploads is not None:
                ctx.uploads.put(self.name, f"gcs:{settings.bucket}:{f.sha256}", uri)
            uris[f.which] = uri
        return uris

    def find(self, idempotency_key: str) -> RemoteRef | None:
        """The job carrying this key's label, looked up in the last spec's project and location
        (else UNITUNE_VERTEX_* / GOOGLE_CLOUD_* / the ADC project)."""
        settings = self.settings_for(None)
        try:
            client, settings = self._client(settings)
        except SpecError:
            # No project known without the spec (a fresh process resuming a job). `submit`
            # looks the key up again with the spec's project before creating anything.
            return None
        return self._find(client, settings, idempotency_key)

    def _find(self, client, settings: VertexSettings, key: str) -> RemoteRef | None:
        value = label_value(key)
        matches = [v for v in client.list_labelled(KEY_LABEL, value)
                   if v.labels.get(KEY_LABEL) == value]  # never trust the filter alone
        if not matches:
            return None
        matches.sort(key=lambda v: (v.create_time is None, v.create_time))
        return self._ref(matches[0].name, settings)

    # -- observe ---------------------------------------------------------------------------------
    def _view(self, ref: RemoteRef) -> tuple[JobView, Any, VertexSettings]:
        client, settings = self._client(self._settings_for_ref(ref))
        return client.get(ref.remote_id), client, settings

    def get(self, ref: RemoteRef) -> Snapshot:
        view, _, settings = self._view(ref)
        return self.snapshot(ref, view, settings)

    def snapshot(self, ref: RemoteRef, view: JobView, settings: VertexSettings) -> Snapshot:
        has_model = bool(view.tuned_model)
        status = normalize_state(view.state, has_model=has_model)
        error = None
        if view.error_message and status in (JobStatus.FAILED, JobStatus.CANCELLED,
                                              JobStatus.UNKNOWN):
            error = JobError(message=view.error_message,
                             code=RPC_CODES.get(view.error_code, str(view.error_code))
                             if view.error_code is not None else None)
        elif status is JobStatus.FAILED:
            why = {"JOB_STATE_EXPIRED": "the job expired before it finished (JOB_STATE_EXPIRED)",
                   "JOB_STATE_PARTIALLY_SUCCEEDED": "Vertex reported PARTIALLY_SUCCEEDED without "
                                                    "a tuned model"}.get(view.state or "",
                                                                         "the job failed")
            error = JobError(message=f"Vertex AI: {why}", code=view.state)
        tokens = None  # Vertex reports one pass over the data; billing is that × epochs
        if view.billable_tokens is not None and view.epoch_count:
            tokens = view.billable_tokens * view.epoch_count
        model = None
        if has_model:
            model = ModelHandle(
                backend=self.name, model_id=view.tuned_model or "", base_model=view.base_model,
                name=view.display_name, endpoint=view.endpoint, checkpoints=view.checkpoints,
                invoke=(f"genai.Client(vertexai=True, project={settings.project!r}, location="
                        f"{settings.location!r}).models.generate_content(model="
                        f"{(view.endpoint or view.tuned_model)!r}, contents=...)"))
        progress = None
        if view.completed_steps is not None or view.step_count is not None:
            progress = Progress(step=view.completed_steps, total_steps=view.step_count)
        return Snapshot(ref=ref, status=status, raw_status=view.state,
                        created_at=view.create_time, started_at=view.start_time,
                        finished_at=view.end_time, trained_tokens=tokens, billed_tokens=tokens,
                        error=error, model=model, progress=progress, raw=view.raw)

    def cancel(self, ref: RemoteRef) -> Snapshot:
        client, settings = self._client(self._settings_for_ref(ref))
        try:
            client.cancel(ref.remote_id)
        except InvalidRequest:
            view = client.get(ref.remote_id)
            if not normalize_state(view.state, has_model=bool(view.tuned_model)).is_terminal:
                raise
            return self.snapshot(ref, view, settings)  # already over: nothing to cancel
        return self.snapshot(ref, client.get(ref.remote_id), settings)

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        view, client, settings = self._view(ref)
        uri = view.gcs_metrics_uri
        if uri is None and hasattr(client, "extras"):
            uri = client.extras(ref.remote_id).get("gcsMetricsUri")
        if uri:
            from .gcs import read_metrics, storage_client

            creds, settings = self._credentials(settings)
            rows = read_metrics(storage_client(settings, creds), uri)
            return sorted(rows, key=lambda r: r.step)
        if view.experiment:
            raise MetricsUnavailable(
                f"Vertex AI keeps the training curves of {ref.remote_id} in Vertex AI Experiments "
                f"({view.experiment}); the job reports no gcs_metrics_uri, so unitune has no "
                "metrics table for it", backend=self.name,
                hint="open the tuning job in the Google Cloud console (Vertex AI → Tuning → "
                     "Monitor), or read the experiment run with the Vertex AI SDK")
        return []  # not started yet: no curves anywhere

    def events(self, ref: RemoteRef) -> list[Event]:
        view, client, settings = self._view(ref)
        snap = self.snapshot(ref, view, settings)
        out: list[Event] = []
        if view.create_time:
            out.append(Event(time=view.create_time, message=f"tuning job created "
                             f"(base model {view.base_model}, adapter {view.adapter_size or '-'}, "
                             f"epochs {view.epoch_count or 'Vertex default'})"))
        if view.example_count is not None:
            out.append(Event(message=f"dataset: {view.example_count} examples, "
                                     f"{view.billable_tokens} billable tokens per epoch, "
                                     f"{view.step_count} steps"))
        if view.truncated_examples:
            out.append(Event(level="warning", message=f"{view.truncated_examples} examples were "
                             "dropped or truncated by Vertex: " + "; ".join(view.dropped_reasons[:5])))
        if view.start_time:
            out.append(Event(time=view.start_time, message="training started"))
        if view.completed_steps is not None:
            out.append(Event(message=f"{view.completed_steps}/{view.step_count or '?'} steps done"))
        if view.state == "JOB_STATE_PARTIALLY_SUCCEEDED":
            out.append(Event(level="warning", message="Vertex reported PARTIALLY_SUCCEEDED"
                             + (f": {view.error_message}" if view.error_message else "")))
        if snap.status is JobStatus.UNKNOWN:
            out.append(Event(level="warning", message=f"Vertex reports state {view.state!r}, "
                             "which unitune does not know; treated as not finished"))
        if snap.error:
            out.append(Event(time=view.end_time, level="error", message=snap.error.message))
        if snap.status.is_terminal:
            text = f"job ended: {view.state}"
            if view.tuned_model:
                text += f"; tuned model {view.tuned_model}, endpoint {view.endpoint}"
            out.append(Event(time=view.end_time, message=text))
        if view.gcs_metrics_uri is None and view.experiment and snap.status.is_terminal:
            out.append(Event(message=f"training curves: Vertex AI Experiments {view.experiment}"))
        return out


def settings_mod_object(settings: VertexSettings, sha256: str) -> str:
    from .gcs import dataset_object

    return dataset_object(settings, sha256)
