"""Shared CLI plumbing: consoles, JSON output, and turning UnituneError into a clean exit.

Command modules import only typer and this module at top level; everything heavy is imported
inside the command functions so `unitune --help` stays fast.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes: 0 ok, 1 the thing checked failed (validation errors, job failed), 2 usage / unreadable
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


PIPED_WIDTH = 160  # when stdout is not a terminal, tables are this wide instead of rich's 80


def console(stderr: bool = False):
    """A rich console; on a pipe (CI logs, `| less`) wide enough that tables don't wrap ids."""
    import os

    from rich.console import Console

    con = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con.width = PIPED_WIDTH
    return con


def print_json(obj: Any) -> None:
    """Write JSON to stdout (pydantic models and dataclasses welcome)."""
    import orjson

    def default(o):
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if hasattr(o, "to_dict"):
            return o.to_dict()
        if hasattr(o, "__dataclass_fields__"):
            import dataclasses

            return dataclasses.asdict(o)
        return str(o)

    sys.stdout.write(orjson.dumps(obj, default=default, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def fail(message: str, hint: str | None = None, code: int = EXIT_FAIL) -> "typer.Exit":
    err = console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        err.print(f"[dim]hint:[/] {hint}", markup=True, highlight=False)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Decorator: UnituneError → message + hint on stderr and a non-zero exit, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..errors import MissingDependency, SpecError, UnituneError

        try:
            return fn(*args, **kwargs)
        except (SpecError, MissingDependency) as exc:
            raise fail(exc.message, exc.hint, EXIT_USAGE) from None
        except UnituneError as exc:
            raise fail(exc.message, exc.hint, EXIT_FAIL) from None
        except KeyboardInterrupt:
            raise fail("interrupted", None, 130) from None

    return wrapper  # type: ignore[return-value]
