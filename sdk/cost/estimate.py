"""Cost estimator: what one job spec would cost on one backend/model, from the dated catalog.

Cloud backends bill tokens:

    billable = epochs × Σ_examples min(limit, tokens(example))   (+ validation tokens where billed)

with `tokens` counted by `unitune.tokens.count_example` (the vendor's tokenizer where available
offline, a calibrated estimate otherwise) and `epochs: auto` resolved per vendor (OpenAI: the
cookbook rule; Bedrock/Vertex/local: the catalog default). Training cost = billable × price.

Local training costs GPU time: FLOPs ≈ 6·N·tokens for full fine-tuning, ≈ 4·N·tokens for LoRA-style
adapters (no weight gradients for the frozen base), N from the catalog; hours = FLOPs / (peak
bf16 FLOP/s × MFU) at an assumed MFU of 25–50 %, priced with the dated $/GPU-hour table. Local
results are ranges; the headline is the cheapest GPU whose memory fits the job.

Hosting per month = storage (where billed) + the cheapest serving option with a known price
(730 h × hourly rate); time-limited options (Azure's 24 h Developer tier) are not counted.
See docs/costs.md for the error of each part.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, Field

HOURS_PER_MONTH = 730
MFU_RANGE = (0.25, 0.50)  # model FLOPs utilisation assumed for local training (low, high)
FLOPS_PER_PARAM_TOKEN = {"full": 6.0, "adapter": 4.0}
DPO_EXTRA_FLOPS_PER_PARAM_TOKEN = 2.0  # the reference model's forward pass
ADAPTER_TYPES = ("lora", "qlora", "dora", "rslora", "prefix", "p_tuning", "prompt_tuning", "ia3")


class TokenStats(BaseModel):
    """Per-example token counts of a dataset for one tokenizer/framing (one list per split)."""

    train: list[int] = Field(default_factory=list)
    validation: list[int] = Field(default_factory=list)
    method: str = "unknown"
    exact: bool = False
    source: str | None = None  # the file(s) counted
    validation_is_fraction: bool = False
    skipped_lines: int = 0  # lines with data errors, not counted


class GpuOption(BaseModel):
    gpu: str
    hours: tuple[float, float]
    usd: tuple[float, float]
    fits: bool
    usd_per_hour: float
    as_of: date


class CostEstimate(BaseModel):
    """One backend/model row of `unitune compare` and the estimate section of `unitune plan`."""

    backend: str
    model: str
    in_catalog: bool = True
    examples: int = 0
    validation_examples: int = 0
    dataset_tokens: int = 0  # Σ min(limit, tokens) over training examples, one epoch
    validation_tokens: int = 0
    billable_tokens: int | None = None
    epochs: int | None = None
    epochs_source: str | None = None  # "spec", "openai-cookbook rule", "catalog default"
    truncated_examples: int = 0  # over the per-example limit (truncated or rejected by the vendor)
    token_method: str | None = None
    token_exact: bool = False
    price: str | None = None  # human-readable unit price used
    price_as_of: date | None = None
    price_verified: bool | None = None
    training_usd: float | None = None  # point estimate (midpoint of the range for local)
    training_usd_range: tuple[float, float] | None = None
    hours_range: tuple[float, float] | None = None
    hosting_usd_per_month: float | None = None
    hosting: str | None = None  # what the hosting figure consists of
    gpu_options: list[GpuOption] = Field(default_factory=list)
    lifecycle_level: str = "ok"
    lifecycle: str | None = None
    unsupported: list[str] = Field(default_factory=list)
    runnable: bool = True  # False: the method is unsupported or the model is past its cut-off
    rank: int | None = None  # place in `compare` (1 = cheapest); None: refused / not runnable
    notes: list[str] = Field(default_factory=list)

    @property
    def sort_key(self) -> tuple[int, int, float]:
        """Runnable rows first, then known prices, cheapest first."""
        known = self.training_usd is not None
        return (0 if self.runnable else 1, 0 if known else 1, self.training_usd if known else 0.0)


# ------------------------------------------------------------------------------------------------
# epochs


def openai_cookbook_epochs(n_examples: int) -> int:
    """OpenAI cookbook rule for n_epochs="auto" (unverified that the server uses the same)."""
    n = max(1, n_examples)
    epochs = 3
    if n * epochs < 100:
        return min(25, 100 // n)
    if n * epochs > 25000:
        return max(1, 25000 // n)
    return epochs


def resolve_epochs(spec_epochs: Any, info: Any, n_examples: int) -> tuple[int, str]:
    """(epochs, where it came from) for the spec's `epochs` on this catalog model."""
    if isinstance(spec_epochs, int):
        return spec_epochs, "spec"
    rule = getattr(info, "epochs_auto", 3) if info is not None else 3
    if rule == "openai-cookbook":
        return openai_cookbook_epochs(n_examples), "auto: openai-cookbook rule"
    if isinstance(rule, int):
        return rule, "auto: catalog default"
    return 3, f"auto: unknown rule {rule!r}, assumed 3"


