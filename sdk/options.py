"""Backend options, merged once for every provider and checked against its typed model.

Sources, later wins: the provider's constructor options < `backend_options.<backend>` in the spec
< `UNITUNE_<BACKEND>_<OPTION>` in the environment. The merged mapping is validated by the
provider's `options_model` (pydantic, extra="forbid"): a misspelled key is an error naming the key,
where it came from and the nearest valid option, never silently ignored.
"""
from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import ValidationError

from .errors import SpecError
from .redact import is_secret_key, remember

if TYPE_CHECKING:
    from .provider import Options
    from .spec import JobSpec


def env_options(backend: str, env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """`UNITUNE_<BACKEND>_<OPTION>` variables as {option: (value, variable name)}."""
    env = os.environ if env is None else env
    prefix = f"UNITUNE_{backend.upper()}_"
    return {k[len(prefix):].lower(): (v, k) for k, v in env.items()
            if k.startswith(prefix) and len(k) > len(prefix)}


def env_number(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A numeric setting from the environment (`UNITUNE_POLL_MAX=30`); a bad value is an error
    naming the variable, not a traceback."""
    env = os.environ if env is None else env
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        raise SpecError(f"environment variable {name}={value!r} is not a number",
                        hint=f"unset it or give a number, e.g. {name}={default:g}") from None


def nearest(key: str, valid: list[str]) -> str | None:
    found = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return found[0] if found else None


def resolve_options(model: type["Options"], backend: str, spec: "JobSpec | None" = None, *,
                    base: Mapping[str, Any] | None = None,
                    env: Mapping[str, str] | None = None) -> "Options":
    """The provider's typed options for `spec` (or for a job found again without one)."""
    merged: dict[str, Any] = dict(base or {})
    where: dict[str, str] = {k: "the backend's constructor" for k in merged}
    if spec is not None:
        for k, v in (spec.backend_options.get(backend) or {}).items():
            merged[k] = v
            where[k] = f"backend_options.{backend}.{k}"
    for k, (v, var) in env_options(backend, env).items():
        if k in model.reserved_env:
            continue
        merged[k] = v
        where[k] = f"environment variable {var}"
    fields = sorted(model.model_fields)
    unknown = [k for k in merged if k not in model.model_fields]
    if unknown:
        lines = []
        for k in unknown:
            near = nearest(k, fields)
            lines.append(f"  {where[k]}: unknown {backend} option {k!r}"
                         + (f" (did you mean {near!r}?)" if near else ""))
        raise SpecError(f"unknown {backend} option(s):\n" + "\n".join(lines),
                        field=f"backend_options.{backend}.{unknown[0]}",
                        hint=f"{backend} options: {', '.join(fields) or '(none)'}; "
                             "`unitune schema` documents each")
    try:
        options = model.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(x) for x in err["loc"])
            origin = where.get(str(err["loc"][0]), f"backend_options.{backend}.{key}") \
                if err["loc"] else f"backend_options.{backend}"
            got = err.get("input")
            shown = "" if not isinstance(got, (str, int, float)) or any(
                is_secret_key(str(x)) for x in err["loc"]) else f" (got {str(got)[:60]!r})"
            lines.append(f"  {origin}: {err['msg']}{shown}")
        first = ".".join(str(x) for x in exc.errors()[0]["loc"])
        raise SpecError(f"invalid {backend} option(s):\n" + "\n".join(lines),
                        field=f"backend_options.{backend}.{first}",
                        hint="`unitune schema` documents every option") from None
    remember(options)  # a secret option from the spec is redacted like an environment one
    return options


def options_schema(model: type["Options"]) -> dict[str, Any]:
    """JSON schema of a provider's options (for `unitune schema`)."""
    return model.model_json_schema()


def plain(options: "Options") -> dict[str, Any]:
    """The options as a plain dict with secrets left out (for plan tables and the registry)."""
    from pydantic import SecretStr

    out = {}
    for k in type(options).model_fields:
        v = getattr(options, k)
        if isinstance(v, SecretStr):
            continue
        out[k] = v
    return out
