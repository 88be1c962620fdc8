"""`unitune synth`: synthetic training examples from a handful of seeds, through any backend the
inference protocol reaches (OpenAI, Azure, Bedrock, Vertex, a local model, any OpenAI-compatible
server).

1. Plan and price (`plan_synth`): calls = ⌈1.3·N / k⌉ for k samples per call; input tokens
   counted on the real prompts with the generator's tokenizer, output tokens from the seeds'
   sample length × k; priced from the catalog (base rates where the catalog has them; the
   vendor's batch discount with `batch`). Nothing is called.
2. Generate (`run_synth`): structured output where the caller supports it (a JSON schema on the
   chat-completions route), lenient parsing everywhere; seeds and four diversity axes rotate per
   call; at most `concurrency` calls at a time, each retried by the core's RetryPolicy; every
   response journaled (fsynced) as it arrives, so a killed run resumes without re-paying.
3. Filter (`filters.SampleFilter`): every dropped sample counted under one reason.
4. Report: kept / dropped per reason, diversity of what was kept, spend vs the estimate, and a
   provenance sidecar (`OUT.provenance.json`: generator, prompt hash, seed ids per sample).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import SpecError, UnituneError
from .journal import Journal
from .prompt import PROMPT_VERSION, RESPONSE_SCHEMA, CallPlan, build_calls, template_hash
from .seeds import Seeds, read_seeds

OVERSAMPLE = 1.3  # the issue's ⌈1.3·N / k⌉: room for what the filters drop
CHAT_OVERHEAD_TOKENS = 7  # per call: role framing (≈ 4 per message) + reply priming (3)
JSON_OVERHEAD = 1.1  # the answer's JSON wrapping around the samples
TEMPERATURE = 1.0  # generation wants variety; the seed per call keeps it reproducible where
                   # the vendor honours seeds


@dataclass
class SynthConfig:
    task: str
    seeds: str | Path
    n: int
    model: str  # BACKEND:MODEL
    out: str | Path
    fmt: str = "messages"  # messages | alpaca
    language: str = "auto"  # zh | en | auto
    batch: bool = False
    per_call: int = 10  # k
    seeds_per_call: int = 3
    concurrency: int = 4
    base_url: str | None = None
    target: str | None = None  # BACKEND:MODEL whose data rules the output must pass
    seed: int = 0

    def check(self) -> None:
        if self.n < 1:
            raise SpecError("--n must be at least 1", field="--n", hint="e.g. --n 500")
        if not 1 <= self.per_call <= 50:
            raise SpecError("--per-call must be 1-50", field="--per-call", hint="e.g. 10")
        if self.fmt not in ("messages", "alpaca"):
            raise SpecError(f"--format {self.fmt!r}: synth writes messages or alpaca",
                            field="--format", hint="--format messages")
        if self.language not in ("zh", "en", "auto"):
            raise SpecError(f"--language {self.language!r}", field="--language",
                            hint="zh, en or auto")
        if not self.task.strip():
            raise SpecError("--task is empty", field="--task", hint='e.g. --task "customer '
                            'service replies for an online shop"')


@dataclass
class SynthPlan:
    config: SynthConfig
    seeds: Seeds
    language: str
    calls: list[CallPlan]
    input_tokens: int
    output_tokens: int
    max_tokens: int
    cost_usd: float | None
    price: str
    run_key: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": len(self.calls), "per_call": self.config.per_call, "n": self.config.n,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
                "price": self.price, "model": self.config.model, "batch": self.config.batch,
                "language": self.language, "max_tokens_per_call": self.max_tokens,
                "seeds": len(self.seeds.items), "notes": self.notes}

    def line(self) -> str:
        cost = "not priced" if self.cost_usd is None else f"≈ ${self.cost_usd:,.4f}"
        return (f"{len(self.calls)} call(s) to {self.config.model} ({self.config.per_call} "
                f"samples each, for {self.config.n} kept): ~{self.input_tokens:,} input + "
                f"~{self.output_tokens:,} output tokens, {cost} ({self.price})")


def _rates(backend: str, model: str, batch: bool) -> tuple[Any, float, str, list[str]]:
    """(rates, discount, source, notes) from the catalog; rates None when unpriced."""
    from ..catalog import find_model

    info = find_model(backend, model)
    if info is None:
        return None, 0.0, f"{backend}:{model} is not in the price catalog", []
    base = info.base_inference
    rates = base or info.inference
    if rates is None or rates.input_per_1m is None:
        return None, 0.0, f"the catalog has no inference price for {backend}:{info.model}", []
    notes = []
    src = f"catalog {backend}:{info.model} as of {rates.as_of}"
    if base is None and backend in ("openai", "azure"):
        src += ", the fine-tuned rate (no base rate in the catalog): an upper bound"
    discount = 0.0
    if batch:
        d = rates.batch_discount or (info.inference.batch_discount if info.inference else None)
        if d:
            discount = float(d)
            src += f", batch discount {discount:.0%}"
        else:
            notes.append("the catalog has no batch discount for this model: priced at the "
                         "standard rate")
    return rates, discount, src, notes


def plan_synth(cfg: SynthConfig) -> SynthPlan:
    """Everything before the first call: prompts, token counts, price."""
    from ..inference.registry import parse_model
    from ..tokens import counter_for

    cfg.check()
    from ..data.quality import have_datasketch

    if not have_datasketch():
        from ..errors import MissingDependency

        raise MissingDependency("synth's near-duplicate filter needs datasketch",
                                hint="pip install 'unitune[quality]'")
    backend, model = parse_model(cfg.model) if not cfg.base_url else \
        (cfg.model.partition(":")[0] if ":" in cfg.model else "openai",
         cfg.model.partition(":")[2] or cfg.model)
    seeds = read_seeds(cfg.seeds)
    language = seeds.language if cfg.language == "auto" else cfg.language
    k = cfg.per_call
    n_calls = math.ceil(OVERSAMPLE * cfg.n / k)
    calls = build_calls(cfg.task, seeds, n_calls, k, language, cfg.seeds_per_call, cfg.seed)
    counter = counter_for(f"{backend}:{model}") if not cfg.base_url else counter_for("estimate")
    input_tokens = sum(counter.count(c.messages[0]["content"]) + CHAT_OVERHEAD_TOKENS
                       for c in calls)
    per_sample = sum(counter.count(json.dumps(s.sample(), ensure_ascii=False))
                     for s in seeds.items) / len(seeds.items)
    out_per_call = math.ceil(per_sample * k * JSON_OVERHEAD) + 10
    output_tokens = out_per_call * n_calls
    max_tokens = max(256, 2 * out_per_call)
    notes: list[str] = []
    cost = None
    if cfg.base_url or backend == "local":
        price = "no per-token price: a local model or a self-hosted server"
    else:
        rates, discount, price, notes = _rates(backend, model, cfg.batch)
        if rates is not None:
            cost = (input_tokens * rates.input_per_1m + output_tokens *
                    (rates.output_per_1m or 0.0)) / 1e6 * (1 - discount)
    if not counter.exact:
        notes.append("token counts estimated (no exact tokenizer for this model)")
    key = hashlib.sha256(json.dumps({
        "v": PROMPT_VERSION, "task": cfg.task, "seeds": seeds.sha256, "model": cfg.model,
        "base_url": cfg.base_url, "n": cfg.n, "k": k, "fmt": cfg.fmt, "language": language,
        "spc": cfg.seeds_per_call, "seed": cfg.seed}, sort_keys=True).encode()).hexdigest()[:16]
    return SynthPlan(cfg, seeds, language, calls, input_tokens, output_tokens, max_tokens, cost,
                     price, key, notes)


def _structured(caller: Any) -> bool:
    """Ask for the JSON schema on chat-completions callers (OpenAI, Azure, compatible servers):
    the instance's request() gets `response_format` (see .notes/core-requests.md: a
    GenParams.response_format field would make this first-class)."""
    if getattr(caller, "structured", None) is not None:
        return bool(caller.structured)
    request = getattr(caller, "request", None)
    if request is None or getattr(caller, "backend", None) not in ("openai", "azure", "compat"):
        return False

    def with_schema(messages, params):
        kw = request(messages, params)
        kw["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "samples", "strict": True, "schema": RESPONSE_SCHEMA}}
        return kw

    caller.request = with_schema
    return True


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def provenance_path(out: Path) -> Path:
    return out.with_name(out.with_suffix("").name + ".provenance.json") if out.suffix else \
        out.with_name(out.name + ".provenance.json")


def generate(plan: SynthPlan, *, restart: bool = False, log: Callable[[str], None] =
             lambda _m: None, caller: Any = None) -> dict[str, Any]:
    """Make every planned call not yet journaled; returns call statistics."""
    from ..inference.batch import call_once
    from ..inference.registry import caller_for
    from ..inference.types import GenParams
    from ..retry import RetryPolicy

    cfg = plan.config
    out = Path(cfg.out)
    journal = Journal(journal_path(out), {"run": plan.run_key, "model": cfg.model,
                                          "calls": len(plan.calls), "version": PROMPT_VERSION})
    before = journal.open(restart=restart)
    todo = [c for c in plan.calls if not journal.done(c.index)]
    if before:
        log(f"resuming: {before} call(s) already journaled in {journal.path}, {len(todo)} to go")
    caller = caller or caller_for(cfg.model, base_url=cfg.base_url)
    structured = _structured(caller)
    policy = RetryPolicy.from_env()
    limit = max(1, min(cfg.concurrency, int(getattr(caller, "max_concurrency", 1) or 1)))
    failed = 0

    def one(c: CallPlan) -> None:
        nonlocal failed
        params = GenParams(max_tokens=plan.max_tokens, temperature=TEMPERATURE, seed=c.index)
        try:
            g = call_once(caller, c.messages, params, policy=policy, log=log)
        except UnituneError as exc:
            failed += 1
            journal.write({"call": c.index, "ok": False, "error": exc.message})
            log(f"call {c.index + 1} failed: {exc.message}")
            return
        refusal = None
        raw = g.raw if isinstance(g.raw, dict) else {}
        for choice in raw.get("choices") or []:
            refusal = (choice.get("message") or {}).get("refusal") or refusal
        journal.write({"call": c.index, "ok": True, "prompt": c.hash, "text": g.text,
                       "refusal": refusal, "finish_reason": g.finish_reason, "usage": g.usage,
                       "latency_s": round(g.latency_s, 3), "model": g.model})

    if limit == 1:
        for c in todo:
            one(c)
    else:
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="unitune-synth") as pool:
            for fut in as_completed([pool.submit(one, c) for c in todo]):
                fut.result()
    return {"planned": len(plan.calls), "journaled_before": before, "made": len(todo),
            "failed": failed, "structured_output": structured, "journal": str(journal.path),
            "records": journal.records}


def run_synth(plan: SynthPlan, *, restart: bool = False,
              log: Callable[[str], None] = lambda _m: None, caller: Any = None
              ) -> dict[str, Any]:
    """Generate (resuming from the journal), filter, write OUT and its provenance sidecar;
    returns the report."""
    from ..data.quality import diversity
    from .filters import REASONS, SampleFilter, is_refusal, render

    cfg = plan.config
    out = Path(cfg.out)
    stats = generate(plan, restart=restart, log=log, caller=caller)
    records: dict[int, dict[str, Any]] = stats.pop("records")
    filt = SampleFilter(plan.seeds, plan.language, cfg.fmt)
    from .parse import parse_samples

    kept: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (line, provenance)
    surplus = 0
    usage_in = usage_out = 0
    usage_known = True
    for c in plan.calls:
        rec = records.get(c.index)
        if not rec or not rec.get("ok"):
            continue
        u = rec.get("usage") or {}
        if u.get("input_tokens") is None or u.get("output_tokens") is None:
            usage_known = False
        usage_in += u.get("input_tokens") or 0
        usage_out += u.get("output_tokens") or 0
        if rec.get("refusal") and not rec.get("text"):
            filt.counts["refusal"] += cfg.per_call
            continue
        samples, bad = parse_samples(rec.get("text") or "")
        if not samples and is_refusal(rec.get("text") or ""):
            filt.counts["refusal"] += cfg.per_call
            continue
        filt.counts["unparsable"] += bad
        for j, sample in enumerate(samples):
            if filt.kept >= cfg.n:
                surplus += 1
                continue
            if filt.check(f"c{c.index}:{j}", sample) is None:
                kept.append((render(sample, cfg.fmt, plan.seeds.system),
                             {"call": c.index, "sample": j, "seeds": c.seed_ids, "axes": c.axes,
                              "prompt": c.hash}))
    dropped = {r: filt.counts.get(r, 0) for r in REASONS if filt.counts.get(r, 0)}
    if cfg.target:
        kept, vendor = _vendor_rules(kept, cfg.target, cfg.fmt)
        if vendor:
            dropped["vendor_rules"] = vendor
    if surplus:
        dropped["surplus"] = surplus
    _write_jsonl(out, [line for line, _ in kept])
    outputs = [_output_text(line) for line, _ in kept]
    prompts = [_prompt_text(line) for line, _ in kept]
    actual_usd = _price_usage(plan, usage_in, usage_out) if usage_known else None
    report = {
        "out": str(out), "requested": cfg.n, "kept": len(kept), "dropped": dropped,
        "calls": {k: v for k, v in stats.items()},
        "diversity": diversity(outputs, prompts) if outputs else {},
        "spend": {"estimate_usd": None if plan.cost_usd is None else round(plan.cost_usd, 6),
                  "actual_usd": None if actual_usd is None else round(actual_usd, 6),
                  "input_tokens_estimate": plan.input_tokens, "input_tokens_actual": usage_in,
                  "output_tokens_estimate": plan.output_tokens, "output_tokens_actual": usage_out,
                  "usage_reported": usage_known, "price": plan.price},
        "language": plan.language,
    }
    if len(kept) < cfg.n:
        report["shortfall"] = (f"{cfg.n - len(kept)} fewer than requested: the filters dropped "
                               "more than the 30 % margin (see `dropped`); ask for a larger "
                               "--n with another -o, or improve the seeds / task description")
    sidecar = provenance_path(out)
    _write_json(sidecar, {
        "generator": {"model": cfg.model, "base_url": cfg.base_url,
                      "models_reported": sorted({r.get("model") for r in records.values()
                                                 if r.get("ok") and r.get("model")})},
        "prompt": {"version": PROMPT_VERSION, "template_hash": template_hash(plan.language),
                   "task": cfg.task, "language": plan.language, "per_call": cfg.per_call,
                   "structured_output": stats["structured_output"]},
        "seeds": {"file": plan.seeds.file, "sha256": plan.seeds.sha256,
                  "ids": [s.id for s in plan.seeds.items]},
        "run": plan.run_key, "report": {k: v for k, v in report.items() if k != "diversity"},
        "samples": [dict(line=i + 1, **prov) for i, (_l, prov) in enumerate(kept)],
    })
    report["provenance"] = str(sidecar)
    return report


def _output_text(line: dict[str, Any]) -> str:
    if "output" in line:
        return line["output"]
    return line["messages"][-1]["content"]


def _prompt_text(line: dict[str, Any]) -> str:
    if "instruction" in line:
        return line["instruction"] + "\n" + line.get("input", "")
    return line["messages"][-2]["content"]


def _price_usage(plan: SynthPlan, tokens_in: int, tokens_out: int) -> float | None:
    from ..inference.registry import parse_model

    cfg = plan.config
    if cfg.base_url:
        return None
    backend, model = parse_model(cfg.model)
    rates, discount, _src, _notes = _rates(backend, model, cfg.batch)
    if rates is None:
        return None
    return (tokens_in * rates.input_per_1m + tokens_out * (rates.output_per_1m or 0.0)) / 1e6 \
        * (1 - discount)


def _vendor_rules(kept: list, target: str, fmt: str) -> tuple[list, int]:
    """Drop the lines the target's data rules reject (the validator, as `unitune validate
    --target` runs it)."""
    import tempfile

    from ..data.validate import validate_file

    with tempfile.TemporaryDirectory(prefix="unitune-synth-") as tmp:
        path = Path(tmp) / f"candidates.{fmt}.jsonl"
        _write_jsonl(path, [line for line, _ in kept])
        report = validate_file(path, targets=[target])
    bad = {p.line for p in report.errors if p.line is not None}
    return [kv for i, kv in enumerate(kept, start=1) if i not in bad], len(bad)


def _write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