# ------------------------------------------------------------------------------------------------
# token counting


def _counter_key(info: Any) -> tuple[str, Any]:
    """Models with the same tokenizer and the same per-message framing share one count."""
    from ..tokens import framing_for

    f = framing_for(info)
    return (getattr(info, "tokenizer", "estimate") or "estimate",
            (f.per_message, f.per_name, f.priming, f.per_tool_call))


def _safe_count_fn(info: Any):
    """A per-example counter for `info`; falls back to the estimate when the exact tokenizer cannot
    be loaded offline (e.g. `hf:<hub id>` with no local copy). Returns (fn, method, exact)."""
    from .. import tokens

    framing = tokens.framing_for(info)
    try:
        counter = tokens.counter_for(info)
    except Exception as exc:  # TokenizerUnavailable, MissingDependency: never fatal for an estimate
        counter = tokens.EstimateCounter(f"{getattr(info, 'tokenizer', '?')} not available "
                                         f"offline ({type(exc).__name__})")

    def count(example: Any) -> int:
        texts, overhead = tokens.example_texts(example, framing)
        return overhead + sum(counter.count(t) for t in texts)

    return count, counter.method, counter.exact


def _iter_examples(path: Path, fmt: str, report: Any):
    from ..data.dataset import load_examples

    yield from load_examples(path, fmt=fmt, report=report)


def count_tokens(spec: Any, infos: Iterable[Any], data: str | Path | None = None,
                 validation: str | Path | None = None) -> dict[tuple[str, Any], TokenStats]:
    """Read the spec's data once and count tokens per distinct (tokenizer, backend framing).

    `data` overrides the spec's training file (the `--data` of `unitune compare`). A validation
    fraction in the spec is applied to the counts (every k-th example), as the split would.
    """
    from ..errors import DataError

    infos = [i for i in infos if i is not None]
    keyed: dict[tuple[str, str], Any] = {}
    for info in infos:
        keyed.setdefault(_counter_key(info), info)
    fns = {k: _safe_count_fn(i) for k, i in keyed.items()}
    train_path = Path(data) if data else spec.data_path("train")
    if train_path is None or not Path(train_path).exists():
        raise DataError(f"training data not found: {train_path}",
                        hint="pass --data FILE or fix `data.train` in the spec (paths are relative "
                             "to the spec file)")
    val_path = Path(validation) if validation else spec.data_path("validation")

    from ..data.report import Report

    report = Report(file=str(train_path), max_problems=1000)
    fmt = getattr(spec.data, "format", "auto") or "auto"

    def counts_for(path: Path) -> dict[tuple[str, Any], list[int]]:
        out: dict[tuple[str, Any], list[int]] = {k: [] for k in fns}
        for ex in _iter_examples(path, fmt, report):
            for k, (fn, _m, _e) in fns.items():
                out[k].append(fn(ex))
        return out

    train = counts_for(Path(train_path))
    val = counts_for(val_path) if val_path is not None and val_path.exists() else None
    skipped = len({(p.file, p.line) for p in report.errors if p.line is not None})
    fraction = spec.data.validation if isinstance(spec.data.validation, float) else None
    result = {}
    for k, (_fn, method, exact) in fns.items():
        t, v = train[k], (val[k] if val is not None else [])
        if fraction and val is None and t:
            step = max(2, round(1 / fraction))
            v = t[::step]
            t = [x for i, x in enumerate(t) if i % step]
        result[k] = TokenStats(train=t, validation=v, method=method, exact=exact,
                               source=str(train_path), validation_is_fraction=bool(fraction),
                               skipped_lines=skipped)
    return result


def stats_for(spec: Any, info: Any, data: str | Path | None = None) -> TokenStats:
    """Token stats of the spec's data for one catalog model."""
    return count_tokens(spec, [info], data)[_counter_key(info)]


# ------------------------------------------------------------------------------------------------
# hosting


