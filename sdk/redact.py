"""Secret redaction, in one place: by key name, by value, and by shape.

Everything unitune writes (registry rows, job folders, logs, error texts, `--json`) goes through
`redact` (structures) or `redact_text` (strings):

* by name: the value of a key that names a credential (`api_key`, `OPENAI_API_KEY`, `token`,
  `hf_token`, `clientSecret`, `password`, `credentials`, `openai_key`, `private`…) is replaced;
  `max_tokens`, `num_virtual_tokens`, `PWD` or a name that points at a secret (`api_key_env`,
  `GOOGLE_APPLICATION_CREDENTIALS`, `…_FILE`) are not (whole words are matched; paths in errors
  must still say which file);
* by value: every secret-named environment variable's value (not a variable that names a file,
  such as GOOGLE_APPLICATION_CREDENTIALS), every secret option and credential unitune loaded
  (`remember`: the typed options do it for every provider) and any value passed in `extra`
  is replaced wherever it appears in text; a later process knows only what it loads itself;
* by shape: OpenAI-style keys (`sk-…`), `Bearer …` tokens, Google OAuth tokens (`ya29.…`), AWS
  secret-looking strings after `aws_secret_access_key`, and the user:password part of URLs
  (`https://user:pass@host`).
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
    (re.compile(r"\bya29\.[A-Za-z0-9_\-.]+"), lambda m: "ya29." + REDACTED),  # Google OAuth tokens
)
_MIN_SECRET = 6


# a name ending in one of these says where a secret is, not what it is: `api_key_env`,
# `AWS_SHARED_CREDENTIALS_FILE`, `token_url` hold a variable name, a path, an address
_POINTER_WORDS = {"env", "var", "variable", "name", "file", "path", "dir", "directory", "home",
                  "url", "uri", "endpoint"}


def is_secret_key(name: str) -> bool:
    """Whether a key / variable name looks like it holds a secret (whole words only); names that
    point at a secret (`…_env`, `…_file`, `GOOGLE_APPLICATION_CREDENTIALS`) do not."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", snake) if w]
    if not words or words[-1] in _POINTER_WORDS or snake == "google_application_credentials":
        return False
    return any(w in _SECRET_WORDS for w in words) or bool(_SECRET_PAIR.search("_".join(words)))


_REMEMBERED: set[str] = set()
def _walk(obj: Any) -> list[str]:
    """The secret values inside `obj`: secret-named keys' string values and `SecretStr`s, in
    mappings, lists and pydantic models."""
    values: list[str] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, str) and is_secret_key(str(k)) and len(v) >= _MIN_SECRET:
                    values.append(v)
                else:
                    walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)
        elif hasattr(o, "get_secret_value"):
            v = o.get_secret_value()
            if isinstance(v, str) and len(v) >= _MIN_SECRET:
                values.append(v)
        elif hasattr(type(o), "model_fields"):
            walk({k: getattr(o, k, None) for k in type(o).model_fields})

    walk(obj)
    return values


def remember(*objs: Any) -> None:
    """Make secrets that did not come from the environment (a spec's `api_key` option, a loaded
    credential's tokens) known to every later redaction in this process. A string is one secret;
    a mapping, list or pydantic model gives its secret-named values and `SecretStr`s."""
    for obj in objs:
        if isinstance(obj, str):
            if len(obj) >= _MIN_SECRET:
                _REMEMBERED.add(obj)
        elif obj is not None:
            _REMEMBERED.update(_walk(obj))


def secret_values(extra: Any = None) -> list[str]:
    """Secret values known right now: secret-named environment variables, what `remember` was given, and the secrets inside `extra`; longest first so
    overlapping values redact fully."""
    values = [v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= _MIN_SECRET]
    return sorted({*values, *_REMEMBERED, *_walk(extra)}, key=len, reverse=True)


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


def scrub(obj: Any, extra: Any = None) -> Any:
    """A copy of `obj` with every string passed through `redact_text` (by value and shape only,
    key names untouched): for structures whose keys are vendor field names, such as a create
    request (`clientRequestToken` is not a secret)."""
    if isinstance(obj, dict):
        return {k: scrub(v, extra) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v, extra) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, extra)
    return obj


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
