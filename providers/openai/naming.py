"""The metadata keys unitune puts on every job it creates, and the slugs it derives from names."""
from __future__ import annotations

import re

META_JOB = "unitune_job_id"
META_KEY = "unitune_key"
META_SPEC = "unitune_spec_hash"


def slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return s[:limit] or "unitune"
