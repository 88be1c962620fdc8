"""What OpenAI can run and how a spec maps onto it: capabilities, `check` (refusals and warnings
before anything is uploaded, model lifecycle dates included), the `fine_tuning.jobs.create`
parameters and the `plan` table."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from unitune.backends import YES, Capabilities, Plan, PlanRow, Upload, no
from unitune.data.report import Problem
from unitune.errors import SpecError
from unitune.spec import JobSpec

from .naming import META_JOB, META_KEY, META_SPEC, _slug

UPLOAD_DEST = "openai files (purpose=fine-tune)"
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


def _count_lines(path: Path) -> int:
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    n = 0
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return n



class PlanMixin:
    """Capabilities, checks, create parameters and the plan for `OpenAIBackend`."""

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
