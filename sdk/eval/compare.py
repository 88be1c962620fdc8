"""`unitune eval JOB_A JOB_B …`: several tuned models on the same held-out prompts, one table.

The question users come with — "should I switch vendors?" — answered with numbers: for each job,
every `score` metric with its bootstrap 95% interval, the judge's win rate against the first job
(with `--judge`; position-swapped as in `judge`), the training cost actually billed (the registry's
figure; "not recorded" when the vendor did not report one), the inference price per 1,000
requests from the catalog (the mean prompt and answer lengths observed here, at the tuned model's
rates), and the median latency. For each metric the best job is named and every other job's
difference to it gets a paired interval: an interval containing 0 is "within noise".
"""
from __future__ import annotations

from typing import Any, Callable

from ..inference.types import GenParams
from . import metrics as M
from . import stats
from .run import EvalOptions, holdout_items


def _price_per_1k(caller: Any, in_tokens: float, out_tokens: float) -> tuple[float | None, str]:
    from ..inference.cost import _rates

    price = getattr(caller, "price", None)
    if price is None:
        return None, "no per-token price (local or self-hosted)"
    rates, src = _rates(price[0], price[1], tuned=bool(getattr(caller, "tuned", False)))
    if rates is None:
        return None, src
    usd = 1000 * (in_tokens * rates.input_per_1m + out_tokens * (rates.output_per_1m or 0)) / 1e6
    return usd, src


def compare_jobs(jobs: list[str], opts: EvalOptions | None = None, *,
                 log: Callable[[str], None] = lambda _m: None, registry: Any = None
                 ) -> dict[str, Any]:
    from ..inference.batch import run_batch
    from ..inference.cost import confirm, estimate
    from ..inference.registry import caller_for_job
    from ..registry import Registry

    opts = opts or EvalOptions()
    reg = registry or Registry()
    recs = [reg.get_job(j) for j in jobs]
    path, items = holdout_items(recs[0], opts)
    log(f"holdout: {len(items)} example(s) from {path}")
    callers = [caller_for_job(r) for r in recs]
    params = opts.params or GenParams(max_tokens=opts.max_tokens, temperature=0.0, seed=0)
    prompts = [it.prompt for it in items]
    estimates = [estimate(c, prompts, params) for c in callers]
    judge_caller = None
    if opts.judge and len(recs) > 1:
        from .judge import judge_caller_for, judge_estimate

        judge_caller = judge_caller_for(opts.judge)
        estimates += [judge_estimate(judge_caller, items)] * (len(recs) - 1)
    confirm(estimates, yes=opts.yes, ask=opts.ask, log=log)
    outcomes = []
    for c in callers:
        log(f"answering with {c.label}")
        outcomes.append(run_batch(c, prompts, params, concurrency=opts.concurrency, log=log))
    keep = [i for i in range(len(items)) if all(o[i].ok for o in outcomes)]
    if not keep:
        from ..errors import UnituneError

        raise UnituneError("no example was answered by every model",
                           hint="check each model with `unitune generate JOB \"hi\"`")
    refs = [items[i].reference for i in keep]
    preds = [[o[i].generation.text for i in keep] for o in outcomes]
    n = len(keep)
    per_job: list[dict[str, Any]] = []
    stat_rows: list[dict[str, Any]] = []
    for rec, caller, ps, outs in zip(recs, callers, preds, outcomes):
        s = M.score(ps, refs)
        entry: dict[str, Any] = {"job": rec.id, "backend": rec.backend, "model": caller.label,
                                 "metrics": {}}
        rows: dict[str, Any] = {}
        for name in M.METRICS:
            if name in ("bleu", "chrf"):
                r, comp = M.paired_stats(name, ps, refs)
                fn = (lambda r, comp: lambda idx: comp([r[i] for i in idx]))(r, comp)
            else:
                fn = stats.mean_of(s.per_example[name])
            rows[name] = fn
            ci = stats.single(fn, n, resamples=opts.resamples)
            entry["metrics"][name] = {"value": s.metrics[name], "ci95": [ci[0], ci[1]]}
        gens = [outs[i].generation for i in keep]
        ins = [g.usage.get("input_tokens") for g in gens if g.usage.get("input_tokens")]
        outs_t = [g.usage.get("output_tokens") for g in gens if g.usage.get("output_tokens")]
        usd, src = _price_per_1k(caller, sum(ins) / len(ins) if ins else 0.0,
                                 sum(outs_t) / len(outs_t) if outs_t else 0.0)
        entry["training_cost_usd"] = rec.cost_usd
        entry["inference_usd_per_1k_requests"] = usd
        entry["inference_price_source"] = src
        entry["median_latency_s"] = stats.median([g.latency_s for g in gens])
        per_job.append(entry)
        stat_rows.append(rows)
    best: dict[str, Any] = {}
    for name in M.METRICS:
        k_best = max(range(len(per_job)), key=lambda k: per_job[k]["metrics"][name]["value"])
        best[name] = per_job[k_best]["job"]
        for k, entry in enumerate(per_job):
            if k == k_best:
                entry["metrics"][name]["vs_best"] = None
                continue
            ci = stats.paired(stat_rows[k_best][name], stat_rows[k][name], n,
                              resamples=opts.resamples)
            entry["metrics"][name]["vs_best"] = {
                "delta": per_job[k]["metrics"][name]["value"] - per_job[k_best]["metrics"][
                    name]["value"], "ci95": [ci[0], ci[1]], "within_noise":
                    stats.within_noise(ci)}
    if judge_caller is not None:
        from .judge import judge_all

        kept = [items[i] for i in keep]
        per_job[0]["judge_vs_first"] = None
        for k in range(1, len(per_job)):
            summary, _rows = judge_all(judge_caller, kept, preds[0], preds[k],
                                       concurrency=opts.concurrency, log=log)
            per_job[k]["judge_vs_first"] = {x: summary[x] for x in
                                            ("win_rate", "tuned", "base", "tie", "unparsed")}
    return {"examples": n, "holdout": str(path), "jobs": per_job, "best": best,
            "bleu_signature": M.score(preds[0], refs).bleu_signature,
            "cost_estimate": [e.to_dict() for e in estimates]}
