"""`unitune advise`: prompt engineering vs retrieval vs fine-tuning, from the user's goal, their
data and the target backends' prices — by the guide's decision rules (1.1–1.3: knowledge that
changes → retrieval; format / style / behaviour → tuning; too few examples (<100) → few-shot
prompting first; a quick prototype or general Q&A → prompting), with the evidence each rule used
and an estimated cost of every route. No model is called; an optional model opinion is added by
the CLI, labelled as such.

    advice = advise("data.jsonl", goal="answer in our brand's tone, as JSON")
    advice.recommendation    # "fine-tuning", "prompting", "retrieval", "retrieval+fine-tuning"
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .evidence import DataEvidence, read_data
from .goal import GoalSignals, read_goal

ROUTES = ("prompting", "retrieval", "fine-tuning", "retrieval+fine-tuning")
FEW_SHOT = 5  # examples pasted into each prompt on the prompting route
RETRIEVED_TOKENS = 1500  # context added per call on the retrieval route (3 chunks × ~500)
CALLS = 1000  # per-call costs are quoted per this many calls
NO_DATA_TOKENS = 200  # prompt and reply length assumed when there is no data
JSON_BEHAVIOUR_SHARE = 0.5  # replies that are JSON: a format to learn
SHARED_SYSTEM_SHARE = 0.8  # one system prompt across the data: a behaviour to learn
CONTEXT_SHARE = 0.3  # prompts with pasted documents: the knowledge travels with the prompt


@dataclass
class Rule:
    id: str
    fired: bool
    says: str  # what the rule concludes
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "fired": self.fired, "says": self.says, "evidence": self.evidence}


@dataclass
class Advice:
    recommendation: str
    summary: str
    goal: GoalSignals
    data: DataEvidence | None
    rules: list[Rule]
    costs: dict[str, dict[str, Any]]  # target → route → figures
    minimum_examples: int
    task: str | None = None
    assumptions: list[str] = field(default_factory=list)
    model_opinion: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"recommendation": self.recommendation, "summary": self.summary,
                "goal": {"text": self.goal.goal, "signals": self.goal.to_dict()},
                "evidence": {"data": self.data.to_dict() if self.data else None,
                             "minimum_examples": self.minimum_examples, "task": self.task,
                             "rules": [r.to_dict() for r in self.rules]},
                "costs": self.costs, "assumptions": self.assumptions,
                "model_opinion": self.model_opinion}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def decide(signals: GoalSignals, ev: DataEvidence | None, minimum: int) -> tuple[str, list[Rule],
                                                                                  str]:
    """The guide's decision rules, in order; returns (recommendation, rules, summary)."""
    n = ev.examples if ev else 0
    rules: list[Rule] = []
    knowledge_ev = [f"goal mentions: {', '.join(signals.hits['knowledge'])}"] \
        if signals.has("knowledge") else []
    if ev and ev.context_share >= CONTEXT_SHARE:
        knowledge_ev.append(f"{_pct(ev.context_share)} of the prompts paste documents/context "
                            "in: the knowledge travels with the prompt")
    knowledge = bool(knowledge_ev)
    rules.append(Rule("knowledge-changes", knowledge, "knowledge that changes or must be looked "
                      "up → retrieval (RAG updates without retraining; fine-tuning cannot add "
                      "new knowledge)", knowledge_ev))
    behaviour_ev = [f"goal mentions: {', '.join(signals.hits['behaviour'])}"] \
        if signals.has("behaviour") else []
    if ev and ev.json_reply_share >= JSON_BEHAVIOUR_SHARE:
        behaviour_ev.append(f"{_pct(ev.json_reply_share)} of the replies are JSON: a fixed "
                            "output format")
    if ev and ev.shared_system_share >= SHARED_SYSTEM_SHARE:
        behaviour_ev.append(f"{_pct(ev.shared_system_share)} of the examples share one system "
                            "prompt: one behaviour to learn")
    behaviour = bool(behaviour_ev)
    rules.append(Rule("format-style-behaviour", behaviour, "a consistent format, style or "
                      "behaviour → fine-tuning (the most consistent, and shorter prompts at "
                      "inference)", behaviour_ev))
    enough = n >= minimum
    few_ev = [f"{n} usable example(s); fine-tuning needs at least {minimum}"
              + (" (the guide: <100 examples do not suit fine-tuning)" if minimum <= 100 else "")]
    rules.append(Rule("too-few-examples", not enough, "too few examples → few-shot prompting "
                      "first, fine-tune once there are enough", few_ev))
    quick_ev = [f"goal mentions: {', '.join(signals.hits['prototype'] + signals.hits['general'])}"] \
        if signals.has("prototype") or signals.has("general") else []
    quick = bool(quick_ev)
    rules.append(Rule("prototype-or-general", quick, "a quick prototype or general Q&A → "
                      "prompting (fine-tuning is for a settled, specific behaviour)", quick_ev))

    if knowledge and behaviour and enough and not quick:
        rec = "retrieval+fine-tuning"
        why = ("the goal needs knowledge that changes (retrieval) and a consistent behaviour "
               f"that {n} examples can teach (fine-tuning): combine them")
    elif knowledge:
        rec = "retrieval"
        why = "the knowledge changes or must be looked up: retrieve it at query time"
        if behaviour and not enough:
            why += f"; fine-tune for the format too once you have {minimum}+ examples"
    elif quick:
        rec = "prompting"
        why = "a prototype or general Q&A: start with prompt engineering"
    elif behaviour and enough:
        rec = "fine-tuning"
        why = f"a consistent format/style/behaviour and {n} examples to teach it"
    elif behaviour:
        rec = "prompting"
        why = (f"a behaviour to teach but only {n} example(s): use them as few-shot examples "
               f"in the prompt first; fine-tune at {minimum}+")
    else:
        rec = "prompting"
        why = "no sign of changing knowledge or of a behaviour to teach: start simple (the " \
              "guide: try prompt engineering and RAG first)"
    return rec, rules, why


