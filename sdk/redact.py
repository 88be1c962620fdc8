"""Secret redaction, in one place: by key name, by value, and by shape.

Everything unitune writes (registry rows, job folders, logs, error texts, `--json`) goes through
`redact` (structures) or `redact_text` (strings):

* by name: the value of a key that names a credential (`api_key`, `OPENAI_API_KEY`, `token`,
  `hf_token`, `clientSecret`, `password`, `credentials`, `openai_key`, `private`…) is replaced;
  `max_tokens`, `num_virtual_tokens` or `PWD` are not secrets (whole words are matched, and a
  directory is never a secret: paths in errors must still say which file);
* by value: every secret-named environment variable's value (and any value passed in `extra`)
  is replaced wherever it appears in text;
* by shape: OpenAI-style keys (`sk-…`), `Bearer …` tokens, AWS secret-looking strings after
  `aws_secret_access_key`, and the user:password part of URLs (`https://user:pass@host`).
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable

REDACTED = "***redacted***"

_SECRET_WORDS = {"token", "secret", "secrets", "password", "passwd", "passphrase", "credential",
                 "credentials", "apikey", "authorization", "auth", "bearer", "cookie",
                 "privatekey", "private", "sas", "signature"}
_SECRET_PAIR = re.compile(r"(^|_)(api|access|private|session|account|client|signing|master|"
                          r"openai|azure|anthropic|hf|aws|gcp|google|secret)_key($|_)")
_SHAPES = (
    (re.compile(r"sk-[A-Za-z0-9_\-]{6,}"), lambda m: "sk-" + REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-~+/=]{8,}"), lambda m: "Bearer " + REDACTED),
    (re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{20,}"),
     lambda m: m.group(1) + REDACTED),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://)([^/\s:@]+):([^/\s@]+)@"),
     lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@"),
)
_MIN_SECRET = 6


def is_secret_key(name: str) -> bool:
    """Whether a key / variable name looks like it holds a secret (whole words only)."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", snake) if w]
    return any(w in _SECRET_WORDS for w in words) or bool(_SECRET_PAIR.search("_".join(words)))


def secret_values(extra: Any = None) -> list[str]:
    """Secret values known right now: secret-named environment variables, plus secret-named keys
    (and `SecretStr` values) inside `extra`; longest first so overlapping values redact fully."""
    values = [v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= _MIN_SECRET]

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and is_secret_key(str(k)) and len(v) >= _MIN_SECRET:
                    values.append(v)
                else:
                    walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif hasattr(obj, "get_secret_value"):
            v = obj.get_secret_value()
            if isinstance(v, str) and len(v) >= _MIN_SECRET:
                values.append(v)
        elif hasattr(type(obj), "model_fields"):
            walk({k: getattr(obj, k, None) for k in type(obj).model_fields})

    walk(extra)
    return sorted(set(values), key=len, reverse=True)


def redact_text(text: str | None, extra: Any = None, secrets: Iterable[str] = ()) -> str | None:
    """`text` with every known secret value and every secret-shaped string replaced."""
    if not text:
        return text
    for value in [*secret_values(extra), *[s for s in secrets if s and len(s) >= 4]]:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, repl in _SHAPES:
        text = pattern.sub(repl, text)
    return text


def redact(obj: Any, extra: Any = None) -> Any:
    """A copy of `obj` with secret-named keys' values replaced and every string scrubbed."""
    if isinstance(obj, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                    else redact(v, extra)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, extra) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, extra)
    return obj