def hosting_per_month(info: Any) -> tuple[float | None, str]:
    """(USD per month or None when unknown, what it consists of)."""
    if info is None or not info.hosting:
        return None, "no hosting data"
    storage = [h for h in info.hosting if h.kind == "storage"]
    serving = [h for h in info.hosting if h.kind != "storage" and not h.lifetime_hours]
    total, parts = 0.0, []
    for h in storage:
        if h.usd is None:
            return None, "storage price unknown"
        monthly = h.usd if h.unit == "per_month" else h.usd * HOURS_PER_MONTH
        total += monthly
        parts.append(f"storage ${monthly:,.2f}/mo")
    if serving:
        priced = [(h.usd * (HOURS_PER_MONTH if h.unit == "per_hour" else 1), h)
                  for h in serving if h.usd is not None]
        if not priced:
            kinds = ", ".join(sorted({h.kind.replace("_", " ") for h in serving}))
            return None, f"{kinds} needed to serve; price not in the dated catalog"
        monthly, h = min(priced, key=lambda p: p[0])
        total += monthly
        label = {"none": "no standing fee", "deployment": "deployment",
                 "provisioned_throughput": "provisioned throughput (1 MU)",
                 "endpoint": "endpoint"}[h.kind]
        if h.kind == "none":
            parts.append(label)
        elif monthly == 0:
            parts.append(f"{label} with no hourly fee")
        else:
            parts.append(f"{label} ${h.usd:,.2f}/h")
    return round(total, 2), " + ".join(parts)


# ------------------------------------------------------------------------------------------------
# local GPU estimate


def _gpu_memory_needed_gb(n_params: int, adapter: str) -> float:
    """Very rough: weights + optimizer states + activation headroom."""
    bytes_per_param = {"full": 16.0, "qlora": 0.7}.get(adapter, 2.2)
    return n_params * bytes_per_param / 1e9 * 1.2 + 1.0


def local_gpu_options(n_params: int, tokens: int, adapter: str, method: str,
                      gpus: list[Any]) -> list[GpuOption]:
    kind = "full" if adapter == "full" else "adapter"
    per = FLOPS_PER_PARAM_TOKEN[kind] + (DPO_EXTRA_FLOPS_PER_PARAM_TOKEN if method == "dpo" else 0)
    flops = per * n_params * tokens
    need = _gpu_memory_needed_gb(n_params, adapter)
    out = []
    for g in gpus:
        peak = g.peak_bf16_tflops * 1e12
        hours = (flops / (peak * MFU_RANGE[1]) / 3600, flops / (peak * MFU_RANGE[0]) / 3600)
        out.append(GpuOption(gpu=g.gpu, hours=hours, usd=(hours[0] * g.usd_per_hour,
                                                          hours[1] * g.usd_per_hour),
                             fits=g.memory_gb >= need, usd_per_hour=g.usd_per_hour, as_of=g.as_of))
    return out


# ------------------------------------------------------------------------------------------------
# the estimator


def _support_notes(spec: Any, backend: str, info: Any) -> list[str]:
    out = []
    if spec.method not in info.methods:
        out.append(f"method {spec.method} not supported by {info.model} "
                   f"(supports: {', '.join(info.methods)})")
    if backend != "local" and spec.adapter.type not in ("lora",):
        out.append(f"adapter.type {spec.adapter.type} not applied: {backend} chooses its own "
                   "adapter method")
    hp = spec.hyperparameters
    for field, value in (("epochs", hp.epochs), ("batch_size", hp.batch_size)):
        rng = info.hyperparameters.get(field)
        if isinstance(value, int) and rng is not None:
            if (rng.min is not None and value < rng.min) or (rng.max is not None and value > rng.max):
                out.append(f"{field}={value} outside {backend}'s range "
                           f"{_fmt_num(rng.min)}–{_fmt_num(rng.max)}")
    return out