def _price_pair(price: Any) -> tuple[float | None, float | None]:
    if price is None:
        return None, None
    return price.input_per_1m, price.output_per_1m


def _per_calls(inp: float, out: float, pin: float | None, pout: float | None) -> float | None:
    if pin is None or pout is None:
        return None
    return round(CALLS * (inp * pin + out * pout) / 1e6, 4)


def route_costs(targets: list[Any], ev: DataEvidence | None, data: Path | None
                ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Cost of every route on every target: one-off (training) and per CALLS calls."""
    from ..cost.estimate import estimate
    from ..errors import UnituneError
    from ..spec import JobSpec

    assumptions = [f"prompting pastes {FEW_SHOT} examples into every prompt",
                   f"retrieval adds {RETRIEVED_TOKENS:,} tokens of context per call; embedding "
                   "and index costs are not in the catalog and not counted",
                   f"per-call costs are per {CALLS:,} calls"]
    if ev and ev.examples:
        p, r = ev.prompt_tokens_mean, ev.reply_tokens_mean
        assumptions.append(f"prompt {p:.0f} and reply {r:.0f} tokens per call: the data's "
                           "means (estimated tokens)")
    else:
        p = r = float(NO_DATA_TOKENS)
        assumptions.append(f"no data: prompt and reply assumed {NO_DATA_TOKENS} tokens each")
    shots = FEW_SHOT * (p + r)
    out: dict[str, dict[str, Any]] = {}
    for info in targets:
        key = f"{info.backend}:{info.model}"
        base = info.base_inference
        bin_, bout = _price_pair(base or info.inference)
        tin, tout = _price_pair(info.inference)
        base_label = "base-model rate" if base else "catalog inference rate (the tuned-model " \
                                                   "rate where the vendor charges more for it)"
        row: dict[str, Any] = {}
        row["prompting"] = {"one_off_usd": 0.0,
                            "per_calls_usd": _per_calls(p + shots, r, bin_, bout),
                            "rate": base_label}
        row["retrieval"] = {"one_off_usd": None, "one_off_note": "index/embeddings: not priced",
                            "per_calls_usd": _per_calls(p + RETRIEVED_TOKENS, r, bin_, bout),
                            "rate": base_label}
        training: float | None = None
        hosting: float | None = None
        note = None
        if data is not None and ev is not None and ev.examples:
            try:
                spec = JobSpec.from_dict({"name": "advise", "models": {info.backend: info.model},
                                          "method": "dpo" if ev.preference_examples else "sft",
                                          "data": {"train": str(data)}})
                est = estimate(spec, info.backend, info.model)
                training, hosting = est.training_usd, est.hosting_usd_per_month
                if training is None:
                    note = "; ".join(est.notes[:2]) or "no training price"
            except UnituneError as exc:
                note = exc.message
        else:
            note = "needs data to estimate"
        ft = {"one_off_usd": None if training is None else round(training, 4),
              "per_calls_usd": _per_calls(p, r, tin, tout),
              "hosting_usd_per_month": hosting, "rate": "tuned-model rate"}
        if note:
            ft["one_off_note"] = note
        row["fine-tuning"] = ft
        row["retrieval+fine-tuning"] = {**ft, "per_calls_usd": _per_calls(p + RETRIEVED_TOKENS,
                                                                          r, tin, tout)}
        out[key] = row
    return out, assumptions


def default_targets() -> list[Any]:
    """The catalog's default cloud models (the comparison set `unitune compare` uses)."""
    from ..catalog import models

    return [m for m in models() if m.default and m.backend != "local"]


def advise(data: str | Path | None, goal: str, *, targets: list[str] | None = None,
           task: str | None = None, fmt: str = "auto") -> Advice:
    """Deterministic advice (see the module docstring). `targets` are `backend:model` strings."""
    from ..data.quality import MIN_FOR_TUNING, volume_tier
    from ..data.validate import parse_target
    from ..errors import SpecError

    minimum = MIN_FOR_TUNING
    if task:
        try:
            minimum = max(MIN_FOR_TUNING, volume_tier(task).low)
        except ValueError as exc:
            raise SpecError(str(exc), field="--task", hint="e.g. --task classification") from None
    signals = read_goal(goal)
    path = Path(data) if data else None
    ev = read_data(path, fmt) if path is not None else None
    rec, rules, why = decide(signals, ev, minimum)
    infos = [parse_target(t) for t in targets] if targets else default_targets()
    costs, assumptions = route_costs(infos, ev, path)
    return Advice(recommendation=rec, summary=why, goal=signals, data=ev, rules=rules,
                  costs=costs, minimum_examples=minimum, task=task, assumptions=assumptions)
