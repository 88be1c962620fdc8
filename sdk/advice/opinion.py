"""An optional model's opinion for `unitune advise --model BACKEND:MODEL`: the goal, the
evidence and the rules' recommendation are shown to a model, which answers with a route and a
reason. It is labelled as a model's opinion and never changes the deterministic recommendation.
"""
from __future__ import annotations

import json
from typing import Any

LABEL = "a model's opinion (not one of unitune's rules; the recommendation above stands)"


def _prompt(advice: Any) -> str:
    from . import ROUTES

    ev = advice.data.to_dict() if advice.data else "no data given"
    rules = [f"{r.id}: {'fired' if r.fired else 'not fired'} — {r.says}; "
             f"{'; '.join(r.evidence)}" for r in advice.rules]
    return (
        "You advise on adapting a language model. Choose one route among: "
        f"{', '.join(ROUTES)}.\n"
        "Rules of thumb: knowledge that changes → retrieval; a consistent format, style or "
        "behaviour → fine-tuning; fewer than 100 examples → few-shot prompting first; a quick "
        "prototype or general Q&A → prompting.\n\n"
        f"Goal: {advice.goal.goal}\n"
        f"Data evidence: {json.dumps(ev, ensure_ascii=False)}\n"
        f"Rules checked:\n- " + "\n- ".join(rules) + "\n"
        f"Deterministic recommendation: {advice.recommendation}\n\n"
        'Answer with JSON only: {"route": "<one route>", "why": "<two sentences>"}')


def model_opinion(advice: Any, model: str, *, base_url: str | None = None) -> dict[str, Any]:
    """Ask `model` (BACKEND:MODEL); the answer, parsed leniently, with usage and the label."""
    from ..inference import GenParams, generate
    from . import ROUTES

    gen = generate(model, [{"role": "user", "content": _prompt(advice)}],
                   GenParams(max_tokens=300, temperature=0.0), base_url=base_url)
    route, why = None, None
    text = gen.text or ""
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            doc = json.loads(text[start:end + 1])
            route = doc.get("route") if doc.get("route") in ROUTES else None
            why = doc.get("why") if isinstance(doc.get("why"), str) else None
        except ValueError:
            pass
    if route is None:
        low = text.lower()
        found = [r for r in sorted(ROUTES, key=len, reverse=True) if r in low]
        route = found[0] if found else None
    return {"label": LABEL, "model": model, "route": route, "why": why or text.strip()[:600],
            "agrees": route == advice.recommendation if route else None,
            "usage": gen.usage, "finish_reason": gen.finish_reason}
