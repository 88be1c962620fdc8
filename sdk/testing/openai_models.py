"""Model listing and scripted create refusals for the fake OpenAI / Azure OpenAI server.

Kept out of `openai_server.py` (which hooks `intercept` into its request handling with a few
lines) so the listing can grow without touching the job emulation.

    GET /v1/models (OpenAI)            {"object": "list", "data": [{id, object, created,
                                        owned_by}]} — OpenAI's shape, which says nothing
                                        about tunability
    GET /openai/models (Azure)         Azure's data-plane shape (authoring spec example
                                        get_models.json): {id, object, status, created_at,
                                        capabilities{fine_tune, inference, chat_completion…},
                                        lifecycle_status, deprecation{fine_tune, inference}}
    POST …/fine_tuning/jobs            answered with a scripted refusal while one is queued
                                        (`refuse_creates`), e.g. the 403 OpenAI gives an
                                        organisation gated out of fine-tuning. The body shape
                                        {"error": {"message", "type", "param", "code"}} is
                                        OpenAI's usual error envelope; the exact wording OpenAI
                                        uses for the gate is not published (ASSUMED here).

Use: `set_models(fake, [...])`, `refuse_creates(fake, status=403, message=...)`.
"""
from __future__ import annotations

import calendar
import threading
from datetime import date
from typing import Any

GATE_MESSAGE = ("Your organization does not have access to create fine-tuning jobs: OpenAI's "
                "self-serve fine-tuning is no longer available to organizations without recent "
                "fine-tuning activity.")

_LOCK = threading.Lock()


def _ts(day: str) -> int:
    return calendar.timegm(date.fromisoformat(day).timetuple())


DEFAULT_OPENAI = ["gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4o-2024-08-06",
                  "gpt-4o-mini-2024-07-18", "gpt-5.5"]

# Azure: tunable base models carry capabilities.fine_tune true; gpt-35-turbo is listed but no
# longer tunable; gpt-4o-mini has a fine-tuning deprecation date (illustrative values)
DEFAULT_AZURE: list[dict[str, Any]] = [
    {"id": "gpt-4.1-2025-04-14", "fine_tune": True, "lifecycle": "generally-available"},
    {"id": "gpt-4.1-mini-2025-04-14", "fine_tune": True, "lifecycle": "generally-available"},
    {"id": "gpt-4.1-nano-2025-04-14", "fine_tune": True, "lifecycle": "generally-available"},
    {"id": "gpt-4o-2024-08-06", "fine_tune": True, "lifecycle": "generally-available"},
    {"id": "gpt-4o-mini-2024-07-18", "fine_tune": True, "lifecycle": "generally-available",
     "fine_tune_until": "2027-03-31"},
    {"id": "gpt-35-turbo-0125", "fine_tune": False, "lifecycle": "deprecated"},
]


def set_models(fake: Any, models: list[Any]) -> None:
    """What GET /models lists: OpenAI ids (str) or Azure entries ({id, fine_tune, lifecycle,
    fine_tune_until})."""
    with _LOCK:
        fake._listing = list(models)


def refuse_creates(fake: Any, status: int = 403, message: str = GATE_MESSAGE,
                   code: str | None = None, count: int = 1) -> None:
    """Answer the next `count` job creations with this refusal (nothing is created)."""
    with _LOCK:
        fake._refusals = getattr(fake, "_refusals", []) + [(status, message, code)] * count


def _openai_obj(mid: str) -> dict[str, Any]:
    return {"id": mid, "object": "model", "created": 1715367049,
            "owned_by": "system" if not mid.startswith("ft:") else "user-unitunefake"}


def _azure_obj(m: dict[str, Any]) -> dict[str, Any]:
    deprecation = {"inference": _ts("2027-06-30")}
    if m.get("fine_tune_until"):
        deprecation["fine_tune"] = _ts(m["fine_tune_until"])
    return {"id": m["id"], "object": "model", "status": "succeeded", "created_at": 1715367049,
            "capabilities": {"fine_tune": bool(m.get("fine_tune")), "inference": True,
                             "completion": False, "chat_completion": True, "embeddings": False},
            "lifecycle_status": m.get("lifecycle", "generally-available"),
            "deprecation": deprecation}


def intercept(fake: Any, method: str, route: str, q: dict[str, str]
              ) -> tuple[int, dict[str, str], dict[str, Any]] | None:
    """The answer for a listing or a scripted refusal, or None to let the server route it."""
    route = "/" + route.strip("/")
    if route == "/fine_tuning/jobs" and method == "POST":
        with _LOCK:
            refusals = getattr(fake, "_refusals", [])
            if not refusals:
                return None
            status, message, code = refusals.pop(0)
        fake.create_attempts += 1
        return status, {}, {"error": {"message": message, "type": "invalid_request_error",
                                      "param": None, "code": code}}
    if route == "/models" and method == "GET":
        with _LOCK:
            listing = getattr(fake, "_listing", None)
        if fake.azure:
            items = [_azure_obj(m) for m in (listing if listing is not None else DEFAULT_AZURE)]
        else:
            items = [_openai_obj(m) for m in (listing if listing is not None else DEFAULT_OPENAI)]
        return 200, {}, {"object": "list", "data": items}
    return None