def _fmt_num(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def estimate(spec: Any, backend: str, model: str | None = None, stats: TokenStats | None = None,
             *, data: str | Path | None = None, today: date | None = None) -> CostEstimate:
    """Estimate what `spec` costs on `backend` with `model` (default: the spec's model for it).

    `stats` are the per-example token counts for this model (see `count_tokens`); when None they
    are counted from the spec's data (or `data`).
    """
    from ..catalog import find_model, gpus
    from .lifecycle import lifecycle_short, lifecycle_status

    model = model or spec.model_for(backend)
    info = find_model(backend, model)
    est = CostEstimate(backend=backend, model=model)
    if info is None:
        est.in_catalog = False
        est.notes.append(f"{model} is not in the {backend} catalog: no price or limits known "
                         "(run `unitune models --backend " + backend + "`)")
        return est
    est.model = info.model
    if stats is None:
        stats = stats_for(spec, info, data)

    limit = info.limits.tokens_per_example
    if backend == "local":
        msl = spec.hyperparameters.max_seq_length
        limit = min(x for x in (limit, msl, info.context_length) if x) if (limit or msl) else None

    def clipped(counts: list[int]) -> tuple[int, int]:
        if not limit:
            return sum(counts), 0
        return sum(min(limit, c) for c in counts), sum(1 for c in counts if c > limit)

    est.examples, est.validation_examples = len(stats.train), len(stats.validation)
    est.dataset_tokens, est.truncated_examples = clipped(stats.train)
    est.validation_tokens, _ = clipped(stats.validation)
    est.token_method, est.token_exact = stats.method, stats.exact
    est.epochs, est.epochs_source = resolve_epochs(spec.hyperparameters.epochs, info, est.examples)
    if est.epochs_source != "spec":
        est.notes.append(f"epochs {est.epochs} ({est.epochs_source}"
                         + ("; Vertex picks its own when unset" if backend == "vertex" else "")
                         + ")")
    billable = est.epochs * est.dataset_tokens
    if info.bills_validation:
        billable += est.epochs * est.validation_tokens
    est.billable_tokens = billable

    # training cost
    if backend == "local":
        _estimate_local(est, spec, info, billable, gpus())
    elif info.training is None:
        est.notes.append("training price not in the dated catalog")
    else:
        tp = info.training
        est.price_as_of, est.price_verified = tp.as_of, tp.verified
        if tp.unit == "per_1m_tokens":
            est.training_usd = billable / 1e6 * tp.usd
            est.training_usd_range = (est.training_usd, est.training_usd)
            est.price = f"${tp.usd:g} per 1M tokens"
        else:
            est.price = f"${tp.usd:g} per hour"
            est.notes.append("hour-priced training: cost follows the time estimate")
        if info.duration is not None:
            d = info.duration
            m_tok = billable / 1e6
            est.hours_range = ((d.overhead_minutes[0] + d.minutes_per_1m_tokens[0] * m_tok) / 60,
                               (d.overhead_minutes[1] + d.minutes_per_1m_tokens[1] * m_tok) / 60)
            if tp.unit == "per_hour":
                est.training_usd_range = (est.hours_range[0] * tp.usd, est.hours_range[1] * tp.usd)
                est.training_usd = sum(est.training_usd_range) / 2
        if not tp.verified:
            est.notes.append(f"price unverified (as of {tp.as_of.isoformat()})")

    est.hosting_usd_per_month, est.hosting = hosting_per_month(info)

    # notes: lifecycle, limits, support
    level, message = lifecycle_status(info, today)
    est.lifecycle_level, est.lifecycle = level, message or None
    if level != "ok":
        est.notes.insert(0, lifecycle_short(info, today) or message)
    if est.truncated_examples:
        verb = "truncated" if info.limits.truncates else "REJECTED by the vendor"
        est.notes.append(f"{est.truncated_examples} example(s) over {limit:,} tokens: {verb}")
    lim = info.limits
    if lim.min_examples and est.examples < lim.min_examples:
        est.notes.append(f"only {est.examples} examples; {backend} needs at least {lim.min_examples}")
    if lim.max_examples and est.examples > lim.max_examples:
        est.notes.append(f"{est.examples} examples; {backend} takes at most {lim.max_examples:,}")
    if lim.max_validation_examples and est.validation_examples > lim.max_validation_examples:
        est.notes.append(f"{est.validation_examples} validation examples; at most "
                         f"{lim.max_validation_examples:,}")
    est.unsupported = _support_notes(spec, backend, info)
    est.runnable = level != "error" and spec.method in info.methods
    est.notes.extend(est.unsupported)
    if info.deprecated:
        est.notes.append("legacy model")
    if not stats.exact:
        est.notes.append("token counts estimated")
    if stats.skipped_lines:
        est.notes.append(f"{stats.skipped_lines} line(s) with data errors not counted "
                         "(run `unitune validate`)")
    return est


def _estimate_local(est: CostEstimate, spec: Any, info: Any, tokens: int, gpu_table: list) -> None:
    if not info.parameters:
        est.notes.append("parameter count unknown: no FLOPs estimate")
        return
    if not gpu_table:
        est.notes.append("no GPU price table in the catalog")
        return
    options = local_gpu_options(info.parameters, tokens, spec.adapter.type, spec.method, gpu_table)
    est.gpu_options = options
    fitting = [o for o in options if o.fits] or options
    best = min(fitting, key=lambda o: o.usd[1])
    est.training_usd_range = best.usd
    est.training_usd = sum(best.usd) / 2
    est.hours_range = best.hours
    est.price = f"{best.gpu} at ${best.usd_per_hour:g}/GPU-hour, MFU {MFU_RANGE[0]:.0%}–{MFU_RANGE[1]:.0%}"
    est.price_as_of, est.price_verified = best.as_of, False
    kind = "6·N·tokens (full)" if spec.adapter.type == "full" else "4·N·tokens (adapter)"
    est.notes.append(f"GPU-hours from {kind}, N={info.parameters:,}; cheapest fitting GPU: {best.gpu}")
    if not any(o.fits for o in options):
        est.notes.append("no GPU in the table has enough memory for one-GPU training; use several "
                         "GPUs (accelerate) or qlora")
