"""`unitune eval JOB`: the base model and the tuned model on the same held-out prompts.

Both models answer every prompt once (temperature 0, seed 0 where the vendor takes one; bounded
concurrency and the core's retries, `unitune.inference.batch`), after a cost pre-flight for every
paid call (`unitune.inference.cost`). Each `score` metric is reported for base and tuned with the
difference and its paired-bootstrap 95% interval (`stats`); the win rate is the share of examples
whose tuned answer has the higher sentence chrF (ties are counted apart). Local jobs also get the
assistant-masked perplexity of the reference answers under each model. An example where either
model's call failed is left out of every metric and counted in `failed`.

Saved beside the job (UNITUNE_HOME/jobs/<id>/eval/<timestamp>/): `examples.jsonl` (prompt,
reference, both answers, per-example scores and their difference), `table.md` (the same, readable),
`report.json`, with `--judge` `judge.jsonl`, and with `--plot` `metrics.png`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..inference.types import GenParams
from . import metrics as M
from . import stats

Log = Callable[[str], None]


@dataclass
class EvalOptions:
    holdout: str | None = None
    validation: bool = False
    limit: int | None = None
    judge: str | None = None
    max_tokens: int = 256
    concurrency: int = 4
    yes: bool = False
    plot: bool = False
    resamples: int = stats.RESAMPLES
    ask: Callable[[str], bool] | None = None
    params: GenParams | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def eval_dir(job_id: str) -> Path:
    from ..paths import unitune_home

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = unitune_home() / "jobs" / job_id / "eval"
    out = base / stamp
    n = 1
    while out.exists():
        n += 1
        out = base / f"{stamp}-{n}"
    out.mkdir(parents=True)
    return out


def holdout_items(rec: Any, opts: EvalOptions):
    from . import holdout

    path = Path(opts.holdout) if opts.holdout else holdout.job_validation_file(rec)
    return path, holdout.load(path, limit=opts.limit)


def compare_scores(base_preds: list[str], tuned_preds: list[str], refs: list[Any], *,
                   resamples: int = stats.RESAMPLES) -> dict[str, Any]:
    """{"metrics": {NAME: {base, tuned, delta, ci95, within_noise}}, "win_rate", "wins",
    "bleu_signature"} for paired predictions."""
    n = len(refs)
    b, t = M.score(base_preds, refs), M.score(tuned_preds, refs)
    out: dict[str, Any] = {}
    for name in M.METRICS:
        if name in ("bleu", "chrf"):
            rows_b, comp_b = M.paired_stats(name, base_preds, refs)
            rows_t, comp_t = M.paired_stats(name, tuned_preds, refs)
            ci = stats.paired(lambda idx: comp_b([rows_b[i] for i in idx]),
                              lambda idx: comp_t([rows_t[i] for i in idx]), n,
                              resamples=resamples)
        else:
            ci = stats.paired(stats.mean_of(b.per_example[name]),
                              stats.mean_of(t.per_example[name]), n, resamples=resamples)
        base_v, tuned_v = b.metrics[name], t.metrics[name]
        out[name] = {"base": base_v, "tuned": tuned_v, "delta": tuned_v - base_v,
                     "ci95": [ci[0], ci[1]], "within_noise": stats.within_noise(ci)}
    sb, st = M.sentence_chrf(base_preds, refs), M.sentence_chrf(tuned_preds, refs)
    wins = {"tuned": sum(1 for x, y in zip(sb, st) if y > x),
            "base": sum(1 for x, y in zip(sb, st) if x > y)}
    wins["tie"] = n - wins["tuned"] - wins["base"]
    return {"metrics": out, "win_rate": wins["tuned"] / n if n else None, "wins": wins,
            "bleu_signature": t.bleu_signature, "per_example": {
                "base": b.per_example, "tuned": t.per_example, "chrf_base": sb, "chrf_tuned": st}}


def evaluate(job: str, opts: EvalOptions | None = None, *, log: Log = lambda _m: None,
             registry: Any = None) -> dict[str, Any]:
    """Run the evaluation of one job; returns the report (see the module docstring)."""
    from ..inference.batch import run_batch
    from ..inference.cost import confirm, estimate
    from ..inference.registry import caller_for_job
    from ..registry import Registry

    opts = opts or EvalOptions()
    rec = (registry or Registry()).get_job(job)
    path, items = holdout_items(rec, opts)
    log(f"holdout: {len(items)} example(s) from {path}")
    base, tuned = caller_for_job(rec, base=True), caller_for_job(rec)
    params = opts.params or GenParams(max_tokens=opts.max_tokens, temperature=0.0, seed=0)
    prompts = [it.prompt for it in items]
    judge_caller = None
    estimates = [estimate(base, prompts, params), estimate(tuned, prompts, params)]
    if opts.judge:
        from .judge import judge_caller_for, judge_estimate

        judge_caller = judge_caller_for(opts.judge)
        estimates.append(judge_estimate(judge_caller, items))
    confirm(estimates, yes=opts.yes, ask=opts.ask, log=log)

    log(f"answering with {base.label}")
    out_b = run_batch(base, prompts, params, concurrency=opts.concurrency, log=log)
    log(f"answering with {tuned.label}")
    out_t = run_batch(tuned, prompts, params, concurrency=opts.concurrency, log=log)
    keep = [i for i, (x, y) in enumerate(zip(out_b, out_t)) if x.ok and y.ok]
    failed = [{"id": items[i].id, "base": None if out_b[i].ok else out_b[i].error.message,
               "tuned": None if out_t[i].ok else out_t[i].error.message}
              for i in range(len(items)) if i not in set(keep)]
    if not keep:
        first = next(f for f in failed)
        from ..errors import UnituneError

        raise UnituneError(f"every call failed; first: {first['tuned'] or first['base']}",
                           hint="check the model is reachable: `unitune generate "
                                f"{rec.id} \"hi\"` (and `--base`)")
    kept = [items[i] for i in keep]
    base_preds = [out_b[i].generation.text for i in keep]
    tuned_preds = [out_t[i].generation.text for i in keep]
    refs = [it.reference for it in kept]
    result = compare_scores(base_preds, tuned_preds, refs, resamples=opts.resamples)
    per = result.pop("per_example")
    report: dict[str, Any] = {
        "job": rec.id, "backend": rec.backend, "holdout": str(path), "examples": len(kept),
        "failed": len(failed), "base_model": base.label, "tuned_model": tuned.label,
        **result,
        "latency_s": {"base": stats.median([out_b[i].generation.latency_s for i in keep]),
                      "tuned": stats.median([out_t[i].generation.latency_s for i in keep])},
        "cost_estimate": [e.to_dict() for e in estimates],
    }
    if rec.backend == "local" and hasattr(base, "perplexity"):
        report["metrics"]["perplexity"] = _perplexity(base, tuned, kept, opts.resamples)
    judge_rows: list[dict[str, Any]] = []
    if judge_caller is not None:
        from .judge import judge_all

        report["judge"], judge_rows = judge_all(judge_caller, kept, base_preds, tuned_preds,
                                                concurrency=opts.concurrency, log=log)
    out_dir = eval_dir(rec.id)
    rows = []
    for k, it in enumerate(kept):
        row = {"id": it.id, "prompt": it.prompt, "reference": it.reference,
               "base": base_preds[k], "tuned": tuned_preds[k],
               "base_finish": out_b[keep[k]].generation.finish_reason,
               "tuned_finish": out_t[keep[k]].generation.finish_reason,
               "chrf": {"base": per["chrf_base"][k], "tuned": per["chrf_tuned"][k],
                        "delta": per["chrf_tuned"][k] - per["chrf_base"][k]}}
        for name in ("rouge_l", "exact_match", "token_f1"):
            row[name] = {"base": per["base"][name][k], "tuned": per["tuned"][name][k],
                         "delta": per["tuned"][name][k] - per["base"][name][k]}
        rows.append(row)
    files = write_outputs(out_dir, report, rows, failed, judge_rows, plot=opts.plot)
    report["files"] = files
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2),
                                         encoding="utf-8")
    return report


def _perplexity(base: Any, tuned: Any, items: list[Any], resamples: int) -> dict[str, Any]:
    convs = [it.conversation() for it in items]
    nb, nt = base.nll(convs), tuned.nll(convs)

    def ppl(rows: list[tuple[float, int]]) -> Callable[[list[int]], float]:
        def f(idx: list[int]) -> float:
            nll = sum(rows[i][0] for i in idx)
            cnt = sum(rows[i][1] for i in idx)
            return math.exp(nll / cnt) if cnt else float("nan")
        return f

    n = len(items)
    all_idx = list(range(n))
    b, t = ppl(nb)(all_idx), ppl(nt)(all_idx)
    ci = stats.paired(ppl(nb), ppl(nt), n, resamples=resamples)
    return {"base": b, "tuned": t, "delta": t - b, "ci95": [ci[0], ci[1]],
            "within_noise": stats.within_noise(ci), "lower_is_better": True}


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return (text[:n - 1] + "…") if len(text) > n else text


def write_outputs(out_dir: Path, report: dict[str, Any], rows: list[dict[str, Any]],
                  failed: list[dict[str, Any]], judge_rows: list[dict[str, Any]], *,
                  plot: bool) -> dict[str, str]:
    files = {"examples": str(out_dir / "examples.jsonl"), "table": str(out_dir / "table.md"),
             "report": str(out_dir / "report.json")}
    with open(out_dir / "examples.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    lines = [f"# eval of {report['job']} ({report['backend']})", "",
             f"{report['examples']} example(s) from {report['holdout']}; "
             f"base = {report['base_model']}, tuned = {report['tuned_model']}", "",
             "| metric | base | tuned | delta | 95% CI | within noise |", "|---|---|---|---|---|---|"]
    for name, m in report["metrics"].items():
        lines.append(f"| {name} | {m['base']:.4g} | {m['tuned']:.4g} | {m['delta']:+.4g} | "
                     f"[{m['ci95'][0]:+.4g}, {m['ci95'][1]:+.4g}] | "
                     f"{'yes' if m['within_noise'] else 'no'} |")
    lines += ["", f"win rate (sentence chrF): {report['win_rate']:.0%} "
              f"({report['wins']['tuned']} tuned, {report['wins']['base']} base, "
              f"{report['wins']['tie']} tie)", "", "## per example (chrF)", "",
              "| id | chrF base | chrF tuned | delta | reference | base | tuned |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row["chrf"]
        cells = [row["id"], f"{c['base']:.1f}", f"{c['tuned']:.1f}", f"{c['delta']:+.1f}",
                 _short(row["reference"]), _short(row["base"]), _short(row["tuned"])]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    if failed:
        lines += ["", f"## {len(failed)} example(s) left out (a call failed)", ""]
        lines += [f"- {f['id']}: base: {f['base'] or 'ok'}; tuned: {f['tuned'] or 'ok'}"
                  for f in failed]
    (out_dir / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if judge_rows:
        files["judge"] = str(out_dir / "judge.jsonl")
        with open(out_dir / "judge.jsonl", "w", encoding="utf-8") as fh:
            for row in judge_rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if plot:
        files["plot"] = str(plot_metrics(report, out_dir / "metrics.png"))
    return files


def plot_metrics(report: dict[str, Any], path: Path) -> Path:
    """Bar chart: each metric on its own 0–1 scale, base vs tuned, with the tuned bar's
    interval (delta CI moved onto the base value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in M.METRICS if n in report["metrics"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(names))
    base = [report["metrics"][n]["base"] / M.SCALE[n] for n in names]
    tuned = [report["metrics"][n]["tuned"] / M.SCALE[n] for n in names]
    err = [[max(0.0, t - (b + report["metrics"][n]["ci95"][0] / M.SCALE[n])) for n, b, t in
            zip(names, base, tuned)],
           [max(0.0, (b + report["metrics"][n]["ci95"][1] / M.SCALE[n]) - t) for n, b, t in
            zip(names, base, tuned)]]
    ax.bar([x - 0.2 for x in xs], base, 0.4, label="base")
    ax.bar([x + 0.2 for x in xs], tuned, 0.4, label="tuned", yerr=err, capsize=3)
    ax.set_xticks(list(xs), [f"{n}\n(/{M.SCALE[n]:g})" if M.SCALE[n] != 1 else n for n in names])
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"{report['job']}: base vs tuned ({report['examples']} examples)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
