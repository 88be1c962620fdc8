"""Smoke runs (the guide's "progressive training": 先用小数据集验证,再扩大规模): the same spec on a
small deterministic sample, one epoch, a few steps — proving data, conversion, upload and the job
lifecycle end to end before the full job is paid for.

`smoke_spec(spec, backend)` is a pure spec transformation (the Client is used as it is):

* the whole training file is validated first (a smoke run that skipped the bad lines would prove
  nothing), then N valid lines (default 16; at least the vendor's minimum billable size —
  the catalog's `limits.min_examples` — on a cloud backend) are chosen with a seeded RNG and
  written, unchanged, to `$UNITUNE_HOME/smoke/<hash>/train.jsonl` (a validation *file* is
  sampled the same way; a validation fraction is kept, with N raised so the training part still
  meets the minimum);
* `epochs: 1`; on local/fake backends `max_steps` = the steps of that one epoch, at most 8
  (cloud vendors train whole epochs and refuse `max_steps`); an integer batch size is capped at
  the sample size;
* `name` gets `-smoke` (and `suffix`, where set), `metadata.unitune_smoke: "true"`: the registry
  shows it, the vendor's job carries it, and because the spec (and data) hash differ, the full
  run never re-attaches to the smoke job;
* without `--backend` it runs locally on the spec's `models.local`, or on the embedded
  `unitune/tiny-chat` when the spec has none (then qlora becomes lora and multi-GPU / flash
  attention options are dropped: the tiny model is trained on one CPU or GPU).

The price is estimated first from the catalog (`cost.estimate`) so the CLI can show it before
anything is submitted.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .spec import JobSpec

DEFAULT_EXAMPLES = 16
MAX_SMOKE_STEPS = 8
LOCAL_AUTO_BATCH = 8  # the local backend's examples per step when batch_size is auto
TINY_MODEL = "unitune/tiny-chat"
SMOKE_LABEL = "unitune_smoke"
NO_MAX_STEPS = ("openai", "azure", "bedrock", "vertex")


@dataclass
class SmokePlan:
    spec: JobSpec  # the transformed spec to submit
    backend: str
    model: str
    examples: int  # training examples in the sample
    validation_examples: int | None  # sampled validation file lines (None: a fraction or none)
    sample: Path
    minimum: int | None = None  # the vendor's minimum number of examples (catalog)
    available: int = 0  # valid examples in the full training file
    estimate: Any = None  # cost.estimate.CostEstimate, or None
    estimate_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {"backend": self.backend, "model": self.model, "name": self.spec.name,
                "examples": self.examples, "validation_examples": self.validation_examples,
                "available": self.available, "minimum": self.minimum,
                "sample": str(self.sample), "epochs": 1,
                "max_steps": self.spec.hyperparameters.max_steps,
                "cost_usd": getattr(est, "training_usd", None),
                "billable_tokens": getattr(est, "billable_tokens", None),
                "price": getattr(est, "price", None), "estimate_note": self.estimate_note,
                "notes": self.notes}

    def summary(self) -> str:
        """One paragraph for the terminal: what runs where, and what it costs."""
        est = self.estimate
        n = f"{self.examples} example(s)"
        if self.minimum and self.minimum > 1 and self.examples >= self.minimum:
            n += f" (the {self.backend} minimum is {self.minimum})"
        cost = ""
        if self.backend in ("local", "fake"):
            cost = "; no vendor charge (your own hardware)" if self.backend == "local" else ""
        elif est is not None and est.training_usd is not None:
            lo, hi = est.training_usd_range or (est.training_usd, est.training_usd)
            money = f"${est.training_usd:.4f}" if lo == hi else f"${lo:.4f}–${hi:.4f}"
            cost = f"; estimated {money}"
            if est.billable_tokens:
                cost += f" for {est.billable_tokens:,} billable tokens"
            if est.price:
                cost += f" at {est.price}"
        elif self.estimate_note:
            cost = f"; {self.estimate_note}"
        steps = self.spec.hyperparameters.max_steps
        return (f"smoke run {self.spec.name!r} on {self.backend}:{self.model}: {n}, 1 epoch"
                + (f", at most {steps} step(s)" if steps else "") + cost)


def _valid_lines(path: Path, fmt: str) -> tuple[list[int], Any]:
    """Line numbers of the valid examples of `path`; DataError when the file has errors."""
    from .data.validate import validate_file

    report = validate_file(str(path), targets=[], max_problems=20)
    if not report.ok:
        first = report.errors[0] if report.errors else None
        where = f"{first.file}:{first.line}: {first.message}" if first else "errors"
        raise DataError(f"{path}: {report.summary()['errors']} error(s) in the training data "
                        f"(first: {where}); the smoke run checks the whole file first",
                        hint=f"`unitune validate {path}` lists them")
    from .data.dataset import load_examples
    from .data.report import Report

    rep = Report(file=str(path))
    lines = [ex.line for ex in load_examples(path, fmt, rep)]
    return lines, report


def _write_sample(src: Path, numbers: list[int], dst: Path) -> None:
    from .data.reader import iter_raw_lines

    wanted = set(numbers)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "wb") as out:
        for raw in iter_raw_lines(src):
            if raw.number in wanted:
                out.write(raw.data + b"\n")
    tmp.replace(dst)


def _pick(lines: list[int], n: int, seed: int) -> list[int]:
    if n >= len(lines):
        return list(lines)
    return sorted(random.Random(f"unitune-smoke:{seed}").sample(lines, n))


def smoke_spec(spec: JobSpec, backend: str | None = None, examples: int = DEFAULT_EXAMPLES, *,
               home: Path | None = None, price: bool = True) -> SmokePlan:
    """The smoke version of `spec` on `backend` (None: local), with its sample written."""
    from .catalog import find_model
    from .data.hashing import file_sha256
    from .data.split import validation_count
    from .paths import unitune_home

    if examples < 1:
        raise DataError("--smoke-examples must be at least 1", hint="e.g. --smoke-examples 16")
    backend = backend or "local"
    notes: list[str] = []
    d = spec.model_dump(mode="json", exclude={"source_dir"})
    d["backend"] = backend
    substituted = False
    if backend == "local":
        model = spec.models.get("local")
        if not model:
            model, substituted = TINY_MODEL, True
            notes.append("the spec names no local model: the smoke run trains the embedded "
                         f"{TINY_MODEL} (add `--backend B` to smoke-test on a cloud backend)")
        d.setdefault("models", {})["local"] = model
    else:
        model = spec.model_for(backend)
    info = find_model(backend, model)
    minimum = info.limits.min_examples if info is not None else None
    if minimum and minimum > 1 and minimum > examples:
        notes.append(f"{backend} needs at least {minimum} examples: the sample has {minimum}")
    need = max(examples, minimum or 0)

    train = spec.data_path("train")
    if train is None or not train.is_file():
        raise DataError(f"training data not found: {train}",
                        hint="fix `data.train` (relative to the spec file)")
    lines, _report = _valid_lines(train, spec.data.format)
    seed = spec.hyperparameters.seed or 0
    val = spec.data.validation
    total = need
    if isinstance(val, float):
        while total - validation_count(total, val) < need and total < len(lines):
            total += 1
    picked = _pick(lines, total, seed)
    if len(picked) < total:
        notes.append(f"the training file has only {len(picked)} valid example(s): all are used")
    key = hashlib.sha256(f"{file_sha256(train)}:{total}:{seed}".encode()).hexdigest()[:16]
    folder = (home or unitune_home()) / "smoke" / key
    sample = folder / "train.jsonl"
    _write_sample(train, picked, sample)
    d["data"]["train"] = str(sample)
    n_train = len(picked) - (validation_count(len(picked), val) if isinstance(val, float)
                             and len(picked) >= 2 else 0)
    n_val = None
    vpath = spec.data_path("validation")
    if vpath is not None:
        if not vpath.is_file():
            raise DataError(f"validation data not found: {vpath}",
                            hint="fix `data.validation` (relative to the spec file)")
        vlines, _ = _valid_lines(vpath, spec.data.format)
        vmin = info.limits.min_validation_examples if info is not None else None
        vpicked = _pick(vlines, max(4, vmin or 0), seed)
        vsample = folder / f"validation-{hashlib.sha256(str(vpath.resolve()).encode()).hexdigest()[:8]}.jsonl"
        _write_sample(vpath, vpicked, vsample)
        d["data"]["validation"] = str(vsample)
        n_val = len(vpicked)

    hp = d["hyperparameters"]
    hp["epochs"] = 1
    if isinstance(hp.get("batch_size"), int) and hp["batch_size"] > n_train:
        hp["batch_size"] = max(1, n_train)
        ga = hp.get("gradient_accumulation_steps")
        if ga and ga > hp["batch_size"]:
            hp["gradient_accumulation_steps"] = hp["batch_size"]
    if backend not in NO_MAX_STEPS:
        batch = hp["batch_size"] if isinstance(hp.get("batch_size"), int) else LOCAL_AUTO_BATCH
        steps = max(1, min(MAX_SMOKE_STEPS, math.ceil(max(1, n_train) / batch)))
        hp["max_steps"] = min(hp["max_steps"], steps) if hp.get("max_steps") else steps
    else:
        hp["max_steps"] = None
    d["name"] = f"{spec.name}-smoke"
    if d.get("suffix"):
        d["suffix"] = (d["suffix"][:64 - len("-smoke")] + "-smoke")
    d.setdefault("metadata", {})[SMOKE_LABEL] = "true"
    if substituted:
        _fit_tiny(d, notes)
    smoke = JobSpec.from_dict(d, source=f"smoke run of {spec.name}",
                              source_dir=spec.source_dir)
    plan = SmokePlan(spec=smoke, backend=backend, model=model, examples=n_train,
                     validation_examples=n_val, sample=sample, minimum=minimum,
                     available=len(lines), notes=notes)
    if price:
        _price(plan)
    return plan


def _fit_tiny(d: dict[str, Any], notes: list[str]) -> None:
    """Settings the embedded tiny model on one device can run."""
    ad = d["adapter"]
    if ad.get("type") == "qlora":
        ad["type"] = "lora"
        notes.append("qlora → lora for the tiny model (no 4-bit quantization of a toy model)")
    hp = d["hyperparameters"]
    if hp.get("max_seq_length") and hp["max_seq_length"] > 512:
        hp["max_seq_length"] = 512
    local = d.get("backend_options", {}).get("local")
    if local:
        for key in ("gpus", "strategy", "launcher", "device"):
            local.pop(key, None)
        if str(local.get("attn_implementation", "")).startswith("flash"):
            local.pop("attn_implementation")
            notes.append("flash attention dropped for the tiny model (sdpa)")
        if local.get("precision") in ("bf16", "fp16"):
            local.pop("precision")


def _price(plan: SmokePlan) -> None:
    from .errors import UnituneError

    try:
        from .cost.estimate import estimate

        plan.estimate = estimate(plan.spec, plan.backend, plan.model)
        if not plan.estimate.in_catalog:
            plan.estimate_note = "not in the price catalog"
    except (UnituneError, ImportError, ValueError) as exc:
        plan.estimate_note = f"no estimate: {getattr(exc, 'message', exc)}"


def is_smoke(spec_or_record: Any) -> bool:
    """True for a smoke spec, or a registry record / job made from one."""
    spec = getattr(spec_or_record, "spec", spec_or_record)
    meta = spec.get("metadata") if isinstance(spec, dict) else getattr(spec, "metadata", None)
    return bool(meta) and meta.get(SMOKE_LABEL) == "true"
