"""OpenAI and Azure OpenAI fine-tuning backends, through the official `openai` SDK.

How a job goes: `check` refuses what OpenAI cannot run (and the model's lifecycle dates decide
whether new jobs are still accepted); `submit` converts the dataset to OpenAI chat (or DPO) JSONL,
uploads it once per content hash (`ctx.uploads`), waits until it is processed, and creates the job
with the SDK's retries OFF — the SDK retries POSTs without an idempotency key, so a lost response
would otherwise leave two billed jobs. Every create carries unitune's job id and idempotency key
in `metadata`; before any retry (and in `find`) the job is looked up with
`jobs.list(metadata=...)`, and it is created only when it is really absent.

`get` / `cancel` / `pause` / `resume` return normalized Snapshots (every documented status, the
Azure-only ones, and UNKNOWN with the raw string for anything else); `metrics` merges metrics
events (while running) with the result-file CSV (at the end); `events` returns the job's log.

The Azure backend (`AzureOpenAIBackend`) is the same with an `AzureOpenAI` client (key or
Microsoft Entra token), `trainingType` sent for supervised jobs, and `deploy` / `undeploy` of the
tuned model through the Azure Resource Manager REST API (httpx), printing the hourly hosting cost
from the price catalog before it creates anything.
"""
from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import os
import re
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from unitune.backends import (YES, Capabilities, Plan, PlanRow, SubmitContext, Upload, import_sdk,
                              no)
from unitune.data.report import Problem
from unitune.errors import (AuthError, BackendError, BackendUnavailable, DataError,
                            InvalidRequest, MissingDependency, QuotaExceeded, SpecError,
                            UnituneError, Unsupported, from_http_status)
from unitune.job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                         Snapshot, map_status, merge_metrics)
from unitune.spec import JobSpec

# Every status string either API is known to send. Azure-only: pending, notRunning, canceling
# (NOT terminal: the job may still finish), canceled. Anything else → UNKNOWN with the raw kept.
STATUS_MAP: dict[str, JobStatus] = {
    "validating_files": JobStatus.VALIDATING,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "paused": JobStatus.PAUSED,  # after jobs.pause (not in the published enum; the SDK accepts it)
    "pending": JobStatus.QUEUED,  # Azure
    "notRunning": JobStatus.QUEUED,  # Azure
    "canceling": JobStatus.CANCELLING,  # Azure
    "canceled": JobStatus.CANCELLED,  # Azure
}

META_JOB = "unitune_job_id"
META_KEY = "unitune_key"
META_SPEC = "unitune_spec_hash"
UPLOAD_DEST = "openai files (purpose=fine-tune)"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
DEFAULT_ARM_API_VERSION = "2024-10-01"
REFUSED_ADAPTERS = ("qlora", "prefix", "p_tuning", "prompt_tuning", "ia3")
NOT_APPLIED_ADAPTERS = ("dora", "rslora", "full")
# spec hyperparameters OpenAI has no parameter for (value → why)
NOT_APPLIED_HP = {
    "warmup_ratio": "OpenAI has no warm-up setting",
    "weight_decay": "OpenAI has no weight-decay setting",
    "gradient_accumulation_steps": "OpenAI chooses the accumulation itself; set batch_size instead",
    "max_steps": "OpenAI trains whole epochs; set epochs instead",
    "max_seq_length": "OpenAI truncates each example at the model's own limit (65,536 tokens for "
                      "gpt-4o/4.1); the length cannot be set",
}
SECRET_PATTERNS = (re.compile(r"sk-[A-Za-z0-9_\-*]{6,}"), re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-~+/=]{8,}"))


def _ts(value: Any) -> datetime | None:
    if value in (None, 0):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _plain(obj: Any) -> Any:
    """An SDK object as plain JSON data."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_unset=False)
    return obj


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secret values and key-looking strings from a message."""
    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(0)[:3] + "***" if m.group(0).startswith("sk-")
                           else "Bearer ***", text)
    return text


# -- result file / metrics parsing --------------------------------------------------------------
CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "step": ("step",),
    "train_loss": ("train_loss",),
    "train_token_accuracy": ("train_mean_token_accuracy", "train_accuracy", "train_token_accuracy"),
    "valid_loss": ("valid_loss", "validation_loss", "full_valid_loss", "full_validation_loss"),
    "valid_token_accuracy": ("valid_mean_token_accuracy", "validation_mean_token_accuracy",
                             "valid_accuracy", "validation_accuracy", "full_valid_mean_token_accuracy",
                             "full_validation_mean_token_accuracy"),
    "epoch": ("epoch",),
    "learning_rate": ("learning_rate", "lr"),
    "tokens_seen": ("tokens_seen", "train_tokens"),
}


