"""Reading SDK objects and plain dicts alike: a field, a Unix timestamp, the object as JSON data."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def ts(value: Any) -> datetime | None:
    if value in (None, 0):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def plain(obj: Any) -> Any:
    """An SDK object as plain JSON data."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_unset=False)
    return obj


def field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)