def _num(text: Any) -> float | None:
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if not s or s.lower() in ("nan", "none", "null"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def decode_result_file(content: bytes | str) -> str:
    """The CSV text of a result file; base64-encoded content (seen from some sources) is detected
    and decoded."""
    raw = content.encode() if isinstance(content, str) else bytes(content)
    text = raw.decode("utf-8-sig", "replace").strip()
    first = text.splitlines()[0] if text else ""
    if "step" in first.lower() and "," in first:
        return text
    compact = re.sub(rb"\s+", b"", raw)
    if compact and re.fullmatch(rb"[A-Za-z0-9+/]+=*", compact):
        try:
            decoded = base64.b64decode(compact, validate=True).decode("utf-8-sig").strip()
        except (binascii.Error, UnicodeDecodeError):
            return text
        if "step" in decoded.splitlines()[0].lower() if decoded else False:
            return decoded
    return text


def parse_result_csv(content: bytes | str) -> list[Metrics]:
    """Metrics rows from an OpenAI / Azure result CSV (column aliases, blank validation cells)."""
    text = decode_result_file(content)
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
    pick: dict[str, list[str]] = {k: [columns[a] for a in aliases if a in columns]
                                  for k, aliases in CSV_ALIASES.items()}
    if not pick["step"]:
        return []
    rows = []
    for rec in reader:
        step = _num(rec.get(pick["step"][0]))
        if step is None:
            continue
        values: dict[str, Any] = {"step": int(step)}
        for key, cols in pick.items():
            if key == "step":
                continue
            for col in cols:  # first non-blank alias wins (batch validation before full validation)
                v = _num(rec.get(col))
                if v is not None:
                    values[key] = int(v) if key == "tokens_seen" else v
                    break
        rows.append(Metrics(**values))
    return merge_metrics(rows)


def metrics_from_event_data(data: dict[str, Any], *, epochs: int | None = None) -> Metrics | None:
    """One Metrics row from a `metrics` event's `data` (or a checkpoint's `metrics`)."""
    step = _num(data.get("step"))
    if step is None:
        return None
    total = _num(data.get("total_steps"))

    def first(*keys: str) -> float | None:
        for k in keys:
            v = _num(data.get(k))
            if v is not None:
                return v
        return None

    epoch = None
    if total and epochs:
        epoch = round(step / (total / epochs), 4)
    return Metrics(step=int(step), epoch=epoch, train_loss=first("train_loss"),
                   valid_loss=first("valid_loss", "full_valid_loss"),
                   train_token_accuracy=first("train_mean_token_accuracy", "train_accuracy"),
                   valid_token_accuracy=first("valid_mean_token_accuracy",
                                              "full_valid_mean_token_accuracy"))


def _slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return s[:limit] or "unitune"


def _parse_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise SpecError(f"option `today` must be an ISO date (YYYY-MM-DD), got {value!r}",
                        field="backend_options.today", hint="e.g. today: 2027-01-07") from exc


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


class OpenAIBackend:
    """OpenAI fine-tuning (`openai.OpenAI`). Options (`backend_options.openai` or
    `UNITUNE_OPENAI_<OPTION>`): base_url, organization, project, api_key_env, timeout,
    max_retries, create_attempts, poll_interval, wandb{project,entity,name,tags}, integrations,
    ignore_lifecycle, today (evaluate lifecycle dates as of this ISO date)."""

    name = "openai"
    display = "OpenAI"
    key_env = "OPENAI_API_KEY"

    def __init__(self, *, client: Any = None, options: dict[str, Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None) -> None:
        self._injected = client
        self._options = dict(options or {})
        self._sleep = sleep
        self._log = log or (lambda msg: print(msg, file=sys.stderr))
        self._clients: dict[tuple, Any] = {}
        self._last_conn: dict[str, Any] | None = None

    # -- options and clients --------------------------------------------------------------------
    def _opts(self, spec: JobSpec | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = dict(self._options)
        if spec is not None:
            opts.update(spec.options(self.name))
        else:
            prefix = f"UNITUNE_{self.name.upper()}_"
            for key, value in os.environ.items():
                if key.startswith(prefix) and len(key) > len(prefix):
                    opts[key[len(prefix):].lower()] = value
        opts.update(extra or {})
        return opts

    def _conn(self, opts: dict[str, Any]) -> dict[str, Any]:
        """Non-secret connection settings; stored in the RemoteRef so `get` reaches the same place."""
        conn = {"base_url": opts.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None,
                "organization": opts.get("organization") or os.environ.get("OPENAI_ORG_ID") or None,
                "project": opts.get("project") or os.environ.get("OPENAI_PROJECT_ID") or None}
        if opts.get("api_key_env"):
            conn["api_key_env"] = opts["api_key_env"]
        return {k: v for k, v in conn.items() if v}

    def _secrets(self, conn: dict[str, Any] | None = None) -> list[str]:
        names = [self.key_env, "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN",
                 f"UNITUNE_{self.name.upper()}_API_KEY"]
        if conn and conn.get("api_key_env"):
            names.append(conn["api_key_env"])
        vals = [os.environ.get(n) for n in names]
        vals.append(self._options.get("api_key"))
        return [v for v in vals if v]

    def _client_kwargs(self, conn: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
        key = (os.environ.get(conn["api_key_env"]) if conn.get("api_key_env") else None) \
            or opts.get("api_key") or os.environ.get(self.key_env)
        if not key:
            raise AuthError(f"no OpenAI API key: set {conn.get('api_key_env') or self.key_env}",
                            backend=self.name,
                            hint="export OPENAI_API_KEY=… (or set backend_options.openai.api_key_env "
                                 "to the name of the variable holding it)")
        kw: dict[str, Any] = {"api_key": key}
        for src, dst in (("base_url", "base_url"), ("organization", "organization"),
                         ("project", "project")):
            if conn.get(src):
                kw[dst] = conn[src]
        return kw

    def _client(self, conn: dict[str, Any], opts: dict[str, Any] | None = None) -> Any:
        if self._injected is not None:
            return self._injected
        opts = opts if opts is not None else self._opts()
        kw = self._client_kwargs(conn, opts)
        cred = kw.get("api_key") or kw.get("azure_ad_token") or id(kw.get("azure_ad_token_provider"))
        sig = (tuple(sorted((k, str(v)) for k, v in conn.items())), str(opts.get("timeout")),
               str(opts.get("max_retries")), hashlib.sha256(str(cred).encode()).hexdigest()[:12])
        if sig not in self._clients:
            import_sdk("openai", "openai")
            if opts.get("timeout") is not None:
                kw["timeout"] = float(opts["timeout"])
            kw["max_retries"] = int(opts.get("max_retries", 3))
            try:
                self._clients[sig] = self._make_client(kw)
            except Exception as exc:  # the SDK's own "missing credentials" errors
                raise self._map(exc, "create the client", conn) from exc
        return self._clients[sig]

    def _make_client(self, kw: dict[str, Any]) -> Any:
        import openai

        return openai.OpenAI(**kw)

    def _ref_client(self, ref: RemoteRef) -> Any:
        conn = dict(ref.extra.get("conn") or {})
        return self._client(conn, self._opts()), conn

    def _ref(self, job_id: str, conn: dict[str, Any]) -> RemoteRef:
        return RemoteRef(backend=self.name, remote_id=job_id, extra={"conn": conn})

    # -- error mapping --------------------------------------------------------------------------
    def _map(self, exc: BaseException, action: str, conn: dict[str, Any] | None = None) -> UnituneError:
        """A vendor exception as a unitune error (the caller chains the original with `from`)."""
        if isinstance(exc, UnituneError):
            return exc
        secrets = self._secrets(conn)
        openai = sys.modules.get("openai")
        # scrub the original too: it stays chained and may be logged with a traceback
        if getattr(exc, "message", None) and isinstance(exc.message, str):  # type: ignore[attr-defined]
            try:
                exc.message = scrub(exc.message, secrets)  # type: ignore[attr-defined]
                exc.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
            except Exception:
                pass
        who = self.display
        if openai is not None and isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            err = body.get("error") if isinstance(body.get("error"), dict) else body
            msg = (err or {}).get("message") or str(exc)
            code = (err or {}).get("code")
            code = str(code) if code is not None else None
            retry_after = None
            try:
                ra = exc.response.headers.get("retry-after")
                retry_after = float(ra) if ra is not None else None
            except (TypeError, ValueError, AttributeError):
                pass
            text = scrub(f"{who}: {action} failed (HTTP {exc.status_code}): {msg}", secrets)
            if exc.status_code == 429 and code in ("insufficient_quota", "quota_exceeded"):
                return QuotaExceeded(text, backend=self.name, vendor_code=code, status_code=429,
                                     hint="check your plan and billing; waiting will not help")
            hint = {401: f"check {self.key_env if self.name == 'openai' else 'the credentials'}",
                    403: "the key lacks access to fine-tuning (project/organization permissions)",
                    404: "check the id, and that the key belongs to the project that owns it",
                    429: "rate limited: retry later"}.get(exc.status_code)
            if exc.status_code >= 500:
                hint = "the service had a problem; retrying is safe (submission looks the job up first)"
            return from_http_status(exc.status_code, text, backend=self.name, vendor_code=code,
                                    retry_after=retry_after, hint=hint)
        if openai is not None and isinstance(exc, openai.APITimeoutError):
            return BackendUnavailable(f"{who}: {action} timed out", backend=self.name,
                                      hint="retry; raise backend_options timeout for slow links")
        if openai is not None and isinstance(exc, openai.APIConnectionError):
            where = conn.get("base_url") or conn.get("endpoint") if conn else None
            return BackendUnavailable(scrub(f"{who}: {action} failed: could not reach "
                                            f"{where or 'the API'} ({exc.message})", secrets),
                                      backend=self.name, hint="check the network / base URL, then retry")
        if openai is not None and isinstance(exc, openai.OpenAIError):
            return AuthError(scrub(f"{who}: {action} failed: {exc}", secrets), backend=self.name,
                             hint=f"set {self.key_env} (and the endpoint for Azure)")
        return BackendError(scrub(f"{who}: {action} failed: {type(exc).__name__}: {exc}", secrets),
                            backend=self.name)

    def _call(self, action: str, conn: dict[str, Any], fn: Callable[[], Any]) -> Any:
        openai = import_sdk("openai", "openai")
        try:
            return fn()
        except (openai.OpenAIError,) as exc:
            raise self._map(exc, action, conn) from exc

    # -- capabilities / check / plan --------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        f = {
            "method:sft": YES,
            "method:dpo": YES,  # per model: the catalog's `methods` decides
            "validation_file": YES,
            "pause": YES, "resume": YES, "checkpoints": YES,
            "learning_rate": no(f"{self.display} takes only learning_rate_multiplier (a multiple of "
                                "its own, unpublished base rate); an absolute rate cannot be set"),
            "learning_rate_multiplier": YES, "batch_size": YES, "seed": YES,
            "warmup_ratio": no(NOT_APPLIED_HP["warmup_ratio"].replace("OpenAI", self.display)),
            "weight_decay": no(NOT_APPLIED_HP["weight_decay"].replace("OpenAI", self.display)),
            "max_seq_length": no(NOT_APPLIED_HP["max_seq_length"].replace("OpenAI", self.display)),
            "tools": YES, "images": YES, "weights": YES,
            "deploy": no("OpenAI serves tuned models per token; there is nothing to deploy"),
        }
        why = (f"{self.display} chooses its own training method; adapter settings cannot be set")
        for t in ("lora", "dora", "rslora", "full"):
            f[f"adapter:{t}"] = no(why + " (not applied)")
        for t in REFUSED_ADAPTERS:
            f[f"adapter:{t}"] = no(f"{self.display} cannot train a {t} adapter; use the local "
                                   "backend (`--backend local`) for it")
        return Capabilities(self.name, f)

    def _model_info(self, model: str):
        try:
            from unitune.catalog import find_model
        except ImportError:  # pragma: no cover - the catalog is part of the core
            return None
        try:
            return find_model(self.name, model)
        except Exception:  # a broken catalog file must not stop a job; validate reports it
            return None

    def lifecycle_problems(self, model: str, opts: dict[str, Any]) -> list[Problem]:
        """Warning before the platform's cut-off, refusal after it (unless ignore_lifecycle);
        the rule and its wording are the shared one in `unitune.cost.lifecycle`."""
        from unitune.cost.lifecycle import lifecycle_status

        info = self._model_info(model)
        if info is None or getattr(info, "lifecycle", None) is None:
            return []
        today = _parse_date(opts.get("today")) or date.today()
        level, message = lifecycle_status(info, today)
        if level == "ok":
            return []
        target = f"{self.name}:{model}"
        override = f"backend_options.{self.name}.ignore_lifecycle: true"
        life = info.lifecycle
        src = f" [source: {life.source}, as of {life.as_of}]"
        if level == "error":
            if _truthy(opts.get("ignore_lifecycle")):
                return [Problem("lifecycle_closed", message + src + " — submitting anyway "
                                f"({override})", severity="warning", path=f"models.{self.name}",
                                target=target)]
            return [Problem("unsupported_lifecycle", message + src, severity="error",
                            path=f"models.{self.name}", target=target,
                            hint=f"run `unitune compare` and move the job with one flag "
                                 f"(`--backend vertex|bedrock|local`); to try anyway: {override}")]
        return [Problem("lifecycle_closing", message + src, severity="warning",
                        path=f"models.{self.name}", target=target)]

    def check(self, spec: JobSpec) -> list[Problem]:
        """Everything this backend cannot run, before anything is uploaded."""
        opts = self._opts(spec)
        model = spec.model_for(self.name)
        target = f"{self.name}:{model}"
        out: list[Problem] = []

        def add(code, message, severity="error", path=None, hint=None):
            out.append(Problem(code, message, severity=severity, path=path, hint=hint, target=target))

        info = self._model_info(model)
        if info is None and not model.startswith("ft:"):
            add("model_not_in_catalog", f"{model} is not in unitune's {self.name} catalog; "
                f"{self.display} decides whether it can be fine-tuned (no cost estimate)",
                severity="warning", path=f"models.{self.name}",
                hint=f"`unitune models --backend {self.name}` lists the known models")
        if spec.method == "dpo" and info is not None and "dpo" not in info.methods:
            add("unsupported_method", f"{model} cannot be trained with DPO on {self.display} "
                f"(supported: {', '.join(info.methods)})", path="method",
                hint="pick a model with DPO (e.g. gpt-4.1-mini-2025-04-14), method: sft, or "
                     "`unitune compare`")
        a = spec.adapter
        if a.type in REFUSED_ADAPTERS:
            add("unsupported_adapter", f"{self.display} cannot train a {a.type} adapter: it runs "
                "its own training method and exposes no adapter settings", path="adapter.type",
                hint="use `--backend local` for QLoRA / prompt-style adapters, or drop `adapter:` "
                     "to let OpenAI choose")
        elif a.type in NOT_APPLIED_ADAPTERS:
            add("not_applied", f"adapter.type {a.type} is not applied: {self.display} chooses its "
                "own training method", severity="warning", path="adapter.type")
        set_fields = a.model_fields_set - {"type"}
        if set_fields and a.type not in REFUSED_ADAPTERS:
            add("not_applied", f"adapter settings {', '.join(sorted(set_fields))} are not applied: "
                f"{self.display} exposes no adapter settings", severity="warning", path="adapter")
        hp = spec.hyperparameters
        if hp.learning_rate is not None:
            add("not_applied", f"hyperparameters.learning_rate={hp.learning_rate} is not applied: "
                f"{self.display} takes only a multiplier of its own base rate", severity="warning",
                path="hyperparameters.learning_rate",
                hint="set hyperparameters.learning_rate_multiplier (e.g. 1.0–2.0) instead")
        for key, why in NOT_APPLIED_HP.items():
            why = why.replace("OpenAI", self.display)
            if getattr(hp, key) is not None:
                add("not_applied", f"hyperparameters.{key} is not applied: {why}",
                    severity="warning", path=f"hyperparameters.{key}")
        if hp.beta is not None and spec.method != "dpo":
            add("not_applied", "hyperparameters.beta is only used by DPO; not applied to sft",
                severity="warning", path="hyperparameters.beta")
        ranges = (info.hyperparameters if info is not None else {}) or {}
        for key, default in (("epochs", (1, 50)), ("batch_size", (1, 256))):
            v = getattr(hp, key)
            r = ranges.get(key)
            lo, hi = (r.min, r.max) if r is not None else default
            if isinstance(v, int) and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                add("out_of_range", f"hyperparameters.{key}={v} is outside {self.display}'s range "
                    f"[{int(lo) if lo is not None else ''}, {int(hi) if hi is not None else ''}]",
                    path=f"hyperparameters.{key}", hint=f"use a value in range or 'auto'")
        if hp.seed is not None and not 0 <= hp.seed <= 2147483647:
            add("out_of_range", f"hyperparameters.seed={hp.seed} must be in [0, 2147483647]",
                path="hyperparameters.seed")
        meta = spec.metadata
        if len(meta) > 13:
            add("out_of_range", f"metadata has {len(meta)} keys; {self.display} allows 16 and "
                "unitune uses 3", path="metadata", hint="keep at most 13 metadata keys")
        for k, v in meta.items():
            if len(k) > 64 or len(str(v)) > 512:
                add("out_of_range", f"metadata key {k[:40]!r}: keys ≤ 64 and values ≤ 512 characters",
                    path=f"metadata.{k[:40]}")
        train = spec.data_path("train")
        if train is not None and not train.exists():
            add("file_not_found", f"training file {train} does not exist", path="data.train",
                hint="fix data.train (paths are relative to the spec file)")
        elif train is not None:
            out.extend(self._validate(train, model))
        val = spec.data_path("validation")
        if val is not None and not val.exists():
            add("file_not_found", f"validation file {val} does not exist", path="data.validation")
        elif val is not None:
            out.extend(p for p in self._validate(val, model) if p.code != "too_few_examples")
        if opts.get("wandb") is not None and not isinstance(opts.get("wandb"), dict):
            add("bad_option", "backend_options.wandb must be a mapping with at least `project`",
                path=f"backend_options.{self.name}.wandb")
        out.extend(self.lifecycle_problems(model, opts))
        out.extend(self._extra_checks(spec, opts, model))
        return out

    def _validate(self, path: Path, model: str) -> list[Problem]:
        """The dataset checks for this target (catalog rules and limits: at least 10 examples,
        roles, tool calls, weights…), so bad data is refused before anything is uploaded."""
        from unitune.data.validate import target_problems

        return target_problems(path, f"{self.name}:{model}")

    def _extra_checks(self, spec: JobSpec, opts: dict[str, Any], model: str) -> list[Problem]:
        return []

    def _method_type(self, spec: JobSpec) -> str:
        return "dpo" if spec.method == "dpo" else "supervised"

    def _hyperparameters(self, spec: JobSpec) -> dict[str, Any]:
        hp = spec.hyperparameters
        out: dict[str, Any] = {}
        if hp.epochs != "auto":
            out["n_epochs"] = hp.epochs
        if hp.batch_size != "auto":
            out["batch_size"] = hp.batch_size
        if hp.learning_rate_multiplier is not None:
            out["learning_rate_multiplier"] = hp.learning_rate_multiplier
        if spec.method == "dpo" and hp.beta is not None:
            out["beta"] = hp.beta
        return out

    def _suffix(self, spec: JobSpec) -> str:
        return (spec.suffix or _slug(spec.name, 40))[:64]

    def _integrations(self, opts: dict[str, Any]) -> list[dict[str, Any]] | None:
        if opts.get("integrations"):
            return list(opts["integrations"])
        wandb = opts.get("wandb")
        if isinstance(wandb, dict) and wandb.get("project"):
            cfg = {k: wandb[k] for k in ("project", "entity", "name", "tags") if wandb.get(k)}
            return [{"type": "wandb", "wandb": cfg}]
        return None

    def create_params(self, spec: JobSpec, *, job_id: str, key: str, training_file: str,
                      validation_file: str | None, opts: dict[str, Any] | None = None) -> dict[str, Any]:
        """The exact keyword arguments of `fine_tuning.jobs.create`."""
        opts = opts if opts is not None else self._opts(spec)
        mtype = self._method_type(spec)
        params: dict[str, Any] = {
            "model": spec.model_for(self.name),
            "training_file": training_file,
            "method": {"type": mtype, mtype: {"hyperparameters": self._hyperparameters(spec)}},
            "suffix": self._suffix(spec),
            "metadata": {**{k: str(v) for k, v in spec.metadata.items()}, META_JOB: job_id,
                         META_KEY: key, META_SPEC: spec.spec_hash()},
        }
        if validation_file:
            params["validation_file"] = validation_file
        if spec.hyperparameters.seed is not None:
            params["seed"] = spec.hyperparameters.seed
        integrations = self._integrations(opts)
        if integrations:
            params["integrations"] = integrations
        return params

    def plan(self, spec: JobSpec) -> Plan:
        opts = self._opts(spec)
        model = spec.model_for(self.name)
        mtype = self._method_type(spec)
        hp_path = f"method.{mtype}.hyperparameters"
        hp = spec.hyperparameters
        rows = [PlanRow("models." + self.name, model, "model", model),
                PlanRow("method", spec.method, "method.type", mtype)]

        def auto_row(field, value, vendor_key):
            rows.append(PlanRow(field, value, f"{hp_path}.{vendor_key}", value,
                                note=f"{self.display} chooses" if value == "auto" else None))

        auto_row("hyperparameters.epochs", hp.epochs, "n_epochs")
        auto_row("hyperparameters.batch_size", hp.batch_size, "batch_size")
        if hp.learning_rate_multiplier is not None:
            rows.append(PlanRow("hyperparameters.learning_rate_multiplier", hp.learning_rate_multiplier,
                                f"{hp_path}.learning_rate_multiplier", hp.learning_rate_multiplier))
        else:
            rows.append(PlanRow("hyperparameters.learning_rate_multiplier", None,
                                f"{hp_path}.learning_rate_multiplier", "auto",
                                note=f"{self.display} chooses"))
        if hp.learning_rate is not None:
            rows.append(PlanRow("hyperparameters.learning_rate", hp.learning_rate, None, None,
                                note=f"not applied: {self.display} takes only learning_rate_multiplier "
                                     "(a multiple of its own, unpublished base rate); set that instead",
                                applied=False))
        if spec.method == "dpo":
            rows.append(PlanRow("hyperparameters.beta", hp.beta, f"{hp_path}.beta",
                                hp.beta if hp.beta is not None else "auto"))
        elif hp.beta is not None:
            rows.append(PlanRow("hyperparameters.beta", hp.beta, None, None,
                                note="not applied: beta is a DPO setting", applied=False))
        for key, why in NOT_APPLIED_HP.items():
            v = getattr(hp, key)
            if v is not None:
                rows.append(PlanRow(f"hyperparameters.{key}", v, None, None,
                                    note=f"not applied: {why.replace('OpenAI', self.display)}",
                                    applied=False))
        rows.append(PlanRow("hyperparameters.seed", hp.seed, "seed", hp.seed,
                            note=None if hp.seed is not None else f"{self.display} picks one"))
        a = spec.adapter
        if a.type in REFUSED_ADAPTERS:
            rows.append(PlanRow("adapter.type", a.type, None, None, applied=False,
                                note=f"refused: {self.display} cannot train a {a.type} adapter"))
        else:
            rows.append(PlanRow("adapter", a.type, None, None, applied=False,
                                note=f"not applied: {self.display} chooses its own training method"))
        rows.append(PlanRow("suffix", spec.suffix, "suffix", self._suffix(spec),
                            note=None if spec.suffix else "derived from the spec name"))
        rows.append(PlanRow("metadata", dict(spec.metadata), "metadata",
                            {**spec.metadata, META_JOB: "<unitune job id>", META_KEY: "<idempotency key>",
                             META_SPEC: spec.spec_hash()},
                            note="unitune's ids make creation idempotent (looked up before any retry)"))
        fmt = "openai-dpo" if spec.method == "dpo" else "openai"
        rows.append(PlanRow("data.train", spec.data.train, "training_file", "<uploaded file id>",
                            note=f"converted to {fmt} JSONL, uploaded once per content hash"))
        val = spec.data.validation
        if val is not None:
            rows.append(PlanRow("data.validation", val, "validation_file", "<uploaded file id>",
                                note=(f"{val:.0%} split off the training file" if isinstance(val, float)
                                      else None)))
        integrations = self._integrations(opts)
        if integrations:
            rows.append(PlanRow(f"backend_options.{self.name}.wandb", opts.get("wandb"),
                                "integrations", integrations))
        rows.extend(self._extra_rows(spec, opts))
        uploads = []
        for which in ("train", "validation"):
            path = spec.data_path(which)
            if path is None or not path.exists():
                continue
            uploads.append(Upload(local=str(path), destination=self._upload_dest(), format=fmt,
                                  examples=_count_lines(path), bytes=path.stat().st_size))
        problems = self.check(spec)
        notes = []  # lifecycle dates are in `problems` (warning or refusal), not repeated here
        notes.append("created with the SDK's retries off; before any retry the job is looked up by "
                     "its metadata, so a lost response never leaves a duplicate job")
        notes.extend(self._extra_notes(spec, opts, model))
        return Plan(backend=self.name, model=model, rows=rows, uploads=uploads, problems=problems,
                    notes=notes)

    def _upload_dest(self) -> str:
        return UPLOAD_DEST

    def _extra_rows(self, spec: JobSpec, opts: dict[str, Any]) -> list[PlanRow]:
        return []

    def _extra_notes(self, spec: JobSpec, opts: dict[str, Any], model: str) -> list[str]:
        return []

    def _extra_body(self, spec: JobSpec, opts: dict[str, Any]) -> dict[str, Any] | None:
        return None

    # -- submit ------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, ctx: SubmitContext) -> RemoteRef:
        opts = self._opts(spec)
        conn = self._conn(opts)
        self._last_conn = conn
        problems = self.check(spec)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            if all(p.code.startswith("unsupported") for p in errors):
                raise Unsupported(f"{self.display} cannot run this spec: "
                                  + "; ".join(p.message for p in errors),
                                  feature=errors[0].path, backend=self.name,
                                  hint=errors[0].hint or "run `unitune plan` to see every problem")
            from unitune.data.report import Report

            lines = [f"  {p.file or ''}{':' + str(p.line) if p.line else ''} {p.message}".rstrip()
                     for p in errors[:10]]
            raise DataError(f"{self.display} refused the job before upload ({len(errors)} "
                            "problem(s)):\n" + "\n".join(lines),
                            report=Report(file=str(spec.data_path("train")), problems=problems),
                            hint="`unitune plan` / `unitune validate` show every problem")
        # warnings (lifecycle dates, settings not applied) are printed by the Client from check()
        client = self._client(conn, opts)
        existing = self._lookup(client, conn, ctx.idempotency_key)
        if existing is not None:
            ctx.log(f"{self.display} already has this job ({_field(existing, 'id')}); not creating another")
            return self._ref(_field(existing, "id"), conn)
        train_id = self._upload(client, conn, opts, spec, "train", ctx)
        val_id = self._upload(client, conn, opts, spec, "validation", ctx)
        params = self.create_params(spec, job_id=ctx.job_id, key=ctx.idempotency_key,
                                    training_file=train_id, validation_file=val_id, opts=opts)
        job = self._create_once(client, conn, opts, params, self._extra_body(spec, opts), ctx)
        return self._ref(_field(job, "id"), conn)

    def _create_once(self, client: Any, conn: dict[str, Any], opts: dict[str, Any],
                     params: dict[str, Any], extra_body: dict[str, Any] | None,
                     ctx: SubmitContext) -> Any:
        """Create with SDK retries off; before every retry, look the job up by its key."""
        openai = import_sdk("openai", "openai")
        once = client.with_options(max_retries=0)
        attempts = max(1, int(opts.get("create_attempts", 6)))
        base = float(opts.get("retry_base", 0.5))
        key = params["metadata"][META_KEY]
        need_lookup = False
        last: BaseException | None = None
        for attempt in range(attempts):
            if need_lookup:
                try:
                    found = self._lookup(client, conn, key)
                except BackendError as exc:  # cannot tell whether it exists: never create blindly
                    last = exc
                    self._sleep(min(30.0, base * 2 ** attempt))
                    continue
                if found is not None:
                    ctx.log(f"the job was created although the response was lost: {_field(found, 'id')}")
                    return found
                need_lookup = False
            try:
                kw = dict(params)
                if extra_body:
                    kw["extra_body"] = extra_body
                return once.fine_tuning.jobs.create(**kw)
            except openai.APIStatusError as exc:
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise self._map(exc, "create the fine-tuning job", conn) from exc
                last = exc
                mapped = self._map(exc, "create the fine-tuning job", conn)
                if isinstance(mapped, QuotaExceeded):  # waiting will not help
                    raise mapped from exc
                wait = mapped.retry_after if getattr(mapped, "retry_after", None) else base * 2 ** attempt
            except openai.APIConnectionError as exc:  # includes timeouts: the job may exist now
                last = exc
                wait = base * 2 ** attempt
            need_lookup = True
            ctx.log(f"create did not answer cleanly ({type(last).__name__}); looking the job up "
                    f"before retrying in {wait:.2f}s")
            self._sleep(min(30.0, wait))
        if need_lookup:  # the last create may have gone through: one more look before giving up
            try:
                found = self._lookup(client, conn, key)
            except BackendError:
                found = None
            if found is not None:
                return found
        assert last is not None
        if isinstance(last, UnituneError):
            raise last
        raise self._map(last, "create the fine-tuning job", conn) from last

    def _lookup(self, client: Any, conn: dict[str, Any], key: str) -> Any | None:
        """The job carrying `key` in its metadata (the oldest if there were ever several)."""
        found = []
        after = None
        for _ in range(50):  # ≤ 5,000 jobs even when a server ignores the metadata filter
            kw: dict[str, Any] = {"limit": 100, "metadata": {META_KEY: key}}
            if after:
                kw["after"] = after
            page = self._call("look the job up", conn, lambda: client.fine_tuning.jobs.list(**kw))
            data = list(page.data)
            found.extend(j for j in data if (_field(j, "metadata") or {}).get(META_KEY) == key)
            if not data or not page.has_more:
                break
            after = _field(data[-1], "id")
        if not found:
            return None
        found.sort(key=lambda j: (_field(j, "created_at") or 0, _field(j, "id")))
        if len(found) > 1:
            self._log(f"warning: {len(found)} {self.display} jobs carry key {key}: "
                      + ", ".join(_field(j, "id") for j in found) + f"; using {_field(found[0], 'id')}")
        return found[0]

    def find(self, idempotency_key: str) -> RemoteRef | None:
        conn = self._last_conn or self._conn(self._opts())
        client = self._client(conn)
        job = self._lookup(client, conn, idempotency_key)
        return None if job is None else self._ref(_field(job, "id"), conn)

    def _upload(self, client: Any, conn: dict[str, Any], opts: dict[str, Any], spec: JobSpec,
                which: str, ctx: SubmitContext) -> str | None:
        src = self._source_file(spec, which, ctx)
        if src is None:
            return None
        fmt = "openai-dpo" if spec.method == "dpo" else "openai"
        dst = Path(ctx.work_dir) / f"{which}.{fmt}.jsonl"
        try:
            from unitune.data.prepared import convert_cached
        except ImportError as exc:  # pragma: no cover - part of the core
            raise MissingDependency("unitune.data.convert is missing", hint="reinstall unitune") from exc
        # converted once per content: a retried submit or another job on this data reuses it
        result = convert_cached(str(src), fmt, str(dst), fmt=spec.data.format or "auto")
        examples = getattr(result, "examples", None)
        written = getattr(result, "written", examples)
        if not written:
            raise DataError(f"{src}: no example could be converted to {fmt}",
                            hint=f"`unitune validate {src} --target {self.name}:{spec.model_for(self.name)}`")
        dropped = list(getattr(result, "errors", []) or [])
        if dropped:
            ctx.log(f"{which}: {len(dropped)} line(s) could not be converted and are left out, first: "
                    f"line {getattr(dropped[0], 'line', '?')}: {getattr(dropped[0], 'message', dropped[0])}")
        warnings = list(getattr(result, "warnings", []) or [])
        if warnings:
            ctx.log(f"{which}: {len(warnings)} conversion warning(s), first: "
                    f"{getattr(warnings[0], 'message', warnings[0])}")
        digest = hashlib.sha256(dst.read_bytes()).hexdigest()
        cache_key = f"{self._fingerprint(conn)}:{fmt}:{digest}"
        if ctx.uploads is not None:
            cached = ctx.uploads.get(self.name, cache_key)
            if cached and self._file_usable(client, conn, cached):
                ctx.log(f"{which}: reusing uploaded file {cached} (same content)")
                return cached
        ctx.log(f"{which}: uploading {written} examples ({dst.stat().st_size} bytes)")
        with open(dst, "rb") as fh:
            f = self._call(f"upload {which} file", conn,
                           lambda: client.files.create(file=(f"{_slug(spec.name)}-{which}.jsonl", fh),
                                                       purpose="fine-tune"))
        fid = _field(f, "id")
        poll = float(opts.get("poll_interval", 2.0))
        f = self._call(f"wait for {which} file processing", conn,
                       lambda: client.files.wait_for_processing(fid, poll_interval=poll,
                                                                max_wait_seconds=float(opts.get("upload_wait_s", 1800))))
        if _field(f, "status") == "error":
            raise DataError(f"{self.display} rejected the {which} file {fid}: "
                            f"{_field(f, 'status_details') or 'no details given'}",
                            hint=f"`unitune validate {src} --target {self.name}:{spec.model_for(self.name)}`")
        if ctx.uploads is not None:
            ctx.uploads.put(self.name, cache_key, fid)
        return fid

    def _source_file(self, spec: JobSpec, which: str, ctx: SubmitContext) -> Path | None:
        """The file to convert; a validation *fraction* is split off the training file first."""
        frac = spec.data.validation
        if not isinstance(frac, float):
            return spec.data_path(which)
        split_dir = Path(ctx.work_dir) / "split"
        train_out, val_out = split_dir / "train.jsonl", split_dir / "validation.jsonl"
        if not (train_out.exists() and val_out.exists()):
            from unitune.data.prepared import split_cached

            split_dir.mkdir(parents=True, exist_ok=True)
            split_cached(str(spec.data_path("train")), frac, spec.hyperparameters.seed or 0,
                         str(train_out), str(val_out))
        return train_out if which == "train" else val_out

    def _fingerprint(self, conn: dict[str, Any]) -> str:
        where = "|".join(f"{k}={conn[k]}" for k in sorted(conn) if k != "api_key_env")
        return hashlib.sha256(where.encode()).hexdigest()[:12]

    def _file_usable(self, client: Any, conn: dict[str, Any], fid: str) -> bool:
        try:
            f = self._call("check the cached file", conn, lambda: client.files.retrieve(fid))
        except BackendError:
            return False
        return _field(f, "status") != "error" and _field(f, "purpose") == "fine-tune"

    # -- reading -----------------------------------------------------------------------------------
    def _snapshot(self, job: Any, ref: RemoteRef, client: Any, conn: dict[str, Any]) -> Snapshot:
        raw = _field(job, "status")
        status = map_status(raw, STATUS_MAP)
        err = _field(job, "error")
        error = None
        if err is not None:
            msg, code, param = _field(err, "message"), _field(err, "code"), _field(err, "param")
            if msg or code or param:  # all-null fields = no error
                error = JobError(message=msg or f"failed with code {code}", code=code, param=param)
        if status is JobStatus.FAILED and error is None:
            error = JobError(message=f"{self.display} reported the job failed without a message")
        model = None
        ftm = _field(job, "fine_tuned_model")
        if ftm:
            ckpts: list[str] = []
            if status is JobStatus.SUCCEEDED:
                try:
                    ckpts = [c["model"] for c in self.checkpoints(ref)]
                except BackendError:
                    pass
            model = ModelHandle(backend=self.name, model_id=ftm, base_model=_field(job, "model"),
                                name=ftm, checkpoints=ckpts, invoke=self._invoke_hint(ftm))
        progress = None
        if status is JobStatus.RUNNING:
            progress = self._progress(client, conn, job)
        tokens = _field(job, "trained_tokens")
        plain = _plain(job)
        if isinstance(plain, dict):
            plain = {k: v for k, v in plain.items() if k not in ("api_key",)}
        return Snapshot(ref=ref, status=status, raw_status=raw, created_at=_ts(_field(job, "created_at")),
                        finished_at=_ts(_field(job, "finished_at")), trained_tokens=tokens,
                        billed_tokens=tokens, error=error, model=model, progress=progress,
                        estimated_finish=_ts(_field(job, "estimated_finish")), raw=plain)

    def _invoke_hint(self, model_id: str) -> str:
        return f'OpenAI().chat.completions.create(model="{model_id}", messages=[...])'

    def _epochs(self, job: Any) -> int | None:
        for src in (_field(job, "hyperparameters"),
                    _field(_field(_field(job, "method") or {}, _field(_field(job, "method") or {}, "type") or "supervised") or {}, "hyperparameters")):
            n = _field(src or {}, "n_epochs")
            if isinstance(n, int):
                return n
        return None

    def _progress(self, client: Any, conn: dict[str, Any], job: Any) -> Progress | None:
        try:
            page = self._call("read events", conn,
                              lambda: client.fine_tuning.jobs.list_events(_field(job, "id"), limit=20))
        except BackendError:
            return None
        for ev in page.data:  # newest first
            if _field(ev, "type") == "metrics" and _field(ev, "data"):
                data = _plain(_field(ev, "data"))
                row = metrics_from_event_data(data, epochs=self._epochs(job))
                if row is None:
                    continue
                eta = None
                fin = _field(job, "estimated_finish")
                if fin:
                    eta = max(0.0, float(fin) - time.time())
                total = _num(data.get("total_steps"))
                return Progress(step=row.step, total_steps=int(total) if total else None,
                                epoch=row.epoch, latest_loss=row.train_loss, eta_seconds=eta)
        return None

    def get(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "read the job", "retrieve")

    def cancel(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "cancel the job", "cancel")

    def pause(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "pause the job", "pause")

    def resume(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "resume the job", "resume")

    def _on_job(self, ref: RemoteRef, action: str, method: str) -> Snapshot:
        """Call `client.fine_tuning.jobs.<method>(job id)` and snapshot the job it answers with;
        an API error is mapped as failing to `action`."""
        client, conn = self._ref_client(ref)
        job = self._call(action, conn,
                         lambda: getattr(client.fine_tuning.jobs, method)(ref.remote_id))
        return self._snapshot(job, ref, client, conn)

    def list_remote(self, limit: int = 20) -> list[Snapshot]:
        """The account's most recent jobs (any creator), newest first."""
        conn = self._last_conn or self._conn(self._opts())
        client = self._client(conn)
        page = self._call("list jobs", conn, lambda: client.fine_tuning.jobs.list(limit=limit))
        return [self._snapshot(j, self._ref(_field(j, "id"), conn), client, conn)
                for j in list(page.data)[:limit]]

    def _raw_events(self, client: Any, conn: dict[str, Any], job_id: str) -> list[Any]:
        out: list[Any] = []
        after = None
        for _ in range(1000):
            kw: dict[str, Any] = {"limit": 100}
            if after:
                kw["after"] = after
            page = self._call("read events", conn,
                              lambda: client.fine_tuning.jobs.list_events(job_id, **kw))
            data = list(page.data)
            out.extend(data)
            if not data or not page.has_more:
                break
            after = _field(data[-1], "id")
        out.reverse()  # the API lists newest first; reversed keeps order within one second
        out.sort(key=lambda e: (_field(e, "created_at") or 0))  # stable: oldest first
        return out

    def events(self, ref: RemoteRef) -> list[Event]:
        client, conn = self._ref_client(ref)
        raw = self._raw_events(client, conn, ref.remote_id)
        level = {"warn": "warning"}
        return [Event(time=_ts(_field(e, "created_at")), level=level.get(_field(e, "level"), _field(e, "level") or "info"),
                      message=_field(e, "message") or "", data=_plain(_field(e, "data")) or None)
                for e in raw]

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        client, conn = self._ref_client(ref)
        job = self._call("read the job", conn, lambda: client.fine_tuning.jobs.retrieve(ref.remote_id))
        epochs = self._epochs(job)
        rows: list[Metrics] = []
        for ev in self._raw_events(client, conn, ref.remote_id):
            if _field(ev, "type") == "metrics" and _field(ev, "data"):
                row = metrics_from_event_data(_plain(_field(ev, "data")), epochs=epochs)
                if row is not None:
                    rows.append(row)
        total = max((r.step for r in rows), default=None)
        for fid in (_field(job, "result_files") or [])[:1]:  # Azure may send null
            content = self._call("download the result file", conn,
                                 lambda: client.files.content(fid))
            data = content.read() if hasattr(content, "read") else content
            csv_rows = parse_result_csv(data)
            total = total or max((r.step for r in csv_rows), default=None)
            if epochs and total:
                csv_rows = [r.model_copy(update={"epoch": round(r.step / (total / epochs), 4)})
                            for r in csv_rows]
            rows.extend(csv_rows)
        return merge_metrics(rows)

    def checkpoints(self, ref: RemoteRef) -> list[dict[str, Any]]:
        """Checkpoint models (newest first): model id, step and the metrics at that step."""
        client, conn = self._ref_client(ref)
        page = self._call("list checkpoints", conn,
                          lambda: client.fine_tuning.jobs.checkpoints.list(ref.remote_id, limit=100))
        return [{"model": _field(c, "fine_tuned_model_checkpoint"), "step": _field(c, "step_number"),
                 "metrics": _plain(_field(c, "metrics")) or {}} for c in page.data]


def _count_lines(path: Path) -> int:
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    n = 0
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return n


class AzureOpenAIBackend(OpenAIBackend):
    """Azure OpenAI fine-tuning (`openai.AzureOpenAI`). Options (`backend_options.azure` or
    `UNITUNE_AZURE_<OPTION>`): endpoint, api_version, auth (key|entra), api_key_env,
    training_type, deployment: subscription_id, resource_group, account, sku, capacity,
    deployment_name, arm_endpoint, arm_api_version, arm_token_env. The key comes from
    AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN); `auth: entra` uses azure-identity."""

    name = "azure"
    display = "Azure OpenAI"
    key_env = "AZURE_OPENAI_API_KEY"

    def __init__(self, *, token_provider: Callable[[], str] | None = None,
                 arm_token_provider: Callable[[], str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._token_provider = token_provider
        self._arm_token_provider = arm_token_provider
        self._entra_provider: Callable[[], str] | None = None

    def _conn(self, opts: dict[str, Any]) -> dict[str, Any]:
        endpoint = opts.get("endpoint") or opts.get("azure_endpoint") or os.environ.get("AZURE_OPENAI_ENDPOINT")
        version = (opts.get("api_version") or os.environ.get("AZURE_OPENAI_API_VERSION")
                   or os.environ.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
        conn = {"endpoint": endpoint, "api_version": version, "auth": opts.get("auth") or None,
                "api_key_env": opts.get("api_key_env") or None}
        return {k: v for k, v in conn.items() if v}

    def _client_kwargs(self, conn: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
        if not conn.get("endpoint"):
            raise AuthError("no Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or "
                            "backend_options.azure.endpoint", backend=self.name,
                            hint="e.g. https://<resource>.openai.azure.com")
        kw: dict[str, Any] = {"azure_endpoint": conn["endpoint"], "api_version": conn["api_version"]}
        if self._token_provider is not None:
            kw["azure_ad_token_provider"] = self._token_provider
            return kw
        if conn.get("auth") == "entra":
            try:
                from azure.identity import DefaultAzureCredential, get_bearer_token_provider
            except ImportError as exc:
                raise MissingDependency("auth: entra needs azure-identity",
                                        hint="pip install azure-identity") from exc
            if self._entra_provider is None:  # one credential per backend (it caches tokens)
                self._entra_provider = get_bearer_token_provider(
                    DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default")
            kw["azure_ad_token_provider"] = self._entra_provider
            return kw
        key = (os.environ.get(conn["api_key_env"]) if conn.get("api_key_env") else None) \
            or opts.get("api_key") or os.environ.get("AZURE_OPENAI_API_KEY")
        token = os.environ.get("AZURE_OPENAI_AD_TOKEN")
        if key:
            kw["api_key"] = key
        elif token:
            kw["azure_ad_token"] = token
        else:
            raise AuthError("no Azure OpenAI credentials: set AZURE_OPENAI_API_KEY (or "
                            "AZURE_OPENAI_AD_TOKEN, or backend_options.azure.auth: entra)",
                            backend=self.name, hint="the key is under Keys and Endpoint in the portal")
        return kw

    def _make_client(self, kw: dict[str, Any]) -> Any:
        import openai

        return openai.AzureOpenAI(**kw)

    def _extra_body(self, spec: JobSpec, opts: dict[str, Any]) -> dict[str, Any] | None:
        if self._method_type(spec) == "supervised":
            # without it Azure answers, misleadingly, that the model cannot be fine-tuned
            return {"trainingType": int(opts.get("training_type", 1))}
        return None

    def _extra_rows(self, spec: JobSpec, opts: dict[str, Any]) -> list[PlanRow]:
        if self._method_type(spec) == "supervised":
            return [PlanRow(f"backend_options.azure.training_type", opts.get("training_type"),
                            "trainingType", int(opts.get("training_type", 1)),
                            note="Azure requires it for supervised jobs")]
        return []

    def _extra_notes(self, spec: JobSpec, opts: dict[str, Any], model: str) -> list[str]:
        cost = self.hosting_cost(model, opts.get("sku", "standard"))
        line = "the tuned model must be deployed before use (`unitune deploy`)"
        if cost is not None:
            line += f"; a {opts.get('sku', 'standard')} deployment costs ${cost[0]:.2f}/hour ({cost[1]})"
        return [line]

    def _upload_dest(self) -> str:
        return "azure openai files (purpose=fine-tune)"

    def _invoke_hint(self, model_id: str) -> str:
        return f"deploy it first: unitune deploy <job id> (Azure serves tuned models only through a deployment)"

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        caps.features["deploy"] = YES
        caps.features["pause"] = no("Azure OpenAI documents no pause for fine-tuning jobs")
        caps.features["resume"] = no("Azure OpenAI documents no resume for fine-tuning jobs")
        return caps

    def lifecycle_problems(self, model: str, opts: dict[str, Any]) -> list[Problem]:
        return super().lifecycle_problems(model, opts)

    # -- deployment through Azure Resource Manager -------------------------------------------------
    def hosting_cost(self, model: str | None, sku: str) -> tuple[float, str] | None:
        """(USD per hour, where the number comes from) for a deployment of a model tuned from `model`."""
        if not model:
            return None
        info = self._model_info(model)
        if info is None:
            return None
        deployments = [h for h in info.hosting if h.kind == "deployment" and h.unit == "per_hour"]
        if not deployments:
            return None
        dev = [h for h in deployments if "developer" in (h.note or "").lower()]
        other = [h for h in deployments if h not in dev]
        pick = (dev or other)[0] if sku.lower() == "developer" else (other or dev)[0]
        src = f"price catalog, as of {pick.as_of}{'' if pick.verified else ', unverified'}"
        return pick.usd, src

    def _arm(self, opts: dict[str, Any]) -> tuple[str, dict[str, str]]:
        missing = [k for k in ("subscription_id", "resource_group", "account") if not opts.get(k)]
        if missing:
            raise SpecError(f"deploying on Azure needs {', '.join(missing)}",
                            field="backend_options.azure." + missing[0],
                            hint="set backend_options.azure.subscription_id / resource_group / "
                                 "account (or UNITUNE_AZURE_SUBSCRIPTION_ID, …)")
        token = None
        if self._arm_token_provider is not None:
            token = self._arm_token_provider()
        else:
            token = os.environ.get(opts.get("arm_token_env") or "AZURE_ARM_TOKEN") or opts.get("arm_token")
        if not token:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:
                raise AuthError("no Azure Resource Manager token: set AZURE_ARM_TOKEN (e.g. "
                                "`az account get-access-token --query accessToken -o tsv`) or "
                                "install azure-identity", backend=self.name,
                                hint="pip install azure-identity, then `az login`") from exc
            token = DefaultAzureCredential().get_token("https://management.azure.com/.default").token
        base = str(opts.get("arm_endpoint") or "https://management.azure.com").rstrip("/")
        url = (f"{base}/subscriptions/{opts['subscription_id']}/resourceGroups/{opts['resource_group']}"
               f"/providers/Microsoft.CognitiveServices/accounts/{opts['account']}/deployments")
        return url, {"Authorization": f"Bearer {token}"}

    def _arm_request(self, method: str, url: str, headers: dict[str, str], opts: dict[str, Any],
                     json_body: dict[str, Any] | None = None) -> Any:
        import httpx

        params = {"api-version": str(opts.get("arm_api_version") or DEFAULT_ARM_API_VERSION)}
        secrets = [headers.get("Authorization", "")[7:]]
        try:
            resp = httpx.request(method, url, params=params, headers=headers, json=json_body,
                                 timeout=float(opts.get("timeout", 60)))
        except httpx.HTTPError as exc:
            raise BackendUnavailable(scrub(f"Azure Resource Manager: {method} failed: {exc}", secrets),
                                     backend=self.name, hint="check arm_endpoint / network") from exc
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error") or {}
            except ValueError:
                err = {}
            msg = err.get("message") or resp.text[:300]
            raise from_http_status(resp.status_code, scrub(f"Azure Resource Manager: {method} "
                                                          f"deployment failed (HTTP {resp.status_code}):"
                                                          f" {msg}", secrets),
                                   backend=self.name, vendor_code=err.get("code"))
        return resp

    def _deployment_name(self, model: str, opts: dict[str, Any]) -> str:
        return str(opts.get("deployment_name") or _slug(model.replace(".", "-"), 64))

    def deploy(self, ref: RemoteRef, options: dict[str, Any] | None = None,
               dry_run: bool = False) -> ModelHandle | str:
        """Create (PUT) an Azure deployment of the tuned model; prints the hourly cost first."""
        opts = self._opts(extra=options)
        snap = self.get(ref)
        if snap.status is not JobStatus.SUCCEEDED or snap.model is None:
            raise InvalidRequest(f"job {ref.remote_id} is {snap.status}; only a succeeded job has a "
                                 "model to deploy", backend=self.name)
        model = snap.model.model_id
        sku = str(opts.get("sku") or "standard")
        sku_name = {"standard": "Standard", "globalstandard": "GlobalStandard",
                    "developer": "Developer"}.get(sku.lower(), sku)
        capacity = int(opts.get("capacity", 1))
        name = self._deployment_name(model, opts)
        cost = self.hosting_cost(snap.model.base_model, sku)
        if cost is None:
            cost_line = (f"Hosting cost for a {sku_name} deployment is not in the price catalog; "
                         "check Azure pricing before leaving it running.")
        else:
            cost_line = (f"A {sku_name} deployment of {model} costs ${cost[0]:.2f}/hour while it exists "
                         f"({cost[1]}), plus per-token inference; `unitune undeploy` removes it.")
        body = {"sku": {"name": sku_name, "capacity": capacity},
                "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
        if dry_run:
            return (f"{cost_line}\nwould PUT deployment {name!r} (sku {sku_name}, capacity {capacity}) "
                    f"for model {model}")
        self._log(cost_line)  # before anything is created
        url, headers = self._arm(opts)
        resp = self._arm_request("PUT", f"{url}/{name}", headers, opts, body)
        state = ((resp.json() or {}).get("properties") or {}).get("provisioningState")
        return ModelHandle(backend=self.name, model_id=model, base_model=snap.model.base_model,
                           name=name, endpoint=f"{str(self._conn(opts).get('endpoint', '')).rstrip('/')}"
                                               f"/openai/deployments/{name}",
                           checkpoints=snap.model.checkpoints,
                           artifacts={"deployment": name, "provisioning_state": str(state)},
                           invoke=f'AzureOpenAI(...).chat.completions.create(model="{name}", messages=[...])')

    def undeploy(self, ref: RemoteRef, options: dict[str, Any] | None = None) -> ModelHandle | str:
        """Delete the deployment (stops the hourly charge)."""
        opts = self._opts(extra=options)
        snap = self.get(ref)
        if snap.model is None:
            raise InvalidRequest(f"job {ref.remote_id} has no tuned model", backend=self.name)
        name = self._deployment_name(snap.model.model_id, opts)
        url, headers = self._arm(opts)
        self._arm_request("DELETE", f"{url}/{name}", headers, opts)
        return ModelHandle(backend=self.name, model_id=snap.model.model_id,
                           base_model=snap.model.base_model, checkpoints=snap.model.checkpoints,
                           invoke=self._invoke_hint(snap.model.model_id))
